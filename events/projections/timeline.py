"""Queries over the shares read model for the dashboard: the timeline, the shares waiting for
a review, and per-workspace health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from events import sqlfiles

Q = sqlfiles.load("events.projections.sql", "timeline.sql")


def timeline(
    conn: psycopg.Connection[Any],
    workspace_id: str,
    *,
    statuses: list[str] | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    cur = conn.execute(
        Q["timeline"],
        {"workspace_id": workspace_id, "statuses": statuses, "from": start, "to": end, "limit": limit},
    )
    names = [c.name for c in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur]


@dataclass(frozen=True, slots=True)
class WorkspaceHealth:
    shares_by_status: dict[str, int]
    duplicate_posts: int
    duplicates_removed: int
    overdue_tasks: int


def workspace_health(conn: psycopg.Connection[Any], workspace_id: str) -> WorkspaceHealth:
    params = {"workspace_id": workspace_id}
    duplicates, removed = conn.execute(Q["duplicates"], params).fetchone() or (0, 0)
    overdue = conn.execute(Q["overdue_tasks"], params).fetchone()
    return WorkspaceHealth(
        shares_by_status={status: int(n) for status, n in conn.execute(Q["status_counts"], params)},
        duplicate_posts=int(duplicates),
        duplicates_removed=int(removed),
        overdue_tasks=int(overdue[0]) if overdue else 0,
    )


def task_status(conn: psycopg.Connection[Any], workspace_id: str, task_id: str) -> str | None:
    """A task's status in the read model (to wait for a completion to show)."""
    row = conn.execute(Q["task_status"], {"workspace_id": workspace_id, "task_id": task_id}).fetchone()
    return None if row is None else str(row[0])


def in_review(conn: psycopg.Connection[Any], workspace_id: str, *, limit: int) -> list[dict[str, Any]]:
    """Shares waiting for a review (``in_review``, ``review_overdue``), soonest first, each with
    its author (the actor who planned it)."""
    cur = conn.execute(Q["in_review"], {"workspace_id": workspace_id, "limit": limit})
    names = [c.name for c in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur]


def share_status(conn: psycopg.Connection[Any], workspace_id: str, share_id: str) -> str | None:
    """A share's status in the read model (to wait for a review to show)."""
    row = conn.execute(Q["share_status"], {"workspace_id": workspace_id, "share_id": share_id}).fetchone()
    return None if row is None else str(row[0])
