"""The queries over the replies read model (``rm_replies``: the inbox of ``GET
/v1/replies``): the inbox page and the reply figures of the follow-through rows. The
rows are the shares model's (``shares_fold`` with ``replies_fold``), kept by the
shares projection, which needs the reply events named in ``TYPES``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from events import sqlfiles
from events.catalogue import (
    RepliesLooked,
    ReplyAnswerAttemptStarted,
    ReplyAnswered,
    ReplyAnswerFailed,
    ReplyAnswerRequested,
    ReplyAssigned,
    ReplyDismissed,
)

__all__ = ["TYPES", "figures", "inbox", "share_of_reply"]

Q = sqlfiles.load("events.projections.sql", "replies.sql")
TYPES = frozenset(cls.type_name for cls in (RepliesLooked, ReplyAnswerRequested, ReplyAnswerAttemptStarted,
                                            ReplyAnswered, ReplyAnswerFailed, ReplyDismissed, ReplyAssigned))


def inbox(
    conn: psycopg.Connection[Any],
    workspace_id: str,
    *,
    state: str | None,
    account_id: UUID | None,
    owner: str | None,
    share_id: UUID | None,
    assignee: str | None = None,
    cursor: tuple[datetime, UUID] | None,
    limit: int,
    at_risk: float = 0.75,
    reply_sla_seconds: float = 86_400.0,
) -> list[dict[str, Any]]:
    cur = conn.execute(Q["inbox"], {
        "workspace_id": workspace_id, "state": state, "account_id": account_id, "owner": owner, "assignee": assignee,
        "share_id": share_id, "cursor_at": cursor[0] if cursor else None, "cursor_id": cursor[1] if cursor else None,
        "limit": limit, "at_risk": at_risk, "reply_sla_seconds": reply_sla_seconds,
    })
    names = [c.name for c in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur]


def share_of_reply(conn: psycopg.Connection[Any], workspace_id: str, reply_id: UUID) -> tuple[UUID, str] | None:
    row = conn.execute(Q["share_of_reply"], {"id": reply_id, "workspace_id": workspace_id}).fetchone()
    return None if row is None else (row[0], row[1])


def figures(conn: psycopg.Connection[Any], workspace_id: str, *, by: str, start: datetime | None,
            end: datetime | None, hours: str = "all") -> dict[str, dict[str, Any]]:
    """Reply figures per follow-through key (``hours``: all, business or off, by each
    reply's own time in its owner's calendar)."""
    cur = conn.execute(Q["reply_figures"], {"workspace_id": workspace_id, "by": by, "from": start, "to": end,
                                            "hours": hours})
    names = [c.name for c in cur.description or ()]
    rows = [dict(zip(names, row, strict=True)) for row in cur]
    return {str(r.pop("key")): r for r in rows}
