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
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage

from events.projections.collector import few_collections
from followthrough import webhooks
from followthrough.connections import (
    CONNECT_TIMEOUT,
    LEASE_MARGIN,
    POOL_TIMEOUT,
    WRITE_TIMEOUT,
    broker_url,
    build_store,
    connect_kwargs,
    database_url,
    http_limits,
    wait_for_schema,
)
from followthrough.projectors import projection_runners
from followthrough.settings import Settings
from scheduler.dispatch.dispatcher import Dispatcher
from scheduler.dispatch.schedule_table import SESSION_OPTIONS as DISPATCHER_SESSION_OPTIONS
from scheduler.dispatch.schedule_table import DueItem
from scheduler.domain.limits import InstanceLimit
from scheduler.domain.media import InstanceMediaLimit
from scheduler.domain.post_urls import HandleResolver
from scheduler.errors import InvalidInputError
from scheduler.services.share_stream import ShareStreams
from scheduler.services.shares import ShareService
from workers import actors as actor_module
from workers.broker import make_broker, ping
from workers.channels import ChannelError, Publishers
from workers.channels.bluesky import BlueskyPublisher
from workers.channels.console import ConsolePublisher
from workers.channels.link_cards import LinkPreviews
from workers.channels.mastodon import MastodonPublisher
from workers.lifeline import Lifeline
from workers.middleware import LogContext, Resources, SettledHeap
from workers.runtime import Runtime, WorkerConfig

# --- building blocks (settings, servers and database connections: ``connections``) ---


def channel_client(settings: Settings) -> httpx.Client:
    """One HTTP client per process, for its lifetime: connection reuse across posts. Its
    timeouts bound one request (see ``call_budget_seconds``)."""
    timeout = httpx.Timeout(settings.channel_timeout_seconds, connect=CONNECT_TIMEOUT, write=WRITE_TIMEOUT,
                            pool=POOL_TIMEOUT)
    # Used by the call threads and the actor threads at once.
    limits = http_limits(settings.worker_call_threads + settings.worker_threads)
    return httpx.Client(timeout=timeout, limits=limits, headers={"User-Agent": "followthrough"})


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
    publishers.register(BlueskyPublisher(client, link_previews=LinkPreviews()))
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
    if isinstance(broker, RedisBroker):
        # No message is ever delayed (retries are rescheduled in the database, actors have no
        # Dramatiq retries): a delay queue's consumer would only poll Redis, up to 100 times
        # a second each, for nothing. Forgotten before the worker starts, so it consumes none.
        broker.delay_queues.clear()
    # Dramatiq runs the after_* hooks last added first, so at boot: the lifeline (an orphan
    # opens nothing), then the runtime, then the settled heap (the runtime is part of it).
    broker.add_middleware(SettledHeap())
    broker.add_middleware(Resources(build or (lambda: build_runtime(settings))))
    broker.add_middleware(Lifeline())
    dramatiq.set_broker(broker)
    return broker


API_POOL_TIMEOUT_SECONDS = 3.0


def build_api(settings: Settings) -> Any:
    from scheduler.api.app import create_app
    from scheduler.api.deps import Services
    from scheduler.services.media import MediaLibrary
    from scheduler.services.replies import ReplyService

    # A request waits at most this long for a connection: while the database is away the
    # API answers 503 with Retry-After instead of hanging (scheduler.api.problems).
    store, notifier = build_store(settings, "api", timeout=API_POOL_TIMEOUT_SECONDS)
    broker, _ = build_broker(settings)
    client = channel_client(settings)
    mastodon = MastodonPublisher(client)

    bluesky = BlueskyPublisher(client)

    def instance_limit(channel: str, config: Mapping[str, Any]) -> InstanceLimit | None:
        return mastodon.text_limit(config) if channel == "mastodon" else None

    def instance_media(channel: str, config: Mapping[str, Any]) -> InstanceMediaLimit | None:
        return mastodon.media_limit(config) if channel == "mastodon" else None

    streams = ShareStreams(store, notifier)
    shares = ShareService(pool=store.pool, streams=streams, instance_limit=instance_limit,
                          instance_media=instance_media,
                          horizon=timedelta(days=settings.api_schedule_horizon_days),
                          resolve_handle=handle_resolver(bluesky))
    replies = ReplyService(pool=store.pool, streams=streams, clock=shares.clock, instance_limit=instance_limit)
    media = MediaLibrary(pool=store.pool, settings=media_settings(settings),
                         share_status=lambda share_id: streams.load(share_id)[0].status)

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
        media=media,
    )
    return create_app(services)


def handle_resolver(bluesky: BlueskyPublisher) -> HandleResolver:
    """A Bluesky handle to its DID through the account's service; a service that cannot
    answer is a refusal naming ``url`` (the person can give the at:// uri instead)."""

    def resolve(config: Mapping[str, Any], handle: str) -> str | None:
        try:
            return bluesky.did_of(config, handle)
        except ChannelError as exc:
            raise InvalidInputError("url", f"the handle {handle!r} could not be resolved: {exc.reason}; "
                                           "give the post's at:// uri with its DID") from exc

    return resolve


def api_from_environment() -> Any:
    """The API app of one uvicorn worker process (``api_workers`` > 1): settings from the
    environment, logging as the `api` role logs."""
    from followthrough.logs import configure_logging

    settings = Settings()
    configure_logging(role="api", level=settings.log_level, fmt=settings.log_format, colors=settings.log_colors)
    return build_api(settings)


def api_config(settings: Settings) -> Any:
    from scheduler.api.config import ApiConfig

    return ApiConfig(
        max_body_bytes=settings.api_max_body_bytes,
        max_media_body_bytes=media_settings(settings).upload_body_bytes,
        schedule_horizon=timedelta(days=settings.api_schedule_horizon_days),
        metrics_token=settings.metrics_token,
        rate_limit_per_token=settings.rate_limit_per_token if settings.rate_limit_enabled else None,
        rate_limit_per_address=settings.rate_limit_per_address if settings.rate_limit_enabled else None,
        rate_limit_storage=rate_limit_storage(settings.broker_url),
        rate_limit_namespace=settings.queue_prefix,
        sla_at_risk=settings.sla_at_risk,
        reply_sla_seconds=settings.reply_sla_seconds,
    )


def media_settings(settings: Settings) -> Any:
    from scheduler.services.media import MediaSettings

    mib = 1024 * 1024
    return MediaSettings(max_image_bytes=int(settings.media_max_image_mb * mib),
                         max_video_bytes=int(settings.media_max_video_mb * mib),
                         max_pixels=settings.media_max_pixels, quota_bytes=int(settings.media_quota_mb * mib))


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
    store, _ = build_store(settings, "dispatcher", pool_size=2, options=DISPATCHER_SESSION_OPTIONS)
    broker, actors = build_broker(settings)

    def send(group: Sequence[DueItem]) -> list[str]:
        return actors.send_for(group[0].kind, [item.share_id for item in group])

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
            tick=settings.dispatch_tick_ms / 1000,
        )
    finally:
        store.pool.close()
        broker.close()


def run_projector(settings: Settings, stop: threading.Event) -> None:
    # The process folds the log for as long as it runs (its own process under `up`).
    with few_collections():
        _project(settings, stop)


def _project(settings: Settings, stop: threading.Event) -> None:
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
