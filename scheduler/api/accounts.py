"""/v1/accounts: a workspace's channel accounts (their secrets never shown)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from scheduler.api.deps import Reader, ServicesDep, Writer
from scheduler.api.schemas import AccountIn, Moment, PlanStepIn
from scheduler.api.views import duration
from scheduler.domain import inputs
from scheduler.domain.plans import StepInput, validate_plan
from scheduler.errors import InvalidInputError
from scheduler.services import accounts, calendars, slots

# How much of an account's queue one GET /v1/accounts/{id}/slots lists at most.
SLOTS_SPAN = timedelta(days=92)
# How far from now a listing may start.
SLOTS_REACH = timedelta(days=10 * 365)

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


@router.get("/accounts/{account_id}/slots", operation_id="list_account_slots")
def list_slots(
    account_id: UUID,
    who: Reader,
    svc: ServicesDep,
    *,
    start: Annotated[Moment | None, Query(alias="from", description="RFC 3339 with an offset; omitted = now")] = None,
    end: Annotated[Moment | None, Query(alias="to", description="RFC 3339 with an offset; omitted = from + 7 days "
                                                               "(at most 92 days after from)")] = None,
) -> dict[str, Any]:
    """The account's queue slots from ``from`` to ``to``, each free or taken (by which share)."""
    now = svc.shares.clock()
    start = start or now
    if abs(start - now) > SLOTS_REACH:
        raise InvalidInputError("from", f"must be within {SLOTS_REACH.days // 365} years of now")
    end = end or start + timedelta(days=7)
    if end < start:
        raise InvalidInputError("to", "must not be before from")
    if end - start > SLOTS_SPAN:
        raise InvalidInputError("to", f"must be at most {SLOTS_SPAN.days} days after from")
    with svc.pool.connection() as conn:
        account = accounts.get_or_404(conn, who.workspace_id, account_id)
        listed = slots.listing(conn, account, start, end)
    if listed is None:
        raise InvalidInputError("account_id", f"account {account.name!r} has no queue slots: set its config.slots")
    week, rows = listed
    zone = week.zone
    return {
        "account_id": str(account.id),
        "time_zone": week.time_zone,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "slots": [{"at": at.isoformat(), "local": at.astimezone(zone).isoformat(), "free": share_id is None,
                   "share_id": None if share_id is None else str(share_id)} for at, share_id in rows],
    }
