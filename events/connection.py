"""The connection class the service's pools hand out: a psycopg connection that keeps
one cursor for the event store's statements.

A fresh cursor per statement (what ``Connection.execute`` makes) builds its own
adapters and dumper caches: measured here at ~30 µs of client CPU per statement,
a quarter of a single-event append's client work. The store's statements are
executed and fully fetched one at a time, so one cursor per connection serves them
all. Connections from elsewhere (a plain ``psycopg.connect``) still work: they get a
fresh cursor per statement.
"""

from __future__ import annotations

from typing import Any

import psycopg


class LogConnection(psycopg.Connection[Any]):
    _store_cursor: psycopg.Cursor[Any] | None = None

    def store_cursor(self) -> psycopg.Cursor[Any]:
        cur = self._store_cursor
        if cur is None or cur.closed:
            cur = self._store_cursor = self.cursor()
        return cur


def cursor_for(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
    """The cursor for one store statement on ``conn``; fetch its results before the next."""
    if isinstance(conn, LogConnection):
        return conn.store_cursor()
    return conn.cursor()
