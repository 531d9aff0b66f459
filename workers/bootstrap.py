"""The composition root: settings -> pool -> store -> broker -> role, one function per role.

Nothing is built at import time anywhere else; each process role calls one of
these at its start.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import psycopg
import structlog
from dramatiq.middleware import CurrentMessage

import migrations
from events.notifier import Notifier
from events.projections.runner import ProjectionRunner
from events.projections.shares import SharesProjection
from events.store import EventStore
from scheduler import embedded
from scheduler.db import connect_kwargs, make_pool
from scheduler.dispatcher import Dispatcher
from scheduler.errors import ConfigurationError
from scheduler.schedule import DueItem
from scheduler.settings import Settings
from scheduler.shares import ShareService
from workers import actors as actor_module
from workers.broker import make_broker, ping
from workers.channels import Publishers
from workers.channels.bluesky import BlueskyPublisher
from workers.channels.console import ConsolePublisher
from workers.channels.mastodon import MastodonPublisher
from workers.middleware import LogContext, Resources
from workers.runtime import Runtime

log = structlog.get_logger("followthrough")


# --- settings and servers ------------------------------------------------------------


@contextmanager
def resolved(settings: Settings) -> Iterator[Settings]:
    """Settings with both URLs set: the given ones, or embedded servers under ``home``
    (started here if none is running, and then stopped when this process is done)."""
    need_db, need_broker = settings.database_url is None, settings.broker_url is None
    if not (need_db or need_broker):
        yield settings
        return
    servers = embedded.start(settings.home, need_database=need_db, need_broker=need_broker)
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


# --- migrations ----------------------------------------------------------------------


def alembic_config(url: str) -> Any:
    from alembic.config import Config  # Alembic loads only where migrations run

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    cfg.attributes["database_url"] = url
    return cfg


def migrate(settings: Settings, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url(settings)), revision)


def schema_is_current(url: str) -> bool:
    with psycopg.connect(url, connect_timeout=5) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return False
        versions = {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}
    return versions == {migrations.HEAD}


def wait_for_schema(settings: Settings, *, timeout: float = 120.0) -> None:
    """Roles wait for `followthrough migrate` (a Kubernetes Job, or `up`) rather than migrate themselves."""
    url = database_url(settings)
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        try:
            if schema_is_current(url):
                return
            reason = "the database schema is not at the latest revision"
            fix = "run `followthrough migrate` against this database"
        except psycopg.Error as exc:
            reason = f"cannot reach the database ({exc.__class__.__name__}: {str(exc).strip()[:200]})"
            fix = "check DATABASE_URL and that the server is up"
        if time.monotonic() > deadline:
            raise ConfigurationError(f"{reason}: {fix}")
        if not announced:
            log.warning("waiting_for_migrations", reason=reason)
            announced = True
        time.sleep(1.0)


# --- building blocks -----------------------------------------------------------------


def build_store(settings: Settings, role: str, *, pool_size: int | None = None) -> tuple[EventStore, Notifier]:
    url = database_url(settings)
    notifier = Notifier(url, connect_kwargs=connect_kwargs(settings, f"{role}-notify"))
    pool_ = make_pool(settings, url, role=role, max_size=pool_size)
    return EventStore(pool_, notifier), notifier


def build_publishers(settings: Settings) -> Publishers:
    publishers = Publishers()
    publishers.register(ConsolePublisher(settings.console_dir.resolve()))
    # One client per worker process, for its lifetime: connection reuse across posts.
    client = httpx.Client(timeout=httpx.Timeout(20.0, connect=5.0), headers={"User-Agent": "followthrough"})
    publishers.register(MastodonPublisher(client))
    publishers.register(BlueskyPublisher(client))
    return publishers


def build_runtime(settings: Settings) -> Runtime:
    wait_for_schema(settings)
    store, notifier = build_store(settings, "worker", pool_size=settings.worker_threads + 2)
    store.pool.open(wait=True, timeout=30)
    notifier.start()
    return Runtime(
        settings=settings, pool=store.pool, store=store, notifier=notifier, publishers=build_publishers(settings)
    )


def build_broker(settings: Settings) -> tuple[dramatiq.Broker, actor_module.Actors]:
    broker = make_broker(broker_url(settings), namespace=settings.queue_prefix)
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(LogContext())
    actors = actor_module.declare(broker, queue_prefix=settings.queue_prefix)
    return broker, actors


def worker_broker(settings: Settings, *, build: Callable[[], Runtime] | None = None) -> dramatiq.Broker:
    """The broker a Dramatiq worker process runs (see ``workers.main``)."""
    broker, _ = build_broker(settings)
    broker.add_middleware(Resources(build or (lambda: build_runtime(settings))))
    dramatiq.set_broker(broker)
    return broker


# --- roles ---------------------------------------------------------------------------


def build_api(settings: Settings) -> Any:
    from scheduler.api.app import create_app
    from scheduler.api.deps import Services

    store, notifier = build_store(settings, "api")
    broker, _ = build_broker(settings)
    shares = ShareService(pool=store.pool, store=store, notifier=notifier, lease_seconds=settings.lease_seconds)

    def start() -> None:
        store.pool.open(wait=True, timeout=30)
        notifier.start()

    def stop() -> None:
        notifier.stop()
        store.pool.close()
        broker.close()

    services = Services(
        settings=settings,
        pool=store.pool,
        store=store,
        shares=shares,
        check_broker=lambda: ping(broker),
        start=start,
        stop=stop,
    )
    return create_app(services)


def run_dispatcher(settings: Settings, stop: threading.Event) -> None:
    wait_for_schema(settings)
    store, _ = build_store(settings, "dispatcher", pool_size=2)
    broker, actors = build_broker(settings)

    def send(group: Sequence[DueItem]) -> None:
        actors.send_for(group[0].kind, [item.share_id for item in group])

    dispatcher = Dispatcher(
        store.pool,
        conninfo=database_url(settings),
        connect_kwargs=connect_kwargs(settings, "dispatcher-lead"),
        send=send,
        batch=settings.dispatch_batch,
        lease_seconds=settings.lease_seconds,
        lead_seconds=settings.dispatch_lead_seconds,
        message_size=settings.dispatch_message_size,
    )

    def on_signal(signum: int, _: Any) -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        stop.set()
        if dispatcher.idle:
            raise _Interrupted  # leave LISTEN now: closing the lock connection releases the lead

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    store.pool.open(wait=True, timeout=30)
    try:
        dispatcher.run(stop)
    except _Interrupted:
        pass
    finally:
        store.pool.close()
        broker.close()


class _Interrupted(BaseException):
    """Raised from the signal handler to end an idle wait at once."""


def projection_runners(settings: Settings, store: EventStore) -> list[ProjectionRunner]:
    return [
        ProjectionRunner(
            store,
            SharesProjection(),
            conninfo=database_url(settings),
            connect_kwargs=connect_kwargs(settings, "projector-lead"),
            batch_size=settings.projector_batch,
            poll_seconds=settings.projector_poll_seconds,
        ),
    ]


def run_projector(settings: Settings, stop: threading.Event) -> None:
    wait_for_schema(settings)
    store, _ = build_store(settings, "projector", pool_size=4)
    store.pool.open(wait=True, timeout=30)
    threads = [
        threading.Thread(target=runner.run, args=(stop,), name=f"projection-{runner.projection.name}")
        for runner in projection_runners(settings, store)
    ]
    for thread in threads:
        thread.start()
    try:
        while any(t.is_alive() for t in threads) and not stop.is_set():
            stop.wait(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        store.pool.close()


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop``: a role finishes its step and lets go at once."""

    def handler(signum: int, _: Any) -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
