"""/v1/calendar: the shares calendar for API clients, a workspace's shares placed by their
scheduled time in a window [from, to).

Named "planner" in the code: ``calendars.py`` beside it is the business-hours calendars
(``/v1/calendars``), unrelated. A share is placed at its ``scheduled_at``, sent or not: the
calendar shows the plan (the time a share was planned for, moved by a reschedule or a retry),
and ``sent_at`` says when it actually went out. That is also the order the read model's index
(``rm_shares (workspace_id, scheduled_at)``) serves.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from events.projections import planner as query
from scheduler.api.deps import Reader, ServicesDep
from scheduler.domain import planner
from scheduler.errors import InvalidInputError
from scheduler.services import accounts

router = APIRouter(prefix="/v1", tags=["calendar"])

# The longest window one request may ask for (a quarter), and the most shares one answer holds.
MAX_SPAN = timedelta(days=92)
MAX_LIMIT = 1000
DEFAULT_LIMIT = 500
EXAMPLE = "an ISO 8601 time with its offset (2026-12-07T00:00:00+01:00) or a date (2026-12-07, midnight UTC)"


def moment(value: str | None, field: str) -> datetime | None:
    """A window's edge: a time with its time zone, or a date (its midnight in UTC)."""
    if value is None:
        return None
    text = value.strip()
    try:
        found = (datetime.combine(date.fromisoformat(text), time(), UTC) if len(text) == 10
                 else datetime.fromisoformat(text))
    except ValueError:
        raise InvalidInputError(field, f"must be {EXAMPLE}") from None
    if found.tzinfo is None:
        raise InvalidInputError(field, f"has no time zone: give {EXAMPLE}")
    # far from the ends of the calendar, so that a week either side of it exists
    if not planner.FIRST_YEAR <= found.year <= planner.LAST_YEAR:
        raise InvalidInputError(field, f"must be in the years {planner.FIRST_YEAR} to {planner.LAST_YEAR}")
    return found.astimezone(UTC)


def window(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The window asked for: both edges; one edge and a week from it; or none and this week
    (Monday 00:00 UTC to the next). ``from`` before ``to``, at most 92 days apart."""
    if start is None and end is None:
        start = datetime.combine(planner.monday_of(now.astimezone(UTC).date()), time(), UTC)
    if start is None:
        assert end is not None
        start = end - timedelta(days=7)
    end = end or start + timedelta(days=7)
    if end <= start:
        raise InvalidInputError("to", "must be after from")
    if end - start > MAX_SPAN:
        raise InvalidInputError("to", f"must be at most {MAX_SPAN.days} days after from")
    return start, end


def entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["share_id"]),
        "account": {"id": str(row["account_id"]), "name": row["account_name"], "channel": row["channel"]},
        "status": row["status"],
        "scheduled_at": row["scheduled_at"].isoformat(),
        "sent_at": row["sent_at"].isoformat() if row["sent_at"] else None,
        "excerpt": planner.excerpt(row["text"]),
        "url": row["url"],
    }


@router.get("/calendar", operation_id="get_share_calendar")
def share_calendar(
    who: Reader,
    svc: ServicesDep,
    *,
    start: Annotated[str | None, Query(alias="from", max_length=64, description=(
        "the window's start, inclusive: " + EXAMPLE + "; omitted = Monday 00:00 UTC of this week, or `to` "
        "minus 7 days"))] = None,
    end: Annotated[str | None, Query(alias="to", max_length=64, description=(
        "the window's end, exclusive, after `from` and at most 92 days from it; omitted = `from` plus 7 days"
    ))] = None,
    account_id: Annotated[UUID | None, Query(description="only this account's shares")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="the most shares in one answer")] = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """The workspace's shares scheduled in [from, to), earliest first (ties by id), each placed
    at its `scheduled_at` whatever its status. At most `limit` shares: `truncated` says there
    were more (ask again from the last one's `scheduled_at`, or for a shorter window)."""
    first, after = window(moment(start, "from"), moment(end, "to"), svc.shares.clock())
    with svc.pool.connection() as conn:
        if account_id is not None:
            accounts.get_or_404(conn, who.workspace_id, account_id)
        rows = query.window(conn, who.workspace_id, start=first, end=after, account_id=account_id,
                            limit=limit + 1)
    return {
        "from": first.isoformat(),
        "to": after.isoformat(),
        "account_id": str(account_id) if account_id else None,
        "placed_by": "scheduled_at",
        "shares": [entry(r) for r in rows[:limit]],
        "truncated": len(rows) > limit,
    }
