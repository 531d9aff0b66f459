"""Grafana dashboards as code: `make grafana` writes them to k8s/base/grafana/*.json.

Two dashboards, built with grafana-foundation-sdk (a dev dependency; the JSON is committed
and provisioned by the kustomize base as a ConfigMap):

- ``followthrough-metrics``: the Prometheus metrics the API serves at /metrics (lateness,
  throughput, failures, projection lag, the log horizon, integrity, duplicates, follow-through).
- ``followthrough-read-models``: SQL over the read models as a member of the
  ``followthrough_reader`` role (follow-through by account, owner and day; the inbox).

A test regenerates both and compares them with the committed files, runs every SQL panel
against real read models as a ``followthrough_reader`` member, and checks every metric named
here exists in /metrics. Run: ``python k8s/grafana.py [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
)

HERE = Path(__file__).parent
OUT = HERE / "base" / "grafana"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="followthrough-prometheus")
READ_MODELS = DataSourceRef(type_val="grafana-postgresql-datasource", uid="followthrough-read-models")
WORKSPACES = "workspace_id IN (${workspace:sqlstring})"


class SqlQuery(cogvariants.Dataquery):
    """A PostgreSQL panel query (the SDK has no builder for this data source)."""

    def __init__(self, ref_id: str, raw_sql: str, fmt: str) -> None:
        self.ref_id, self.raw_sql, self.fmt = ref_id, raw_sql, fmt

    def to_json(self) -> dict[str, object]:
        return {"refId": self.ref_id, "datasource": {"type": READ_MODELS.type_val, "uid": READ_MODELS.uid},
                "editorMode": "code", "format": self.fmt, "rawQuery": True, "rawSql": self.raw_sql}


class Sql(cogbuilder.Builder[SqlQuery]):
    def __init__(self, raw_sql: str, *, fmt: str = "table", ref_id: str = "A") -> None:
        self._internal = SqlQuery(ref_id, " ".join(raw_sql.split()), fmt)

    def build(self) -> SqlQuery:
        return self._internal


def prom(expr: str, legend: str, ref_id: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id)


def series(title: str, unit: str, *queries: prometheus.Dataquery, description: str = "") -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description).unit(unit).datasource(PROMETHEUS)
             .height(8).span(12).line_width(2).fill_opacity(10))
    for query in queries:
        panel = panel.with_target(query)
    return panel


def single(title: str, query: cogbuilder.Builder[Any], datasource: DataSourceRef, *, unit: str = "none",
           red_from: float = 1, description: str = "") -> stat.Panel:
    thresholds = (dash.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE)
                  .steps([_step(None, "green"), _step(red_from, "red")]))
    return (stat.Panel().title(title).description(description).datasource(datasource).with_target(query)
            .unit(unit).height(5).span(6).thresholds(thresholds).color_mode(common.BigValueColorMode.BACKGROUND)
            .graph_mode(common.BigValueGraphMode.NONE)
            .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))


def _step(value: float | None, color: str) -> Threshold:
    return Threshold(value=value, color=color)


def metrics_dashboard() -> dash.Dashboard:
    rate = prom("followthrough_follow_through_rate", "{{workspace}}")
    return (
        dash.Dashboard("Followthrough: operations").uid("followthrough-metrics")
        .tags(["followthrough"]).refresh("30s").time("now-6h", "now").timezone("utc")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_row(dash.Row("Integrity"))
        .with_panel(single("Sent shares without response tasks (must be 0)",
                           prom("max(followthrough_sent_shares_without_response_tasks)", "sent without tasks"),
                           PROMETHEUS, description="The invariant: never above 0."))
        .with_panel(single("Duplicate posts", prom("sum(followthrough_duplicate_posts_total)", "duplicates"),
                           PROMETHEUS))
        .with_panel(single("Abandoned shares", prom('sum(followthrough_shares{status="abandoned"})', "abandoned"),
                           PROMETHEUS))
        .with_panel(single("Overdue response tasks",
                           prom('sum(followthrough_response_tasks{state="overdue"})', "overdue"), PROMETHEUS,
                           red_from=50))
        .with_row(dash.Row("Publishing"))
        .with_panel(series("Send lateness (last hour)", "ms",
                           prom('max(followthrough_send_lateness_ms{quantile="0.5"})', "p50"),
                           prom('max(followthrough_send_lateness_ms{quantile="0.99"})', "p99", "B")))
        .with_panel(series("Throughput: shares sent", "short",
                           prom('sum(delta(followthrough_shares{status="sent"}[5m]))', "sent per 5 min")))
        .with_panel(series("Failures, holds and abandonment", "short",
                           prom('sum by (status) (followthrough_shares{status=~"failed|held|abandoned"})',
                                "{{status}}")))
        .with_panel(series("Due work waiting in the schedule", "short",
                           prom('sum by (kind) (followthrough_schedule_items{state="due"})', "{{kind}}")))
        .with_row(dash.Row("Read side"))
        .with_panel(series("Projection lag", "s", prom("max by (projection) (followthrough_projection_lag_seconds)",
                                                       "{{projection}}")))
        .with_panel(series("Log horizon: committed events held back", "s",
                           prom("max(followthrough_log_horizon_held_seconds)", "held")))
        .with_row(dash.Row("Follow-through"))
        .with_panel(series("Follow-through rate (tasks due in the last 30 days)", "percentunit", rate)
                    .min(0).max(1))
        .with_panel(series("Response tasks by outcome", "short",
                           prom("sum by (outcome) (followthrough_follow_through_tasks)", "{{outcome}}")))
        .with_panel(series("Open work by SLA state", "short",
                           prom("sum by (kind, state) (followthrough_sla)", "{{kind}} {{state}}"),
                           description="Open tasks and unanswered replies: on track, at risk (75 % of their time "
                                       "used), breached (past due)."))
    )


def sql_table(title: str, raw_sql: str, *, description: str = "") -> table.Panel:
    return (table.Panel().title(title).description(description).datasource(READ_MODELS)
            .with_target(Sql(raw_sql)).height(9).span(12))


FOLLOWTHROUGH_COLUMNS = """
    sum(open)::bigint AS open, sum(done_on_time)::bigint AS done_on_time, sum(done_late)::bigint AS done_late,
    sum(overdue)::bigint AS overdue,
    followthrough_rate(sum(done_on_time)::bigint, sum(done_late)::bigint, sum(overdue)::bigint) AS rate"""


# Time to answer as the reports count it: reply_answer_time() (migration 0016), the function
# the API's reply figures call, never the formula again.
TIME_TO_ANSWER = f"""
    SELECT date_trunc('day', r.collected_at) AS time,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY a.seconds) AS "median seconds to answer",
           percentile_cont(0.9) WITHIN GROUP (ORDER BY a.seconds) AS "p90 seconds to answer"
    FROM rm_replies r
    CROSS JOIN LATERAL reply_answer_time(r.workspace_id, r.share_id, r.received_at, r.answered_at) a
    WHERE r.{WORKSPACES} AND r.state = 'answered' AND $__timeFilter(r.collected_at)
    GROUP BY 1 ORDER BY 1"""


# Engagement as the reports total it: engagement_daily (migration 0018), the view the API's
# follow-through rows sum, never the sums again.
ENGAGEMENT_BY_DAY = f"""
    SELECT day::timestamp AT TIME ZONE 'UTC' AS time,
           sum(replies)::bigint AS replies, sum(reposts)::bigint AS reposts, sum(likes)::bigint AS likes,
           sum(quotes)::bigint AS quotes
    FROM engagement_daily
    WHERE {WORKSPACES} AND $__timeFilter(day::timestamp AT TIME ZONE 'UTC')
    GROUP BY 1 ORDER BY 1"""


def read_models_dashboard() -> dash.Dashboard:
    workspace = (dash.QueryVariable("workspace").label("Workspace").datasource(READ_MODELS)
                 .query("SELECT DISTINCT workspace_id FROM rm_shares ORDER BY 1")
                 .multi(True).include_all(True).refresh(VariableRefresh.ON_TIME_RANGE_CHANGED))
    by_day = f"""
        SELECT day::timestamp AT TIME ZONE 'UTC' AS time,
               followthrough_rate(sum(done_on_time)::bigint, sum(done_late)::bigint,
                                  sum(overdue)::bigint) AS rate
        FROM followthrough_daily
        WHERE {WORKSPACES} AND $__timeFilter(day::timestamp AT TIME ZONE 'UTC')
        GROUP BY 1 ORDER BY 1"""
    return (
        dash.Dashboard("Followthrough: follow-through").uid("followthrough-read-models")
        .tags(["followthrough"]).refresh("1m").time("now-30d", "now").timezone("utc")
        .with_variable(workspace)
        .with_panel(
            timeseries.Panel().title("Follow-through rate by day (tasks due that day)").datasource(READ_MODELS)
            .with_target(Sql(by_day, fmt="time_series")).unit("percentunit").min(0).max(1)
            .draw_style(common.GraphDrawStyle.BARS).fill_opacity(60).height(9).span(24)
            .description("Done on time out of settled tasks; a day with nothing settled has no bar."))
        .with_panel(
            timeseries.Panel().title("Time to answer by day (median and p90)").datasource(READ_MODELS)
            .with_target(Sql(TIME_TO_ANSWER, fmt="time_series")).unit("s").min(0)
            .line_width(2).fill_opacity(10).height(9).span(24)
            .description("From a reply's own time on the network to the answer's publish time, by the day the "
                         "reply was collected: in its owner's business seconds when it was answered for an "
                         "answer_replies step on the business clock, else on the wall clock "
                         "(reply_answer_time(), as GET /v1/followthrough)."))
        .with_panel(
            timeseries.Panel().title("Engagement by day sent (replies, reposts, likes, quotes)")
            .datasource(READ_MODELS).with_target(Sql(ENGAGEMENT_BY_DAY, fmt="time_series")).unit("none").min(0)
            .draw_style(common.GraphDrawStyle.BARS).fill_opacity(60).height(9).span(24)
            .description("The counts the looks last read of the posts sent each day (Mastodon and Bluesky), "
                         "from engagement_daily, as GET /v1/followthrough totals them."))
        .with_panel(sql_table("By account", f"""
            SELECT account_name AS account, {FOLLOWTHROUGH_COLUMNS}
            FROM followthrough_daily WHERE {WORKSPACES} AND $__timeFilter(day::timestamp AT TIME ZONE 'UTC')
            GROUP BY 1 ORDER BY 1"""))
        .with_panel(sql_table("By owner", f"""
            SELECT owner, {FOLLOWTHROUGH_COLUMNS}
            FROM followthrough_daily WHERE {WORKSPACES} AND $__timeFilter(day::timestamp AT TIME ZONE 'UTC')
            GROUP BY 1 ORDER BY 1"""))
        .with_panel(sql_table("Overdue tasks now", f"""
            SELECT owner, account_name AS account, channel, kind, due_at, share_id
            FROM response_inbox WHERE {WORKSPACES} AND state = 'overdue'
            ORDER BY due_at LIMIT 200"""))
        .with_panel(sql_table("Open tasks at risk (sla_state)", """
            SELECT i.owner, i.account_name AS account, i.channel, i.kind, i.due_at, i.share_id
            FROM response_inbox i LEFT JOIN rm_shares s ON s.share_id = i.share_id
            WHERE i.workspace_id IN (${workspace:sqlstring}) AND i.state = 'open'
              AND task_sla_state(i.workspace_id, i.share_id, i.task_id, i.owner, i.after_seconds, s.sent_at,
                                 i.due_at, now()) = 'at_risk'
            ORDER BY i.due_at LIMIT 200""", description="Open tasks that have used 75 % of their time "
                                               "(of their business time, on the business clock)."))
        .with_panel(sql_table("Shares that need a person (failed, held, abandoned)", f"""
            SELECT scheduled_at, account_name AS account, status, attempts, last_error, share_id
            FROM rm_shares WHERE {WORKSPACES} AND status IN ('failed', 'held', 'abandoned')
              AND $__timeFilter(scheduled_at)
            ORDER BY scheduled_at DESC LIMIT 200"""))
        .with_panel(single("Sent shares without response tasks (must be 0)",
                           Sql("SELECT sent_shares_without_response_tasks FROM integrity"), READ_MODELS))
    )


def render(board: dash.Dashboard) -> str:
    return json.dumps(board.build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


DASHBOARDS = {"followthrough-metrics.json": metrics_dashboard, "followthrough-read-models.json": read_models_dashboard}


def write(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, build in DASHBOARDS.items():
        path = out / name
        path.write_text(render(build()), encoding="utf-8")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    for path in write(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
