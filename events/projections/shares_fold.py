"""The shares read model as a pure fold: events in, rows of ``rm_shares``,
``rm_response_tasks`` and ``rm_replies`` out (the replies part is in ``replies_fold``).
The one model of these tables: the live projector and the rebuild both seed it with the
rows the events touch, fold the events over them and write the rows back in bulk, so
the two agree by construction. Pure: no I/O; rows are dicts keyed by column name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any
from uuid import UUID

from events.catalogue import (
    DuplicatePosted,
    DuplicateRemoved,
    RepliesLooked,
    ResponseReceived,
    ResponseTask,
    ResponseTaskCompleted,
    ResponseTasksCancelled,
    ResponseTasksRecorded,
    ShareAbandoned,
    ShareApproved,
    ShareAttemptStarted,
    ShareCancelled,
    ShareFailed,
    ShareHeld,
    SharePlanned,
    ShareRejected,
    ShareRescheduled,
    ShareReviewOverdue,
    ShareReviewRequested,
    ShareSent,
)
from events.ids import reply_uuid, share_id_of
from events.projections import replies_fold
from events.projections.replies_fold import REPLY_COLUMNS, REPLY_EVENTS, SHARE_REPLY_COLUMNS
from events.records import RecordedEvent

Row = dict[str, Any]

SHARE_COLUMNS = (
    "share_id", "workspace_id", "account_id", "account_name", "channel", "text", "status", "scheduled_at",
    "planned_at", "sent_at", "lateness_ms", "attempts", "next_attempt_at", "last_error", "external_id", "url",
    "tasks_recorded", "sent_without_tasks", "replies_received", "version", "updated_at", "duplicate_posts",
    "duplicates_removed", "post_id", *SHARE_REPLY_COLUMNS,
)
TASK_COLUMNS = (
    "task_id", "share_id", "workspace_id", "account_id", "account_name", "channel", "kind", "owner",
    "after_seconds", "due_at", "status", "completed_at", "completed_by", "recorded_at",
)


__all__ = ["READS_REPLIES", "READS_TASKS", "REPLY_COLUMNS", "SHARE_COLUMNS", "TASK_COLUMNS", "Row", "SharesFold"]

# The event types whose handlers below read or write a share's task rows, and its reply
# rows; every other type reads and writes the share's row alone. The live projector reads
# back only the rows its batch's events need (a look at the thread, the commonest event
# after the plan, needs the share's row only).
READS_TASKS: frozenset[type] = frozenset({ResponseTasksRecorded, ShareSent, ResponseTaskCompleted,
                                          ResponseTasksCancelled})
READS_REPLIES: frozenset[type] = frozenset({ResponseReceived, *REPLY_EVENTS})


class SharesFold:
    """Rows of the shares in flight, keyed by their stream. Give it the rows of a share
    that exist already (:meth:`add`) before :meth:`apply` folds that share's events over
    them, in log order; :meth:`pop` takes a share's rows out (its share row, tasks and
    replies).

    Keyed by stream id and task id's integer, not by ``UUID``: a ``UUID``'s hash and
    equality are Python methods, called on every lookup (profiled: a quarter of the
    fold's time went to ``UUID``), while a ``str`` or ``int`` hashes in C; a share's id
    is parsed once, when it is planned.
    """

    def __init__(self) -> None:
        self.shares: dict[str, Row] = {}
        self.tasks: dict[int, Row] = {}
        # Replies by (stream, the network's reply id): their id derives from these two, so
        # an event finds its reply without deriving the id (a SHA-1 per event).
        self.replies: dict[tuple[str, str], Row] = {}
        self._tasks_of: dict[str, list[Row]] = {}
        self._replies_of: dict[str, list[Row]] = {}
        # Per stream, the task rows and the reply rows (by ``id``) that a handler made or
        # changed since they were added: a share's other rows are as they were read back, so
        # the live projector compares only these with what it read (a share with many
        # replies is touched by every look, and its replies almost never change).
        self._changed_of: dict[str, tuple[dict[int, Row], dict[int, Row]]] = {}
        # One handler per event type: a dictionary lookup instead of a chain of isinstance.
        self._handlers: dict[type, Callable[[RecordedEvent, Row | None], None]] = {
            SharePlanned: self._planned,
            ResponseTasksRecorded: self._tasks_recorded,
            ShareSent: self._sent,
            ResponseTaskCompleted: self._task_completed,
            ResponseTasksCancelled: self._tasks_cancelled,
            ResponseReceived: self._reply_received,
            RepliesLooked: self._looked,
            **dict.fromkeys(REPLY_EVENTS, self._reply_event),
        }

    def add(self, stream_id: str, share: Row | None, tasks: Iterable[Row], replies: Iterable[Row] = ()) -> None:
        """A share's rows that exist already (read back from the tables)."""
        if share is not None:
            self.shares[stream_id] = share
        for row in tasks:
            self._add_task(stream_id, row)
        for row in replies:
            self._add_reply(stream_id, row)

    def _add_task(self, stream_id: str, row: Row) -> None:
        self.tasks[row["task_id"].int] = row
        self._tasks_of.setdefault(stream_id, []).append(row)

    def _add_reply(self, stream_id: str, row: Row) -> None:
        self.replies[(stream_id, row["network_reply_id"])] = row
        self._replies_of.setdefault(stream_id, []).append(row)

    def pop(self, stream_id: str) -> tuple[Row | None, list[Row], list[Row]]:
        """Take a share's row and its tasks' and replies' rows out of the fold."""
        tasks = self._tasks_of.pop(stream_id, [])
        for task in tasks:
            del self.tasks[task["task_id"].int]
        replies = self._replies_of.pop(stream_id, [])
        for reply in replies:
            del self.replies[(stream_id, reply["network_reply_id"])]
        self._changed_of.pop(stream_id, None)
        return self.shares.pop(stream_id, None), tasks, replies

    def pop_changed(self, stream_id: str) -> tuple[tuple[Row | None, list[Row], list[Row]], list[Row], list[Row]]:
        """:meth:`pop`, with the task rows and the reply rows made or changed since they
        were added."""
        tasks, replies = self._changed_of.get(stream_id, ({}, {}))
        return self.pop(stream_id), list(tasks.values()), list(replies.values())

    def _changed(self, stream_id: str, index: int, row: Row) -> None:
        changed = self._changed_of.get(stream_id)
        if changed is None:
            changed = self._changed_of[stream_id] = ({}, {})
        changed[index][id(row)] = row

    def apply(self, events: Iterable[RecordedEvent]) -> None:
        handlers, shares, other = self._handlers, self.shares, self._other
        for r in events:
            handlers.get(type(r.event), other)(r, shares.get(r.stream_id))

    # --- one handler per event type (``share``: the stream's share row, if held) ---------

    def _planned(self, r: RecordedEvent, share: Row | None) -> None:
        event = r.event
        assert isinstance(event, SharePlanned)
        self.shares[r.stream_id] = _planned(share_id_of(r.stream_id), r, event)

    def _other(self, r: RecordedEvent, share: Row | None) -> None:
        if share is not None:  # an event of a share never planned changes nothing
            share["version"], share["updated_at"] = r.stream_version, r.recorded_at
            _share_event(share, r.event)

    def _tasks_recorded(self, r: RecordedEvent, share: Row | None) -> None:
        if share is None:
            return
        event = r.event
        assert isinstance(event, ResponseTasksRecorded)
        share["version"], share["updated_at"] = r.stream_version, r.recorded_at
        share["tasks_recorded"] = True
        for step in event.tasks:
            self._task_recorded(r.stream_id, share, step, r)

    def _sent(self, r: RecordedEvent, share: Row | None) -> None:
        event = r.event
        assert isinstance(event, ShareSent)
        business = event.business_due_at or {}
        for task in self._tasks_of.get(r.stream_id, ()):
            if task["status"] == "pending":
                task["due_at"] = business.get(task["task_id"]) or event.sent_at + timedelta(
                    seconds=task["after_seconds"])
                task["status"] = "open"
                self._changed(r.stream_id, 0, task)
        self._other(r, share)

    def _task_completed(self, r: RecordedEvent, share: Row | None) -> None:
        event = r.event
        assert isinstance(event, ResponseTaskCompleted)
        task = self.tasks.get(event.task_id.int)
        if task is not None:
            task.update(status="done", completed_at=event.completed_at, completed_by=event.completed_by)
            self._changed(r.stream_id, 0, task)
        if share is not None:
            share["version"], share["updated_at"] = r.stream_version, r.recorded_at

    def _tasks_cancelled(self, r: RecordedEvent, share: Row | None) -> None:
        event = r.event
        assert isinstance(event, ResponseTasksCancelled)
        for task_id in event.task_ids:
            task = self.tasks.get(task_id.int)
            if task is not None and task["status"] in ("pending", "open"):
                task["status"] = "cancelled"
                self._changed(r.stream_id, 0, task)
        if share is not None:
            share["version"], share["updated_at"] = r.stream_version, r.recorded_at

    def _looked(self, r: RecordedEvent, share: Row | None) -> None:
        if share is not None:
            event = r.event
            assert isinstance(event, RepliesLooked)
            share["version"], share["updated_at"] = r.stream_version, r.recorded_at
            replies_fold.looked(share, event)

    def _reply_received(self, r: RecordedEvent, share: Row | None) -> None:
        if share is None:
            return
        event = r.event
        assert isinstance(event, ResponseReceived)
        share["version"], share["updated_at"] = r.stream_version, r.recorded_at
        share["replies_received"] += 1
        if (r.stream_id, event.reply_id) not in self.replies:  # collected again: the row stays as it is
            row = replies_fold.received(share, reply_uuid(share["share_id"], event.reply_id), event)
            self._add_reply(r.stream_id, row)
            self._changed(r.stream_id, 1, row)

    def _reply_event(self, r: RecordedEvent, share: Row | None) -> None:
        """An answer or dismissal: its reply's row (if held), and the share's answered
        count and version when the reply became answered; the share is not touched otherwise."""
        event = r.event
        assert isinstance(event, REPLY_EVENTS)
        reply = self.replies.get((r.stream_id, event.reply_id))
        if reply is None:
            return
        self._changed(r.stream_id, 1, reply)
        if not replies_fold.reply_event(reply, event) or share is None:
            return
        share["replies_answered"] += 1
        share["version"], share["updated_at"] = r.stream_version, r.recorded_at

    def _task_recorded(self, stream_id: str, share: Row, step: ResponseTask, r: RecordedEvent) -> None:
        task = self.tasks.get(step.task_id.int)
        if task is not None:
            # Recorded again (a post that landed after its share was given up): owed once more.
            task.update(status="pending", due_at=None, completed_at=None, completed_by=None, recorded_at=r.recorded_at)
            self._changed(stream_id, 0, task)
            return
        task = {
            "task_id": step.task_id, "share_id": share["share_id"], "workspace_id": share["workspace_id"],
            "account_id": share["account_id"], "account_name": share["account_name"], "channel": share["channel"],
            "kind": step.kind, "owner": step.owner, "after_seconds": step.after_seconds, "due_at": None,
            "status": "pending", "completed_at": None, "completed_by": None, "recorded_at": r.recorded_at,
        }
        self._add_task(stream_id, task)
        self._changed(stream_id, 0, task)


def _planned(share_id: UUID, r: RecordedEvent, event: SharePlanned) -> Row:
    return {
        "share_id": share_id, "workspace_id": r.workspace_id, "account_id": event.account_id,
        "account_name": event.account_name, "channel": event.channel, "text": event.text,
        "status": "in_review" if event.approval_required else "planned",
        "scheduled_at": event.scheduled_at, "planned_at": r.recorded_at, "sent_at": None, "lateness_ms": None,
        "attempts": 0, "next_attempt_at": None, "last_error": None, "external_id": None, "url": None,
        "tasks_recorded": False, "sent_without_tasks": False, "replies_received": 0, "version": r.stream_version,
        "updated_at": r.recorded_at, "duplicate_posts": 0, "duplicates_removed": 0, "post_id": event.post_id,
        **SHARE_REPLY_COLUMNS,
    }


def _share_event(share: Row, event: object) -> None:
    match event:
        case ShareRescheduled():
            share["scheduled_at"] = event.scheduled_at
            if share["status"] in ("held", "failed", "abandoned"):  # planned again (a retry by hand)
                share["status"] = "planned"
                share["next_attempt_at"] = None
            elif share["status"] == "review_overdue":  # in review for its new time
                share["status"] = "in_review"
        # Approval, as the share's fold (scheduler.domain.share.state) has it.
        case ShareApproved():
            if share["status"] in ("in_review", "review_overdue", "rejected"):
                share["status"] = "planned"
        case ShareRejected():
            share["status"] = "rejected"
        case ShareReviewOverdue():
            if share["status"] == "in_review":
                share["status"] = "review_overdue"
        case ShareReviewRequested():
            if share["status"] in ("planned", "rejected", "in_review", "review_overdue"):
                share["status"] = "in_review"
        case ShareCancelled():
            _settle(share, "cancelled", None)
        case ShareHeld():
            _settle(share, "held", event.reason)
        case ShareAbandoned():
            _settle(share, "abandoned", event.reason)
        case ShareAttemptStarted():
            share.update(status="sending", attempts=event.attempt, next_attempt_at=None)
        case ShareSent():
            share.update(
                status="sent", sent_at=event.sent_at, lateness_ms=event.lateness_ms, url=event.url,
                external_id=event.external_id, attempts=event.attempt, next_attempt_at=None, last_error=None,
                sent_without_tasks=not share["tasks_recorded"],
            )
        case ShareFailed():
            share.update(status="failed", last_error=event.reason, next_attempt_at=event.next_attempt_at)
        case ResponseReceived():
            share["replies_received"] += 1
        case DuplicatePosted():
            share["duplicate_posts"] += 1
        case DuplicateRemoved():
            share["duplicates_removed"] += 1


def _settle(share: Row, status: str, error: str | None) -> None:
    share["status"], share["next_attempt_at"] = status, None
    if error is not None:
        share["last_error"] = error
