"""Rate limits per client address (before authentication) and per bearer token.

Counters live where ``storage`` says: the broker's Redis when there is one (replicas share
them), memory otherwise. A storage that fails open: a broken Redis must not take the API down.
"""

from __future__ import annotations

import math
import time
from typing import Any

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string
from redis import asyncio as redis_async

log = structlog.get_logger("scheduler.api")


class RateLimits:
    def __init__(self, per_address: str | None, per_token: str | None, storage: str = "memory://",
                 namespace: str = "followthrough") -> None:
        self.namespace = namespace
        self.per_address: RateLimitItem | None = parse(per_address) if per_address else None
        self.per_token: RateLimitItem | None = parse(per_token) if per_token else None
        self.storage_uri = _async_uri(storage)
        self._limiter: FixedWindowRateLimiter | None = None
        self._redis: redis_async.ConnectionPool | None = None

    def _get(self) -> FixedWindowRateLimiter:
        """Built on first use, inside the server's event loop (the Redis client belongs to it)."""
        if self._limiter is None:
            options: dict[str, Any] = {}
            if "redis" in self.storage_uri:
                # Our own connection pool, so that shutting down closes its connections.
                self._redis = redis_async.ConnectionPool.from_url(self.storage_uri.removeprefix("async+")
                                                                  .replace("redis+unix://", "unix://"))
                options = {"implementation": "redispy", "connection_pool": self._redis}
            store = storage_from_string(self.storage_uri, **options)
            assert isinstance(store, Storage)
            self._limiter = FixedWindowRateLimiter(store)
        return self._limiter

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.disconnect()
            self._redis = None
        self._limiter = None

    async def hit(self, address: str, token_key: str | None) -> int | None:
        """None when the request may go on, else the seconds until it may be retried."""
        checks = [(self.per_address, "address", address)]
        if token_key is not None:
            checks.append((self.per_token, "token", token_key))
        for item, kind, key in checks:
            if item is None:
                continue
            try:
                limiter = self._get()
                if await limiter.hit(item, self.namespace, kind, key):
                    continue
                stats = await limiter.get_window_stats(item, self.namespace, kind, key)
            except Exception as exc:  # noqa: BLE001 - fail open, loudly
                log.warning("rate_limit_unavailable", error=type(exc).__name__)
                return None
            return max(1, math.ceil(stats.reset_time - time.time()))
        return None


def _async_uri(uri: str) -> str:
    if uri.startswith("async+"):
        return uri
    return "async+" + uri
