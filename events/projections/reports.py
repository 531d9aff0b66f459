"""Queries over the read models: follow-through, the inbox, integrity, share lists."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import psycopg

from events import sqlfiles
from events.projections import replies

Q = sqlfiles.load("events.projections.sql", "reports.sql")
GroupBy = Literal["account", "owner", "channel", "day", "week", "workspace", "post"]
Hours = Literal["all", "business", "off"]
# The clock of the reported times. Time to respond and to first look are in wall-clock
# seconds; time to answer too, except for a reply answered for a business step (its
# ``answer_replies`` task on the business clock), counted in its owner's business seconds
# (``reply_answer_time``, migration 0016). Each row says its ``clock_to_answer`` (wall,
# business, mixed; None without answers), the report ``wall`` or, when any row counts
# business time, ``mixed``.
WALL = "wall"
MIXED = "mixed"

# The follow-through rate is defined once, in the database (migration 0011):
#   followthrough_rate(done_on_time, done_late, overdue)
#     = done_on_time / (done_on_time + done_late + overdue), NULL (no rate) when the sum is 0.
# Every reader calls it: these reports (the API's /v1/followthrough, the dashboard and the
# CLI report), /metrics (metrics.sql), the followthrough_daily view and the Grafana panels
# (k8s/grafana.py). Only the audit (scheduler/services/recount.py) recounts it by its own
# path, to compare. A test holds every reader to it (tests/integration/test_followthrough_rate.py).
RATE_FUNCTION = "followthrough_rate"


def followthrough(
    conn: psycopg.Connection[Any],
    workspace_id: str,
    *,
    by: GroupBy,
    start: datetime | None = None,
    end: datetime | None = None,
    hours: Hours = "all",
) -> list[dict[str, Any]]:
    """Follow-through per key; ``hours`` narrows the reply figures to the replies written in
    (business) or out of (off) their owner's business hours."""
    cur = conn.execute(Q["followthrough"], {"workspace_id": workspace_id, "by": by, "from": start, "to": end})
    names = [c.name for c in cur.description or ()]
    rows = [dict(zip(names, row, strict=True)) for row in cur]
    merged = _with_replies(rows, replies.figures(conn, workspace_id, by=by, start=start, end=end, hours=hours))
    return _with_engagement(merged, engagement(conn, workspace_id, by=by, start=start, end=end),
                            NO_ENGAGEMENT if by != "owner" else OWNER_ENGAGEMENT)


def engagement(conn: psycopg.Connection[Any], workspace_id: str, *, by: str, start: datetime | None,
               end: datetime | None) -> dict[str, dict[str, int]]:
    """Engagement totals per key (``engagement_daily``, migration 0018): the counts the looks
    last recorded of the posts sent on the days in the period. None by owner."""
    cur = conn.execute(Q["engagement"], {"workspace_id": workspace_id, "by": by, "from": start, "to": end})
    names = [c.name for c in cur.description or ()]
    found = [dict(zip(names, row, strict=True)) for row in cur]
    return {str(r.pop("key")): {k: int(v) for k, v in r.items()} for r in found}


NO_REPLIES = {"replies_received": 0, "replies_answered": 0, "median_seconds_to_answer": None,
              "p90_seconds_to_answer": None, "clock_to_answer": None}
NO_TASKS = {"open": 0, "done_on_time": 0, "done_late": 0, "overdue": 0, "rate": None,
            "median_seconds_to_complete": None, "p90_seconds_to_complete": None,
            "median_seconds_to_first_look": None}

NO_ENGAGEMENT: dict[str, int | None] = {"engagement_replies": 0, "engagement_reposts": 0, "engagement_likes": 0,
                                        "engagement_quotes": 0}
OWNER_ENGAGEMENT: dict[str, int | None] = dict.fromkeys(NO_ENGAGEMENT)  # a post's counts have no owner


def _with_engagement(rows: list[dict[str, Any]], totals: dict[str, dict[str, int]],
                     none: dict[str, int | None]) -> list[dict[str, Any]]:
    """Each row with its engagement totals; a key with engagement but neither tasks nor
    replies in the period gets a row of its own."""
    merged = [{**row, **totals.get(str(row["key"]), none)} for row in rows]
    keys = {str(row["key"]) for row in rows}
    merged += [{"key": key, **NO_TASKS, **NO_REPLIES, **found} for key, found in totals.items() if key not in keys]
    return sorted(merged, key=lambda row: str(row["key"]))


def _with_replies(rows: list[dict[str, Any]], figures: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with its replies received and answered (and time to answer); a key with
    replies but no task due in the period gets a row of its own."""
    merged = [{**row, **figures.get(str(row["key"]), NO_REPLIES)} for row in rows]
    keys = {str(row["key"]) for row in rows}
    merged += [{"key": key, **NO_TASKS, **found} for key, found in figures.items() if key not in keys]
    return sorted(merged, key=lambda row: str(row["key"]))


def inbox(
    conn: psycopg.Connection[Any],
    workspace_id: str,
    *,
    states: list[str],
    owner: str | None,
    limit: int,
    at_risk: float = 0.75,
) -> list[dict[str, Any]]:
    cur = conn.execute(Q["inbox"], {"workspace_id": workspace_id, "states": states, "owner": owner, "limit": limit,
                                    "at_risk": at_risk})
    return [
        {
            "id": str(r[0]),
            "share_id": str(r[1]),
            "account_name": r[2],
            "channel": r[3],
            "kind": r[4],
            "owner": r[5],
            "due_at": r[6].isoformat() if r[6] else None,
            "status": r[7],
            "completed_at": r[8].isoformat() if r[8] else None,
            "sla": r[9],
        }
        for r in cur
    ]


def clock(rows: list[dict[str, Any]]) -> str:
    """The clock of a report's figures: ``wall``, or ``mixed`` when a row's time to answer
    counts business time."""
    return MIXED if any(row.get("clock_to_answer") not in (None, WALL) for row in rows) else WALL


def sent_without_tasks(conn: psycopg.Connection[Any], workspace_id: str) -> int:
    row = conn.execute(Q["integrity"], {"workspace_id": workspace_id}).fetchone()
    return int(row[0]) if row else 0


def shares(conn: psycopg.Connection[Any], workspace_id: str, *, status: str | None, limit: int) -> list[dict[str, Any]]:
    cur = conn.execute(Q["shares"], {"workspace_id": workspace_id, "status": status, "limit": limit})
    return [
        {
            "id": str(r[0]),
            "account_name": r[1],
            "channel": r[2],
            "status": r[3],
            "scheduled_at": r[4].isoformat(),
            "sent_at": r[5].isoformat() if r[5] else None,
            "lateness_ms": r[6],
            "attempts": r[7],
            "url": r[8],
        }
        for r in cur
    ]
