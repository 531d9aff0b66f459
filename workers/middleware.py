"""Dramatiq middleware: per-message log context, and the runtime built at process boot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq
import structlog
from dramatiq.middleware import Middleware

from workers import runtime
from workers.runtime import Runtime

log = structlog.get_logger("workers.middleware")


class LogContext(Middleware):
    """Bind message id, actor, share id and redelivery count to every line of a message,
    and clear them afterwards so nothing leaks into the next message on the thread."""

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        structlog.contextvars.clear_contextvars()
        first = message.kwargs.get("share_id") or (message.args[0] if message.args else None)
        context: dict[str, Any] = {"message_id": message.message_id, "actor": message.actor_name}
        if isinstance(first, list):
            context["shares"] = len(first)  # each share's lines bind their own share_id
        else:
            context["share_id"] = first
        structlog.contextvars.bind_contextvars(**context)

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        if exception is not None:
            log.error("message_failed", error=repr(exception))
        structlog.contextvars.clear_contextvars()

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        structlog.contextvars.clear_contextvars()


class Resources(Middleware):
    """Builds the worker runtime (pool, store, publishers) in each worker process after
    it boots (never at import, never before a fork), and closes it on shutdown."""

    def __init__(self, build: Callable[[], Runtime]) -> None:
        self._build = build

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        runtime.install(self._build())
        log.info("worker_process_ready")

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        # After, not before: the worker threads finish their messages first.
        try:
            runtime.current().close()
        except RuntimeError:
            return
        runtime.install(None)
