"""The replies read model (``rm_replies``: the inbox of ``GET /v1/replies``) and the
share's follow-through columns of ``rm_shares`` (answered count, looks). Kept by the
shares projection's runner, so a reply's share row is always there before it.

Also the queries over it: the inbox page and the reply figures of the follow-through rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from events import sqlfiles
from events.catalogue import (
    Event,
    RepliesLooked,
    ReplyAnswerAttemptStarted,
    ReplyAnswered,
    ReplyAnswerFailed,
    ReplyAnswerRequested,
    ReplyDismissed,
    ResponseReceived,
)
from events.projections.replies_fold import reply_uuid

__all__ = ["TYPES", "apply", "figures", "inbox", "reply_uuid", "share_of_reply"]

Q = sqlfiles.load("events.projections.sql", "replies.sql")
TYPES = frozenset(cls.type_name for cls in (RepliesLooked, ReplyAnswerRequested, ReplyAnswerAttemptStarted,
                                            ReplyAnswered, ReplyAnswerFailed, ReplyDismissed))


def apply(cur: psycopg.Cursor[Any], event: Event, base: dict[str, Any]) -> None:
    """One follow-through event; ``base`` holds ``share_id``, ``version`` and ``at``."""
    share_id = base["share_id"]
    reply = getattr(event, "reply_id", None)
    key = {"id": reply_uuid(share_id, reply)} if isinstance(reply, str) else {}
    match event:
        case ResponseReceived():
            cur.execute(Q["received"], {**base, **key, "reply_id": event.reply_id, "parent_id": event.parent_id,
                                        "author": event.author, "text": event.text, "url": event.url,
                                        "received_at": event.received_at,
                                        "collected_at": event.collected_at or event.received_at})
        case RepliesLooked():
            cur.execute(Q["looked"], {**base, "looked_at": event.looked_at, "next_look_at": event.next_look_at,
                                      "collected": event.collected})
        case ReplyAnswerRequested():
            cur.execute(Q["answer_requested"], {**key, "text": event.text, "by": event.requested_by})
        case ReplyAnswerAttemptStarted():
            cur.execute(Q["answer_status"], {**key, "status": "sending", "error": None})
        case ReplyAnswerFailed():
            status = "failed" if event.next_attempt_at is not None else "given_up"
            cur.execute(Q["answer_status"], {**key, "status": status, "error": event.reason})
        case ReplyAnswered():
            cur.execute(Q["answered"], {**key, "url": event.url, "external_id": event.external_id,
                                        "answered_at": event.answered_at, "native": event.native})
            if cur.fetchone() is not None:
                cur.execute(Q["share_answered"], base)
        case ReplyDismissed():
            cur.execute(Q["dismissed"], {**key, "dismissed_at": event.dismissed_at, "reason": event.reason,
                                         "by": event.dismissed_by})


def inbox(
    conn: psycopg.Connection[Any],
    workspace_id: str,
    *,
    state: str | None,
    account_id: UUID | None,
    owner: str | None,
    share_id: UUID | None,
    cursor: tuple[datetime, UUID] | None,
    limit: int,
) -> list[dict[str, Any]]:
    cur = conn.execute(Q["inbox"], {
        "workspace_id": workspace_id, "state": state, "account_id": account_id, "owner": owner,
        "share_id": share_id, "cursor_at": cursor[0] if cursor else None, "cursor_id": cursor[1] if cursor else None,
        "limit": limit,
    })
    names = [c.name for c in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur]


def share_of_reply(conn: psycopg.Connection[Any], workspace_id: str, reply_id: UUID) -> tuple[UUID, str] | None:
    row = conn.execute(Q["share_of_reply"], {"id": reply_id, "workspace_id": workspace_id}).fetchone()
    return None if row is None else (row[0], row[1])


def figures(conn: psycopg.Connection[Any], workspace_id: str, *, by: str, start: datetime | None,
            end: datetime | None) -> dict[str, dict[str, Any]]:
    """Reply figures per follow-through key."""
    cur = conn.execute(Q["reply_figures"], {"workspace_id": workspace_id, "by": by, "from": start, "to": end})
    names = [c.name for c in cur.description or ()]
    rows = [dict(zip(names, row, strict=True)) for row in cur]
    return {str(r.pop("key")): r for r in rows}
