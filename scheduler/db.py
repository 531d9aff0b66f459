"""Database connections: the pool every role uses, with the session settings the log needs."""

from __future__ import annotations

import time
import weakref
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from scheduler.settings import Settings


def connect_kwargs(settings: Settings, role: str) -> dict[str, Any]:
    """Per-connection settings. ``idle_in_transaction_session_timeout`` bounds how long a
    forgotten open transaction can hold every log follower back."""
    timeout_ms = settings.idle_in_transaction_timeout_seconds * 1000
    return {
        "application_name": f"followthrough-{role}",
        "options": f"-c idle_in_transaction_session_timeout={timeout_ms}",
    }


# A connection that was in use moments ago is known to work: checking it again on every
# checkout would add a round trip to every unit of work. Check the ones idle a while.
CHECK_AFTER_IDLE_SECONDS = 5.0
_returned_at: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = weakref.WeakKeyDictionary()


def _note_return(conn: psycopg.Connection[Any]) -> None:
    _returned_at[conn] = time.monotonic()


def _check_if_idle(conn: psycopg.Connection[Any]) -> None:
    if time.monotonic() - _returned_at.get(conn, 0.0) > CHECK_AFTER_IDLE_SECONDS:
        ConnectionPool.check_connection(conn)


def make_pool(settings: Settings, conninfo: str, *, role: str, max_size: int | None = None) -> ConnectionPool[Any]:
    """A pool of autocommit connections (one statement = one transaction; units of
    work open ``conn.transaction()`` themselves). Not opened here: the caller opens
    it where its lifetime starts (FastAPI's lifespan, a worker's boot)."""
    kwargs = {"autocommit": True, **connect_kwargs(settings, role)}
    size = max_size or settings.pool_max
    return ConnectionPool(
        conninfo,
        min_size=min(settings.pool_min, size),
        max_size=size,
        kwargs=kwargs,
        open=False,
        check=_check_if_idle,
        reset=_note_return,
        name=f"followthrough-{role}",
    )


def connect(settings: Settings, conninfo: str, *, role: str) -> psycopg.Connection[Any]:
    return psycopg.connect(conninfo, autocommit=True, **connect_kwargs(settings, role))
