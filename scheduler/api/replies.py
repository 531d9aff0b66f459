"""The replies inbox: ``GET /v1/replies``, and answering or dismissing one."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import Field

from events.projections import replies as inbox
from scheduler.api.config import ApiConfig
from scheduler.api.deps import Reader, ServicesDep, Writer
from scheduler.api.schemas import Body
from scheduler.api.views import iso
from scheduler.domain import inputs
from scheduler.domain.share import ShareState, TaskState, reply_uuid
from scheduler.domain.share.thread import ReplyState
from scheduler.domain.sla import sla_state
from scheduler.errors import InvalidInputError
from scheduler.services import calendars, saved_replies
from scheduler.services.calendars import CalendarAt

router = APIRouter(prefix="/v1", tags=["replies"])


class AnswerIn(Body):
    text: str | None = Field(default=None, min_length=1, max_length=5000, examples=["Thanks! It ships on Monday."],
                             description="the answer; or give saved_reply_id")
    saved_reply_id: UUID | None = Field(default=None, description="answer with this saved reply, its {author} "
                                                                  "and {account} filled for this reply")


class DismissIn(Body):
    reason: str = Field(default="", max_length=1000, examples=["spam"])


class AssignIn(Body):
    owner: str = Field(max_length=200, examples=["ana"], description="the person to answer it")


def encode_cursor(collected_at: datetime, reply_id: UUID) -> str:
    return base64.urlsafe_b64encode(f"{collected_at.isoformat()}|{reply_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, ident = raw.partition("|")
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None:
            raise ValueError(moment)
        return parsed, UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInputError("cursor", "is not a cursor this API gave out (use next_cursor as it is)") from None


def row_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "share_id": str(row["share_id"]),
        "account_id": str(row["account_id"]),
        "account_name": row["account_name"],
        "channel": row["channel"],
        "owner": row["owner"],
        "assignee": row["assignee"],
        "assigned": row["assigned"],
        "author": row["author"],
        "text": row["text"],
        "url": row["url"],
        "in_reply_to": row["parent_id"],
        "received_at": iso(row["received_at"]),
        "collected_at": iso(row["collected_at"]),
        "state": row["state"],
        "answer": None if row["answer_status"] is None and not row["answered_natively"] else {
            "text": row["answer_text"], "status": row["answer_status"], "error": row["answer_error"],
            "url": row["answer_url"], "native": row["answered_natively"],
        },
        "answered_at": iso(row["answered_at"]),
        "dismissed_at": iso(row["dismissed_at"]),
        "dismiss_reason": row["dismiss_reason"],
        "sla": row["sla"],
        "sla_due_at": iso(row["sla_due_at"]),
    }


def reply_sla(state: ShareState, reply: ReplyState, now: datetime, config: ApiConfig,
              calendar_of: CalendarAt | None = None) -> tuple[str | None, datetime]:
    """The SLA state of a reply and when it is due: by the share's first ``answer_replies``
    task due after it came in, else after the reply window (as the inbox's SQL does). When
    that task is on the business clock, the at-risk point is measured in its owner's
    business time, their calendar as it stood when the reply came (``calendar_of(owner,
    moment)``; SQL's ``reply_sla_state``, migration 0020)."""
    steps = sorted((t for t in state.tasks
                    if t.kind == "answer_replies" and not t.cancelled and t.due_at is not None
                    and t.due_at >= reply.received_at),
                   key=lambda t: (t.due_at, str(t.task_id)))
    step = steps[0] if steps else None
    due = step.due_at if step is not None and step.due_at is not None else (
        reply.received_at + timedelta(seconds=config.reply_sla_seconds))
    if reply.inbox_state in ("answered", "dismissed"):
        return None, due
    calendar = None
    sent = state.sent
    if (calendar_of is not None and step is not None and now <= due and sent is not None
            and step.task_id in (sent.business_due_at or {})):
        calendar = calendar_of(step.owner, reply.received_at)
    return sla_state(reply.received_at, due, now, config.sla_at_risk, calendar), due


def current_owner(state: ShareState) -> str | None:
    """The owner of the share's current task, as the inbox's SQL picks it: the first not done
    nor cancelled by due time (the longest step first when due together), else its last."""
    def order(t: TaskState) -> tuple[bool, bool, datetime, int]:
        return (t.cancelled or t.completed_at is not None, t.due_at is None, t.due_at or datetime.max.replace(
            tzinfo=UTC), -t.after_seconds)

    return min(state.tasks, key=order).owner if state.tasks else None


def reply_view(state: ShareState, reply: ReplyState, now: datetime, config: ApiConfig,
               calendar_of: CalendarAt | None = None) -> dict[str, Any]:
    """A reply as the answer, dismiss and assign endpoints return it (from the share's stream)."""
    assert state.share_id is not None
    assert state.planned is not None
    sla, due = reply_sla(state, reply, now, config, calendar_of)
    owner = current_owner(state)
    answer = None
    if reply.answer_status != "none" or reply.answer_native:
        answer = {"text": reply.answer_text, "status": reply.answer_status, "error": reply.answer_error,
                  "url": reply.answer_url, "native": reply.answer_native}
    return {
        "id": str(reply_uuid(state.share_id, reply.reply_id)),
        "share_id": str(state.share_id),
        "account_id": str(state.planned.account_id),
        "account_name": state.planned.account_name,
        "channel": state.planned.channel,
        "owner": owner,
        "assignee": reply.assignee or owner,
        "assigned": reply.assignee is not None,
        "author": reply.author,
        "text": reply.text,
        "url": reply.url,
        "in_reply_to": reply.parent_id,
        "received_at": iso(reply.received_at),
        "collected_at": iso(reply.collected_at),
        "state": reply.inbox_state,
        "answer": answer,
        "answered_at": iso(reply.answered_at),
        "dismissed_at": iso(reply.dismissed_at),
        "dismiss_reason": reply.dismiss_reason,
        "sla": sla,
        "sla_due_at": None if sla is None else iso(due),
    }


@router.get("/replies", operation_id="list_replies")
def list_replies(
    who: Reader,
    svc: ServicesDep,
    *,
    state: Literal["unanswered", "answered", "dismissed"] | None = None,
    account_id: UUID | None = None,
    owner: str | None = None,
    assignee: str | None = None,
    mine: bool = False,
    share_id: UUID | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Replies collected under the workspace's shares, newest first, a page at a time.
    ``assignee``: the replies a person is to answer (assigned to them, or unassigned under a
    share whose current task they own); ``mine=true``: those of the token's owner."""
    if assignee is not None:
        assignee = inputs.check_person(assignee, field="assignee")
    if mine:
        if who.owner is None:
            raise InvalidInputError("mine", "this token has no owner: create one with an owner "
                                            "(`followthrough token create --owner NAME`, POST /v1/tokens {owner}) "
                                            "or ask for assignee=NAME")
        if assignee is not None and assignee != who.owner:
            raise InvalidInputError("mine", "give mine=true or assignee, not both")
        assignee = who.owner
    after = decode_cursor(cursor) if cursor else None
    with svc.pool.connection() as conn:
        rows = inbox.inbox(conn, who.workspace_id, state=state, account_id=account_id, owner=owner,
                           assignee=assignee, share_id=share_id, cursor=after, limit=limit + 1,
                           at_risk=svc.config.sla_at_risk,
                           reply_sla_seconds=svc.config.reply_sla_seconds)
    page = rows[:limit]
    following = encode_cursor(page[-1]["collected_at"], page[-1]["id"]) if len(rows) > limit else None
    return {"items": [row_view(r) for r in page], "next_cursor": following}


@router.post("/replies/{reply_id}/answer", status_code=202, operation_id="answer_reply")
def answer_reply(reply_id: UUID, body: AnswerIn, who: Writer, svc: ServicesDep) -> JSONResponse:
    """Publish ``text`` (or the saved reply ``saved_reply_id``, filled for this reply) as a
    reply to this one, through the share's channel (asynchronously: ``answer.status`` goes
    requested -> sending -> answered, with ``answer.url``)."""
    if (body.text is None) == (body.saved_reply_id is None):
        raise InvalidInputError("text", "give the answer's text, or a saved_reply_id (not both)")
    text = body.text
    if body.saved_reply_id is not None:
        with svc.pool.connection() as conn:
            text = saved_replies.filled(conn, who.workspace_id, body.saved_reply_id, reply_id)
    assert text is not None
    state, reply = svc.replies.answer(who.workspace_id, reply_id, text=text, by=who.actor)
    return JSONResponse(reply_view(state, reply, svc.shares.clock(), svc.config,
                                   calendars.calendar_as_of(svc.store, who.workspace_id)), status_code=202)


@router.post("/replies/{reply_id}/dismiss", operation_id="dismiss_reply")
def dismiss_reply(reply_id: UUID, who: Writer, svc: ServicesDep, body: DismissIn | None = None) -> dict[str, Any]:
    """Mark a reply that needs no answer."""
    state, reply = svc.replies.dismiss(who.workspace_id, reply_id, reason=body.reason if body else "",
                                         by=who.actor)
    return reply_view(state, reply, svc.shares.clock(), svc.config,
                      calendars.calendar_as_of(svc.store, who.workspace_id))


@router.post("/replies/{reply_id}/assign", operation_id="assign_reply")
def assign_reply(reply_id: UUID, body: AssignIn, who: Writer, svc: ServicesDep) -> dict[str, Any]:
    """Give a reply to ``owner`` to answer (an event on its share's stream; assigning it again
    to the same person changes nothing). Unassigned, its owner is the share's current task's."""
    owner = inputs.check_person(body.owner)
    state, reply = svc.replies.assign(who.workspace_id, reply_id, assignee=owner, by=who.actor)
    return reply_view(state, reply, svc.shares.clock(), svc.config,
                      calendars.calendar_as_of(svc.store, who.workspace_id))
