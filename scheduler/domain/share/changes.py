"""The share's changes after planning, as pure functions: cancel, reschedule, retry by
hand, complete a task, take in new replies; and the tasks' cancellation that a failed publish shares."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from events.catalogue import (
    ResponseReceived,
    ResponseTask,
    ResponseTaskCompleted,
    ResponseTasksCancelled,
    ResponseTasksRecorded,
    ShareCancelled,
    ShareRescheduled,
)
from events.records import NewEvent

from scheduler.domain.plans import tasks_for
from scheduler.domain.share.review import review_again
from scheduler.domain.share.state import IN_REVIEW, ShareState, new_event
from scheduler.errors import ConflictError, NotFoundError


def cancel_tasks(state: ShareState, reason: str) -> list[NewEvent]:
    open_ids = tuple(t.task_id for t in state.tasks if not t.cancelled and t.completed_at is None)
    if not open_ids or state.share_id is None:
        return []
    return [
        new_event(
            state.share_id, f"tasks-cancelled-{state.version}", ResponseTasksCancelled(task_ids=open_ids, reason=reason)
        )
    ]


def cancel(state: ShareState, *, reason: str) -> tuple[NewEvent, ...]:
    if state.share_id is None:
        raise NotFoundError("share", "?")
    if state.status == "cancelled":
        return ()
    if state.status in ("sent", "sending"):
        raise ConflictError(f"a share that is {state.status} cannot be cancelled")
    return (
        new_event(state.share_id, f"cancelled-{state.version}", ShareCancelled(reason=reason)),
        *cancel_tasks(state, "share was cancelled"),
    )


RESCHEDULABLE = ("planned", "held", "rejected", *IN_REVIEW)


def reschedule(state: ShareState, *, scheduled_at: datetime) -> tuple[NewEvent, ...]:
    """A new time; for a share that needs approval, a change that sends it back to review."""
    if state.share_id is None:
        raise NotFoundError("share", "?")
    if state.status not in RESCHEDULABLE:
        raise ConflictError(f"a share that is {state.status} cannot be rescheduled", field="scheduled_at")
    return (new_event(state.share_id, f"rescheduled-{state.version}", ShareRescheduled(scheduled_at=scheduled_at)),
            *review_again(state, "time"))


RETRYABLE_BY_HAND = ("failed", "abandoned")


def retry(state: ShareState, *, scheduled_at: datetime) -> tuple[NewEvent, ...]:
    """Plan a failed or abandoned share again (``ShareRescheduled``: it is planned again, for
    one more attempt). Its response tasks, cancelled when it was given up, are owed again. An
    earlier attempt whose outcome is unknown stays so: the next attempt looks for its post
    before it posts (``decisions.start_attempt``)."""
    if state.share_id is None or state.planned is None:
        raise NotFoundError("share", "?")
    if state.status not in RETRYABLE_BY_HAND:
        raise ConflictError(f"only a failed or abandoned share can be retried (this one is {state.status})")
    revived: tuple[NewEvent, ...] = ()
    if any(t.cancelled for t in state.tasks):
        revived = (new_event(state.share_id, f"tasks-revived-{state.version}",
                             ResponseTasksRecorded(tasks=tasks_for(state.share_id, state.planned.response_plan))),)
    return (new_event(state.share_id, f"retried-{state.version}", ShareRescheduled(scheduled_at=scheduled_at)),
            *revived)


def complete_task(
    state: ShareState,
    *,
    task_id: UUID,
    now: datetime,
    by: str,
    note: str = "",
    reply_external_id: str | None = None,
) -> tuple[NewEvent, ...]:
    task = state.task(task_id)
    if state.share_id is None or task is None:
        planned = state.planned
        if state.share_id is not None and planned is not None and any(
            t.task_id == task_id for t in tasks_for(state.share_id, planned.response_plan)
        ):
            if state.status in ("cancelled", "abandoned"):
                raise ConflictError(f"this response task cannot be done: its share is {state.status}")
            raise ConflictError(f"a response task can be completed only after its share is sent "
                                f"(the share is {state.status})")
        raise NotFoundError("response task", str(task_id))
    if task.completed_at is not None:
        return ()  # completing twice is the same as once
    if task.cancelled:
        raise ConflictError("this response task was cancelled with its share")
    if task.due_at is None:
        raise ConflictError("a response task can be completed only after its share is sent")
    return (
        new_event(
            state.share_id,
            f"task-completed-{task_id}",
            ResponseTaskCompleted(
                task_id=task_id, completed_at=now, completed_by=by, note=note, reply_external_id=reply_external_id
            ),
        ),
    )


def receive_replies(state: ShareState, replies: Sequence[ResponseReceived]) -> tuple[NewEvent, ...]:
    """New replies only, each with an id derived from the share and the reply's own id."""
    if state.share_id is None:
        return ()
    seen = set(state.replies)
    fresh = []
    for reply in replies:
        if reply.reply_id in seen:
            continue
        seen.add(reply.reply_id)
        fresh.append(new_event(state.share_id, f"reply-{reply.reply_id}", reply))
    return tuple(fresh)


def response_tasks(state: ShareState) -> tuple[ResponseTask, ...]:
    return tuple(
        ResponseTask(task_id=t.task_id, kind=t.kind, after_seconds=t.after_seconds, owner=t.owner,
                     clock="business" if t.clock == "business" else "wall") for t in state.tasks
    )
