"""The webhook deliverer: takes due deliveries from the outbox, signs each per the
Standard Webhooks specification, POSTs it, and records the outcome (retry with backoff,
or give up; an endpoint that keeps failing is disabled). It also sweeps the read models
for tasks that went overdue, once per task, and for unanswered replies that reached their
SLA's at-risk point or due time, once per reply and kind.

At least once: a delivery is claimed under a lease longer than one request, so a
deliverer that dies mid-request leaves it to another once the lease runs out. Every
attempt carries the same ``webhook-id``; receivers de-duplicate on it.
"""

from __future__ import annotations

import random as random_module
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import structlog
from psycopg_pool import ConnectionPool
from standardwebhooks.webhooks import Webhook

from events.follower import Follower
from events.projections.webhooks import WAKE_CHANNEL, enqueue_overdue, enqueue_reply_sla
from scheduler.services import webhook_outbox as outbox
from scheduler.services.webhook_outbox import Claimed, DeliveryPolicy
from scheduler.services.webhook_secrets import SecretBox, SecretUnreadableError
from scheduler.services.webhooks import message_id

log = structlog.get_logger("workers.webhooks")

MAX_ERROR = 300  # characters of a receiver's answer kept as the attempt's error


def signed_request(item: Claimed, secret: str, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and the Standard Webhooks headers of one attempt (signed at ``now``)."""
    body = orjson.dumps(item.payload)
    msg_id = message_id(item.id)
    signature = Webhook(secret).sign(msg_id, now, body.decode())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    return body, headers


@dataclass
class DelivererConfig:
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    lease_seconds: float = 60.0  # longer than one request (the client's timeouts)
    # Requests at once; a round claims no more than this, so each claimed delivery is sent
    # at once and its lease only has to outlast one request.
    threads: int = 8
    poll_seconds: float = 1.0
    overdue_every_seconds: float = 30.0
    overdue_lookback_seconds: float = 7 * 86_400.0
    # A reply's SLA, as the API reads it (FOLLOWTHROUGH_SLA_AT_RISK, FOLLOWTHROUGH_REPLY_SLA_SECONDS).
    sla_at_risk: float = 0.75
    reply_sla_seconds: float = 86_400.0
    # Settled deliveries are kept this long for GET .../deliveries; longer than the look-back.
    retention_seconds: float = 30 * 86_400.0


class WebhookDeliverer:
    def __init__(
        self,
        pool: ConnectionPool[Any],
        client: httpx.Client,
        secrets: SecretBox,
        config: DelivererConfig,
        *,
        conninfo: str,
        connect_kwargs: dict[str, Any] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        random: Callable[[], float] = random_module.random,
    ) -> None:
        self.pool = pool
        self.client = client
        self.secrets = secrets
        self.config = config
        self.clock = clock
        self.random = random
        self._last_sweep = float("-inf")
        self._calls = ThreadPoolExecutor(config.threads, thread_name_prefix="webhook")
        # No lead: every projector replica delivers, their claims share the outbox.
        self.follower = Follower("webhook_deliverer", conninfo=conninfo, connect_kwargs=connect_kwargs or {},
                                 channel=WAKE_CHANNEL, step=self.follow_step, lock=None)

    def sweep_overdue(self) -> int:
        """Enqueue task.overdue and reply.sla_* deliveries, and forget settled deliveries past
        the retention."""
        lookback = min(self.config.overdue_lookback_seconds, self.config.retention_seconds / 2)
        with self.pool.connection() as conn:
            added = enqueue_overdue(conn, lookback_seconds=lookback)
            sla = enqueue_reply_sla(conn, lookback_seconds=lookback, at_risk=self.config.sla_at_risk,
                                    reply_sla_seconds=self.config.reply_sla_seconds)
            pruned = outbox.prune(conn, keep_seconds=self.config.retention_seconds)
        if added:
            log.info("webhook_overdue_tasks_enqueued", deliveries=added)
        if sla:
            log.info("webhook_reply_sla_enqueued", deliveries=sla)
        if pruned:
            log.info("webhook_deliveries_pruned", deliveries=pruned)
        return added + sla

    def step(self) -> int:
        """Claim due deliveries and attempt each once; returns how many were attempted."""
        with self.pool.connection() as conn:
            claimed = outbox.claim(conn, limit=self.config.threads, lease_seconds=self.config.lease_seconds)
        if len(claimed) == 1:
            self.deliver(claimed[0])
        else:
            list(self._calls.map(self.deliver, claimed))
        return len(claimed)

    def close(self) -> None:
        self._calls.shutdown(wait=True)

    def deliver(self, item: Claimed) -> bool:
        """One attempt; True when the receiver took it (any 2xx)."""
        now = self.clock()
        started = time.monotonic()
        status, error = self._post(item, now)
        duration_ms = int((time.monotonic() - started) * 1000)
        fields = {"endpoint_id": str(item.endpoint_id), "host": urlsplit(item.url).hostname,
                  "webhook_id": message_id(item.id),
                  "event_id": item.event_key, "event_type": item.event_type, "workspace_id": item.workspace_id,
                  "attempt": item.attempt, "status": status, "duration_ms": duration_ms}
        with self.pool.connection() as conn:
            if error is None:
                assert status is not None
                outbox.record_success(conn, item, at=now, http_status=status, duration_ms=duration_ms)
                log.info("webhook_delivered", **fields)
                return True
            failure = outbox.record_failure(conn, item, at=now, http_status=status, error=error,
                                            duration_ms=duration_ms, policy=self.config.policy, random=self.random)
        log.warning("webhook_delivery_failed", **fields, error=error,
                    retry_at=None if failure.retry_at is None else failure.retry_at.isoformat(),
                    gave_up=failure.retry_at is None)
        if failure.disabled_reason is not None:
            log.warning("webhook_endpoint_disabled", endpoint_id=str(item.endpoint_id), host=fields["host"],
                        workspace_id=item.workspace_id, reason=failure.disabled_reason,
                        hint=f"once the receiver answers again: POST /v1/webhooks/{item.endpoint_id}/enable")
        return False

    def _post(self, item: Claimed, now: datetime) -> tuple[int | None, str | None]:
        """The receiver's status (None when no answer) and the error (None on a 2xx)."""
        try:
            secret = self.secrets.open(item.sealed_secret)
        except SecretUnreadableError as exc:
            return None, f"cannot sign: {exc} (check FOLLOWTHROUGH_WEBHOOK_SECRET_KEYS)"
        body, headers = signed_request(item, secret, now)
        try:
            response = self.client.post(item.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
        status = response.status_code
        return status, None if response.is_success else f"{status} {response.text[:MAX_ERROR]}".strip()

    def follow_step(self) -> float:
        """One round for the follower loop: sweep when it is time, deliver what is due, then
        how long to sleep (the next due time, at most the poll; 0: more is due)."""
        if time.monotonic() - self._last_sweep >= self.config.overdue_every_seconds:
            self._last_sweep = time.monotonic()
            self.sweep_overdue()
        if self.step():
            return 0.0
        with self.pool.connection() as pooled:
            until_next = outbox.seconds_to_next(pooled)
        return self.config.poll_seconds if until_next is None else min(self.config.poll_seconds, until_next)

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set: woken by the projection's NOTIFY, else at the next due time."""
        try:
            self.follower.run(stop)
        finally:
            self.close()
