"""The whole-log reader never skips a late-committing event, never sees a rolled-back
one, and keeps every stream in version order, under many concurrent writers.

Its tests run on a PostgreSQL cluster of their own (``cluster_of_its_own``): they hold
transactions open, which holds back the log's readers in every database of the cluster, and
they time what a follower sees, which other tests' running transactions would delay."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from events import monitoring
from events.catalogue import ShareCancelled
from events.errors import ConcurrencyError
from events.follow import tail
from events.records import Checkpoint, NewEvent, RecordedEvent
from events.store import EventStore
from tests.support.database import connect
from tests.support.fixtures import cluster_of_its_own, migrated_template
from tests.support.system import wait_until

WS = "acme"


@pytest.fixture(scope="module")
def admin_url(admin_url: str) -> Iterator[str]:
    with cluster_of_its_own(admin_url) as own:
        yield own


@pytest.fixture(scope="module")
def template_db(admin_url: str) -> Iterator[str]:
    yield from migrated_template(admin_url, "_log")  # not the session's template, which may be on the same server


class Rollback(Exception):
    """Raised inside a writer's transaction to roll it back on purpose."""


@pytest.mark.slow
def test_a_tailing_follower_sees_every_committed_event_exactly_once_under_concurrent_writers(
    store: EventStore, database_url: str
) -> None:
    # Given 8 writers appending 1-5 events per transaction to 300 streams, holding each
    # transaction open for a random short time and rolling back one in ten
    target = 100_000
    streams = [f"share-{uuid.uuid4()}" for _ in range(300)]
    committed: set[uuid.UUID] = set()
    rolled_back: set[uuid.UUID] = set()
    lock = threading.Lock()
    done = threading.Event()

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        with connect(database_url) as conn:
            while not done.is_set():
                sid = rng.choice(streams)
                batch = [NewEvent(ShareCancelled(reason=str(rng.random()))) for _ in range(rng.randint(1, 5))]
                rollback = rng.random() < 0.1
                try:
                    with conn.transaction():
                        store.append(sid, batch, expected_version=None, workspace_id=WS, conn=conn)
                        time.sleep(rng.random() * 0.003)
                        if rollback:
                            raise Rollback
                except Rollback:
                    with lock:
                        rolled_back.update(e.event_id for e in batch)
                    continue
                except ConcurrencyError:
                    continue  # another writer took that version; nothing was written
                with lock:
                    committed.update(e.event_id for e in batch)
                    if len(committed) >= target:
                        done.set()

    # And a follower that tails from its checkpoint and restarts from it several times
    seen: list[RecordedEvent] = []
    checkpoint = Checkpoint.start()
    follower_done = threading.Event()
    writers_finished = threading.Event()

    def follower() -> None:
        nonlocal checkpoint
        restarts = 0
        while not follower_done.is_set():
            with connect(database_url) as conn:  # a restart: new connection, resume from the checkpoint
                for _ in range(200):
                    batch = store.read_batch(checkpoint, limit=rng_limit(), conn=conn)
                    seen.extend(batch)
                    if batch:
                        checkpoint = batch[-1].checkpoint
                    elif writers_finished.is_set() and _caught_up():
                        follower_done.set()
                        break
                    else:
                        time.sleep(0.005)
            restarts += 1
        assert restarts >= 3

    def rng_limit() -> int:
        return random.choice([50, 200, 1000])

    def _caught_up() -> bool:
        with lock:
            return len({e.event_id for e in seen}) >= len(committed)

    writers = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    tailer = threading.Thread(target=follower)
    # When they all run
    for t in [*writers, tailer]:
        t.start()
    for t in writers:
        t.join()
    writers_finished.set()
    tailer.join(timeout=120)
    assert not tailer.is_alive(), "the follower did not catch up"
    # Then the follower saw every committed event exactly once, and no rolled-back one
    ids = [e.event_id for e in seen]
    assert len(committed) >= target
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert set(ids) == committed
    assert not (set(ids) & rolled_back)
    assert rolled_back, "the test must exercise rollbacks"
    # And every stream arrived in version order with no gap
    versions: dict[str, list[int]] = defaultdict(list)
    for e in seen:
        versions[e.stream_id].append(e.stream_version)
    for sid, vs in versions.items():
        assert vs == list(range(1, len(vs) + 1)), f"{sid} out of order"


def test_a_long_open_transaction_delays_followers_but_loses_nothing(store: EventStore, database_url: str) -> None:
    # Given a transaction that appended an event and stays open
    slow = connect(database_url)
    slow_stream, fast_stream = f"share-{uuid.uuid4()}", f"share-{uuid.uuid4()}"
    slow_event = NewEvent(ShareCancelled(reason="slow"))
    try:
        slow.execute("BEGIN")
        store.append(slow_stream, [slow_event], expected_version=0, workspace_id=WS, conn=slow)
        # When other transactions append and commit after it
        fast = [NewEvent(ShareCancelled(reason=str(i))) for i in range(5)]
        for i, event in enumerate(fast):
            store.append(fast_stream, [event], expected_version=i, workspace_id=WS)
        # Then a follower does not read past the open transaction yet
        assert store.read_batch(Checkpoint.start(), limit=100) == []
        with connect(database_url) as conn:
            held = wait_until(lambda: _held(conn), timeout=5, what="the horizon to report held events")
        assert held.held_seconds is not None
        assert held.held_seconds > 0
        # And when the slow transaction commits, everything arrives, the slow event first
        slow.execute("COMMIT")
        read = store.read_batch(Checkpoint.start(), limit=100)
        assert [e.event_id for e in read] == [slow_event.event_id, *(e.event_id for e in fast)]
    finally:
        slow.close()


