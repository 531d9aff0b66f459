"""Looks that found nothing leave no event: the worker's ``collect_replies`` actor, run by a
Dramatiq worker on the real broker, against the fake Mastodon and a real PostgreSQL.

A look is an event (``RepliesLooked``) only when it changed something: new replies, or its
error appearing, changing or clearing. Every look is counted beside the log
(``reply_looks``) and its next look kept on the schedule, rebuilds of the projections
notwithstanding; the share's page sums the looks up in one line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import dramatiq
import httpx
import psycopg
import pytest
from dramatiq.middleware import CurrentMessage
from psycopg_pool import ConnectionPool

from events.catalogue import RepliesLooked
from events.pool import make_pool
from events.store import EventStore
from followthrough import bootstrap
from followthrough.settings import Settings
from scheduler.domain import share as lifecycle
from scheduler.services import audit, looks, workspaces
from scheduler.services.shares import ShareService
from tests.support.cli import cli, command_env
from tests.support.fake_mastodon import TOKEN, FakeMastodon
from tests.support.replies import account_on, catch_up, schedule_due, sent_share
from tests.support.servers import serve
from tests.support.shares import WS, Clock, runtime, view
from workers import actors as actor_module
from workers import runtime as runtime_module
from workers.broker import make_broker
from workers.channels.mastodon import MastodonPublisher
from workers.middleware import LogContext, Resources

pytestmark = pytest.mark.integration

# A look every second in the first day, a task's look one second before it is due.
FAST = {"replies": {"cadence": [{"until": "P1D", "every": "PT1S"}], "before_due": "PT1S"}}
JOIN_MS = 60_000  # how long a look may take before the test gives up on it (not a measure)


class Looker:
    """The worker's ``collect_replies`` actor on the real broker, run by a Dramatiq worker in
    this process (its runtime on a pool of its own, closed when the worker stops)."""

    def __init__(self, broker: dramatiq.Broker, actors: actor_module.Actors, worker: dramatiq.Worker,
                 queue: str) -> None:
        self.broker, self.actors, self.worker, self.queue = broker, actors, worker, queue

    def look(self, share_id: UUID) -> None:
        """One look at the share's thread, as the dispatcher asks for it; back when it is done."""
        self.actors.send_for("check_replies", [share_id])
        self.broker.join(self.queue, timeout=JOIN_MS)
        self.worker.join()


@pytest.fixture
def looker(settings: Settings, clock: Clock, network_client: httpx.Client) -> Iterator[Looker]:
    def build() -> Any:
        pool = make_pool(settings.database_url or "", role="worker", max_size=4)
        pool.open(wait=True)
        publisher = MastodonPublisher(network_client, env={"TEAM_MASTODON_TOKEN": TOKEN})
        return runtime(pool, EventStore(pool), publisher, clock=clock)

    broker = make_broker(settings.broker_url or "", namespace=settings.queue_prefix)
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(LogContext())
    broker.add_middleware(Resources(build))
    broker.emit_after("process_boot")
    actors = actor_module.declare(broker, queue_prefix=settings.queue_prefix)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        yield Looker(broker, actors, worker, actor_module.queue_names(settings.queue_prefix)["replies"])
    finally:
        worker.stop()
        broker.close()
        runtime_module.install(None)


def mastodon_share(pool: ConnectionPool[Any], store: EventStore, shares: ShareService, clock: Clock,
                   mastodon: FakeMastodon, network_client: httpx.Client) -> UUID:
    """A share sent on the fake Mastodon (its first look on the schedule)."""
    rt = runtime(pool, store, MastodonPublisher(network_client, env={"TEAM_MASTODON_TOKEN": TOKEN}), clock=clock)
    account = account_on(pool, "mastodon", {"base_url": mastodon.base_url, "access_token_env": "TEAM_MASTODON_TOKEN",
                                            **FAST})
    return sent_share(rt, shares, account)


def history(store: EventStore, share_id: UUID) -> list[str]:
    return [r.type_name for r in store.read_stream(lifecycle.stream_id(share_id))]


def ledger(pool: ConnectionPool[Any], share_id: UUID) -> lifecycle.LookLedger | None:
    with pool.connection() as conn:
        return looks.ledger(conn, share_id)


