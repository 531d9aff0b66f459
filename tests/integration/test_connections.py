"""The service's connections: the pool's check of idle connections, the store's held cursor."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from events import pool as db
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
