"""SLA states of open work: the same rule as the SQL function ``sla_state`` (migration
0012), for the views the API builds from a share's own stream (a test keeps both equal)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

SlaState = Literal["on_track", "at_risk", "breached"]
AT_RISK = 0.75


def sla_state(started_at: datetime | None, due_at: datetime | None, at: datetime,
              at_risk: float = AT_RISK) -> SlaState | None:
    """``breached`` past the due time, ``at_risk`` once ``at_risk`` of the time from the
    start to the due time is used, else ``on_track``; None without a due time."""
    if due_at is None:
        return None
    if at > due_at:
        return "breached"
    if started_at is None or at >= started_at + (due_at - started_at) * at_risk:
        return "at_risk"
    return "on_track"
