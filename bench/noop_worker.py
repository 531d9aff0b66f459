"""The no-op baseline's worker module: `dramatiq bench.noop_worker`, with the same broker,
middleware and worker settings as Followthrough's own workers (see bench/dispatch.py)."""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import CurrentMessage

from followthrough.logs import configure_logging
from followthrough.settings import Settings
from workers.broker import make_broker
from workers.middleware import LogContext

settings = Settings()
configure_logging(role="noop-worker", level=settings.log_level, fmt=settings.log_format)
broker = make_broker(settings.broker_url or "", namespace=settings.queue_prefix)
broker.add_middleware(CurrentMessage())
broker.add_middleware(LogContext())
dramatiq.set_broker(broker)


def noop(share_id: str) -> None:
    """Does nothing: what a message costs the broker and Dramatiq alone."""


dramatiq.actor(actor_name="noop", queue_name=f"{settings.queue_prefix}.noop", broker=broker, max_retries=0)(noop)
