"""The webhook outbox as a work queue: claim due deliveries under a lease, record each
attempt's outcome, schedule retries with backoff in the database, and disable an
endpoint that keeps failing.

The deliverer (``workers.webhooks``) calls these around its HTTP request; the outcome of
an attempt, the delivery's next due time and the endpoint's run of failures commit
together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from events import sqlfiles

Q = sqlfiles.load("scheduler.services", "webhooks.sql")


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How often and how long to try. The defaults follow the Standard Webhooks guidance:
    retries spread over about a day, and an endpoint failing for days is disabled."""

    max_attempts: int = 8
    retry_base_seconds: float = 5.0
    retry_factor: float = 4.0
    retry_cap_seconds: float = 10 * 3600.0
    disable_after_failures: int = 100
    disable_after_seconds: float = 5 * 86_400.0

    def retry_delay(self, attempt: int, random: float) -> timedelta | None:
        """When to try again after failed attempt ``attempt`` (None: it was the last).
        ``random`` in [0, 1) spreads retries by +-25 % so receivers coming back are not stampeded."""
        if attempt >= self.max_attempts:
            return None
        seconds = min(self.retry_cap_seconds, self.retry_base_seconds * self.retry_factor ** (attempt - 1))
        return timedelta(seconds=seconds * (0.75 + 0.5 * random))

    def pause(self, failures: int, random: float) -> timedelta:
        """How long a failing endpoint waits before its next probe: the same backoff, by its
        run of failures rather than by one delivery's attempts."""
        seconds = min(self.retry_cap_seconds, self.retry_base_seconds * self.retry_factor ** (max(failures, 1) - 1))
        return timedelta(seconds=seconds * (0.75 + 0.5 * random))

    def disable_reason(self, failures: int, failing_since: datetime, now: datetime) -> str | None:
        if failures >= self.disable_after_failures:
            return f"{failures} consecutive failed attempts"
        if now - failing_since >= timedelta(seconds=self.disable_after_seconds):
            return f"failing since {failing_since.isoformat()}"
        return None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery handed to this deliverer for one attempt (``attempt`` counts from 1)."""

    id: UUID
    endpoint_id: UUID
    workspace_id: str
    event_type: str
    event_key: str
    payload: Mapping[str, Any]
    attempt: int
    url: str
    sealed_secret: str  # opened by the deliverer (``SecretBox``) only to sign



@dataclass(frozen=True, slots=True)
class Failure:
    """What a failed attempt led to: a retry time (or none left), and the endpoint disabled."""

    retry_at: datetime | None
    disabled_reason: str | None


def claim(conn: psycopg.Connection[Any], *, limit: int, lease_seconds: float) -> list[Claimed]:
    with conn.transaction():
        rows = conn.execute(Q["claim"], {"limit": limit, "lease_seconds": lease_seconds}).fetchall()
    return [Claimed(id=r[0], endpoint_id=r[1], workspace_id=r[2], event_type=r[3], event_key=r[4], payload=r[5],
                    attempt=r[6], url=r[7], sealed_secret=r[8]) for r in rows]


def prune(conn: psycopg.Connection[Any], *, keep_seconds: float) -> int:
    """Forget settled deliveries (and their attempts) older than ``keep_seconds``."""
    with conn.transaction():
        conn.execute(Q["prune_attempts"], {"keep_seconds": keep_seconds})
        return conn.execute(Q["prune_deliveries"], {"keep_seconds": keep_seconds}).rowcount


def seconds_to_next(conn: psycopg.Connection[Any]) -> float | None:
    row = conn.execute(Q["next_due"]).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def _attempt(conn: psycopg.Connection[Any], item: Claimed, *, at: datetime, http_status: int | None,
             error: str | None, duration_ms: int) -> None:
    conn.execute(Q["record_attempt"], {"id": item.id, "attempt": item.attempt, "at": at, "http_status": http_status,
                                       "error": error, "duration_ms": duration_ms})


def record_success(conn: psycopg.Connection[Any], item: Claimed, *, at: datetime, http_status: int,
                   duration_ms: int) -> None:
    with conn.transaction():
        _attempt(conn, item, at=at, http_status=http_status, error=None, duration_ms=duration_ms)
        conn.execute(Q["delivered"], {"id": item.id, "at": at, "http_status": http_status})
        conn.execute(Q["endpoint_succeeded"], {"endpoint_id": item.endpoint_id})


def record_failure(conn: psycopg.Connection[Any], item: Claimed, *, at: datetime, http_status: int | None,
                   error: str, duration_ms: int, policy: DeliveryPolicy,
                   random: Callable[[], float]) -> Failure:
    delay = policy.retry_delay(item.attempt, random())
    retry_at = None if delay is None else at + delay
    disabled: str | None = None
    with conn.transaction():
        _attempt(conn, item, at=at, http_status=http_status, error=error, duration_ms=duration_ms)
        conn.execute(Q["failed"], {"id": item.id, "at": at, "http_status": http_status, "error": error,
                                   "retry_at": retry_at})
        run = conn.execute(Q["endpoint_failed"], {"endpoint_id": item.endpoint_id, "at": at}).fetchone()
        if run is not None:
            conn.execute(Q["pause_endpoint"], {"endpoint_id": item.endpoint_id,
                                               "until": at + policy.pause(int(run[0]), random())})
            reason = policy.disable_reason(int(run[0]), run[1], at)
            if reason is not None and conn.execute(
                Q["disable_endpoint"], {"endpoint_id": item.endpoint_id, "reason": reason, "at": at}
            ).fetchone():
                disabled = reason
    return Failure(retry_at=retry_at, disabled_reason=disabled)
