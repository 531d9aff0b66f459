"""What an actor needs at run time, built once per worker process at boot."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from events.notifier import Notifier
from events.store import EventStore
from scheduler.domain.retry import RetryPolicy
from scheduler.services import accounts
from scheduler.services.share_stream import ShareStreams
from workers import backends
from workers.channels import Publishers
from workers.stalls import Deliveries


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """The settings a worker acts on (plain values; the composition root fills them in)."""

    lease_seconds: float = 30.0
    dispatch_lead_seconds: float = 0.0
    max_attempts: int = 5
    retry_base_seconds: float = 30.0
    retry_cap_seconds: float = 3600.0
    # The lease a share's attempt holds before a request that may publish: one request's
    # longest time (pool, connect, write, answer) plus a margin.
    call_budget_seconds: float = 40.0


class AccountConfigs:
    """Accounts' channel configs, each kept for a while: they change rarely, shares are many."""

    def __init__(self, keep_seconds: float = 30.0) -> None:
        self.keep_seconds = keep_seconds
        self._kept: dict[UUID, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, conn: psycopg.Connection[Any], account_id: UUID) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            kept = self._kept.get(account_id)
        if kept is not None and now - kept[0] < self.keep_seconds:
            return kept[1]
        config = accounts.config_of(conn, account_id)
        with self._lock:
            self._kept[account_id] = (now, config)
        return config


@dataclass
class Runtime:
    config: WorkerConfig
    pool: ConnectionPool[Any]
    store: EventStore
    publishers: Publishers
    notifier: Notifier | None = None
    clock: Callable[[], datetime] = utc_now
    random: Callable[[], float] = field(default=random.random)
    sleep: Callable[[float], None] = time.sleep
    # Runs the network calls of a group delivery concurrently; None runs them one by one.
    calls: Executor | None = None
    streams: ShareStreams = field(init=False)
    accounts: AccountConfigs = field(init=False, default_factory=AccountConfigs)
    deliveries: Deliveries = field(init=False)

    def __post_init__(self) -> None:
        self.streams = ShareStreams(self.store, self.notifier)
        # Longer than one call may take, plus the dispatcher's lead: a group still running then
        # is stuck, or publishing a thread of many parts (its line says which).
        self.deliveries = Deliveries(after_seconds=self.config.call_budget_seconds + self.config.dispatch_lead_seconds,
                                     describe_backend=partial(backends.describe, self.pool))

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.config.max_attempts,
            base=timedelta(seconds=self.config.retry_base_seconds),
            cap=timedelta(seconds=self.config.retry_cap_seconds),
        )

    @property
    def early_window(self) -> timedelta:
        # The dispatcher's lead, plus slack for clock differences between hosts.
        return timedelta(seconds=self.config.dispatch_lead_seconds + 1.0)

    def close(self) -> None:
        self.deliveries.stop()
        if self.calls is not None:
            self.calls.shutdown(wait=True)
        if self.notifier is not None:
            self.notifier.stop()
        self.pool.close()


# One runtime per worker process, installed at boot (actors receive ids only).
_installed: list[Runtime] = []


def install(runtime: Runtime | None) -> None:
    _installed.clear()
    if runtime is not None:
        _installed.append(runtime)


def current() -> Runtime:
    if not _installed:
        raise RuntimeError("worker runtime not built: the Resources middleware builds it at process boot")
    return _installed[0]
