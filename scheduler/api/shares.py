"""/v1/shares: plan a share, read it and its events, list them, approve or reject it,
reschedule, retry, cancel, mark sent."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from events.projections import reports
from scheduler.api.accounts import steps
from scheduler.api.deps import Reader, ServicesDep, Writer
from scheduler.api.schemas import CancelIn, MarkSentIn, MediaIn, RejectIn, RescheduleIn, RetryIn, ShareIn
from scheduler.api.views import event_view, share_view
from scheduler.domain.media import MediaRequest
from scheduler.services.calendars import calendar_at_send
from scheduler.services.shares import Planned, PlanShare

router = APIRouter(prefix="/v1", tags=["shares"])

ShareStatus = Literal["in_review", "review_overdue", "rejected", "planned", "sending", "sent", "failed", "abandoned",
                      "cancelled", "held"]


def media_requests(media: list[MediaIn]) -> tuple[MediaRequest, ...]:
    return tuple(MediaRequest(media_id=m.id, alt=m.alt, decorative=m.decorative) for m in media)


def plan_command(body: ShareIn) -> PlanShare:
    """A share's body as the planning use case takes it (a post's shares too)."""
    return PlanShare(
        account_id=body.account_id,
        text=body.text,
        scheduled_at=body.scheduled_at,
        response_plan=steps(body.response_plan),
        parts=[{**part.model_dump(exclude={"media"}), "media": media_requests(part.media)} for part in body.parts]
        if body.parts is not None else None,
        content_warning=body.content_warning.model_dump() if body.content_warning is not None else None,
        language=body.language,
        media=media_requests(body.media),
    )


def planned_view(planned: Planned) -> dict[str, Any]:
    """The answer to a plan, and to its repeats under the same Idempotency-Key: the share as
    planned, whatever happened to it since."""
    body = share_view(planned.state, [], planned.created_at)
    body["created_at"] = planned.created_at.isoformat()
    body["workspace_id"] = planned.workspace_id
    body["version"] = planned.version
    return body


@router.post("/shares", status_code=201, operation_id="plan_share")
async def plan_share(
    request: Request,
    body: ShareIn,
    who: Writer,
    svc: ServicesDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)] = None,
) -> JSONResponse:
    raw = await request.json()
    planned = await run_in_threadpool(
        svc.shares.plan,
        who.workspace_id,
        plan_command(body),
        actor=who.actor,
        idempotency_key=idempotency_key,
        request_body=raw,
    )
    return JSONResponse(planned_view(planned), status_code=201)


@router.get("/shares", operation_id="list_shares")
def list_shares(
    who: Reader,
    svc: ServicesDep,
    status: ShareStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    with svc.pool.connection() as conn:
        return {"shares": reports.shares(conn, who.workspace_id, status=status, limit=limit)}


@router.get("/shares/{share_id}", operation_id="get_share")
def get_share(share_id: UUID, who: Reader, svc: ServicesDep) -> dict[str, Any]:
    state, history = svc.shares.load(who.workspace_id, share_id)
    return share_view(state, history, svc.shares.clock(), at_risk=svc.config.sla_at_risk,
                      calendar_of=calendar_at_send(svc.store, who.workspace_id, state))


@router.get("/shares/{share_id}/events", operation_id="list_share_events")
def share_events(share_id: UUID, who: Reader, svc: ServicesDep) -> list[dict[str, Any]]:
    _, history = svc.shares.load(who.workspace_id, share_id)
    return [event_view(r) for r in history]


@router.post("/shares/{share_id}/reschedule", operation_id="reschedule_share")
def reschedule_share(share_id: UUID, body: RescheduleIn, who: Writer, svc: ServicesDep) -> dict[str, Any]:
    state, history = svc.shares.reschedule(who.workspace_id, share_id, body.scheduled_at,
                                           actor=who.actor)
    return share_view(state, history, svc.shares.clock(), at_risk=svc.config.sla_at_risk,
                      calendar_of=calendar_at_send(svc.store, who.workspace_id, state))


@router.post("/shares/{share_id}/retry", operation_id="retry_share")
def retry_share(share_id: UUID, who: Writer, svc: ServicesDep, body: RetryIn | None = None) -> dict[str, Any]:
    """Plan a failed or abandoned share again, for ``scheduled_at`` (default now), through the
    same exactly-once path: an earlier attempt whose outcome is unknown is looked up first."""
    state, history = svc.shares.retry(who.workspace_id, share_id, body.scheduled_at if body else None,
                                      actor=who.actor)
    return share_view(state, history, svc.shares.clock())


@router.post("/shares/{share_id}/mark-sent", operation_id="mark_share_sent")
def mark_share_sent(share_id: UUID, body: MarkSentIn, who: Writer, svc: ServicesDep) -> dict[str, Any]:
    """Settle a share held for an unknown outcome: the post is there, at ``url``."""
    state, history = svc.shares.mark_sent(who.workspace_id, share_id, url=body.url, external_id=body.external_id,
                                          sent_at=body.sent_at, actor=who.actor)
    return share_view(state, history, svc.shares.clock(), at_risk=svc.config.sla_at_risk,
                      calendar_of=calendar_at_send(svc.store, who.workspace_id, state))


@router.post("/shares/{share_id}/cancel", operation_id="cancel_share")
def cancel_share(share_id: UUID, who: Writer, svc: ServicesDep, body: CancelIn | None = None) -> dict[str, Any]:
    reason = body.reason if body else ""
    state, history = svc.shares.cancel(who.workspace_id, share_id, reason=reason, actor=who.actor)
    return share_view(state, history, svc.shares.clock(), at_risk=svc.config.sla_at_risk,
                      calendar_of=calendar_at_send(svc.store, who.workspace_id, state))


@router.post("/shares/{share_id}/approve", operation_id="approve_share")
def approve_share(share_id: UUID, who: Writer, svc: ServicesDep) -> dict[str, Any]:
    """Approve a share in review (its account requires approval): one of the account's
    approvers who is not the share's author, unless the account allows self-approval; else
    403 saying why. It goes out at its time, or at once, late, when its time has passed."""
    state, history = svc.shares.approve(who.workspace_id, share_id, actor=who.actor)
    return share_view(state, history, svc.shares.clock())


@router.post("/shares/{share_id}/reject", operation_id="reject_share")
def reject_share(share_id: UUID, body: RejectIn, who: Writer, svc: ServicesDep) -> dict[str, Any]:
    """Reject a share in review, saying why: it is not published; a change to it (a new time)
    sends it back to review. Who may: as for approve."""
    state, history = svc.shares.reject(who.workspace_id, share_id, reason=body.reason, actor=who.actor)
    return share_view(state, history, svc.shares.clock())
