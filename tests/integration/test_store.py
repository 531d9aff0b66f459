"""The event store against a real PostgreSQL: concurrency, idempotency, append-only, typing."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg import sql

from events.catalogue import ResponseStep, ShareCancelled, SharePlanned
from events.errors import ConcurrencyError, NotFirstWriteError, PartialDuplicateError, UnknownEventTypeError
from events.records import Checkpoint, NewEvent
from events.store import EventStore, Partition
from tests.support.database import connect

WS = "acme"


def planned(text: str = "hello") -> SharePlanned:
    return SharePlanned(
        share_id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        account_name="main",
        channel="console",
        text=text,
        scheduled_at=datetime(2026, 11, 25, 18, 0, tzinfo=UTC),
        response_plan=(ResponseStep(kind="check_replies", after_seconds=3600, owner="alice"),),
    )


def stream() -> str:
    return f"share-{uuid.uuid4()}"


def test_appended_events_read_back_typed_and_in_version_order(store: EventStore) -> None:
    # Given a new stream
    sid = stream()
    # When two events are appended, then one more at the version read
    first = store.append(
        sid, [NewEvent(planned()), NewEvent(ShareCancelled(reason="a"))], expected_version=0, workspace_id=WS
    )
    second = store.append(sid, [NewEvent(ShareCancelled(reason="b"))], expected_version=2, workspace_id=WS)
    # Then the stream holds three typed events at versions 1..3
    events = store.read_stream(sid)
    assert (first.version, first.written, second.version) == (2, 2, 3)
    assert [e.stream_version for e in events] == [1, 2, 3]
    assert isinstance(events[0].event, SharePlanned)
    assert [getattr(e.event, "reason", None) for e in events[1:]] == ["a", "b"]
    assert all(e.workspace_id == WS for e in events)


def test_concurrent_appends_at_one_expected_version_let_exactly_one_win(store: EventStore) -> None:
    # Given a stream at version 1 and twelve writers that all read version 1
    sid = stream()
    store.append(sid, [NewEvent(planned())], expected_version=0, workspace_id=WS)
    barrier = threading.Barrier(12)
    outcomes: list[Any] = []
    lock = threading.Lock()

    def writer(i: int) -> None:
        barrier.wait()
        try:
            result: Any = store.append(
                sid, [NewEvent(ShareCancelled(reason=str(i)))], expected_version=1, workspace_id=WS
            )
        except ConcurrencyError as exc:
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(12)]
    # When they append at once
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then one append won and every other got the store's own error, naming the versions
    errors = [o for o in outcomes if isinstance(o, ConcurrencyError)]
    assert len(outcomes) - len(errors) == 1
    assert len(errors) == 11
    for err in errors:
        assert err.stream_id == sid
        assert err.expected_version == 1
        assert err.actual_version == 2
        assert sid in str(err)
    assert store.stream_version(sid) == 2


def test_an_append_expecting_a_version_the_stream_has_not_reached_is_refused(store: EventStore) -> None:
    sid = stream()
    store.append(sid, [NewEvent(planned())], expected_version=0, workspace_id=WS)
    with pytest.raises(ConcurrencyError) as caught:
        store.append(sid, [NewEvent(ShareCancelled())], expected_version=5, workspace_id=WS)
    assert (caught.value.expected_version, caught.value.actual_version) == (5, 1)
    assert store.stream_version(sid) == 1


def test_reappending_the_same_event_ids_succeeds_and_writes_nothing(store: EventStore) -> None:
    # Given a batch that was appended (say the reply to the commit was lost)
    sid = stream()
    batch = [NewEvent(planned()), NewEvent(ShareCancelled(reason="x"))]
    store.append(sid, batch, expected_version=0, workspace_id=WS)
    # When the caller retries the very same batch, with the same or no expected version
    again = store.append(sid, batch, expected_version=0, workspace_id=WS)
    anyway = store.append(sid, batch, expected_version=None, workspace_id=WS)
    # Then both retries succeed without writing
    assert (again.written, again.version) == (0, 2)
    assert (anyway.written, anyway.version) == (0, 2)
    assert len(store.read_stream(sid)) == 2


def test_reappending_one_event_after_the_stream_moved_on_succeeds_and_writes_nothing(store: EventStore) -> None:
    # Given a one-event append that landed, and a later append after it
    sid = stream()
    first = NewEvent(planned())
    store.append(sid, [first], expected_version=0, workspace_id=WS)
    store.append(sid, [NewEvent(ShareCancelled())], expected_version=1, workspace_id=WS)
    # When the first is retried at the version it was written at
    again = store.append(sid, [first], expected_version=0, workspace_id=WS)
    # Then the retry is a success that wrote nothing, reporting the event's own version
    assert (again.written, again.version) == (0, 1)
    assert store.stream_version(sid) == 2


@pytest.mark.parametrize("events", [1, 2])
def test_an_append_in_a_pipelined_unit_of_work_reports_what_it_wrote(store: EventStore, events: int) -> None:
    # Given a unit of work in pipeline mode (results arrive only when fetched), as a
    # worker commits an attempt together with its schedule change
    sid = stream()
    batch = [NewEvent(planned())] + [NewEvent(ShareCancelled()) for _ in range(events - 1)]
    with store.pool.connection() as conn, conn.pipeline(), conn.transaction():
        result = store.append(sid, batch, expected_version=0, workspace_id=WS, conn=conn)
        conn.execute("INSERT INTO workspaces (id) VALUES (%s)", (f"pipelined-{events}",))
    # Then the result counts the events it wrote
    assert (result.written, result.version) == (events, events)
    assert store.stream_version(sid) == events


def test_a_batch_that_repeats_only_some_stored_ids_is_refused_whole(store: EventStore) -> None:
    sid = stream()
    stored = NewEvent(planned())
    store.append(sid, [stored], expected_version=0, workspace_id=WS)
    fresh = NewEvent(ShareCancelled())
    with pytest.raises(PartialDuplicateError) as caught:
        store.append(sid, [stored, fresh], expected_version=None, workspace_id=WS)
    assert caught.value.existing == (stored.event_id,)
    assert caught.value.missing == (fresh.event_id,)
    assert len(store.read_stream(sid)) == 1


def test_an_append_after_another_write_in_the_same_transaction_is_refused(store: EventStore) -> None:
    # Given a transaction that already wrote to another table
    with store.pool.connection() as conn:
        with pytest.raises(NotFirstWriteError), conn.transaction():
            conn.execute("INSERT INTO workspaces (id) VALUES ('first-write-trap')")
            # When it then appends events
            store.append(stream(), [NewEvent(planned())], expected_version=0, workspace_id=WS, conn=conn)
        # Then the database refused it, and nothing of the transaction stayed
        assert conn.execute("SELECT count(*) FROM workspaces WHERE id = 'first-write-trap'").fetchone() == (0,)


def test_several_appends_in_one_transaction_are_allowed_when_events_come_first(store: EventStore) -> None:
    a, b = stream(), stream()
    with store.pool.connection() as conn, conn.transaction():
        store.append(a, [NewEvent(planned())], expected_version=0, workspace_id=WS, conn=conn)
        store.append(b, [NewEvent(planned())], expected_version=0, workspace_id=WS, conn=conn)
        conn.execute("INSERT INTO workspaces (id) VALUES ('after-events')")
    assert store.stream_version(a) == 1
    assert store.stream_version(b) == 1


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET type = 'Tampered'",
        "DELETE FROM events",
        "DELETE FROM events WHERE false",
        "TRUNCATE events",
    ],
)
def test_the_database_refuses_to_change_or_remove_events_even_for_a_superuser(
    store: EventStore, database_url: str, statement: str
) -> None:
    store.append(stream(), [NewEvent(planned())], expected_version=0, workspace_id=WS)
    with connect(database_url) as conn:
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute(statement)
        # session_replication_role = replica skips ordinary triggers; these fire ALWAYS.
        conn.execute("SET session_replication_role = replica")
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)


@pytest.mark.parametrize("statement", ["UPDATE events SET type = 'X'", "DELETE FROM events", "TRUNCATE events"])
def test_the_application_role_has_no_privilege_to_change_events(
    store: EventStore, database_url: str, statement: str
) -> None:
    # Given a login role that is a member of followthrough_writer, as docs/operations.md ("Database roles") sets up
    role = f"ft_app_{uuid.uuid4().hex[:8]}"
    with connect(database_url) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE followthrough_writer").format(sql.Identifier(role)))
    try:
        app_url = database_url.replace("postgres@", f"{role}@", 1) if "postgres@" in database_url else None
        if app_url is None:
            kwargs: dict[str, Any] = {"user": role}
            app = connect(database_url, **kwargs)
        else:
            app = connect(app_url)
        with app:
            # It can see the schema version (every role checks it at start-up)
            version = app.execute("SELECT version_num FROM alembic_version").fetchone()
            assert version is not None
            # It can append and read
            sid = stream()
            with app.transaction():
                app.execute(
                    "INSERT INTO events (event_id, stream_id, stream_version, type, schema_version, data, workspace_id)"
                    " VALUES (%s, %s, 1, 'ShareCancelled', 1, '{\"reason\": \"\"}', %s)",
                    (uuid.uuid4(), sid, WS),
                )
            assert app.execute("SELECT count(*) FROM events WHERE stream_id = %s", (sid,)).fetchone() == (1,)
            # But not change or remove
            with pytest.raises(pg_errors.InsufficientPrivilege):
                app.execute(statement)
            # Nor switch off triggers
            with pytest.raises(psycopg.Error):
                app.execute("SET session_replication_role = replica")
    finally:
        with connect(database_url) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_an_old_schema_version_written_by_sql_is_upcast_on_read(store: EventStore, database_url: str) -> None:
    # Given a SharePlanned stored at schema version 1 (plan offsets in minutes)
    sid = stream()
    share_id, account_id = uuid.uuid4(), uuid.uuid4()
    v1 = {
        "share_id": str(share_id),
        "account_id": str(account_id),
        "account_name": "main",
        "channel": "console",
        "text": "from the first release",
        "scheduled_at": "2026-11-25T18:00:00+00:00",
        "response_plan": [{"kind": "check_replies", "after_minutes": 90, "owner": "alice"}],
    }
    with connect(database_url) as conn:
        conn.execute(
            "INSERT INTO events (event_id, stream_id, stream_version, type, schema_version, data, workspace_id)"
            " VALUES (%s, %s, 1, 'SharePlanned', 1, %s, %s)",
            (uuid.uuid4(), sid, psycopg.types.json.Jsonb(v1), WS),
        )
    # When it is read, as a stream and in the whole log
    [from_stream] = store.read_stream(sid)
    [from_log] = [e for e in store.read_all() if e.stream_id == sid]
    # Then it arrives as the current version, and the stored row is unchanged
    for recorded in (from_stream, from_log):
        assert isinstance(recorded.event, SharePlanned)
        assert recorded.event.response_plan[0].after_seconds == 90 * 60
        assert recorded.stored_schema_version == 1
    with connect(database_url) as conn:
        assert conn.execute("SELECT schema_version FROM events WHERE stream_id = %s", (sid,)).fetchone() == (1,)


def test_an_unknown_event_type_in_the_log_fails_loudly_with_its_name(store: EventStore, database_url: str) -> None:
    sid = stream()
    with connect(database_url) as conn:
        conn.execute(
            "INSERT INTO events (event_id, stream_id, stream_version, type, schema_version, data, workspace_id)"
            " VALUES (%s, %s, 1, 'ShareTeleported', 1, '{}', %s)",
            (uuid.uuid4(), sid, WS),
        )
    with pytest.raises(UnknownEventTypeError, match="ShareTeleported"):
        store.read_stream(sid)


def test_whole_log_reads_come_in_batches_and_can_filter_by_type(store: EventStore) -> None:
    for _ in range(25):
        sid = stream()
        store.append(sid, [NewEvent(planned()), NewEvent(ShareCancelled())], expected_version=0, workspace_id=WS)
    batch = store.read_batch(Checkpoint.start(), limit=10)
    assert len(batch) == 10
    everything = list(store.read_all(batch_size=7))
    assert len(everything) == 50
    checkpoints = [e.checkpoint for e in everything]
    assert checkpoints == sorted(checkpoints)
    cancelled = list(store.read_all(types=["ShareCancelled"], batch_size=4))
    assert len(cancelled) == 25
    assert all(isinstance(e.event, ShareCancelled) for e in cancelled)
    after = list(store.read_all(everything[29].checkpoint))
    assert [e.event_id for e in after] == [e.event_id for e in everything[30:]]


def test_the_log_read_in_partitions_up_to_a_checkpoint_is_split_by_stream_and_misses_nothing(
    store: EventStore,
) -> None:
    # Given 40 streams of two events each, and a checkpoint after the first 30 streams
    for _ in range(40):
        store.append(stream(), [NewEvent(planned()), NewEvent(ShareCancelled())], expected_version=0,
                     workspace_id=WS)
    everything = list(store.read_all())
    until = everything[59].checkpoint
    # When the log is read in three partitions up to that checkpoint, in small pages
    parts = [list(store.read_all(batch_size=4, until=until, partition=Partition(part, 3))) for part in range(3)]
    # Then together they hold every event up to the checkpoint once, each partition in log order
    ids = sorted(str(e.event_id) for part in parts for e in part)
    assert ids == sorted(str(e.event_id) for e in everything[:60])
    for part in parts:
        assert [e.checkpoint for e in part] == sorted(e.checkpoint for e in part)
    # And each stream lies whole in one partition, none of them empty
    owners: dict[str, set[int]] = {}
    for n, part in enumerate(parts):
        for e in part:
            owners.setdefault(e.stream_id, set()).add(n)
    assert all(len(found) == 1 for found in owners.values())
    assert all(parts)
    # And a partition is read only up to a checkpoint
    with pytest.raises(ValueError, match="up to a checkpoint"):
        list(store.read_all(partition=Partition(0, 2)))
