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

__all__ = ["SCHEDULE_CHANNEL", "SESSION_OPTIONS", "DueItem", "claim_due", "next_wakeup"]

# The dispatcher's connections plan without bitmap scans. Its statements all take the first
# rows of an index in order; a bitmap scan reads every entry in range first and never marks
# the entries of rows already leased as dead, as an index scan does. The planner chose one
# on statistics from before a burst (a table not analyzed since it filled): a claim of 500
# read 10,000 entries (9 ms against 6), the next wake-up 17,000 (1.9 ms against 0.13).
SESSION_OPTIONS = "-c enable_bitmapscan=off"


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
