"""A delivery that stops moving says where: its thread's stack and what its database
connection's server process waits for, with whoever holds it back (real PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool
from structlog.testing import capture_logs

from events.store import EventStore
from scheduler.services.shares import ShareService
from tests.support.fake_channel import FakeChannel
from tests.support.shares import Clock, make_account, plan, runtime, share_service
from workers.channels import Post, Published
from workers.execution import execute_share, execute_shares


@dataclass
class HeldAfterPosting(FakeChannel):
    """Publishes, then has another session lock the share's schedule row, as a transaction
    left open elsewhere would: recording the post waits for that session."""

    holder: psycopg.Connection[Any] | None = None

    def publish(self, post: Post) -> Published:
        published = super().publish(post)
        assert self.holder is not None
        self.holder.execute("BEGIN")
        self.holder.execute("SELECT 1 FROM schedule WHERE kind = 'publish' AND share_id = %s FOR UPDATE",
                            (post.share_id,))
        return published


def test_a_delivery_waiting_on_a_lock_names_the_session_holding_it(
    database_url: str, store: EventStore, pool: ConnectionPool[Any], clock: Clock
) -> None:
    shares: ShareService = share_service(pool, store)
    share_id: UUID = plan(shares, make_account(pool))
    with psycopg.connect(database_url, autocommit=True, application_name="open-elsewhere") as holder:
        channel = HeldAfterPosting(holder=holder)
        rt = runtime(pool, store, channel, clock=clock)
        rt.deliveries.after_seconds = 0.5
        outcome: list[str] = []
        delivery = threading.Thread(target=lambda: outcome.append(execute_share(rt, share_id, message_id="msg-held")))
        lines = _until_reported(delivery, release=lambda: holder.execute("ROLLBACK"))
        rt.deliveries.stop()
        holder_pid = holder.info.backend_pid
    [line] = _long(lines)
    assert line["message_id"] == "msg-held"
    assert "_record" in line["stack"]  # the thread is recording the post it made
    backend = line["backend"]
    assert backend["state"] == "active"
    assert backend["wait_event_type"] == "Lock"
    assert backend["blocked_by"] == [holder_pid]
    [blocker] = backend["blockers"]
    assert blocker["pid"] == holder_pid
    assert blocker["application_name"] == "open-elsewhere"
    assert blocker["state"] == "idle in transaction"
    assert "FOR UPDATE" in blocker["query"]
    assert blocker["transaction_seconds"] >= 0.5
    # Once the other session let go, the post was recorded, once
    assert outcome == ["share_sent"]
    assert channel.count_for(share_id) == 1


def _until_reported(delivery: threading.Thread, *, release: Callable[[], object]) -> list[dict[str, Any]]:
    """The lines of ``delivery``, started now: once it has reported running long (30 s at
    most), what holds it back is released and it finishes."""
    with capture_logs() as lines:
        delivery.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not _long(lines):
                time.sleep(0.1)
        finally:
            release()
            delivery.join(timeout=30)
    return lines


def _long(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == "delivery_running_long"]


def test_a_group_waiting_for_a_call_says_where_each_of_its_calls_is(
    store: EventStore, pool: ConnectionPool[Any], clock: Clock
) -> None:
    # Given a group of three shares whose network answers two at once and holds the third
    shares: ShareService = share_service(pool, store)
    account = make_account(pool)
    ids = [plan(shares, account) for _ in range(3)]
    held = threading.Event()
    channel = FakeChannel(gates={ids[2]: held})
    with ThreadPoolExecutor(4, thread_name_prefix="call") as calls:
        rt = runtime(pool, store, channel, clock=clock, calls=calls)
        rt.deliveries.after_seconds = 0.5
        outcomes: list[dict[UUID, str]] = []
        delivery = threading.Thread(target=lambda: outcomes.append(execute_shares(rt, ids, message_id="msg-group")))
        # When the group has run past the threshold
        lines = _until_reported(delivery, release=held.set)
        rt.deliveries.stop()
    # Then its line counts its calls by where they are, with the held call's stack
    [line] = _long(lines)
    progress = line["calls"]
    assert (progress["started"], progress["to_start"], progress["queued"]) == (3, 0, 0)
    assert (progress["running"], progress["finished"], progress["finished_not_taken_in"]) == (1, 2, 0)
    [stack] = progress["running_stacks"]
    assert stack.startswith("1 call(s) at:")
    assert "_answer_late" in stack
    assert "returned.get" in line["stack"]  # the group's own thread waits for that call
    # And once the network answered, all three were recorded sent, once each
    assert outcomes == [dict.fromkeys(ids, "share_sent")]
    assert [channel.count_for(i) for i in ids] == [1, 1, 1]