def schedule_row(pool: ConnectionPool[Any], share_id: UUID) -> tuple[Any, ...] | None:
    with pool.connection() as conn:
        return conn.execute("SELECT due_at, lease_until, dispatch_count FROM schedule"
                            " WHERE kind = 'check_replies' AND share_id = %s", (share_id,)).fetchone()


def test_looks_with_nothing_new_add_no_event_and_keep_the_next_look_on_the_schedule(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock, mastodon: FakeMastodon,
    network_client: httpx.Client, looker: Looker,
) -> None:
    # Given a share sent on Mastodon, nobody replying under it
    share_id = mastodon_share(pool, store, shares, clock, mastodon, network_client)
    sent = history(store, share_id)
    # When the worker looks at its thread three times, a minute apart
    for _ in range(3):
        clock.offset += timedelta(minutes=1)
        looker.look(share_id)
    # Then the share's stream is as it was after the post: no look is an event
    assert history(store, share_id) == sent
    assert "RepliesLooked" not in sent
    assert sum(1 for r in mastodon.requests if r.endswith("/context")) == 3  # three looks were made
    # And every look is counted, the next one kept on the schedule, lease-free, backing off (1, 2, 4 s: x4 at most)
    counted = ledger(pool, share_id)
    assert counted is not None
    assert (counted.looks, counted.empty_looks, counted.last_error) == (3, 3, None)
    assert counted.next_look_at == counted.last_look_at + timedelta(seconds=4)
    assert schedule_row(pool, share_id) == (counted.next_look_at, None, 0)
    # And the share counts them as the API shows it
    shown = view(shares, share_id)["replies"]
    assert (shown["looks"], shown["collected"]) == (3, True)
    assert datetime.fromisoformat(shown["next_look_at"]) == counted.next_look_at


def test_a_look_that_finds_a_reply_adds_it_and_the_look_and_the_back_off_starts_over(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock, mastodon: FakeMastodon,
    network_client: httpx.Client, looker: Looker,
) -> None:
    # Given a share on Mastodon looked at twice with nothing under it
    share_id = mastodon_share(pool, store, shares, clock, mastodon, network_client)
    looker.look(share_id)
    looker.look(share_id)
    before = history(store, share_id)
    # When someone replies, and the worker looks again, then once more
    mastodon.add_reply(mastodon.made[0]["id"], "Does it work offline?")
    looker.look(share_id)
    after_reply = history(store, share_id)
    looker.look(share_id)
    # Then the look that found the reply is recorded with it; the next, which found nothing new, is not
    assert after_reply == [*before, "ResponseReceived", "RepliesLooked"]
    assert history(store, share_id) == after_reply
    recorded = [r.event for r in store.read_stream(lifecycle.stream_id(share_id)) if r.type_name == "RepliesLooked"]
    assert [(x.found, x.new, x.empty_looks) for x in recorded] == [(1, 1, 0)]
    # And every look is counted: four, the last empty one after the reply (its back-off starting over)
    counted = ledger(pool, share_id)
    assert counted is not None
    assert (counted.looks, counted.empty_looks) == (4, 1)
    assert schedule_due(pool, "check_replies", share_id) == counted.next_look_at


def test_an_error_adds_a_look_when_it_appears_changes_or_clears_and_not_while_it_lasts(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock, mastodon: FakeMastodon,
    network_client: httpx.Client, looker: Looker,
) -> None:
    # Given a share on Mastodon, whose server then fails two looks with 502, one with 503, and recovers
    share_id = mastodon_share(pool, store, shares, clock, mastodon, network_client)
    sent = len(history(store, share_id))
    mastodon.fail_next(2, 502, path="/context")
    mastodon.fail_next(1, 503, path="/context")
    # When the worker looks five times
    for _ in range(5):
        clock.offset += timedelta(minutes=1)
        looker.look(share_id)
    # Then the error's appearing, its change and its clearing are looks recorded; it lasting and an empty look are not
    recorded = [r.event for r in store.read_stream(lifecycle.stream_id(share_id))][sent:]
    assert [x.type_name for x in recorded] == ["RepliesLooked"] * 3
    errors = [x.error for x in recorded if isinstance(x, RepliesLooked)]
    assert errors[0] is not None
    assert "502" in errors[0]
    assert errors[1] is not None
    assert "503" in errors[1]
    assert errors[2] is None
    # And all five looks are counted, the share's last error cleared
    counted = ledger(pool, share_id)
    assert counted is not None
    assert (counted.looks, counted.last_error) == (5, None)
    assert view(shares, share_id)["replies"]["last_error"] is None


