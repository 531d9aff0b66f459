"""/v1/calendars and /v1/owners: business hours, and the calendar each owner works by.

The calendar named ``default`` is the workspace's. Each change is an event on the
workspace's calendars stream and applies from then on (``scheduler.services.calendars``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from scheduler.api.deps import Reader, ServicesDep, Writer
from scheduler.api.schemas import CalendarIn, OwnerIn
from scheduler.domain import calendars as domain
from scheduler.errors import NotFoundError
from scheduler.services import calendars

router = APIRouter(prefix="/v1")

CalendarName = Annotated[str, Path(max_length=64, description="the calendar's name; `default` is the workspace's")]
OwnerName = Annotated[str, Path(max_length=200)]


def calendar_view(name: str, calendar: domain.Calendar, state: domain.Calendars | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": name,
        "time_zone": calendar.time_zone,
        "week": domain.week_view(calendar),
        "holidays": [d.isoformat() for d in sorted(calendar.holidays)],
    }
    if state is not None:
        view["owners"] = state.users_of(name)
    return view


@router.put("/calendars/{name}", operation_id="set_calendar", tags=["calendars"])
def set_calendar(name: CalendarName, body: CalendarIn, who: Writer, svc: ServicesDep) -> JSONResponse:
    calendar, created = calendars.put(
        svc.store, who.workspace_id, domain.check_name(name), time_zone=body.time_zone,
        week=body.week.model_dump(), holidays=body.holidays, actor=who.actor)
    return JSONResponse(calendar_view(name, calendar), status_code=201 if created else 200)


@router.get("/calendars", operation_id="list_calendars", tags=["calendars"])
def list_calendars(who: Reader, svc: ServicesDep) -> dict[str, Any]:
    state = calendars.load(svc.store, who.workspace_id)
    return {"calendars": [calendar_view(n, c, state) for n, c in sorted(state.calendars.items())]}


@router.get("/calendars/{name}", operation_id="get_calendar", tags=["calendars"])
def get_calendar(name: CalendarName, who: Reader, svc: ServicesDep) -> dict[str, Any]:
    state = calendars.load(svc.store, who.workspace_id)
    calendar = state.calendars.get(name)
    if calendar is None:
        raise NotFoundError("calendar", name)
    return calendar_view(name, calendar, state)


@router.delete("/calendars/{name}", status_code=204, operation_id="delete_calendar", tags=["calendars"])
def delete_calendar(name: CalendarName, who: Writer, svc: ServicesDep) -> Response:
    calendars.delete(svc.store, who.workspace_id, name, actor=who.actor)
    return Response(status_code=204)


def owner_view(state: domain.Calendars, owner: str) -> dict[str, Any]:
    chosen = state.owners.get(owner)
    works_by = chosen if chosen in state.calendars else (domain.DEFAULT if domain.DEFAULT in state.calendars else None)
    return {"owner": owner, "calendar": chosen, "works_by": works_by}


@router.put("/owners/{owner}", operation_id="set_owner_calendar", tags=["owners"])
def set_owner_calendar(owner: OwnerName, body: OwnerIn, who: Writer, svc: ServicesDep) -> dict[str, Any]:
    owner = calendars.check_owner(owner)
    state = calendars.set_owner(svc.store, who.workspace_id, owner, body.calendar, actor=who.actor)
    return owner_view(state, owner)


@router.get("/owners", operation_id="list_owners", tags=["owners"])
def list_owners(who: Reader, svc: ServicesDep) -> dict[str, Any]:
    state = calendars.load(svc.store, who.workspace_id)
    return {"owners": [owner_view(state, o) for o in sorted(state.owners)],
            "default": domain.DEFAULT if domain.DEFAULT in state.calendars else None}