def test_a_new_epoch_keeps_events_after_a_restore_ahead_of_old_checkpoints(
    store: EventStore, database_url: str
) -> None:
    # Given events restored from another cluster, whose transaction ids are far ahead of ours
    restored = f"share-{uuid.uuid4()}"
    with connect(database_url) as conn:
        for version, xid in ((1, 900_000_000), (2, 900_000_001)):
            conn.execute(
                "INSERT INTO events (event_id, stream_id, stream_version, type, schema_version, data, workspace_id,"
                " epoch, tx_id) VALUES (%s, %s, %s, 'ShareCancelled', 1, '{\"reason\": \"\"}', %s, 1, %s::text::xid8)",
                (uuid.uuid4(), restored, version, WS, str(xid)),
            )
    # And a follower whose checkpoint (restored with them) is at the last of them
    with connect(database_url) as conn:
        row = conn.execute("SELECT max(position) FROM events WHERE stream_id = %s", (restored,)).fetchone()
    assert row is not None
    follower_at = Checkpoint(1, 900_000_001, int(row[0]))
    # When the operator bumps the epoch after the restore, and new events are appended
    with connect(database_url) as conn:
        assert monitoring.bump_epoch(conn, "restored from backup") == 2
    new = f"share-{uuid.uuid4()}"
    store.append(new, [NewEvent(ShareCancelled(reason="after restore"))], expected_version=0, workspace_id=WS)
    # Then the follower still finds them, though their transaction ids are smaller
    after = store.read_batch(follower_at, limit=10)
    assert [(e.stream_id, e.epoch) for e in after] == [(new, 2)]
    assert after[0].tx_id < follower_at.tx_id  # without the epoch it would sort behind the checkpoint
    # And a follower from the start reads the restored events, then the new one
    everything = store.read_batch(Checkpoint.start(), limit=10)
    assert [e.stream_id for e in everything] == [restored, restored, new]


def test_tail_wakes_on_notify_without_waiting_for_its_poll(store: EventStore, database_url: str) -> None:
    # Given a tail that would poll only every 30 seconds
    stop = threading.Event()
    received: list[RecordedEvent] = []
    arrived = threading.Event()

    def follow() -> None:
        stream: Iterator[RecordedEvent] = tail(store, database_url, Checkpoint.start(), poll_seconds=30, stop=stop)
        for event in stream:
            received.append(event)
            arrived.set()
            if event.event.model_dump().get("reason") == "last":
                return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    # The tail LISTENs before its first read: once a first event has arrived, it is listening
    store.append(f"share-{uuid.uuid4()}", [NewEvent(ShareCancelled(reason="first"))], expected_version=0,
                 workspace_id=WS)
    assert arrived.wait(10)
    arrived.clear()
    # When an event is appended
    store.append(
        f"share-{uuid.uuid4()}", [NewEvent(ShareCancelled(reason="last"))], expected_version=0, workspace_id=WS
    )
    # Then the tail delivers it at once (NOTIFY), not after its poll timeout
    assert arrived.wait(5)  # its poll timeout is 30 s
    thread.join(timeout=5)
    stop.set()
    assert [e.event.model_dump()["reason"] for e in received] == ["first", "last"]


def test_log_status_reports_each_followers_lag(store: EventStore, database_url: str) -> None:
    with connect(database_url) as conn:
        conn.execute("INSERT INTO projection_checkpoints (name) VALUES ('behind')")
    store.append(f"share-{uuid.uuid4()}", [NewEvent(ShareCancelled())], expected_version=0, workspace_id=WS)
    with connect(database_url) as conn:
        lags = wait_until(lambda: _lags_when_behind(conn), timeout=5, what="a measurable lag")
        horizon = monitoring.horizon(conn)
    assert lags["behind"].lag_seconds > 0
    assert horizon.epoch == 1
    assert horizon.held_seconds is None


def test_the_log_is_ordered_by_transaction_id_as_a_number_not_as_text(
    store: EventStore, database_url: str
) -> None:
    # Given two committed transactions whose ids cross a power of ten (…999 then …000),
    # written in the opposite order of position
    with connect(database_url) as conn:
        row = conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text").fetchone()
        assert row is not None
        boundary = 10 ** (len(row[0]) - 1)
        for xid, stream in ((boundary, "share-late"), (boundary - 1, "share-early")):
            conn.execute(
                "INSERT INTO events (event_id, stream_id, stream_version, type, schema_version, data, workspace_id,"
                " tx_id) VALUES (%s, %s, 1, 'ShareCancelled', 1, '{\"reason\": \"\"}', %s, %s::text::xid8)",
                (uuid.uuid4(), stream, WS, str(xid)),
            )
    # When a follower reads one event at a time
    first = store.read_batch(Checkpoint.start(), limit=1)
    second = store.read_batch(first[0].checkpoint, limit=1)
    # Then the older transaction comes first, and neither is skipped
    assert [e.stream_id for e in first + second] == ["share-early", "share-late"]
    assert first[0].tx_id == boundary - 1


def _held(conn: Any) -> monitoring.Horizon | None:
    horizon = monitoring.horizon(conn)
    return horizon if horizon.held_seconds else None


def _lags_when_behind(conn: Any) -> dict[str, Any] | None:
    lags = {lag.name: lag for lag in monitoring.follower_lags(conn)}
    return lags if lags["behind"].lag_seconds > 0 else None

