"""The dashboard's shares calendar, ``/dashboard/calendar``: a week or a month of the
workspace's shares by day, in the workspace's time zone.

Named "planner", not "calendar": ``scheduler/api/calendars.py`` and
``scheduler/domain/calendars.py`` are business-hours calendars (when a team works), another
thing. The grid is ``scheduler.domain.planner``; the rows ``events.projections.planner``,
the query behind ``GET /v1/calendar``.

Times show in the time zone of the workspace's ``default`` business calendar when it has one
(the team's own clock), else in UTC as the rest of the dashboard; the page says which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, tzinfo
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from events.projections import planner as query
from scheduler.api.dashboard.routes import SessionDep, _params, _render
from scheduler.api.deps import Services, ServicesDep
from scheduler.domain import planner
from scheduler.services import accounts, calendars

router = APIRouter(prefix="/dashboard", include_in_schema=False)

# The most shares one page shows (a month of a busy workspace fits); more is said, not hidden silently.
PAGE_LIMIT = 1000
# A month's day shows this many shares, then "+N more" (a link to that day's week).
MONTH_DAY_SHOWS = 4


@dataclass(frozen=True, slots=True)
class State:
    """How a status reads: a word and a shape, never colour alone (the class adds a border style)."""

    label: str
    icon: str
    css: str


STATES = {
    "planned": State("Planned", "\u25f7", "planned"),  # clock face
    "sending": State("Sending", "\u27a4", "sending"),  # arrowhead
    "sent": State("Sent", "\u2713", "sent"),  # check mark
    "failed": State("Failed", "\u2715", "failed"),  # cross
    "held": State("Held", "\u2016", "held"),  # double bar: paused
    "abandoned": State("Abandoned", "\u2297", "abandoned"),  # circled cross
    "cancelled": State("Cancelled", "\u2205", "cancelled"),  # empty set
    "in_review": State("In review", "\u25d0", "in_review"),  # half circle: waiting on someone
    "review_overdue": State("Review overdue", "\u26a0", "review_overdue"),  # warning sign
    "rejected": State("Rejected", "\u2298", "rejected"),  # circled slash
}
_SAFE = re.compile(r"[^a-z0-9_]")


def state_of(status: str) -> State:
    """A status this page knows, or any other by its name (a status added later still reads)."""
    known = STATES.get(status)
    if known is not None:
        return known
    return State(status.replace("_", " ").capitalize() or "Unknown", "\u2022", "other")


def display_zone(svc: Services, workspace_id: str) -> tuple[tzinfo, str]:
    calendar = calendars.load(svc.store, workspace_id).calendars.get("default")
    if calendar is None:
        return UTC, "UTC"
    return calendar.zone, calendar.time_zone


def _share(row: dict[str, Any], zone: tzinfo) -> dict[str, Any]:
    scheduled = row["scheduled_at"].astimezone(zone)
    sent = row["sent_at"].astimezone(zone) if row["sent_at"] else None
    return {
        "id": row["share_id"], "status": row["status"], "status_attr": _SAFE.sub("_", row["status"]),
        "state": state_of(row["status"]), "at": scheduled, "sent": sent,
        # a sent time worth saying: another minute, or another day, than planned
        "sent_differs": sent is not None and sent.replace(second=0, microsecond=0) != scheduled.replace(
            second=0, microsecond=0),
        "account": row["account_name"], "channel": row["channel"], "excerpt": planner.excerpt(row["text"]),
    }


def title(grid: planner.Grid) -> str:
    if grid.view == "month":
        return f"{grid.anchor:%B %Y}"
    first, last = grid.days[0], grid.days[-1]
    if first.month == last.month:
        return f"{first.day}\u2013{last.day} {last:%B %Y}"
    if first.year == last.year:
        return f"{first.day} {first:%b} \u2013 {last.day} {last:%b %Y}"
    return f"{first.day} {first:%b %Y} \u2013 {last.day} {last:%b %Y}"


def page(svc: Services, workspace_id: str, params: dict[str, str]) -> dict[str, Any]:
    zone, zone_name = display_zone(svc, workspace_id)
    today = planner.local_day(svc.shares.clock(), zone)
    errors = []
    view: planner.View = "month" if params.get("view") == "month" else "week"
    try:
        anchor = date.fromisoformat(params["date"]) if params.get("date") else today
    except ValueError:
        anchor = today
        errors.append("Date must be a day (YYYY-MM-DD): showing today")
    if not planner.FIRST_YEAR <= anchor.year <= planner.LAST_YEAR:
        anchor = today
        errors.append(f"Date must be in the years {planner.FIRST_YEAR} to {planner.LAST_YEAR}: showing today")
    account_id: UUID | None = None
    with svc.pool.connection() as conn:
        listed = accounts.list_all(conn, workspace_id)
        if params.get("account_id"):
            try:
                account_id = UUID(params["account_id"])
            except ValueError:
                account_id = None
            if account_id not in {a.id for a in listed}:
                account_id = None
                errors.append("That account is not in this workspace: showing every account")
        grid = planner.grid(view, anchor, zone)
        rows = query.window(conn, workspace_id, start=grid.start, end=grid.end, account_id=account_id,
                            limit=PAGE_LIMIT + 1)
        marks = query.content_marks(conn, workspace_id, [r["share_id"] for r in rows[:PAGE_LIMIT]])
    shares = [{**_share(r, zone), "mark": planner.content_mark(*marks.get(r["share_id"], (0, 0, 0)))}
              for r in rows[:PAGE_LIMIT]]
    days = planner.by_day(shares, lambda s: s["at"], zone)
    keep = {"view": view, **({"account_id": str(account_id)} if account_id else {})}

    def link(**changes: str) -> str:
        return "?" + urlencode({**keep, "date": anchor.isoformat(), **changes})

    weeks = [[{"day": d, "shares": days.get(d, []), "today": d == today, "in_month": grid.in_month(d),
               "week_link": link(view="week", date=d.isoformat())} for d in week] for week in grid.weeks]
    return {
        "grid": grid, "weeks": weeks, "title": title(grid), "states": STATES, "view": view, "anchor": anchor,
        "today": today,
        "zone_name": zone_name, "count": len(shares), "truncated": len(rows) > PAGE_LIMIT,
        "accounts": sorted(listed, key=lambda a: a.name.lower()), "account_id": account_id,
        "errors": errors, "month_day_shows": MONTH_DAY_SHOWS,
        "links": {"previous": link(date=grid.previous.isoformat()), "next": link(date=grid.next.isoformat()),
                  "today": link(date=today.isoformat()), "week": link(view="week"),
                  "month": link(view="month")},
    }


@router.get("/calendar", response_class=HTMLResponse)
def calendar_page(request: Request, who: SessionDep, svc: ServicesDep) -> HTMLResponse:
    data = page(svc, who.principal.workspace_id, _params(request))
    return _render(request, "calendar.html", who, "calendar", **data)
