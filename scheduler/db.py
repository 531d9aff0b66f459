"""Database connections: the pool every role uses, with the session settings the log needs."""

from __future__ import annotations

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
        check=ConnectionPool.check_connection,
        name=f"followthrough-{role}",
    )


def connect(settings: Settings, conninfo: str, *, role: str) -> psycopg.Connection[Any]:
    return psycopg.connect(conninfo, autocommit=True, **connect_kwargs(settings, role))
