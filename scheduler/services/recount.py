"""The audit's recount: every share, task and follow-through figure derived from the log
alone, by the domain's own fold (``scheduler.domain.share.evolve``), never by the
projections' code. The audit compares what this derives with the read models.

Fed one event at a time in log order (the order the projections apply them in), it keeps
one folded state per share, and checks the invariant as the log stands: a ``ShareSent``
whose share had no ``ResponseTasksRecorded`` earlier in the log is a violation.
Pure: no I/O, so it is tested and benchmarked without a database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from events.catalogue import ShareSent
from events.records import RecordedEvent
from scheduler.domain.share import ShareState, TaskState, evolve

STREAM_PREFIX = "share-"

# (workspace, account id, owner, day of the due time in UTC)
DailyKey = tuple[str, str, str, date | None]
# open, done on time, done late, overdue
DailyCounts = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class Violation:
    """The log itself breaks a rule: no projection can be right about it."""

    workspace_id: str
    share_id: str
    rule: str
    position: int


@dataclass(slots=True)
class Recount:
    """Folded shares, per share id, with their workspace, and what the log broke."""

    shares: dict[UUID, ShareState] = field(default_factory=dict)
    workspace_of: dict[UUID, str] = field(default_factory=dict)
    sent_without_tasks: set[UUID] = field(default_factory=set)
    violations: list[Violation] = field(default_factory=list)
    events: int = 0

    def add(self, recorded: RecordedEvent) -> None:
        if not recorded.stream_id.startswith(STREAM_PREFIX):
            return
        share_id = UUID(recorded.stream_id.removeprefix(STREAM_PREFIX))
        state = self.shares.get(share_id) or ShareState()
        self.events += 1
        if recorded.stream_version != state.version + 1:
            self._violate(recorded, share_id, f"version {recorded.stream_version} after {state.version}")
        if isinstance(recorded.event, ShareSent) and not state.tasks_recorded:
            self.sent_without_tasks.add(share_id)
            self._violate(recorded, share_id, "ShareSent without ResponseTasksRecorded before it")
        self.shares[share_id] = evolve(state, recorded.event)
        self.workspace_of.setdefault(share_id, recorded.workspace_id)

    def add_all(self, events: Iterable[RecordedEvent]) -> None:
        for recorded in events:
            self.add(recorded)

    def _violate(self, recorded: RecordedEvent, share_id: UUID, rule: str) -> None:
        self.violations.append(Violation(recorded.workspace_id, str(share_id), rule, recorded.position))

    def in_workspace(self, workspace_id: str | None) -> Iterable[tuple[UUID, ShareState]]:
        for share_id, state in self.shares.items():
            if workspace_id is None or self.workspace_of[share_id] == workspace_id:
                yield share_id, state


def share_row(state: ShareState, sent_without_tasks: bool) -> dict[str, Any]:
    """A share as ``rm_shares`` should hold it (the columns the audit checks)."""
    planned, sent = state.planned, state.sent
    return {
        "status": state.status,
        "account_id": None if planned is None else str(planned.account_id),
        "scheduled_at": state.scheduled_at,
        # A share marked sent by hand counts the attempt its ShareSent names.
        "attempts": state.attempts if sent is None else sent.attempt,
        "sent_at": None if sent is None else sent.sent_at,
        "lateness_ms": None if sent is None else sent.lateness_ms,
        "url": None if sent is None else sent.url,
        "external_id": None if sent is None else sent.external_id,
        "tasks_recorded": state.tasks_recorded,
        "sent_without_tasks": sent_without_tasks,
        "replies_received": len(state.replies),
        "duplicate_posts": len(state.duplicates),
        "duplicates_removed": len(state.duplicates_removed),
    }


def stored_task_status(task: TaskState) -> str:
    """The task's status as ``rm_response_tasks`` stores it (overdue is open past its due time)."""
    if task.cancelled:
        return "cancelled"
    if task.completed_at is not None:
        return "done"
    return "pending" if task.due_at is None else "open"


def task_row(share_id: UUID, task: TaskState) -> dict[str, Any]:
    status = stored_task_status(task)
    return {
        "share_id": str(share_id),
        "status": status,
        "kind": task.kind,
        "owner": task.owner,
        "due_at": task.due_at if status in ("open", "done") else None,
        "completed_at": task.completed_at,
    }


def daily_counts(recount: Recount, workspace_id: str | None, now: datetime) -> dict[DailyKey, DailyCounts]:
    """Follow-through per workspace, account, owner and day of the due time, as of ``now``
    (the read side's definition: open until due, then overdue; done on time or late)."""
    totals: dict[DailyKey, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for share_id, state in recount.in_workspace(workspace_id):
        if state.planned is None:
            continue
        for task in state.tasks:
            if task.cancelled or task.due_at is None:
                continue
            day = task.due_at.astimezone(UTC).date()
            counts = totals[(recount.workspace_of[share_id], str(state.planned.account_id), task.owner, day)]
            if task.completed_at is not None:
                counts[1 if task.completed_at <= task.due_at else 2] += 1
            else:
                counts[0 if now < task.due_at else 3] += 1
    return {key: (c[0], c[1], c[2], c[3]) for key, c in totals.items() if any(c)}
