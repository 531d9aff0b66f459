"""The service's connections: the pool's check of idle connections, the store's held cursor."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from events import pool as db
from events import store as store_queries
from events.catalogue import ShareCancelled
from events.connection import LogConnection
from events.records import NewEvent
from events.store import EventStore
from tests.support.database import connect


def test_a_connection_dropped_while_idle_is_replaced_at_checkout(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a pool of one connection whose server process is terminated while it is idle
    pool = db.make_pool(database_url, role="check-test", max_size=1)
    pool.open(wait=True)
    try:
        with pool.connection() as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            dropped = row[0]
        with connect(database_url) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (dropped,))
        # When it is handed out after longer than the idle threshold
        monkeypatch.setattr(db, "CHECK_AFTER_IDLE_SECONDS", 0.0)
        with pool.connection() as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
        # Then the pool checked it, found it dead and handed out a working one instead
        assert row is not None
        assert row[0] != dropped
    finally:
        pool.close()


def test_the_store_keeps_one_cursor_per_pooled_connection_and_works_on_plain_ones(
    store: EventStore, pool: ConnectionPool[Any], database_url: str
) -> None:
    sid = f"share-{uuid.uuid4()}"
    # A pooled connection is a LogConnection with one cursor for the store's statements
    with pool.connection() as conn:
        assert isinstance(conn, LogConnection)
        assert conn.store_cursor() is conn.store_cursor()
        first = store.append(
            sid, [NewEvent(ShareCancelled(reason="a"))], expected_version=0, workspace_id="w", conn=conn
        )
    # A plain psycopg connection gets a fresh cursor per statement, and works the same
    with connect(database_url) as plain:
        second = store.append(
            sid, [NewEvent(ShareCancelled(reason="b"))], expected_version=1, workspace_id="w", conn=plain
        )
        assert [e.stream_version for e in store.read_stream(sid, conn=plain)] == [1, 2]
    assert (first.version, second.version) == (1, 2)


def test_the_service_connections_run_without_jit_and_bound_idle_transactions(pool: ConnectionPool[Any]) -> None:
    # A short statement misestimated on a table never analyzed must not pay for compiling
    with pool.connection() as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('jit', 'idle_in_transaction_session_timeout')"
            ).fetchall()
        )
    assert settings["jit"] == "off"
    assert int(settings["idle_in_transaction_session_timeout"]) == db.DEFAULT_IDLE_IN_TRANSACTION_SECONDS * 1000


def test_a_group_read_looks_each_stream_up_by_its_index_in_version_order(
    store: EventStore, pool: ConnectionPool[Any]
) -> None:
    # Given three streams of a few events each, written interleaved
    streams = [f"share-{uuid.uuid4()}" for _ in range(3)]
    for version in range(3):
        for sid in streams:
            store.append(
                sid, [NewEvent(ShareCancelled(reason=f"{sid}-{version}"))], expected_version=version, workspace_id="w"
            )
    with pool.connection() as conn, conn.transaction():
        # When a group's read is planned (sequential scans priced out: a table this small
        # would otherwise be scanned whatever the query's form)
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                b"EXPLAIN " + store_queries.Q["read_streams"].encode(), {"stream_ids": streams}
            ).fetchall()
        )
        found = store.read_streams(streams, conn=conn)
    # Then each stream is looked up on its own through (stream_id, stream_version)'s index,
    # never as one match of the whole log against the list (which a table never analyzed
    # estimated as a scan of the whole log)
    assert "events_stream_version_key" in plan, plan
    assert "(stream_id = s.stream_id)" in plan, plan
    assert "ANY" not in plan, plan
    # And each comes back whole, in version order
    assert {sid: [e.stream_version for e in found[sid]] for sid in streams} == {sid: [1, 2, 3] for sid in streams}
    assert all(e.event.reason.startswith(sid) for sid in streams for e in found[sid])  # type: ignore[attr-defined]
