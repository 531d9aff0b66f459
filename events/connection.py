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


# ``prepare=CUSTOM_PLAN`` on a statement whose best plan depends on how large its table is
# now: it is planned at each execution, never from a plan cached when the table was small.
# A prepared statement's generic plan is kept until the table is next analyzed: one made while
# the schedule or the log held a few hundred rows read the whole table at every execution once
# a burst had filled it (a share group's stream read 10 ms instead of 0.2 ms, 192 times in one
# run of bench/dispatch.py). Planning these few statements costs far less.
CUSTOM_PLAN = False
