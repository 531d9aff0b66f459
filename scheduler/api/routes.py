"""The /v1 endpoints."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from events.projections import reports
from scheduler.api.deps import Reader, ServicesDep, Writer
from scheduler.api.schemas import (
    AccountIn,
    CancelIn,
    CompleteIn,
    MarkSentIn,
    Moment,
    PlanStepIn,
    RescheduleIn,
    ShareIn,
)
from scheduler.api.views import duration, event_view, share_view, task_view
from scheduler.domain import inputs
from scheduler.domain.plans import StepInput
from scheduler.errors import InvalidInputError
from scheduler.services import accounts
from scheduler.services.shares import PlanShare

router = APIRouter(prefix="/v1")

ShareStatus = Literal["planned", "sending", "sent", "failed", "abandoned", "cancelled", "held"]


def _steps(steps: list[PlanStepIn] | None) -> list[StepInput] | None:
    return None if steps is None else [StepInput(kind=s.kind, after=s.after, owner=s.owner) for s in steps]


def _account_view(a: accounts.Account) -> dict[str, Any]:
    return {
        "id": str(a.id),
        "name": a.name,
        "channel": a.channel,
        "config": inputs.without_secrets(dict(a.config)),
        "default_response_plan": None
        if a.default_response_plan is None
        else [{"kind": s.kind, "after": duration(s.after_seconds), "owner": s.owner} for s in a.default_response_plan],
        "late_policy": a.late_policy,
        "max_lateness": None if a.max_lateness_seconds is None else duration(a.max_lateness_seconds),
        "created_at": a.created_at.isoformat(),
    }


@router.post("/accounts", status_code=201)
def create_account(body: AccountIn, who: Writer, svc: ServicesDep) -> JSONResponse:
    with svc.pool.connection() as conn:
        account = accounts.create(
            conn,
            workspace_id=who.workspace_id,
            name=body.name,
            channel=body.channel,
            config=body.config,
            default_response_plan=_steps(body.default_response_plan),
            late_policy=body.late_policy,
            max_lateness_seconds=None if body.max_lateness is None else int(body.max_lateness.total_seconds()),
        )
    return JSONResponse(_account_view(account), status_code=201)


@router.get("/accounts")
def list_accounts(who: Reader, svc: ServicesDep) -> dict[str, Any]:
    with svc.pool.connection() as conn:
        return {"accounts": [_account_view(a) for a in accounts.list_all(conn, who.workspace_id)]}


@router.get("/accounts/{account_id}")
def get_account(account_id: UUID, who: Reader, svc: ServicesDep) -> dict[str, Any]:
    with svc.pool.connection() as conn:
        return _account_view(accounts.get_or_404(conn, who.workspace_id, account_id))


@router.post("/shares", status_code=201)
async def plan_share(
    request: Request,
    body: ShareIn,
    who: Writer,
    svc: ServicesDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> JSONResponse:
    raw = await request.json()
    command = PlanShare(
        account_id=body.account_id,
        text=body.text,
        scheduled_at=body.scheduled_at,
        response_plan=_steps(body.response_plan),
    )
    planned = await run_in_threadpool(
        svc.shares.plan,
        who.workspace_id,
        command,
        actor=f"token:{who.token_id}",
        render=share_view,
        idempotency_key=idempotency_key,
        request_body=raw,
    )
    return JSONResponse(planned.body, status_code=201)


@router.get("/shares")
def list_shares(
    who: Reader,
    svc: ServicesDep,
    status: ShareStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    with svc.pool.connection() as conn:
        return {"shares": reports.shares(conn, who.workspace_id, status=status, limit=limit)}


@router.get("/shares/{share_id}")
def get_share(share_id: UUID, who: Reader, svc: ServicesDep) -> dict[str, Any]:
    state, history = svc.shares.load(who.workspace_id, share_id)
    return share_view(state, history, svc.shares.clock())


@router.get("/shares/{share_id}/events")
def share_events(share_id: UUID, who: Reader, svc: ServicesDep) -> list[dict[str, Any]]:
    _, history = svc.shares.load(who.workspace_id, share_id)
    return [event_view(r) for r in history]


@router.post("/shares/{share_id}/reschedule")
def reschedule_share(share_id: UUID, body: RescheduleIn, who: Writer, svc: ServicesDep) -> dict[str, Any]:
    state, history = svc.shares.reschedule(who.workspace_id, share_id, body.scheduled_at,
                                           actor=f"token:{who.token_id}")
    return share_view(state, history, svc.shares.clock())


@router.post("/shares/{share_id}/mark-sent")
def mark_share_sent(share_id: UUID, body: MarkSentIn, who: Writer, svc: ServicesDep) -> dict[str, Any]:
    """Settle a share held for an unknown outcome: the post is there, at ``url``."""
    state, history = svc.shares.mark_sent(who.workspace_id, share_id, url=body.url, external_id=body.external_id,
                                          sent_at=body.sent_at, actor=f"token:{who.token_id}")
    return share_view(state, history, svc.shares.clock())


@router.post("/shares/{share_id}/cancel")
def cancel_share(share_id: UUID, who: Writer, svc: ServicesDep, body: CancelIn | None = None) -> dict[str, Any]:
    reason = body.reason if body else ""
    state, history = svc.shares.cancel(who.workspace_id, share_id, reason=reason, actor=f"token:{who.token_id}")
    return share_view(state, history, svc.shares.clock())


@router.post("/response-tasks/{task_id}/complete")
def complete_task(task_id: UUID, who: Writer, svc: ServicesDep, body: CompleteIn | None = None) -> dict[str, Any]:
    by = (body.completed_by if body and body.completed_by else None) or f"token:{who.token_id}"
    state, _ = svc.shares.complete_task(who.workspace_id, task_id, by=by, note=body.note if body else "")
    task = state.task(task_id)
    assert task is not None
    assert state.share_id is not None
    return task_view(task, state.share_id, svc.shares.clock())


@router.get("/response-tasks")
def response_inbox(
    who: Reader,
    svc: ServicesDep,
    status: Annotated[list[Literal["open", "overdue", "done", "pending", "cancelled"]] | None, Query()] = None,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    if owner is not None and (problem := inputs.text_problem(owner)) is not None:
        raise InvalidInputError("owner", problem)
    states: list[str] = [str(s) for s in status] if status else ["open", "overdue"]
    with svc.pool.connection() as conn:
        return {"tasks": reports.inbox(conn, who.workspace_id, states=states, owner=owner, limit=limit)}


@router.get("/followthrough")
def followthrough(
    who: Reader,
    svc: ServicesDep,
    by: Literal["account", "owner", "channel", "day", "workspace"] = "account",
    start: Annotated[Moment | None, Query(alias="from", description="RFC 3339 with an offset")] = None,
    end: Annotated[Moment | None, Query(alias="to", description="RFC 3339 with an offset")] = None,
) -> dict[str, Any]:
    if start is not None and end is not None and end < start:
        raise InvalidInputError("to", "must not be before from")
    with svc.pool.connection() as conn:
        rows = reports.followthrough(conn, who.workspace_id, by=by, start=start, end=end)
        integrity = reports.sent_without_tasks(conn, who.workspace_id)
    return {
        "by": by,
        "from": start.isoformat() if start else None,
        "to": end.isoformat() if end else None,
        "rows": rows,
        "sent_shares_without_response_tasks": integrity,
    }
