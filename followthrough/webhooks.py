"""Composition of webhooks out: the keys sealing signing secrets, the HTTP client and the
deliverer the projector role runs (``bootstrap.run_projector``), from the settings."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import httpx
from psycopg_pool import ConnectionPool

from followthrough.connections import CONNECT_TIMEOUT, LEASE_MARGIN, connect_kwargs, database_url, http_limits
from followthrough.settings import Settings
from scheduler.services.webhook_outbox import DeliveryPolicy
from scheduler.services.webhook_secrets import SecretBox, generate_key
from workers.webhooks import DelivererConfig, WebhookDeliverer


def secrets(settings: Settings) -> SecretBox:
    """The keys sealing webhook signing secrets: the setting, else one kept under home."""
    if settings.webhook_secret_keys is not None:
        return SecretBox.from_setting(settings.webhook_secret_keys.get_secret_value())
    return SecretBox([local_key(settings.home / "webhook-secret.key")])


def local_key(path: Path) -> str:
    """Read the key at ``path``, or create it (mode 0600) if no role has yet: written aside
    and linked into place, so two roles (or two threads of one) starting at once agree on
    one key. The aside file's name is unique to its writer (``mkstemp``, created 0600)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, aside = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as file:
                file.write(generate_key() + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(aside, path)
        finally:
            os.unlink(aside)
    return path.read_text().strip()


def deliverer(settings: Settings, pool: ConnectionPool[Any], http: httpx.Client) -> WebhookDeliverer:
    """Delivers the ``webhooks`` projection's outbox (in the projector role)."""
    policy = DeliveryPolicy(
        max_attempts=settings.webhook_max_attempts,
        retry_base_seconds=settings.webhook_retry_base_seconds,
        retry_cap_seconds=settings.webhook_retry_cap_seconds,
        disable_after_failures=settings.webhook_disable_after_failures,
        disable_after_seconds=settings.webhook_disable_after_seconds,
    )
    config = DelivererConfig(
        policy=policy,
        # Past one request's worst case (connect, send, answer) with room: a request slower
        # than this may be attempted again by another deliverer (at least once, same id).
        lease_seconds=settings.webhook_timeout_seconds * 2 + CONNECT_TIMEOUT + LEASE_MARGIN + 20,
        poll_seconds=settings.webhook_poll_seconds,
        overdue_every_seconds=settings.webhook_overdue_sweep_seconds,
        sla_at_risk=settings.sla_at_risk,
        reply_sla_seconds=settings.reply_sla_seconds,
        retention_seconds=settings.webhook_retention_days * 86_400,
    )
    return WebhookDeliverer(pool, http, secrets(settings), config, conninfo=database_url(settings),
                            connect_kwargs=connect_kwargs(settings, "projector-webhooks"))


def client(settings: Settings) -> httpx.Client:
    # Redirects are not followed: a receiver answers 2xx itself, or the attempt failed. An idle
    # connection is kept less long than receivers keep theirs (as the channels' client): one
    # reused as the receiver closes it fails an attempt the receiver never saw.
    timeout = httpx.Timeout(settings.webhook_timeout_seconds, connect=CONNECT_TIMEOUT)
    return httpx.Client(timeout=timeout, follow_redirects=False, headers={"User-Agent": "followthrough-webhooks"},
                        limits=http_limits(DelivererConfig.threads))
