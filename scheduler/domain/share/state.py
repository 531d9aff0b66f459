"""A share's state: its stream's history folded, one event at a time.

planned (in review -> approved | rejected, where the account requires approval)
-> (rescheduled | cancelled)* -> attempt started (+ response tasks)
-> sent | failed -> retry ... -> sent | abandoned. Then replies and completed tasks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from events.catalogue import (
    DuplicatePosted,
    DuplicateRemoved,
    Event,
    RepliesLooked,
    ReplyAnswerAttemptStarted,
    ReplyAnswered,
    ReplyAnswerFailed,
    ReplyAnswerRequested,
    ReplyAssigned,
    ReplyDismissed,
    ResponseReceived,
    ResponseTaskCompleted,
    ResponseTasksCancelled,
    ResponseTasksRecorded,
    ShareAbandoned,
    ShareApproved,
    ShareAttemptStarted,
    ShareCancelled,
    ShareFailed,
    ShareHeld,
    SharePartSent,
    SharePlanned,
    ShareRejected,
    ShareRescheduled,
    ShareReviewOverdue,
    ShareReviewRequested,
    ShareSent,
)
from events.ids import share_uuid
from events.records import NewEvent

from scheduler.domain.frozen import replacer
from scheduler.domain.share.thread import ThreadState, evolve_thread

Status = Literal["in_review", "review_overdue", "rejected", "planned", "sending", "sent", "failed", "held", "abandoned",
                 "cancelled"]
# Approval (a share planned on an account that requires it): "none" where it is not required.
Review = Literal["none", "pending", "approved", "rejected"]
# The statuses of a share waiting for a review: it may not be published.
IN_REVIEW: tuple[Status, ...] = ("in_review", "review_overdue")
TaskStatus = Literal["pending", "open", "overdue", "done", "cancelled"]


def event_id(share_id: UUID, name: str) -> UUID:
    """Deterministic event ids: a retried append of the same decision is a no-op."""
    return share_uuid(share_id, name)


def new_event(share_id: UUID, name: str, event: Event) -> NewEvent:
    """``event`` with the deterministic id of decision ``name`` on this share."""
    return NewEvent(event=event, event_id=event_id(share_id, name))


# Not slotted: copied through its dict (``frozen.replacer``).
@dataclass(frozen=True)
class TaskState:
    task_id: UUID
    kind: str
    owner: str
    after_seconds: int
    due_at: datetime | None = None
    clock: str = "wall"
    completed_at: datetime | None = None
    cancelled: bool = False

    def status(self, now: datetime) -> TaskStatus:
        if self.cancelled:
            return "cancelled"
        if self.completed_at is not None:
            return "done"
        if self.due_at is None:
            return "pending"
        return "open" if now < self.due_at else "overdue"


# Not slotted: copied through its dict (``frozen.replacer``).
@dataclass(frozen=True)
class ShareState:
    share_id: UUID | None = None
    version: int = 0
    planned: SharePlanned | None = None
    status: Status = "planned"
    scheduled_at: datetime | None = None
    attempts: int = 0
    attempt_started_at: datetime | None = None
    outcome_unknown: bool = False
    tasks_recorded: bool = False
    tasks: tuple[TaskState, ...] = ()
    sent: ShareSent | None = None
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    retryable: bool = True
    replies: tuple[str, ...] = field(default=())
    # Extra posts of a share already sent (external ids), and those deleted again.
    duplicates: tuple[str, ...] = ()
    duplicates_removed: tuple[str, ...] = ()
    # The replies under the post, their answers and the looks for them.
    thread: ThreadState = field(default_factory=ThreadState)
    # A thread's posts that are out, by part (recorded in order: part k only after k - 1).
    parts_sent: tuple[SharePartSent, ...] = ()
    review: Review = "none"
    # The last approval or rejection (who, when, why), None while none was given.
    reviewed: ShareApproved | ShareRejected | None = None

    @property
    def exists(self) -> bool:
        return self.planned is not None

    def task(self, task_id: UUID) -> TaskState | None:
        return next((t for t in self.tasks if t.task_id == task_id), None)


# The fold copies a state several times a share: through its dict (``frozen.replacer``).
_with = replacer(ShareState)
_task_with = replacer(TaskState)


def tasks_at_send(tasks: tuple[TaskState, ...], sent_at: datetime,
                  business_due_at: Mapping[UUID, datetime] | None) -> tuple[TaskState, ...]:
    """The tasks once the post is out: each due its time after the send, on the wall clock, or
    at its due time on its owner's business clock (``ShareSent.business_due_at``)."""
    business = business_due_at or {}
    return tuple(_task_with(t, due_at=business.get(t.task_id) or sent_at + timedelta(seconds=t.after_seconds))
                 for t in tasks)


