"""/v1/response-tasks: the response inbox, and completing a task."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query

from events.projections import reports
from scheduler.api.deps import Reader, ServicesDep, Writer
from scheduler.api.schemas import CompleteIn
from scheduler.api.views import business_calendar, task_view
from scheduler.domain import inputs
from scheduler.errors import InvalidInputError
from scheduler.services.calendars import calendar_at_send

router = APIRouter(prefix="/v1", tags=["tasks"])


@router.post("/response-tasks/{task_id}/complete", operation_id="complete_task")
def complete_task(task_id: UUID, who: Writer, svc: ServicesDep, body: CompleteIn | None = None) -> dict[str, Any]:
    by = (body.completed_by if body and body.completed_by else None) or who.actor
    state, _ = svc.shares.complete_task(who.workspace_id, task_id, by=by, note=body.note if body else "",
                                        actor=who.actor)
    task = state.task(task_id)
    assert task is not None
    assert state.share_id is not None
    return task_view(task, state.share_id, svc.shares.clock(), started_at=state.sent.sent_at if state.sent else None,
                     at_risk=svc.config.sla_at_risk,
                     calendar=business_calendar(state, task, calendar_at_send(svc.store, who.workspace_id, state)))


@router.get("/response-tasks", operation_id="list_tasks")
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
        return {"tasks": reports.inbox(conn, who.workspace_id, states=states, owner=owner, limit=limit,
                                            at_risk=svc.config.sla_at_risk)}
