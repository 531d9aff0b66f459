"""The shares read model as a pure fold, for rebuilds: events in, rows of
``rm_shares``, ``rm_response_tasks`` and ``rm_replies`` out, with the same effect as
the live projection's statements in ``sql/shares.sql`` and ``sql/replies.sql`` (a
test holds the two equal; the replies part is in ``replies_fold``).

The live projection runs one statement per event, which suits a few events a
second; a rebuild folds a window of events over the rows they touch in memory and
writes those rows back in bulk. Pure: no I/O; rows are dicts keyed by column name.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    ShareAttemptStarted,
    ShareCancelled,
    ShareFailed,
    ShareHeld,
    SharePlanned,
    ShareRescheduled,
    ShareSent,
)
from events.projections import replies_fold
from events.projections.replies_fold import REPLY_COLUMNS, REPLY_EVENTS, SHARE_REPLY_COLUMNS, reply_uuid
from events.records import RecordedEvent

Row = dict[str, Any]

SHARE_COLUMNS = (
    "share_id", "workspace_id", "account_id", "account_name", "channel", "text", "status", "scheduled_at",
    "planned_at", "sent_at", "lateness_ms", "attempts", "next_attempt_at", "last_error", "external_id", "url",
    "tasks_recorded", "sent_without_tasks", "replies_received", "version", "updated_at", "duplicate_posts",
    "duplicates_removed", *SHARE_REPLY_COLUMNS,
)
TASK_COLUMNS = (
    "task_id", "share_id", "workspace_id", "account_id", "account_name", "channel", "kind", "owner",
    "after_seconds", "due_at", "status", "completed_at", "completed_by", "recorded_at",
)


__all__ = ["REPLY_COLUMNS", "SHARE_COLUMNS", "TASK_COLUMNS", "Row", "SharesFold", "share_id_of"]


def share_id_of(stream_id: str) -> UUID:
    return UUID(stream_id.removeprefix("share-"))


class SharesFold:
    """Rows of the shares in flight. Give it the rows of a share that exist already
    (:meth:`add`) before :meth:`apply` folds that share's events over them, in log
    order; :meth:`pop` takes a share's rows out (its share row, tasks and replies)."""

    def __init__(self, shares: Iterable[Row] = (), tasks: Iterable[Row] = (), replies: Iterable[Row] = ()) -> None:
        self.shares: dict[UUID, Row] = {}
        self.tasks: dict[UUID, Row] = {}
        # Replies by (share, the network's reply id): their id derives from these two, so
        # an event finds its reply without deriving the id (a SHA-1 per event).
        self.replies: dict[tuple[UUID, str], Row] = {}
        self._tasks_of: dict[UUID, list[Row]] = {}
        self._replies_of: dict[UUID, list[Row]] = {}
        self._ids: dict[str, UUID] = {}
        self.add(shares, tasks, replies)

    def share_id(self, stream_id: str) -> UUID:
        """The share of a stream, parsed once per stream (``forget_ids`` bounds the memo)."""
        found = self._ids.get(stream_id)
        if found is None:
            found = self._ids[stream_id] = share_id_of(stream_id)
        return found

    def forget_ids(self) -> None:
        self._ids.clear()

    def add(self, shares: Iterable[Row], tasks: Iterable[Row], replies: Iterable[Row] = ()) -> None:
        """Rows that exist already (read back from the tables)."""
        for row in shares:
            self.shares[row["share_id"]] = row
        for row in tasks:
            self._add_task(row)
        for row in replies:
            self._add_reply(row)

    def _add_task(self, row: Row) -> None:
        self.tasks[row["task_id"]] = row
        self._tasks_of.setdefault(row["share_id"], []).append(row)

    def _add_reply(self, row: Row) -> None:
        self.replies[(row["share_id"], row["network_reply_id"])] = row
        self._replies_of.setdefault(row["share_id"], []).append(row)

    def pop(self, share_id: UUID) -> tuple[Row | None, list[Row], list[Row]]:
        """Take a share's row and its tasks' and replies' rows out of the fold."""
        tasks = self._tasks_of.pop(share_id, [])
        for task in tasks:
            del self.tasks[task["task_id"]]
        replies = self._replies_of.pop(share_id, [])
        for reply in replies:
            del self.replies[(share_id, reply["network_reply_id"])]
        return self.shares.pop(share_id, None), tasks, replies

    def apply(self, events: Iterable[RecordedEvent]) -> None:
        for recorded in events:
            self._apply_one(recorded)

    def _apply_one(self, r: RecordedEvent) -> None:
        share_id = self.share_id(r.stream_id)
        event = r.event
        if isinstance(event, SharePlanned):
            self.shares[share_id] = _planned(share_id, r, event)
            return
        share = self.shares.get(share_id)
        if isinstance(event, REPLY_EVENTS):
            self._reply_event(share_id, share, r)
            return
        if isinstance(event, ResponseTasksCancelled | ResponseTaskCompleted):
            self._task_event(event)
        elif isinstance(event, ShareSent):
            for task in self._tasks_of.get(share_id, ()):
                if task["status"] == "pending":
                    task["due_at"] = event.sent_at + timedelta(seconds=task["after_seconds"])
                    task["status"] = "open"
        if share is None:
            return  # the live statements update nothing for a share they do not hold
        share["version"], share["updated_at"] = r.stream_version, r.recorded_at
        if isinstance(event, ResponseTasksRecorded):
            share["tasks_recorded"] = True
            for step in event.tasks:
                self._task_recorded(share, step, r)
        elif isinstance(event, RepliesLooked):
            replies_fold.looked(share, event)
        else:
            _share_event(share, event)
            if isinstance(event, ResponseReceived):
                self._reply_received(share, event)

    def _reply_received(self, share: Row, event: ResponseReceived) -> None:
        if (share["share_id"], event.reply_id) not in self.replies:  # collected again: the live insert does nothing
            self._add_reply(replies_fold.received(share, reply_uuid(share["share_id"], event.reply_id), event))

    def _reply_event(self, share_id: UUID, share: Row | None, r: RecordedEvent) -> None:
        """An answer or dismissal: its reply's row (if held), and the share's answered
        count and version when the reply became answered; the share is not touched otherwise."""
        event = r.event
        assert isinstance(event, REPLY_EVENTS)
        reply = self.replies.get((share_id, event.reply_id))
        if reply is None or not replies_fold.reply_event(reply, event) or share is None:
            return
        share["replies_answered"] += 1
        share["version"], share["updated_at"] = r.stream_version, r.recorded_at

    def _task_event(self, event: ResponseTasksCancelled | ResponseTaskCompleted) -> None:
        if isinstance(event, ResponseTaskCompleted):
            task = self.tasks.get(event.task_id)
            if task is not None:
                task.update(status="done", completed_at=event.completed_at, completed_by=event.completed_by)
            return
        for task_id in event.task_ids:
            task = self.tasks.get(task_id)
            if task is not None and task["status"] in ("pending", "open"):
                task["status"] = "cancelled"

    def _task_recorded(self, share: Row, step: ResponseTask, r: RecordedEvent) -> None:
        task = self.tasks.get(step.task_id)
        if task is not None:
            # Recorded again (a post that landed after its share was given up): owed once more.
            task.update(status="pending", due_at=None, completed_at=None, completed_by=None, recorded_at=r.recorded_at)
            return
        self._add_task({
            "task_id": step.task_id, "share_id": share["share_id"], "workspace_id": share["workspace_id"],
            "account_id": share["account_id"], "account_name": share["account_name"], "channel": share["channel"],
            "kind": step.kind, "owner": step.owner, "after_seconds": step.after_seconds, "due_at": None,
            "status": "pending", "completed_at": None, "completed_by": None, "recorded_at": r.recorded_at,
        })


def _planned(share_id: UUID, r: RecordedEvent, event: SharePlanned) -> Row:
    return {
        "share_id": share_id, "workspace_id": r.workspace_id, "account_id": event.account_id,
        "account_name": event.account_name, "channel": event.channel, "text": event.text, "status": "planned",
        "scheduled_at": event.scheduled_at, "planned_at": r.recorded_at, "sent_at": None, "lateness_ms": None,
        "attempts": 0, "next_attempt_at": None, "last_error": None, "external_id": None, "url": None,
        "tasks_recorded": False, "sent_without_tasks": False, "replies_received": 0, "version": r.stream_version,
        "updated_at": r.recorded_at, "duplicate_posts": 0, "duplicates_removed": 0, **SHARE_REPLY_COLUMNS,
    }


def _share_event(share: Row, event: object) -> None:
    match event:
        case ShareRescheduled():
            share["scheduled_at"] = event.scheduled_at
            if share["status"] == "held":
                share["status"] = "planned"
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
