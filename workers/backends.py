"""What a database connection's server process is doing, for a delivery that stopped moving.

A delivery's thread that waits on its connection (a lock, a commit, a reply that never
comes) shows only psycopg's wait in its Python stack; the server knows what it waits for
and who holds it back. Read on a connection of its own: the worker's pool may be what is
exhausted.
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

from events.pool import connect

# Statement texts are cut: a line for a log pipeline, not a dump. They hold placeholders
# ($1), never the values: psycopg binds on the server.
_QUERY_CHARS = 300

_ACTIVITY = """
SELECT pid, application_name, state, wait_event_type, wait_event, left(query, %(chars)s) AS query,
       round(extract(epoch FROM now() - xact_start)::numeric, 1)::float AS transaction_seconds,
       round(extract(epoch FROM now() - state_change)::numeric, 1)::float AS state_seconds,
       pg_blocking_pids(pid) AS blocked_by
  FROM pg_stat_activity
 WHERE pid = ANY(%(pids)s)
"""


def describe(pool: ConnectionPool[Any], pid: int) -> dict[str, Any]:
    """The backend ``pid`` (of ``pool``'s server): its state and wait, and the same for each
    backend blocking it."""
    conninfo = pool.conninfo() if callable(pool.conninfo) else pool.conninfo
    with connect(conninfo, role="stalls") as conn:
        [me] = _activity(conn, [pid]) or [{"pid": pid, "state": "gone"}]
        blockers = me.get("blocked_by") or []
        if blockers:
            me["blockers"] = _activity(conn, blockers)
        return me


def _activity(conn: Any, pids: list[int]) -> list[dict[str, Any]]:
    cur = conn.execute(_ACTIVITY, {"chars": _QUERY_CHARS, "pids": pids})
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
