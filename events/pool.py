"""Database connections: the pool every role uses, with the session settings the log needs.

Takes plain values; the composition root passes them from the settings."""

from __future__ import annotations

import time
import weakref
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from events.connection import LogConnection

DEFAULT_IDLE_IN_TRANSACTION_SECONDS = 60
CONNECT_TIMEOUT_SECONDS = 5


def connect_kwargs(
    role: str, *, idle_in_transaction_seconds: int = DEFAULT_IDLE_IN_TRANSACTION_SECONDS, options: str = ""
) -> dict[str, Any]:
    """Per-connection settings. ``idle_in_transaction_session_timeout`` bounds how long a
    forgotten open transaction can hold every log follower back. ``options``: a role's own
    session settings (``-c name=value``), after these."""
    timeout_ms = idle_in_transaction_seconds * 1000
    return {
        "application_name": f"followthrough-{role}",
        # A server that is away (restarting, failing over) is reported, not waited for.
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        # No JIT: every statement here is short. Compiling one whose estimate passed the JIT
        # threshold (a table never analyzed, where the server runs without autovacuum) took
        # 12-25 ms for a read of 50 rows that takes 0.5.
        "options": f"-c idle_in_transaction_session_timeout={timeout_ms} -c jit=off {options}".rstrip(),
    }


# A connection that was in use moments ago is known to work: checking it again on every
# checkout would add a round trip to every unit of work, so only connections not
# handed out for a while are checked. The time is noted at checkout (in the check
# itself): a ``reset`` callback would make the pool return every connection through
# its worker thread, which measured ~80 µs and a thread hand-off per checkout.
CHECK_AFTER_IDLE_SECONDS = 5.0
_checked_out_at: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = weakref.WeakKeyDictionary()


def _check_if_idle(conn: psycopg.Connection[Any]) -> None:
    now = time.monotonic()
    if now - _checked_out_at.get(conn, 0.0) > CHECK_AFTER_IDLE_SECONDS:
        ConnectionPool.check_connection(conn)
    _checked_out_at[conn] = now


def make_pool(
    conninfo: str,
    *,
    role: str,
    max_size: int,
    min_size: int = 1,
    idle_in_transaction_seconds: int = DEFAULT_IDLE_IN_TRANSACTION_SECONDS,
    timeout: float = 30.0,
    options: str = "",
) -> ConnectionPool[Any]:
    """A pool of autocommit connections (one statement = one transaction; units of
    work open ``conn.transaction()`` themselves). Not opened here: the caller opens
    it where its lifetime starts (FastAPI's lifespan, a worker's boot). ``timeout``:
    how long a checkout waits for a connection before ``PoolTimeout``."""
    kwargs = {"autocommit": True, **connect_kwargs(role, idle_in_transaction_seconds=idle_in_transaction_seconds,
                                                    options=options)}
    return ConnectionPool(
        conninfo,
        min_size=min(min_size, max_size),
        max_size=max_size,
        kwargs=kwargs,
        open=False,
        timeout=timeout,
        check=_check_if_idle,
        connection_class=LogConnection,
        name=f"followthrough-{role}",
    )


def connect(
    conninfo: str, *, role: str, idle_in_transaction_seconds: int = DEFAULT_IDLE_IN_TRANSACTION_SECONDS
) -> psycopg.Connection[Any]:
    """One autocommit connection with the log's session settings (tools, leaders)."""
    return LogConnection.connect(
        conninfo, autocommit=True, **connect_kwargs(role, idle_in_transaction_seconds=idle_in_transaction_seconds)
    )
