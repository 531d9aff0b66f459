"""Settings -> servers: the two URLs (given, or embedded servers under ``home``), the
schema check, and the database connections, pools and store every role and command opens.

Kept apart from ``bootstrap`` (which builds the roles: broker, publishers, API) so that an
operator's command loads the database driver and nothing of Dramatiq, httpx or FastAPI.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg_pool import ConnectionPool

from events import pool as db
from events.notifier import Notifier
from events.store import EventStore
from followthrough import schema
from followthrough.settings import Settings
from scheduler.errors import ConfigurationError

if TYPE_CHECKING:
    import httpx

# The fixed parts of one request's timeout to a network or a webhook receiver (the
# answer's is a setting), and the margin a lease keeps past a request's worst case.
CONNECT_TIMEOUT = 5.0
WRITE_TIMEOUT = 5.0
POOL_TIMEOUT = 5.0
LEASE_MARGIN = 5.0
# How long an idle connection to a network is kept for the next request: below the 5 s
# after which many servers close one (Node's default, so the Bluesky PDS; uvicorn's; Apache's).
# Reused just as the server closes it, a post fails with "server disconnected" before the
# server saw it, which can only be taken as an unknown outcome (a look-up, or a share held).
KEEPALIVE_SECONDS = 4.0


def http_limits(concurrent: int) -> httpx.Limits:
    """Connection limits for one client shared by ``concurrent`` threads: as many kept alive as
    may be open. httpcore 1.0.9 (encode/httpcore#1110) can close a connection it counts as
    surplus keep-alive after handing it to a waiting request, so the request's socket is closed
    under it ('read error: bad file descriptor') once the server may have read it: an unknown
    outcome. With 20 kept alive for 60 threads that was 1-6 requests in 10,000; with none
    surplus, none (``tests/integration/test_channel_transport_errors.py``)."""
    import httpx  # here, not above: an operator's command never loads the roles' HTTP client

    most = max(100, 2 * concurrent)
    return httpx.Limits(max_connections=most, max_keepalive_connections=most, keepalive_expiry=KEEPALIVE_SECONDS)


@contextmanager
def resolved(settings: Settings, *, owner: bool = False, need_broker: bool = True) -> Iterator[Settings]:
    """Settings with both URLs set: the given ones, or embedded servers under ``home``
    (started here if none is running, and then stopped when this process is done, unless
    another still holds them; ``owner`` (`up`) stops them whoever holds them)."""
    need_db, need_broker = settings.database_url is None, need_broker and settings.broker_url is None
    if not (need_db or need_broker):
        yield settings
        return
    from followthrough.local import embedded  # the embedded servers' packages load only where they run

    servers = embedded.start(settings.home, need_database=need_db, need_broker=need_broker, owner=owner)
    try:
        yield settings.model_copy(
            update={
                "database_url": settings.database_url or servers.database_url,
                "broker_url": settings.broker_url or servers.broker_url,
            }
        )
    finally:
        servers.stop()


def database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise ConfigurationError("no database URL: set DATABASE_URL (or leave it unset for the embedded one)")
    return settings.database_url


def broker_url(settings: Settings) -> str:
    if not settings.broker_url:
        raise ConfigurationError("no broker URL: set BROKER_URL (or leave it unset for the embedded one)")
    return settings.broker_url


def migrate(settings: Settings) -> None:
    schema.migrate(database_url(settings))


def wait_for_schema(settings: Settings, *, timeout: float = 120.0) -> None:
    schema.wait_until_current(database_url(settings), timeout=timeout)


def connect_kwargs(settings: Settings, role: str) -> dict[str, Any]:
    return db.connect_kwargs(role, idle_in_transaction_seconds=settings.idle_in_transaction_timeout_seconds)


def connect(settings: Settings, role: str = "cli") -> psycopg.Connection[Any]:
    """One connection with the log's session settings, for a command's own queries."""
    return db.connect(database_url(settings), role=role,
                      idle_in_transaction_seconds=settings.idle_in_transaction_timeout_seconds)


def build_pool(
    settings: Settings, role: str, *, pool_size: int | None = None, timeout: float = 30.0, options: str = ""
) -> ConnectionPool[Any]:
    return db.make_pool(
        database_url(settings),
        role=role,
        max_size=pool_size or settings.pool_max,
        min_size=settings.pool_min,
        idle_in_transaction_seconds=settings.idle_in_transaction_timeout_seconds,
        timeout=timeout,
        options=options,
    )


def build_store(
    settings: Settings, role: str, *, pool_size: int | None = None, timeout: float = 30.0, options: str = ""
) -> tuple[EventStore, Notifier]:
    notifier = Notifier(database_url(settings), connect_kwargs=connect_kwargs(settings, f"{role}-notify"))
    pool = build_pool(settings, role, pool_size=pool_size, timeout=timeout, options=options)
    return EventStore(pool, notifier), notifier
