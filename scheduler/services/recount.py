"""The audit's recount: every share, task and follow-through figure derived from the log
alone, by its own minimal counting over the stored JSON, never by the projections' code.

Why not the domain's fold over decoded events: decoding one event into its pydantic
model costs ~50 µs here, 25 s for the 550,000 events of 100,000 shares; reading the few
fields the figures need with orjson costs a few µs. The fields read exist in every
stored schema version of their types (``SharePlanned`` v1 differs only in its plan).

Fed every stored event of the share streams in log order (the order the projections
apply them in), whatever its type: plans, attempts, tasks, sends, duplicates, looks,
replies, answers, dismissals and any type added later. It keeps a tally per share (the
thread's in ``recount_replies``) and checks the invariant as the log stands: a
``ShareSent`` whose share had no ``ResponseTasksRecorded`` earlier in the log is a
violation (as is a thread's ``SharePartSent`` before them), as is a ``ShareSent`` of a share
whose account required approval without a standing ``ShareApproved`` before it (never
published without approval), and a stream version out of step (checked over every event of
the stream). A type it does not read still counts and steps the version. Pure: no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from events.ids import STREAM_PREFIX
from scheduler.services.recount_replies import THREAD_SHARE_FIELDS, THREAD_TYPES, ThreadTally

# (workspace, account id, owner, day of the due time in UTC)
DailyKey = tuple[str, str, str, date | None]
# open, done on time, done late, overdue
DailyCounts = tuple[int, int, int, int]
# (position, stream id, stream version, type, workspace id, data as JSON text)
StoredEvent = tuple[int, str, int, str, str, str]

SENT_FIELDS = ("sent_at", "lateness_ms", "url", "external_id")
STATUS_OF = {"ShareCancelled": "cancelled", "ShareHeld": "held", "ShareAbandoned": "abandoned",
             "ShareFailed": "failed"}
# The types whose stored fields the recount reads; the rest (an answer asked for, its
# attempts and failures, any type added later) are counted without parsing their JSON.
# Approval's events: a share needing it is in review until approved (status and review).
REVIEW_TYPES = frozenset(("ShareApproved", "ShareRejected", "ShareReviewOverdue", "ShareReviewRequested"))
IN_REVIEW = ("in_review", "review_overdue")
SHARE_TYPES = frozenset((
    "SharePlanned", "ShareRescheduled", "ShareAttemptStarted", "ResponseTasksRecorded", "ShareSent",
    "ResponseTasksCancelled", "ResponseTaskCompleted", "ResponseReceived", "DuplicatePosted", "DuplicateRemoved",
    *STATUS_OF, *REVIEW_TYPES,
))
READ_TYPES = SHARE_TYPES | THREAD_TYPES


@dataclass(frozen=True, slots=True)
class Violation:
    """The log itself breaks a rule: no projection can be right about it."""

    workspace_id: str
    share_id: str
    rule: str
    position: int


@dataclass(slots=True)
class TaskTally:
    kind: str
    owner: str
    after_seconds: int
    due_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled: bool = False
    business: bool = False  # its due time worked out on the business clock at the send

    @property
    def stored_status(self) -> str:
        """As ``rm_response_tasks`` stores it (overdue is open past its due time)."""
        if self.completed_at is not None:
            return "done"
        if self.cancelled:
            return "cancelled"
        return "pending" if self.due_at is None else "open"


@dataclass(slots=True)
class ShareTally:
    workspace_id: str
    account_id: str = ""
    status: str = "planned"
    scheduled_at: datetime | None = None
    attempts: int = 0
    sent: dict[str, Any] | None = None
    tasks_recorded: bool = False
    sent_without_tasks: bool = False
    replies: int = 0
    duplicates: int = 0
    duplicates_removed: int = 0
    version: int = 0
    planned: bool = False
    approval_required: bool = False
    approved: bool = False  # an approval stands (not undone by a rejection or a change since)
    tasks: dict[str, TaskTally] = field(default_factory=dict)
    thread: ThreadTally = field(default_factory=ThreadTally)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(slots=True)
class Recount:
    shares: dict[str, ShareTally] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    events: int = 0

    def add(self, stored: StoredEvent) -> None:
        position, stream_id, version, type_name, workspace_id, data_text = stored
        if not stream_id.startswith(STREAM_PREFIX):
            return
        share_id = stream_id.removeprefix(STREAM_PREFIX)
        share = self.shares.get(share_id)
        if share is None:
            share = self.shares[share_id] = ShareTally(workspace_id)
        self.events += 1
        if version != share.version + 1:
            self._violate(share, share_id, position, f"version {version} after {share.version}")
        share.version = version
        if type_name == "SharePartSent" and not share.tasks_recorded:
            # A thread's first part goes out before its ShareSent: the guard holds for it too.
            self._violate(share, share_id, position, "SharePartSent without ResponseTasksRecorded before it")
        if type_name not in READ_TYPES:
            return
        data = orjson.loads(data_text)
        if type_name == "ShareSent" and not share.tasks_recorded:
            share.sent_without_tasks = True
            self._violate(share, share_id, position, "ShareSent without ResponseTasksRecorded before it")
        if type_name == "ShareSent" and share.approval_required and not share.approved:
            self._violate(share, share_id, position, "ShareSent without an approval before it (its account "
                                                     "required one)")
        if type_name in THREAD_TYPES:
            share.thread.apply(type_name, data)
        if type_name in SHARE_TYPES:
            _apply(share, type_name, data)

    def add_all(self, events: Iterable[StoredEvent]) -> None:
        for stored in events:
            self.add(stored)

    def _violate(self, share: ShareTally, share_id: str, position: int, rule: str) -> None:
        self.violations.append(Violation(share.workspace_id, share_id, rule, position))

    def in_workspace(self, workspace_id: str | None) -> Iterable[tuple[str, ShareTally]]:
        for share_id, share in self.shares.items():
            if workspace_id is None or share.workspace_id == workspace_id:
                yield share_id, share


def _apply(share: ShareTally, type_name: str, data: dict[str, Any]) -> None:
    if type_name == "SharePlanned":
        share.planned, share.account_id, share.scheduled_at = True, data["account_id"], _at(data["scheduled_at"])
        share.approval_required = bool(data.get("approval_required"))
        share.status = "in_review" if share.approval_required else "planned"
    elif type_name == "ShareRescheduled":
        share.scheduled_at = _at(data["scheduled_at"])
        if share.status in ("held", "failed", "abandoned"):  # planned again (a retry by hand)
            share.status = "planned"
        elif share.status == "review_overdue":
            share.status = "in_review"
    elif type_name in REVIEW_TYPES:
        _review(share, type_name)
    elif type_name in STATUS_OF:
        share.status = STATUS_OF[type_name]
    elif type_name == "ShareAttemptStarted":
        share.status, share.attempts = "sending", data["attempt"]
    elif type_name == "ResponseTasksRecorded":
        share.tasks_recorded = True
        for task in data["tasks"]:
            share.tasks[task["task_id"]] = TaskTally(task["kind"], task["owner"], task["after_seconds"])
    elif type_name == "ShareSent":
        sent_at = _at(data["sent_at"])
        share.status, share.attempts = "sent", data["attempt"]
        share.sent = {"sent_at": sent_at, **{k: data.get(k) for k in SENT_FIELDS[1:]}}
        business = data.get("business_due_at") or {}  # due times on the business clock, worked out at the send
        for task_id, task in share.tasks.items():
            if task.stored_status == "pending":
                task.business = task_id in business
                task.due_at = _at(business[task_id]) if task.business else sent_at + timedelta(
                    seconds=task.after_seconds)
    elif type_name == "ResponseTasksCancelled":
        for task_id in data["task_ids"]:
            if task_id in share.tasks:
                share.tasks[task_id].cancelled = True
    elif type_name == "ResponseTaskCompleted":
        if data["task_id"] in share.tasks:
            share.tasks[data["task_id"]].completed_at = _at(data["completed_at"])
    elif type_name == "ResponseReceived":
        share.replies += 1
    elif type_name == "DuplicatePosted":
        share.duplicates += 1
    elif type_name == "DuplicateRemoved":
        share.duplicates_removed += 1


def _review(share: ShareTally, type_name: str) -> None:
    if type_name == "ShareApproved":
        share.approved = True
        if share.status in (*IN_REVIEW, "rejected"):
            share.status = "planned"
    elif type_name == "ShareRejected":
        share.approved, share.status = False, "rejected"
    elif type_name == "ShareReviewOverdue":
        if share.status == "in_review":
            share.status = "review_overdue"
    elif share.status in ("planned", "rejected", *IN_REVIEW):  # ShareReviewRequested: a change
        share.approved, share.status = False, "in_review"
    else:
        share.approved = False


# The columns the audit checks, in the order ``audit.sql`` selects them.
SHARE_FIELDS = ("status", "account_id", "scheduled_at", "attempts", *SENT_FIELDS, "tasks_recorded",
                "sent_without_tasks", "replies_received", "duplicate_posts", "duplicates_removed",
                *THREAD_SHARE_FIELDS)
TASK_FIELDS = ("share_id", "status", "kind", "owner", "due_at", "completed_at")


def share_row(share: ShareTally) -> tuple[Any, ...]:
    """A share as ``rm_shares`` should hold it (``SHARE_FIELDS``)."""
    sent = share.sent or {}
    return (share.status, share.account_id, share.scheduled_at, share.attempts,
            *(sent.get(name) for name in SENT_FIELDS), share.tasks_recorded, share.sent_without_tasks,
            share.replies, share.duplicates, share.duplicates_removed, *share.thread.share_columns())


def task_row(share_id: str, task: TaskTally) -> tuple[Any, ...]:
    """A task as ``rm_response_tasks`` should hold it (``TASK_FIELDS``)."""
    return (share_id, task.stored_status, task.kind, task.owner, task.due_at, task.completed_at)


def daily_counts(recount: Recount, workspace_id: str | None, now: datetime) -> dict[DailyKey, DailyCounts]:
    """Follow-through per workspace, account, owner and day of the due time, as of ``now``
    (open until due, then overdue; done on time or late; cancelled counts nowhere)."""
    totals: dict[DailyKey, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for _, share in recount.in_workspace(workspace_id):
        for task in share.tasks.values():
            status = task.stored_status
            if status not in ("open", "done") or task.due_at is None:
                continue
            counts = totals[(share.workspace_id, share.account_id, task.owner, task.due_at.astimezone(UTC).date())]
            if task.completed_at is not None:
                counts[1 if task.completed_at <= task.due_at else 2] += 1
            else:
                counts[0 if now < task.due_at else 3] += 1
    return {key: (c[0], c[1], c[2], c[3]) for key, c in totals.items() if any(c)}


def recounted_rate(counts: DailyCounts) -> float | None:
    """The follow-through rate of recounted figures, computed here on purpose (the audit's
    own path): every reader calls the database's ``followthrough_rate``, which the audit
    checks against this."""
    _, on_time, late, overdue = counts
    settled = on_time + late + overdue
    return None if settled == 0 else on_time / settled
