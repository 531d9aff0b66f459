"""Operators' figures over the read models and the schedule (all workspaces), read when
Prometheus scrapes the API. The API turns them into metric families."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from events import sqlfiles

Q = sqlfiles.load("events.projections.sql", "metrics.sql")


@dataclass(frozen=True, slots=True)
class Figures:
    shares_by_status: dict[str, int]
    tasks_by_state: dict[str, int]
    sent_without_tasks: int
    duplicate_posts: int
    duplicates_removed: int
    lateness_p50_ms: float
    lateness_p99_ms: float
    # kind -> {"due", "leased", "total"}
    schedule: dict[str, dict[str, int]]
    followthrough: list[WorkspaceFollowthrough] = field(default_factory=list)
    # (kind "task" | "reply", state) -> count of open work by SLA state
    sla: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WorkspaceFollowthrough:
    """Tasks due in the last 30 days (and open now) of one workspace; rate None when none settled."""

    workspace_id: str
    open: int
    done_on_time: int
    done_late: int
    overdue: int
    rate: float | None


def figures(conn: psycopg.Connection[Any], *, at_risk: float = 0.75, reply_sla_seconds: float = 86_400.0) -> Figures:
    integrity = conn.execute(Q["integrity"]).fetchone()
    p50, p99 = conn.execute(Q["lateness"]).fetchone() or (0, 0)
    duplicates, removed = conn.execute(Q["duplicates"]).fetchone() or (0, 0)
    return Figures(
        shares_by_status=dict(conn.execute(Q["shares_by_status"])),
        tasks_by_state=dict(conn.execute(Q["tasks_by_state"])),
        sent_without_tasks=int(integrity[0]) if integrity else 0,
        duplicate_posts=int(duplicates),
        duplicates_removed=int(removed),
        lateness_p50_ms=float(p50),
        lateness_p99_ms=float(p99),
        schedule={
            kind: {"due": due, "leased": leased, "total": total}
            for kind, due, leased, total in conn.execute(Q["schedule_counts"])
        },
        followthrough=[
            WorkspaceFollowthrough(str(ws), int(o), int(on_time), int(late), int(over), rate)
            for ws, o, on_time, late, over, rate in conn.execute(Q["followthrough_by_workspace"])
        ],
        sla={(kind, state): int(n) for kind, state, n in conn.execute(
            Q["sla"], {"at_risk": at_risk, "reply_sla_seconds": reply_sla_seconds}) if state is not None},
    )
