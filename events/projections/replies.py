"""The queries over the replies read model (``rm_replies``: the inbox of ``GET
/v1/replies``): the inbox page and the reply figures of the follow-through rows. The
rows are the shares model's (``shares_fold`` with ``replies_fold``), kept by the
shares projection, which needs the reply events named in ``TYPES``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
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

__all__ = ["TYPES", "Later", "desk", "desk_later", "figures", "inbox", "owners_and_people_later", "people_of_reply",
           "reply_answer", "share_of_reply", "thread_above"]

Q = sqlfiles.load("events.projections.sql", "replies.sql")
T = TypeVar("T")
# A query sent, its rows read when called (the ``*_later`` functions: several sent in a pipeline).
Later = Callable[[], T]
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


def desk_params(workspace_id: str, *, state: str | None = None, account_id: UUID | None = None,
                owner: str | None = None, share_id: UUID | None = None, limit: int, offset: int = 0,
                assignee: str | None = None, at_risk: float = 0.75,
                reply_sla_seconds: float = 86_400.0) -> dict[str, Any]:
    """The parameters of the page's query (``desk``), every one named (a test plans the query
    with them)."""
    return {"workspace_id": workspace_id, "state": state, "account_id": account_id, "owner": owner,
            "assignee": assignee, "share_id": share_id, "limit": limit, "offset": offset, "at_risk": at_risk,
            "reply_sla_seconds": reply_sla_seconds}


def desk(
    conn: psycopg.Connection[Any],
    workspace_id: str,
    *,
    state: str | None,
    account_id: UUID | None,
    owner: str | None,
    share_id: UUID | None,
    limit: int,
    offset: int = 0,
    assignee: str | None = None,
    at_risk: float = 0.75,
    reply_sla_seconds: float = 86_400.0,
) -> list[dict[str, Any]]:
    """The replies page: unanswered first (breached, at risk, then newest), with the post
    each reply's thread hangs under."""
    return desk_later(conn, workspace_id, state=state, account_id=account_id, owner=owner, share_id=share_id,
                      limit=limit, offset=offset, assignee=assignee, at_risk=at_risk,
                      reply_sla_seconds=reply_sla_seconds)()


def desk_later(conn: psycopg.Connection[Any], workspace_id: str, *, state: str | None, account_id: UUID | None,
               owner: str | None, share_id: UUID | None, limit: int, offset: int = 0, assignee: str | None = None,
               at_risk: float = 0.75, reply_sla_seconds: float = 86_400.0) -> Later[list[dict[str, Any]]]:
    """``desk`` sent now, read when called: in a pipeline (``conn.pipeline()``), sent with the
    page's other reads and all of them answered in one round trip."""
    cur = conn.execute(Q["desk"], desk_params(
        workspace_id, state=state, account_id=account_id, owner=owner, share_id=share_id, limit=limit,
        offset=offset, assignee=assignee, at_risk=at_risk, reply_sla_seconds=reply_sla_seconds))
    return lambda: _dicts(cur)


def _dicts(cur: psycopg.Cursor[Any]) -> list[dict[str, Any]]:
    rows = cur.fetchall()  # fetch first: in a pipeline the description comes with the results
    names = [c.name for c in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in rows]


def thread_above(conn: psycopg.Connection[Any], workspace_id: str,
                 parents: list[tuple[UUID, str]]) -> dict[tuple[UUID, str], dict[str, Any]]:
    """The replies above ``parents`` ((share id, network id of a parent)) up to the share's
    post, keyed by (share id, network id)."""
    if not parents:
        return {}
    cur = conn.execute(Q["thread_above"], {"workspace_id": workspace_id, "share_ids": [p[0] for p in parents],
                                           "parent_ids": [p[1] for p in parents]})
    names = [c.name for c in cur.description or ()]
    rows = [dict(zip(names, row, strict=True)) for row in cur]
    return {(r["share_id"], r["network_reply_id"]): r for r in rows}


def owners_and_people_later(conn: psycopg.Connection[Any], workspace_id: str,
                            ) -> Later[tuple[list[str], list[str]]]:
    """The replies page's owners (of tasks: its owner filter) and people (whom a reply can be
    assigned to: owners of tasks and of tokens, and past assignees), in one read of the tasks,
    sent now and read when called."""
    cur = conn.execute(Q["owners_and_people"], {"workspace_id": workspace_id})

    def read() -> tuple[list[str], list[str]]:
        rows = cur.fetchall()
        return [str(r[0]) for r in rows if r[1]], [str(r[0]) for r in rows]

    return read


def reply_answer(conn: psycopg.Connection[Any], workspace_id: str, reply_id: UUID,
                 ) -> tuple[str, str | None, str | None] | None:
    """A reply's state, its answer's status and its assignee as the read model has them."""
    row = conn.execute(Q["reply_answer"], {"id": reply_id, "workspace_id": workspace_id}).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def share_of_reply(conn: psycopg.Connection[Any], workspace_id: str, reply_id: UUID) -> tuple[UUID, str] | None:
    row = conn.execute(Q["share_of_reply"], {"id": reply_id, "workspace_id": workspace_id}).fetchone()
    return None if row is None else (row[0], row[1])


def people_of_reply(conn: psycopg.Connection[Any], workspace_id: str, reply_id: UUID,
                    ) -> tuple[str, str | None, str] | None:
    """A reply's author (handle, shown name) and its share's account name."""
    row = conn.execute(Q["people_of_reply"], {"id": reply_id, "workspace_id": workspace_id}).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def figures(conn: psycopg.Connection[Any], workspace_id: str, *, by: str, start: datetime | None,
            end: datetime | None, hours: str = "all") -> dict[str, dict[str, Any]]:
    """Reply figures per follow-through key (``hours``: all, business or off, by each
    reply's own time in its owner's calendar)."""
    cur = conn.execute(Q["reply_figures"], {"workspace_id": workspace_id, "by": by, "from": start, "to": end,
                                            "hours": hours})
    names = [c.name for c in cur.description or ()]
    rows = [dict(zip(names, row, strict=True)) for row in cur]
    return {str(r.pop("key")): r for r in rows}
