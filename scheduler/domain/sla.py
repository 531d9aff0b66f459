"""SLA states of open work: the same rule as the SQL function ``sla_state`` (migrations
0012 and 0015), for the views the API builds from a share's own stream (a test keeps both
equal). For a task on the business clock the at-risk point is measured in business time:
``at_risk`` of the business seconds from its start to its due time."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from scheduler.domain.calendars import Calendar, business_seconds

SlaState = Literal["on_track", "at_risk", "breached"]
AT_RISK = 0.75


def sla_state(started_at: datetime | None, due_at: datetime | None, at: datetime,
              at_risk: float = AT_RISK, calendar: Calendar | None = None) -> SlaState | None:
    """``breached`` past the due time, ``at_risk`` once ``at_risk`` of the time from the
    start to the due time is used (of ``calendar``'s business time when given), else
    ``on_track``; None without a due time."""
    if due_at is None:
        return None
    if at > due_at:
        return "breached"
    if calendar is not None and started_at is not None:
        used, whole = business_seconds(calendar, started_at, at), business_seconds(calendar, started_at, due_at)
        return "at_risk" if used >= whole * at_risk else "on_track"
    if started_at is None or at >= started_at + (due_at - started_at) * at_risk:
        return "at_risk"
    return "on_track"
