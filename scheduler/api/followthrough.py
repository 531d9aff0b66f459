"""/v1/followthrough: the follow-through report (the rate is the database's
``followthrough_rate``; see ``events.projections.reports``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from events.projections import reports
from scheduler.api.deps import Reader, ServicesDep
from scheduler.api.schemas import Moment
from scheduler.errors import InvalidInputError

router = APIRouter(prefix="/v1", tags=["follow-through"])


@router.get("/followthrough", operation_id="get_followthrough")
def followthrough(
    who: Reader,
    svc: ServicesDep,
    *,
    by: Annotated[Literal["account", "owner", "channel", "day", "workspace", "post"], Query(
        description="post: the shares planned together by POST /v1/posts, keyed by the post's id")] = "account",
    start: Annotated[Moment | None, Query(alias="from", description="RFC 3339 with an offset")] = None,
    end: Annotated[Moment | None, Query(alias="to", description="RFC 3339 with an offset")] = None,
    hours: Annotated[Literal["all", "business", "off"], Query(
        description="reply figures of the replies written in (business) or out of (off) their owner's business "
        "hours, by the reply's own time")] = "all",
) -> dict[str, Any]:
    if start is not None and end is not None and end < start:
        raise InvalidInputError("to", "must not be before from")
    with svc.pool.connection() as conn:
        rows = reports.followthrough(conn, who.workspace_id, by=by, start=start, end=end, hours=hours)
        integrity = reports.sent_without_tasks(conn, who.workspace_id)
    return {
        "by": by,
        "from": start.isoformat() if start else None,
        "to": end.isoformat() if end else None,
        "hours": hours,
        "clock": reports.clock(rows),
        "rows": rows,
        "sent_shares_without_response_tasks": integrity,
    }
