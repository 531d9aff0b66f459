"""/v1/accounts: a workspace's channel accounts (their secrets never shown)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from scheduler.api.deps import Reader, ServicesDep, Writer
from scheduler.api.schemas import AccountIn, PlanStepIn
from scheduler.api.views import duration
from scheduler.domain import inputs
from scheduler.domain.plans import StepInput, validate_plan
from scheduler.services import accounts, calendars

router = APIRouter(prefix="/v1", tags=["accounts"])


def steps(given: list[PlanStepIn] | None) -> list[StepInput] | None:
    """A response plan as the API took it, for the services to validate."""
    return None if given is None else [StepInput(kind=s.kind, after=s.after, owner=s.owner, clock=s.clock)
                                       for s in given]


def account_view(a: accounts.Account) -> dict[str, Any]:
    return {
        "id": str(a.id),
        "name": a.name,
        "channel": a.channel,
        "config": inputs.without_secrets(dict(a.config)),
        "default_response_plan": None
        if a.default_response_plan is None
        else [{"kind": s.kind, "after": duration(s.after_seconds), "owner": s.owner, "clock": s.clock}
           for s in a.default_response_plan],
        "late_policy": a.late_policy,
        "max_lateness": None if a.max_lateness_seconds is None else duration(a.max_lateness_seconds),
        "created_at": a.created_at.isoformat(),
    }


@router.post("/accounts", status_code=201, operation_id="create_account")
def create_account(body: AccountIn, who: Writer, svc: ServicesDep) -> JSONResponse:
    plan = steps(body.default_response_plan)
    if plan and any(s.clock == "business" for s in plan):
        calendars.check_plan_clocks(calendars.load(svc.store, who.workspace_id),
                                    validate_plan(plan, field="default_response_plan"), field="default_response_plan",
                                    now=svc.shares.clock())
    with svc.pool.connection() as conn:
        account = accounts.create(
            conn,
            workspace_id=who.workspace_id,
            name=body.name,
            channel=body.channel,
            config=body.config,
            default_response_plan=plan,
            late_policy=body.late_policy,
            max_lateness_seconds=None if body.max_lateness is None else int(body.max_lateness.total_seconds()),
        )
    return JSONResponse(account_view(account), status_code=201)


@router.get("/accounts", operation_id="list_accounts")
def list_accounts(who: Reader, svc: ServicesDep) -> dict[str, Any]:
    with svc.pool.connection() as conn:
        return {"accounts": [account_view(a) for a in accounts.list_all(conn, who.workspace_id)]}


@router.get("/accounts/{account_id}", operation_id="get_account")
def get_account(account_id: UUID, who: Reader, svc: ServicesDep) -> dict[str, Any]:
    with svc.pool.connection() as conn:
        return account_view(accounts.get_or_404(conn, who.workspace_id, account_id))
