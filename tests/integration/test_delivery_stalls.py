"""A delivery that stops moving says where: its thread's stack and what its database
connection's server process waits for, with whoever holds it back (real PostgreSQL)."""

from __future__ import annotations

import threading
import time
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
from workers.execution import execute_share


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
        with capture_logs() as lines:
            delivery.start()
            try:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and not _long(lines):
                    time.sleep(0.1)
            finally:
                holder.execute("ROLLBACK")
                delivery.join(timeout=30)
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


def _long(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == "delivery_running_long"]
