"""/metrics: Prometheus metrics from the read models and the log, computed when scraped.

Figures for operators across all workspaces: shares by status, response tasks by
state, the integrity count (must be 0), projection lag, the log horizon and the
schedule. Served by the API at /metrics (scrape it from inside the cluster).
The queries live with the read side (``events.projections.metrics``).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool

from events import monitoring
from events.projections import metrics
from scheduler.api.deps import ServicesDep
from scheduler.errors import NotFoundError

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=PlainTextResponse, include_in_schema=False, operation_id="get_metrics")
def serve_metrics(request: Request, svc: ServicesDep) -> PlainTextResponse:
    if not _may_scrape(request, svc.config.metrics_token):
        raise NotFoundError("page", request.url.path)
    registry: CollectorRegistry = request.app.state.metrics_registry
    return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _may_scrape(request: Request, token: str | None) -> bool:
    """With a metrics token: its bearer only. Without: loopback clients only (`up` on one machine);
    elsewhere serve metrics on their own port (FOLLOWTHROUGH_METRICS_PORT)."""
    if token:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ReadModelCollector(Collector):
    def __init__(self, pool: ConnectionPool[Any], *, at_risk: float = 0.75,
                 reply_sla_seconds: float = 86_400.0) -> None:
        self.pool = pool
        self.at_risk = at_risk
        self.reply_sla_seconds = reply_sla_seconds

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        with self.pool.connection(timeout=5) as conn:
            figures = metrics.figures(conn, at_risk=self.at_risk, reply_sla_seconds=self.reply_sla_seconds)
            lags = monitoring.follower_lags(conn)
            horizon = monitoring.horizon(conn)
        shares = GaugeMetricFamily("followthrough_shares", "Shares by status (read model)", labels=["status"])
        for status, count in figures.shares_by_status.items():
            shares.add_metric([status], count)
        yield shares
        tasks = GaugeMetricFamily("followthrough_response_tasks", "Response tasks by state", labels=["state"])
        for state, count in figures.tasks_by_state.items():
            tasks.add_metric([state], count)
        yield tasks
        yield GaugeMetricFamily("followthrough_sent_shares_without_response_tasks",
                                "Sent shares whose response tasks were not recorded first (must be 0)",
                                value=figures.sent_without_tasks)
        yield CounterMetricFamily("followthrough_duplicate_posts",
                                  "Extra posts made for shares already sent (should stay 0)",
                                  value=figures.duplicate_posts)
        yield CounterMetricFamily("followthrough_duplicate_posts_removed",
                                  "Extra posts deleted again through the channel (remove_duplicates)",
                                  value=figures.duplicates_removed)
        late = GaugeMetricFamily("followthrough_send_lateness_ms",
                                 "Lateness of shares sent in the last hour", labels=["quantile"])
        late.add_metric(["0.5"], figures.lateness_p50_ms)
        late.add_metric(["0.99"], figures.lateness_p99_ms)
        yield late
        lag = GaugeMetricFamily("followthrough_projection_lag_seconds",
                                "Age of the oldest event a projection has not applied", labels=["projection"])
        for follower in lags:
            lag.add_metric([follower.name], follower.lag_seconds)
        yield lag
        yield GaugeMetricFamily("followthrough_log_horizon_held_seconds",
                                "How long committed events have waited behind the oldest open transaction",
                                value=horizon.held_seconds or 0.0)
        yield from _followthrough(figures.followthrough)
        sla = GaugeMetricFamily("followthrough_sla", "Open tasks and unanswered replies by SLA state",
                                labels=["kind", "state"])
        for kind in ("task", "reply"):
            for state in ("on_track", "at_risk", "breached"):
                sla.add_metric([kind, state], figures.sla.get((kind, state), 0))
        yield sla
        due = GaugeMetricFamily("followthrough_schedule_items", "Schedule rows", labels=["kind", "state"])
        for kind, counts in figures.schedule.items():
            for state, count in counts.items():
                due.add_metric([kind, state], count)
        yield due


def _followthrough(rows: list[metrics.WorkspaceFollowthrough]) -> Iterator[GaugeMetricFamily]:
    """The follow-through rate per workspace (no sample while nothing is settled) and its counts."""
    rate = GaugeMetricFamily("followthrough_follow_through_rate",
                             "Response tasks done on time out of those settled, due in the last 30 days",
                             labels=["workspace"])
    counts = GaugeMetricFamily("followthrough_follow_through_tasks",
                               "Response tasks due in the last 30 days (and open now) by outcome",
                               labels=["workspace", "outcome"])
    for row in rows:
        if row.rate is not None:
            rate.add_metric([row.workspace_id], row.rate)
        for outcome in ("open", "done_on_time", "done_late", "overdue"):
            counts.add_metric([row.workspace_id, outcome], getattr(row, outcome))
    yield rate
    yield counts