def test_the_schedule_keeps_the_next_look_and_the_page_its_looks_after_a_rebuild(
    settings: Settings, database_url: str, broker_url: str, tmp_path: Path, store: EventStore,
    pool: ConnectionPool[Any], shares: ShareService, clock: Clock, mastodon: FakeMastodon,
    network_client: httpx.Client, looker: Looker,
) -> None:
    # Given a share on Mastodon with one reply found, then four looks that found nothing
    share_id = mastodon_share(pool, store, shares, clock, mastodon, network_client)
    mastodon.add_reply(mastodon.made[0]["id"], "Congrats!")
    for _ in range(5):
        clock.offset += timedelta(minutes=1)
        looker.look(share_id)
    catch_up(store, database_url)
    due, counted = schedule_row(pool, share_id), ledger(pool, share_id)
    assert counted is not None
    assert counted.looks == 5
    # When the operator rebuilds the shares projection
    rebuilt = cli("projections", "rebuild", "shares", env=command_env(database_url, broker_url, home=tmp_path))
    assert rebuilt.returncode == 0, rebuilt.stderr
    # Then the next look is where it was, and so is the count of looks
    assert schedule_row(pool, share_id) == due
    assert ledger(pool, share_id) == counted
    # And the audit recounts the log and finds the read models equal to it
    with psycopg.connect(database_url, autocommit=True) as conn:
        found = audit.audit(conn)
    assert found.clean, found.as_dict()
    # And the share's page sums the looks up in one line, with no row per look in its history
    with psycopg.connect(database_url, autocommit=True) as conn:
        token = workspaces.create_token(conn, WS, "read")
    with serve(bootstrap.build_api(settings)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10, follow_redirects=False) as client:
        assert client.post("/dashboard/signin", data={"token": token, "next": "/dashboard"}).status_code == 303
        page = client.get(f"/dashboard/shares/{share_id}")
    assert page.status_code == 200, page.text
    line = re.search(r'<p class="looks" data-looks="(\d+)">([^<]*)</p>', page.text)
    assert line is not None, page.text
    assert line.group(1) == "5"
    assert line.group(2).startswith("Replies looked at 5 times, last ")
    assert f"next {counted.next_look_at:%Y-%m-%d %H:%M:%S} UTC" in line.group(2)
    rows = re.findall(r"<strong>(\w+)</strong>", page.text.split('id="events-h"')[1])
    assert "ResponseReceived" in rows
    assert "RepliesLooked" not in rows


def test_a_look_decided_on_an_older_version_writes_nothing(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock, mastodon: FakeMastodon,
    network_client: httpx.Client,
) -> None:
    # Given a sent share, and a look that found nothing, decided on the stream one version back
    share_id = mastodon_share(pool, store, shares, clock, mastodon, network_client)
    state, _ = shares.load(WS, share_id)
    look = lifecycle.record_look(state, [], now=clock())
    assert look is not None
    assert not look.recorded
    due = schedule_row(pool, share_id)
    # When its next look is written as if nothing had happened since that older version
    with pool.connection() as conn:
        written = looks.look_again(conn, share_id=share_id, workspace_id=WS, version=state.version - 1,
                                   looked=look.looked, looks_before=0)
    # Then nothing is written: the caller decides again on the newer state
    assert written is False
    assert schedule_row(pool, share_id) == due
    assert ledger(pool, share_id) is None
    # And at the stream's version it is written
    with pool.connection() as conn:
        assert looks.look_again(conn, share_id=share_id, workspace_id=WS, version=state.version,
                                looked=look.looked, looks_before=0) is True
    assert schedule_due(pool, "check_replies", share_id) == look.looked.next_look_at
