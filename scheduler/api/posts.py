"""/v1/posts: one post to several accounts, a share each (planned as /v1/shares plans one)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from scheduler.api.deps import Reader, ServicesDep, Writer
from scheduler.api.schemas import PostIn, ShareIn
from scheduler.api.shares import plan_command, planned_view
from scheduler.api.views import share_view
from scheduler.services.calendars import calendar_at_send
from scheduler.services.shares import PlanPost

router = APIRouter(prefix="/v1", tags=["posts"])


def share_body(raw: dict[str, Any], index: int) -> ShareIn:
    """Account ``index``'s share as a share's own body: the post's fields, and the account's
    over them; checked as POST /v1/shares checks it (a refusal names ``accounts.<i>.<field>``)."""
    given = {**{k: v for k, v in raw.items() if k != "accounts"}, **raw["accounts"][index]}
    try:
        return ShareIn.model_validate(given)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", "accounts", index, *e["loc"])} for e in exc.errors()]) from None


@router.post("/posts", status_code=201, operation_id="plan_post")
async def plan_post(
    request: Request,
    body: PostIn,
    who: Writer,
    svc: ServicesDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)] = None,
) -> JSONResponse:
    """Plan a share on each account, all or none; one Idempotency-Key for the whole post."""
    raw = await request.json()
    command = PlanPost(shares=[plan_command(share_body(raw, i)) for i in range(len(body.accounts))])
    planned = await run_in_threadpool(svc.shares.plan_post, who.workspace_id, command, actor=who.actor,
                                      idempotency_key=idempotency_key, request_body=raw)
    answer = {"id": str(planned.post_id), "created_at": planned.created_at.isoformat(),
              "shares": [planned_view(share) for share in planned.shares]}
    return JSONResponse(answer, status_code=201)


@router.get("/posts/{post_id}", operation_id="get_post")
def get_post(post_id: UUID, who: Reader, svc: ServicesDep) -> dict[str, Any]:
    """The post's shares now, each as GET /v1/shares/{id} shows it, in the request's order."""
    now = svc.shares.clock()
    shares = [share_view(state, history, now, at_risk=svc.config.sla_at_risk,
                         calendar_of=calendar_at_send(svc.store, who.workspace_id, state))
              for state, history in svc.shares.load_post(who.workspace_id, post_id)]
    return {"id": str(post_id), "created_at": shares[0]["created_at"], "shares": shares}
