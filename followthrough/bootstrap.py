"""The composition root: settings -> pool -> store -> broker -> role, one builder per role.

Nothing is built at import time anywhere else; each process role calls one of
these at its start (through ``followthrough.cli``, or ``workers.main`` for Dramatiq).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import dramatiq
import httpx
import psycopg
from dramatiq.middleware import CurrentMessage
from psycopg_pool import ConnectionPool

from events import pool as db
from events.notifier import Notifier
from events.projections.runner import ProjectionRunner
from events.projections.shares import SharesProjection
from events.projections.webhooks import WebhooksProjection
from events.store import EventStore
from followthrough import schema
from followthrough.local import embedded
from followthrough.settings import Settings
from scheduler.dispatch.dispatcher import Dispatcher
from scheduler.dispatch.schedule_table import DueItem
from scheduler.domain.limits import InstanceLimit
from scheduler.errors import ConfigurationError
from scheduler.services.share_stream import ShareStreams
from scheduler.services.shares import ShareService
from workers import actors as actor_module
from workers.broker import make_broker, ping
from workers.channels import Publishers
from workers.channels.bluesky import BlueskyPublisher
from workers.channels.console import ConsolePublisher
from workers.channels.mastodon import MastodonPublisher
from workers.lifeline import Lifeline
from workers.middleware import LogContext, Resources
from workers.runtime import Runtime, WorkerConfig

# The fixed parts of one request's timeout to a network (the answer's is a setting).
CONNECT_TIMEOUT = 5.0
WRITE_TIMEOUT = 5.0
POOL_TIMEOUT = 5.0
LEASE_MARGIN = 5.0

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


def migrate(settings: Settings) -> None:
    schema.migrate(database_url(settings))


def wait_for_schema(settings: Settings, *, timeout: float = 120.0) -> None:
    schema.wait_until_current(database_url(settings), timeout=timeout)


# --- building blocks -----------------------------------------------------------------


def connect_kwargs(settings: Settings, role: str) -> dict[str, Any]:
    return db.connect_kwargs(role, idle_in_transaction_seconds=settings.idle_in_transaction_timeout_seconds)


def connect(settings: Settings, role: str = "cli") -> psycopg.Connection[Any]:
    """One connection with the log's session settings, for a command's own queries."""
    return db.connect(database_url(settings), role=role,
                      idle_in_transaction_seconds=settings.idle_in_transaction_timeout_seconds)


def build_pool(
    settings: Settings, role: str, *, pool_size: int | None = None, timeout: float = 30.0
) -> ConnectionPool[Any]:
    return db.make_pool(
        database_url(settings),
        role=role,
        max_size=pool_size or settings.pool_max,
        min_size=settings.pool_min,
        idle_in_transaction_seconds=settings.idle_in_transaction_timeout_seconds,
        timeout=timeout,
    )


def build_store(
    settings: Settings, role: str, *, pool_size: int | None = None, timeout: float = 30.0
) -> tuple[EventStore, Notifier]:
    notifier = Notifier(database_url(settings), connect_kwargs=connect_kwargs(settings, f"{role}-notify"))
    return EventStore(build_pool(settings, role, pool_size=pool_size, timeout=timeout), notifier), notifier


def channel_client(settings: Settings) -> httpx.Client:
    """One HTTP client per process, for its lifetime: connection reuse across posts. Its
    timeouts bound one request (see ``call_budget_seconds``)."""
    timeout = httpx.Timeout(settings.channel_timeout_seconds, connect=CONNECT_TIMEOUT, write=WRITE_TIMEOUT,
                            pool=POOL_TIMEOUT)
    return httpx.Client(timeout=timeout, headers={"User-Agent": "followthrough"})


def call_budget_seconds(settings: Settings) -> float:
    """The longest one request to a network can take (waiting for a pooled connection,
    connecting, sending, then the answer) plus a margin: the lease a worker holds on a
    share before a request that may publish."""
    return POOL_TIMEOUT + CONNECT_TIMEOUT + WRITE_TIMEOUT + settings.channel_timeout_seconds + LEASE_MARGIN


def build_publishers(settings: Settings) -> Publishers:
    publishers = Publishers()
    publishers.register(ConsolePublisher(settings.console_dir.resolve()))
    client = channel_client(settings)
    publishers.register(MastodonPublisher(client))
    publishers.register(BlueskyPublisher(client))
    return publishers


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(
        lease_seconds=settings.lease_seconds,
        dispatch_lead_seconds=settings.dispatch_lead_seconds,
        max_attempts=settings.max_attempts,
        retry_base_seconds=settings.retry_base_seconds,
        retry_cap_seconds=settings.retry_cap_seconds,
        call_budget_seconds=call_budget_seconds(settings),
    )


def build_runtime(settings: Settings) -> Runtime:
    wait_for_schema(settings)
    # A connection per actor thread, and a few for the call threads' lease extensions.
    store, notifier = build_store(settings, "worker", pool_size=settings.worker_threads + 4)
    store.pool.open(wait=True, timeout=30)
    notifier.start()
    calls = ThreadPoolExecutor(settings.worker_call_threads, thread_name_prefix="call")
    return Runtime(config=worker_config(settings), pool=store.pool, store=store, notifier=notifier,
                   publishers=build_publishers(settings), calls=calls)


def build_broker(settings: Settings) -> tuple[dramatiq.Broker, actor_module.Actors]:
    broker = make_broker(broker_url(settings), namespace=settings.queue_prefix)
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(LogContext())
    actors = actor_module.declare(broker, queue_prefix=settings.queue_prefix)
    return broker, actors


# --- roles ---------------------------------------------------------------------------


def worker_broker(settings: Settings, *, build: Callable[[], Runtime] | None = None) -> dramatiq.Broker:
    """The broker a Dramatiq worker process runs (see ``workers.main``)."""
    broker, _ = build_broker(settings)
    broker.add_middleware(Lifeline())  # at boot, before Resources: an orphan opens nothing
    broker.add_middleware(Resources(build or (lambda: build_runtime(settings))))
    dramatiq.set_broker(broker)
    return broker


API_POOL_TIMEOUT_SECONDS = 3.0


def build_api(settings: Settings) -> Any:
    from followthrough import webhooks
    from scheduler.api.app import create_app
    from scheduler.api.deps import Services
    from scheduler.services.replies import ReplyService

    # A request waits at most this long for a connection: while the database is away the
    # API answers 503 with Retry-After instead of hanging (scheduler.api.problems).
    store, notifier = build_store(settings, "api", timeout=API_POOL_TIMEOUT_SECONDS)
    broker, _ = build_broker(settings)
    client = channel_client(settings)
    mastodon = MastodonPublisher(client)

    def instance_limit(channel: str, config: Mapping[str, Any]) -> InstanceLimit | None:
        return mastodon.text_limit(config) if channel == "mastodon" else None

    streams = ShareStreams(store, notifier)
    shares = ShareService(pool=store.pool, streams=streams, instance_limit=instance_limit,
                          horizon=timedelta(days=settings.api_schedule_horizon_days))
    replies = ReplyService(pool=store.pool, streams=streams, clock=shares.clock, instance_limit=instance_limit)

    def start() -> None:
        store.pool.open(wait=True, timeout=30)
        notifier.start()

    def stop() -> None:
        notifier.stop()
        store.pool.close()
        broker.close()
        client.close()

    services = Services(
        pool=store.pool,
        store=store,
        shares=shares,
        replies=replies,
        check_broker=lambda: ping(broker),
        start=start,
        stop=stop,
        webhook_secrets=webhooks.secrets(settings),
        config=api_config(settings),
    )
    return create_app(services)


def api_from_environment() -> Any:
    """The API app of one uvicorn worker process (``api_workers`` > 1): settings from the
    environment, logging as the `api` role logs."""
    from followthrough.logs import configure_logging

    settings = Settings()
    configure_logging(role="api", level=settings.log_level, fmt=settings.log_format)
    return build_api(settings)


def api_config(settings: Settings) -> Any:
    from scheduler.api.config import ApiConfig

    return ApiConfig(
        max_body_bytes=settings.api_max_body_bytes,
        schedule_horizon=timedelta(days=settings.api_schedule_horizon_days),
        metrics_token=settings.metrics_token,
        rate_limit_per_token=settings.rate_limit_per_token if settings.rate_limit_enabled else None,
        rate_limit_per_address=settings.rate_limit_per_address if settings.rate_limit_enabled else None,
        rate_limit_storage=rate_limit_storage(settings.broker_url),
        rate_limit_namespace=settings.queue_prefix,
    )


def rate_limit_storage(broker: str | None) -> str:
    """The broker's Redis when there is one (replicas share counters), memory otherwise."""
    if broker and broker.startswith(("redis://", "rediss://")):
        return broker
    if broker and broker.startswith("unix://"):
        return "redis+unix://" + broker.removeprefix("unix://")
    return "memory://"


