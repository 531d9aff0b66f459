"""The shares calendar's one query: a workspace's shares scheduled in [from, to), in time
order, optionally of one account (``sql/planner.sql``). Named "planner", not "calendar":
the calendars elsewhere are business hours."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from events import sqlfiles
from events.ids import stream_id

Q = sqlfiles.load("events.projections.sql", "planner.sql")


def window(conn: psycopg.Connection[Any], workspace_id: str, *, start: datetime, end: datetime,
           account_id: UUID | None, limit: int) -> list[dict[str, Any]]:
    """At most ``limit`` rows, the earliest first (the text cut to 400 characters)."""
    cur = conn.execute(Q["window"], {"workspace_id": workspace_id, "from": start, "to": end,
                                     "account_id": account_id, "limit": limit})
    names = [c.name for c in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur]


def content_marks(conn: psycopg.Connection[Any], workspace_id: str,
                  share_ids: Sequence[UUID]) -> dict[UUID, tuple[int, int, int]]:
    """(parts, images, videos) of each share as planned; a share planned before threads and
    media were recorded counts (0, 0, 0)."""
    if not share_ids:
        return {}
    rows = conn.execute(Q["content_marks"], {"workspace_id": workspace_id,
                                             "streams": [stream_id(s) for s in share_ids]}).fetchall()
    return {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in rows}
