"""Webhook tests' plumbing: the API on loopback, the webhooks projection, and a deliverer
with short retries, driven step by step."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
from psycopg_pool import ConnectionPool

from events.projections.runner import ProjectionRunner
from events.projections.webhooks import WebhooksProjection
from events.store import EventStore
from followthrough import webhooks
from followthrough.settings import Settings
from scheduler.services import workspaces
from tests.support.system import wait_until
from workers.webhooks import WebhookDeliverer

EVERY_EVENT = ["share.sent", "share.failed", "share.abandoned", "share.held", "task.overdue", "reply.received"]


def fast(settings: Settings, **overrides: Any) -> Settings:
    """Retries a few tens of milliseconds apart (the backoff's shape, not its length)."""
    return settings.model_copy(update={"webhook_retry_base_seconds": 0.05, "webhook_timeout_seconds": 5.0,
                                       **overrides})


def deliverer(settings: Settings, pool: ConnectionPool[Any], client: httpx.Client) -> WebhookDeliverer:
    built = webhooks.deliverer(settings, pool, client)
    built.random = lambda: 0.5
    return built


def projection(store: EventStore, settings: Settings) -> ProjectionRunner:
    return ProjectionRunner(store, WebhooksProjection(), conninfo=settings.database_url or "")


def bearer(database_url: str, workspace: str, scope: workspaces.Scope = "write", *, owner: str | None = None,
           ) -> dict[str, str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return {"Authorization": f"Bearer {workspaces.create_token(conn, workspace, scope, owner=owner)}"}


def register(client: httpx.Client, auth: dict[str, str], url: str, events: list[str] | None = None,
             ) -> dict[str, Any]:
    response = client.post("/v1/webhooks", json={"url": url, "events": events or EVERY_EVENT}, headers=auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def settle(runner: ProjectionRunner, pool: ConnectionPool[Any]) -> None:
    """Catch the projection up to the log's last event of its types (waiting out the
    gap-safe horizon, which other tests' transactions on the same server can hold back)."""
    runner.catch_up_fully()


def drain(hooks: WebhookDeliverer) -> int:
    """Sweep, then deliver until nothing is due now: the deliverer's own steps, without its loop."""
    hooks.sweep_overdue()
    total = 0
    while (n := hooks.step()) > 0:
        total += n
    return total


def deliver_until(hooks: WebhookDeliverer, runner: ProjectionRunner, done: Any, *, what: str,
                  timeout: float = 30) -> None:
    """Catch the projection up and deliver what is due, until ``done()`` holds."""

    def step() -> Any:
        runner.catch_up()
        drain(hooks)
        return done()

    wait_until(step, timeout=timeout, interval=0.05, what=what)