# What uvicorn is told when it serves the API: no Server banner.
API_SERVER_OPTIONS: dict[str, Any] = {"server_header": False, "log_config": None, "access_log": False}


@contextmanager
def dispatcher(settings: Settings) -> Iterator[Dispatcher]:
    """The dispatcher with its pool open and its broker connected, closed afterwards."""
    store, _ = build_store(settings, "dispatcher", pool_size=2)
    broker, actors = build_broker(settings)

    def send(group: Sequence[DueItem]) -> None:
        actors.send_for(group[0].kind, [item.share_id for item in group])

    store.pool.open(wait=True, timeout=30)
    try:
        yield Dispatcher(
            store.pool,
            conninfo=database_url(settings),
            connect_kwargs=connect_kwargs(settings, "dispatcher-lead"),
            send=send,
            batch=settings.dispatch_batch,
            lease_seconds=settings.lease_seconds,
            lead_seconds=settings.dispatch_lead_seconds,
            message_size=settings.dispatch_message_size,
        )
    finally:
        store.pool.close()
        broker.close()


def projection_runners(settings: Settings, store: EventStore) -> list[ProjectionRunner]:
    return [
        ProjectionRunner(
            store,
            projection,
            conninfo=database_url(settings),
            connect_kwargs=connect_kwargs(settings, "projector-lead"),
            batch_size=settings.projector_batch,
            poll_seconds=settings.projector_poll_seconds,
        )
        for projection in (SharesProjection(), WebhooksProjection())
    ]


def run_projector(settings: Settings, stop: threading.Event) -> None:
    from followthrough import webhooks

    store, _ = build_store(settings, "projector", pool_size=8)
    store.pool.open(wait=True, timeout=30)
    client = webhooks.client(settings)
    threads = [
        threading.Thread(target=runner.run, args=(stop,), name=f"projection-{runner.projection.name}")
        for runner in projection_runners(settings, store)
    ]
    threads.append(threading.Thread(target=webhooks.deliverer(settings, store.pool, client).run, args=(stop,),
                                    name="webhooks"))
    for thread in threads:
        thread.start()
    try:
        while any(t.is_alive() for t in threads) and not stop.is_set():
            stop.wait(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        client.close()
        store.pool.close()
