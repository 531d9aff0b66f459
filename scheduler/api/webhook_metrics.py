"""Prometheus metrics of webhooks out, computed when scraped (all workspaces): deliveries
by status, the backlog due now and its age, endpoints by state (a disabled one needs a
person). Served at /metrics beside the read models' figures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool

from events.projections import webhooks

DELIVERY_STATUSES = ("pending", "delivered", "failed", "cancelled")
ENDPOINT_STATES = ("enabled", "disabled")


class WebhookCollector(Collector):
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.pool.connection(timeout=5) as conn:
            figures = webhooks.figures(conn)
        deliveries = GaugeMetricFamily("followthrough_webhook_deliveries",
                                       "Webhook deliveries kept in the outbox, by status", labels=["status"])
        for status in DELIVERY_STATUSES:
            deliveries.add_metric([status], figures.deliveries_by_status.get(status, 0))
        yield deliveries
        yield GaugeMetricFamily("followthrough_webhook_deliveries_due",
                                "Webhook deliveries due now to enabled endpoints (the backlog)", value=figures.due)
        yield GaugeMetricFamily("followthrough_webhook_oldest_due_seconds",
                                "How long the oldest due webhook delivery has waited",
                                value=figures.oldest_due_seconds)
        endpoints = GaugeMetricFamily("followthrough_webhook_endpoints", "Webhook endpoints by state",
                                      labels=["state"])
        for state in ENDPOINT_STATES:
            endpoints.add_metric([state], figures.endpoints_by_state.get(state, 0))
        yield endpoints
