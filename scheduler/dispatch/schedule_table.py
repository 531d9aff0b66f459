"""The schedule table, as the dispatcher reads it: claim due work, and when to look again.

Rows are written by the unit of work that appends the events (``scheduler.services.share_stream``),
so the schedule is never behind the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from events import sqlfiles
from events.connection import CUSTOM_PLAN
from scheduler.services.share_stream import SCHEDULE_CHANNEL

Q = sqlfiles.load("scheduler.dispatch", "schedule.sql")

__all__ = ["SCHEDULE_CHANNEL", "DueItem", "claim_due", "next_wakeup"]


@dataclass(frozen=True, slots=True)
class DueItem:
    id: int
    kind: str
    share_id: UUID
    workspace_id: str
    due_at: datetime
    dispatch_count: int


def claim_due(
    conn: psycopg.Connection[Any], *, limit: int, lease_seconds: float, lead_seconds: float = 0.0
) -> list[DueItem]:
    params = {"limit": limit, "lease_seconds": lease_seconds, "lead_seconds": lead_seconds}
    rows = conn.execute(Q["claim_due"], params, prepare=CUSTOM_PLAN).fetchall()
    return [DueItem(*row) for row in rows]


def next_wakeup(conn: psycopg.Connection[Any], *, lead_seconds: float = 0.0) -> timedelta | None:
    row = conn.execute(Q["next_wakeup"], {"lead_seconds": lead_seconds}, prepare=CUSTOM_PLAN).fetchone()
    return None if row is None or row[0] is None else row[0]
