"""JSON views of shares and tasks as the API returns them (and idempotent replays store)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from events.catalogue import ShareApproved, SharedMedia, ShareRejected
from events.records import RecordedEvent
from scheduler.domain import share as lifecycle
from scheduler.domain.calendars import Calendar
from scheduler.domain.plans import tasks_for
from scheduler.domain.share import ShareState, TaskState
from scheduler.domain.sla import AT_RISK, sla_state

_DURATION = TypeAdapter(timedelta)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def duration(seconds: int) -> str:
    return str(_DURATION.dump_python(timedelta(seconds=seconds), mode="json"))


# The calendar a business task's due time was worked out in, by owner (as it stood at the send).
CalendarOf = Callable[[str], Calendar | None]


def task_view(task: TaskState, share_id: Any, now: datetime, *, started_at: datetime | None = None,
              at_risk: float = AT_RISK, calendar: Calendar | None = None) -> dict[str, Any]:
    status = task.status(now)
    return {
        "id": str(task.task_id),
        "share_id": str(share_id),
        "kind": task.kind,
        "after": duration(task.after_seconds),
        "owner": task.owner,
        "clock": task.clock,
        "due_at": iso(task.due_at),
        "status": status,
        "completed_at": iso(task.completed_at),
        "sla": sla_state(started_at, task.due_at, now, at_risk, calendar) if status in ("open", "overdue") else None,
    }


def business_calendar(state: ShareState, task: TaskState, calendar_of: CalendarOf | None) -> Calendar | None:
    """The calendar of a task whose due time was worked out on the business clock at the
    send (None for a wall task, or without ``calendar_of``)."""
    sent = state.sent
    if calendar_of is None or sent is None or task.task_id not in (sent.business_due_at or {}):
        return None
    return calendar_of(task.owner)


def share_view(state: ShareState, history: Sequence[RecordedEvent], now: datetime, *,
               at_risk: float = AT_RISK, calendar_of: CalendarOf | None = None) -> dict[str, Any]:
    planned = state.planned
    assert planned is not None
    assert state.share_id is not None
    sent = state.sent
    if state.tasks_recorded:
        tasks = [task_view(t, state.share_id, now, started_at=sent.sent_at if sent else None, at_risk=at_risk,
                           calendar=business_calendar(state, t, calendar_of))
                 for t in state.tasks]
    else:
        # Not recorded yet: show the plan as pending tasks (ids are fixed in advance).
        tasks = [
            {
                **task_view(
                    TaskState(task_id=t.task_id, kind=t.kind, owner=t.owner, after_seconds=t.after_seconds,
                              clock=t.clock),
                    state.share_id,
                    now,
                ),
                "status": "cancelled" if state.status in ("cancelled", "abandoned") else "pending",
            }
            for t in tasks_for(state.share_id, planned.response_plan)
        ]
    status = state.status
    return {
        "id": str(state.share_id),
        "workspace_id": history[0].workspace_id if history else None,
        "account_id": str(planned.account_id),
        "post_id": None if planned.post_id is None else str(planned.post_id),
        "account_name": planned.account_name,
        "channel": planned.channel,
        "text": planned.text,
        "content_warning": planned.content_warning.model_dump() if planned.content_warning else None,
        "language": planned.language,
        "parts": _parts(state),
        "media": _media(planned.media),
        "status": status,
        "scheduled_at": iso(state.scheduled_at),
        "sent_at": iso(sent.sent_at if sent else None),
        "lateness_ms": sent.lateness_ms if sent else None,
        "url": sent.url if sent else None,
        "external_id": sent.external_id if sent else None,
        "attempts": state.attempts,
        "next_attempt_at": iso(state.next_attempt_at),
        "last_error": state.last_error,
        "replies_received": len(state.replies),
        "replies": _replies(state),
        "engagement": _engagement(state),
        "held": _held(history) if status == "held" else None,
        "approval": _approval(state, history),
        "duplicate_posts": [_duplicate(r, state.duplicates_removed) for r in history
                            if r.type_name == "DuplicatePosted"],
        "created_at": iso(history[0].recorded_at) if history else None,
        "version": state.version,
        "response_tasks": tasks,
    }


def _parts(state: ShareState) -> list[dict[str, Any]] | None:
    """A thread's parts in order, each with its status and, once out, its post; None for a single post."""
    assert state.planned is not None
    if not state.planned.parts:
        return None
    views = []
    for index, part in enumerate(state.planned.parts):
        sent = lifecycle.part_sent(state, index)
        views.append({
            "text": part.text,
            "content_warning": part.content_warning.model_dump() if part.content_warning else None,
            "status": lifecycle.part_status(state, index),
            "url": sent.url if sent else None,
            "external_id": sent.external_id if sent else None,
            "sent_at": iso(sent.sent_at if sent else None),
            "media": _media(part.media),
        })
    return views