def evolve(state: ShareState, event: Event) -> ShareState:
    """Apply one event. Replaying any prefix then the rest equals replaying all."""
    version = state.version + 1
    match event:
        case SharePlanned():
            required = event.approval_required
            return _with(state, share_id=event.share_id, version=version, planned=event,
                         status="in_review" if required else "planned", review="pending" if required else "none",
                         scheduled_at=event.scheduled_at)
        case ShareRescheduled():
            # A person who reschedules a share held for an unknown outcome has looked and
            # found no post: the next attempt publishes without looking again. A failed or
            # abandoned share retried by hand is planned again; an unknown outcome stays
            # unknown (its next attempt looks first).
            # A share past due in review, moved to a new time, is in review for that time.
            held = state.status == "held"
            again = held or state.status in ("failed", "abandoned")
            status = "planned" if again else "in_review" if state.status == "review_overdue" else state.status
            return _with(state, version=version, scheduled_at=event.scheduled_at, status=status,
                         retryable=True if again else state.retryable,
                         next_attempt_at=None if again else state.next_attempt_at,
                         outcome_unknown=False if held else state.outcome_unknown)
        case ShareCancelled():
            return _with(state, version=version, status="cancelled", next_attempt_at=None)
        case ShareAttemptStarted():
            return _with(
                state, version=version, status="sending", attempts=event.attempt,
                attempt_started_at=event.started_at, next_attempt_at=None,
                # An attempt that never reported back may have posted: remember it until
                # a post is found or sent (a later failure does not clear the doubt).
                outcome_unknown=state.outcome_unknown or state.status == "sending",
            )
        case ShareSent():
            return _with(state, version=version, status="sent", sent=event,
                         tasks=tasks_at_send(state.tasks, event.sent_at, event.business_due_at),
                         outcome_unknown=False, next_attempt_at=None, last_error=None)
        case ShareFailed():
            return _with(
                state, version=version, status="failed", last_error=event.reason,
                outcome_unknown=state.outcome_unknown or event.outcome_unknown,
                next_attempt_at=event.next_attempt_at,
                retryable=event.retryable and event.next_attempt_at is not None,
            )
        case SharePartSent():
            if any(p.part == event.part for p in state.parts_sent):
                return _with(state, version=version)
            # Every part up to this one is known to be out: an earlier doubt is settled.
            return _with(state, version=version, parts_sent=(*state.parts_sent, event), outcome_unknown=False)
        case ShareHeld():
            return _with(state, version=version, status="held", last_error=event.reason)
        case ShareAbandoned():
            return _with(state, version=version, status="abandoned", next_attempt_at=None, last_error=event.reason,
                         retryable=False)
    return _with(_evolve_review(_evolve_follow_through(state, event), event), version=version)


def _evolve_review(state: ShareState, event: Event) -> ShareState:
    """Approval: approved, rejected, past due in review, in review again after a change."""
    match event:
        case ShareApproved():
            return _with(state, review="approved", reviewed=event,
                         status="planned" if state.status in (*IN_REVIEW, "rejected") else state.status)
        case ShareRejected():
            return _with(state, review="rejected", reviewed=event, status="rejected")
        case ShareReviewOverdue():
            return _with(state, status="review_overdue" if state.status == "in_review" else state.status)
        case ShareReviewRequested():
            return _with(state, review="pending",
                         status="in_review" if state.status in ("planned", "rejected", *IN_REVIEW) else state.status)
    return state


def _evolve_follow_through(state: ShareState, event: Event) -> ShareState:
    """The events after the post: its tasks and its replies (the version is set by ``evolve``)."""
    match event:
        case ResponseTasksRecorded():
            tasks = tuple(
                TaskState(task_id=t.task_id, kind=t.kind, owner=t.owner, after_seconds=t.after_seconds, clock=t.clock)
                for t in event.tasks
            )
            return _with(state, tasks_recorded=True, tasks=tasks)
        case ResponseTasksCancelled():
            gone = set(event.task_ids)
            return _with(state, tasks=tuple(_task_with(t, cancelled=True) if t.task_id in gone else t
                                            for t in state.tasks))
        case ResponseTaskCompleted():
            return _with(state, tasks=tuple(_task_with(t, completed_at=event.completed_at)
                                            if t.task_id == event.task_id else t for t in state.tasks))
        case ResponseReceived():
            if event.reply_id in state.replies:
                return state
            return _with(state, replies=(*state.replies, event.reply_id), thread=evolve_thread(state.thread, event))
        case (RepliesLooked() | ReplyAnswerRequested() | ReplyAnswerAttemptStarted() | ReplyAnswered()
              | ReplyAnswerFailed() | ReplyDismissed() | ReplyAssigned()):
            return _with(state, thread=evolve_thread(state.thread, event))
        case DuplicatePosted():
            return _with(state, duplicates=(*state.duplicates, event.external_id))
        case DuplicateRemoved():
            return _with(state, duplicates_removed=(*state.duplicates_removed, event.external_id))
    return state


# The state before a stream's first event: immutable, so shared by every fold.
EMPTY = ShareState()


def fold(events: Iterable[Event], state: ShareState | None = None) -> ShareState:
    current = state or EMPTY
    for event in events:
        current = evolve(current, event)
    return current


def folded_at(events: Iterable[Event], state: ShareState, version: int) -> ShareState:
    """``state`` with ``events`` applied, at ``version``: the stream once they are appended
    (an append can land at a version past the events' count: an idempotent retry's)."""
    return _with(fold(events, state), version=version)
