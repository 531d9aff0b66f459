"""The schedule table: due work the dispatcher hands to the broker.

Writes happen inside the unit of work that appended the events (after them), so
the schedule is never behind the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from events import sqlfiles
from events.notifier import Notifier
from scheduler.domain.schedule import Remove, ScheduleOp, Upsert

Q = sqlfiles.load("scheduler.sql", "schedule.sql")
SCHEDULE_CHANNEL = "followthrough_schedule"


@dataclass(frozen=True, slots=True)
class DueItem:
    id: int
    kind: str
    share_id: UUID
    workspace_id: str
    due_at: datetime
    dispatch_count: int


def apply(
    conn: psycopg.Connection[Any],
    *,
    share_id: UUID,
    workspace_id: str,
    ops: Sequence[ScheduleOp],
) -> bool:
    """Write ``ops``; True when a row became due (the dispatcher should look again)."""
    wake = False
    for op in ops:
        params = {"kind": op.kind, "share_id": share_id}
        match op:
            case Upsert():
                conn.execute(Q["upsert"], {**params, "workspace_id": workspace_id, "due_at": op.due_at})
                wake = True
            case Remove():
                conn.execute(Q["remove"], params)
    return wake


def apply_many(conn: psycopg.Connection[Any], items: Sequence[tuple[UUID, str, Sequence[ScheduleOp]]]) -> bool:
    """``apply`` for many shares: their removals in one statement per kind."""
    removals: dict[str, list[UUID]] = {}
    wake = False
    for share_id, workspace_id, ops in items:
        rest = [op for op in ops if not isinstance(op, Remove)]
        for op in ops:
            if isinstance(op, Remove):
                removals.setdefault(op.kind, []).append(share_id)
        if rest:
            wake = apply(conn, share_id=share_id, workspace_id=workspace_id, ops=rest) or wake
    for kind, share_ids in removals.items():
        conn.execute(Q["remove_many"], {"kind": kind, "share_ids": share_ids})
    return wake


def claim_due(
    conn: psycopg.Connection[Any], *, limit: int, lease_seconds: float, lead_seconds: float = 0.0
) -> list[DueItem]:
    params = {"limit": limit, "lease_seconds": lease_seconds, "lead_seconds": lead_seconds}
    rows = conn.execute(Q["claim_due"], params).fetchall()
    return [DueItem(*row) for row in rows]


def next_wakeup(conn: psycopg.Connection[Any], *, lead_seconds: float = 0.0) -> timedelta | None:
    row = conn.execute(Q["next_wakeup"], {"lead_seconds": lead_seconds}).fetchone()
    return None if row is None or row[0] is None else row[0]


def counts(conn: psycopg.Connection[Any]) -> dict[str, dict[str, int]]:
    return {
        kind: {"due": due, "leased": leased, "total": total} for kind, due, leased, total in conn.execute(Q["counts"])
    }


def wake_dispatcher(notifier: Notifier | None) -> None:
    if notifier is not None:
        notifier.notify((SCHEDULE_CHANNEL,))
