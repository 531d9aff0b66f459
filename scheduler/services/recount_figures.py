"""The figures the product sells, recounted per workspace from the audit's tallies (the
log alone): tasks open, done on time, done late and overdue, the follow-through rate,
time to respond (from the post's publish time to the task's completion), replies
received, answered and dismissed, and time to answer (from the reply's own time to the
answer's publish time; in business time when the ``answer_replies`` task the reply is
answered for, the share's first not cancelled one due at or after it came, had its due time
worked out on the business clock: the business seconds of its owner's calendar as it stood
when the reply came), with medians and 90th percentiles.

Computed here on purpose, the audit's own path: the read side reports them from the
read models through the database's ``followthrough_rate()`` and its own SQL, which the
audit compares with these. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scheduler.domain.calendars import DEFAULT, Calendar, business_seconds, parse_holidays, parse_week
from scheduler.services.recount import Recount, ShareTally, TaskTally, recounted_rate
from scheduler.services.recount_replies import ReplyTally

# The report's figures the audit compares (the keys of a ``GET /v1/followthrough`` row).
FIGURE_FIELDS = ("open", "done_on_time", "done_late", "overdue", "rate", "median_seconds_to_complete",
                 "p90_seconds_to_complete", "replies_received", "replies_answered", "median_seconds_to_answer",
                 "p90_seconds_to_answer")
# The report rounds the rate to 4 places for reading.
RATE_PLACES = 4


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` percentile by linear interpolation between the closest ranks (the
    definition SQL's ``percentile_cont`` follows); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


@dataclass(slots=True)
class CalendarLog:
    """A workspace's calendars stream as stored (``calendars-<workspace>``: recorded time,
    type, data), read back at any moment by the audit's own counting: the owner's
    calendar as it stood then, else ``default``, else None."""

    events: list[tuple[datetime, str, dict[str, Any]]] = field(default_factory=list)
    # (owner, the events recorded by a moment) -> the calendar: a reply each reads it
    _read: dict[tuple[str, tuple[int, ...]], Calendar | None] = field(default_factory=dict)

    def at(self, owner: str, moment: datetime) -> Calendar | None:
        applied = tuple(i for i, (recorded_at, _, _) in enumerate(self.events) if recorded_at <= moment)
        key = (owner, applied)
        if key not in self._read:
            self._read[key] = self._calendar(owner, applied)
        return self._read[key]

    def _calendar(self, owner: str, applied: tuple[int, ...]) -> Calendar | None:
        calendars: dict[str, dict[str, Any] | None] = {}
        chosen: str | None = None
        for i in applied:
            _, type_name, data = self.events[i]
            if type_name == "CalendarSet":
                calendars[data["name"]] = data
            elif type_name == "CalendarDeleted":
                calendars[data["name"]] = None
            elif type_name == "OwnerCalendarSet" and data["owner"] == owner:
                chosen = data.get("calendar")
        found = (calendars.get(chosen) if chosen is not None else None) or calendars.get(DEFAULT)
        if found is None:
            return None
        return Calendar(found["time_zone"], parse_week(found["week"]), parse_holidays(found.get("holidays") or []))


def answered_for(share: ShareTally, reply: ReplyTally) -> TaskTally | None:
    """The ``answer_replies`` task a reply is answered for: the share's first not cancelled
    one due at or after the reply came (by due time, then task id)."""
    found = [(task.due_at, task_id, task) for task_id, task in share.tasks.items()
             if task.kind == "answer_replies" and task.due_at is not None and task.due_at >= reply.received_at
             and task.stored_status != "cancelled"]
    return min(found, key=lambda f: (f[0], f[1]))[2] if found else None


def seconds_to_answer(share: ShareTally, reply: ReplyTally, calendars: CalendarLog | None) -> float | None:
    """A reply's time to answer: business seconds for a business step, else wall seconds."""
    seconds = reply.seconds_to_answer
    if seconds is None or calendars is None:
        return seconds
    task = answered_for(share, reply)
    if task is None or not task.business:
        return seconds
    calendar = calendars.at(task.owner, reply.received_at)
    if calendar is None or reply.answered_at is None:
        return seconds
    return business_seconds(calendar, reply.received_at, reply.answered_at)


@dataclass(slots=True)
class Figures:
    """One workspace's figures, accumulated share by share."""

    counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # open, on time, late, overdue
    to_complete: list[float] = field(default_factory=list)
    received: int = 0
    answered: int = 0
    dismissed: int = 0
    to_answer: list[float] = field(default_factory=list)

    def add(self, share: ShareTally, now: datetime, calendars: CalendarLog | None = None) -> None:
        sent_at = share.sent["sent_at"] if share.sent else None
        for task in share.tasks.values():
            if task.stored_status not in ("open", "done") or task.due_at is None:
                continue
            if task.completed_at is None:
                self.counts[0 if now < task.due_at else 3] += 1
                continue
            self.counts[1 if task.completed_at <= task.due_at else 2] += 1
            if sent_at is not None:
                self.to_complete.append((task.completed_at - sent_at).total_seconds())
        for reply in share.thread.replies.values():
            self.received += 1
            seconds = seconds_to_answer(share, reply, calendars) if reply.answered_at is not None else None
            if seconds is not None:
                self.answered += 1
                self.to_answer.append(seconds)
            elif reply.dismissed_at is not None:
                self.dismissed += 1

    def row(self) -> dict[str, Any]:
        """As the report's row for the workspace (``FIGURE_FIELDS``)."""
        open_, on_time, late, overdue = self.counts
        found = recounted_rate((open_, on_time, late, overdue))
        return {
            "open": open_, "done_on_time": on_time, "done_late": late, "overdue": overdue,
            "rate": None if found is None else round(found, RATE_PLACES),
            "median_seconds_to_complete": percentile(self.to_complete, 0.5),
            "p90_seconds_to_complete": percentile(self.to_complete, 0.9),
            "replies_received": self.received, "replies_answered": self.answered,
            "median_seconds_to_answer": percentile(self.to_answer, 0.5),
            "p90_seconds_to_answer": percentile(self.to_answer, 0.9),
        }


def workspace_figures(recount: Recount, workspace_id: str | None, now: datetime,
                      calendars: dict[str, CalendarLog] | None = None) -> dict[str, Figures]:
    """Each workspace's figures over every task due and every reply received, as of ``now``
    (shares never planned count nowhere, as in the read models); ``calendars``: each
    workspace's calendars stream, for the replies answered for business steps."""
    found: dict[str, Figures] = {}
    calendars = calendars or {}
    for _, share in recount.in_workspace(workspace_id):
        if share.planned:
            found.setdefault(share.workspace_id, Figures()).add(share, now, calendars.get(share.workspace_id))
    return found


def same(a: Any, b: Any) -> bool:
    """Equal; a fraction of a second to within a microsecond's rounding (the log's times
    are to the microsecond, the database's seconds a float of them)."""
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6)
    return bool(a == b)


def differing(expected: dict[str, Any], reported: dict[str, Any], names: Iterable[str] = FIGURE_FIELDS
              ) -> list[tuple[str, Any, Any]]:
    """(name, recounted, reported) for each figure that differs."""
    return [(name, expected.get(name), reported.get(name)) for name in names
            if not same(expected.get(name), reported.get(name))]
