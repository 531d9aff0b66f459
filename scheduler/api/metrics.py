"""Prometheus metrics from the read models and the log, computed when scraped.

Figures for operators across all workspaces: shares by status, response tasks by
state, the integrity count (must be 0), projection lag, the log horizon and the
schedule. Served by the API at /metrics (scrape it from inside the cluster).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool

from events import monitoring
from scheduler import schedule

SHARES_BY_STATUS = "SELECT status, count(*) FROM rm_shares GROUP BY status"
TASKS_BY_STATE = "SELECT state, count(*) FROM response_inbox GROUP BY state"
INTEGRITY = "SELECT sent_shares_without_response_tasks FROM integrity"
LATENESS = (
    "SELECT coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY lateness_ms), 0),"
    " coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY lateness_ms), 0)"
    " FROM rm_shares WHERE sent_at > now() - interval '1 hour'"
)


class ReadModelCollector(Collector):
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.pool.connection(timeout=5) as conn:
            shares = GaugeMetricFamily("followthrough_shares", "Shares by status (read model)", labels=["status"])
            for status, count in conn.execute(SHARES_BY_STATUS):
                shares.add_metric([status], count)
            yield shares
            tasks = GaugeMetricFamily("followthrough_response_tasks", "Response tasks by state", labels=["state"])
            for state, count in conn.execute(TASKS_BY_STATE):
                tasks.add_metric([state], count)
            yield tasks
            row = conn.execute(INTEGRITY).fetchone()
            yield GaugeMetricFamily("followthrough_sent_shares_without_response_tasks",
                                    "Sent shares whose response tasks were not recorded first (must be 0)",
                                    value=row[0] if row else 0)
            p50, p99 = conn.execute(LATENESS).fetchone() or (0, 0)
            late = GaugeMetricFamily("followthrough_send_lateness_ms",
                                     "Lateness of shares sent in the last hour", labels=["quantile"])
            late.add_metric(["0.5"], p50)
            late.add_metric(["0.99"], p99)
            yield late
            lag = GaugeMetricFamily("followthrough_projection_lag_seconds",
                                    "Age of the oldest event a projection has not applied", labels=["projection"])
            for follower in monitoring.follower_lags(conn):
                lag.add_metric([follower.name], follower.lag_seconds)
            yield lag
            horizon = monitoring.horizon(conn)
            yield GaugeMetricFamily("followthrough_log_horizon_held_seconds",
                                    "How long committed events have waited behind the oldest open transaction",
                                    value=horizon.held_seconds or 0.0)
            due = GaugeMetricFamily("followthrough_schedule_items", "Schedule rows", labels=["kind", "state"])
            for kind, figures in schedule.counts(conn).items():
                for state, count in figures.items():
                    due.add_metric([kind, state], count)
            yield due