def _media(attached: Sequence[SharedMedia]) -> list[dict[str, Any]]:
    return [{"id": str(m.media_id), "kind": m.kind, "mime": m.mime, "alt": m.alt, "decorative": m.decorative,
             "content": f"/v1/media/{m.media_id}/content"} for m in attached]


def _approval(state: ShareState, history: Sequence[RecordedEvent]) -> dict[str, Any] | None:
    """Where the share's review stands (None: its account did not require approval when it
    was planned): pending, approved or rejected, by whom, when and why; its author."""
    planned = state.planned
    if planned is None or not planned.approval_required:
        return None
    by = at = reason = None
    match state.reviewed:
        case ShareApproved() as approved if state.review == "approved":
            by, at = approved.approved_by, approved.approved_at
        case ShareRejected() as rejected if state.review == "rejected":
            by, at, reason = rejected.rejected_by, rejected.rejected_at, rejected.reason
    return {"state": state.review, "author": history[0].metadata.get("actor") if history else None,
            "by": by, "at": iso(at), "reason": reason}


def event_view(recorded: RecordedEvent) -> dict[str, Any]:
    return {
        "type": recorded.type_name,
        "version": recorded.stream_version,
        "recorded_at": recorded.recorded_at.isoformat(),
        "actor": recorded.metadata.get("actor"),
        "data": recorded.event.model_dump(mode="json"),
    }


def _held(history: Sequence[RecordedEvent]) -> dict[str, Any] | None:
    """Why the share waits for a person, from its last ShareHeld."""
    held = next((r.event for r in reversed(history) if r.type_name == "ShareHeld"), None)
    if held is None:
        return None
    data = held.model_dump(mode="json")
    return {"reason": data["reason"], "held_at": data["held_at"], "outcome_unknown": data["outcome_unknown"],
            "candidate_url": data["candidate_url"]}


def _duplicate(recorded: RecordedEvent, removed: Sequence[str]) -> dict[str, Any]:
    data = recorded.event.model_dump(mode="json")
    return {"external_id": data["external_id"], "url": data["url"], "created_at": data["created_at"],
            "detected_at": data["detected_at"], "removed": data["external_id"] in removed}


# The channels whose looks read a post's counts (their thread readers are ``EngagementReader``s).
COUNTED_CHANNELS = frozenset({"mastodon", "bluesky"})


def _engagement(state: ShareState) -> dict[str, Any] | None:
    """The post's counts as the looks read them (``quotes`` None where the network does not
    count them); ``as_of``: the last look that read them. None: not read (yet), or a
    channel that does not count. Counts are recorded when they change from zero: a post
    looked at without an error and no counts recorded has zeros."""
    thread = state.thread
    counts = thread.engagement
    if counts is not None:
        return {"replies": counts.replies, "reposts": counts.reposts, "likes": counts.likes,
                "quotes": counts.quotes, "as_of": iso(thread.engagement_seen_at or thread.engagement_at)}
    counted = state.planned is not None and state.planned.channel in COUNTED_CHANNELS
    if not counted or thread.last_look_at is None or thread.last_error is not None or not thread.collected:
        return None
    return {"replies": 0, "reposts": 0, "likes": 0, "quotes": None, "as_of": iso(thread.last_look_at)}


def _replies(state: ShareState) -> dict[str, Any]:
    """The share's replies in short, and its looks (``note`` when they cannot be collected)."""
    thread = state.thread
    return {
        "received": len(thread.replies),
        "answered": sum(1 for r in thread.replies if r.answered_at is not None),
        "dismissed": sum(1 for r in thread.replies if r.dismissed_at is not None and r.answered_at is None),
        "collected": thread.collected,
        "looks": thread.looks,
        "last_look_at": iso(thread.last_look_at),
        "next_look_at": iso(thread.next_look_at),
        "last_error": thread.last_error,
        "note": "replies not collected" if thread.collected is False else None,
    }
