"""A workspace's saved replies: save (names unique per workspace), list, delete, and the
text of one filled for the reply it answers (``{author}``, ``{account}``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg

from events import sqlfiles
from events.projections import replies as inbox
from scheduler.domain import saved_replies as saved
from scheduler.errors import ConflictError, NotFoundError

Q = sqlfiles.load("scheduler.services", "saved_replies.sql")
MAX_PER_WORKSPACE = 50  # a picker, not a library; and the page carries each one filled for every reply shown


@dataclass(frozen=True, slots=True)
class SavedReply:
    id: UUID
    name: str
    text: str
    created_by: str | None
    created_at: datetime


def _saved(row: Any) -> SavedReply:
    return SavedReply(id=row[0], name=row[1], text=row[2], created_by=row[3], created_at=row[4])


def save(conn: psycopg.Connection[Any], workspace_id: str, *, name: str, text: str, by: str | None) -> SavedReply:
    """A new saved reply; refused (422 naming the field) for a bad name or text or an unknown
    placeholder, and (409) when the workspace has one of that name."""
    name, text = saved.check_name(name), saved.check_text(text)
    with conn.transaction():
        count = conn.execute(Q["count"], {"workspace_id": workspace_id}).fetchone()
        if count is not None and int(count[0]) >= MAX_PER_WORKSPACE:
            raise ConflictError(f"a workspace has at most {MAX_PER_WORKSPACE} saved replies; delete one first")
        row = conn.execute(Q["insert"], {"id": uuid4(), "workspace_id": workspace_id, "name": name, "text": text,
                                         "created_by": by}).fetchone()
    if row is None:
        raise ConflictError(f"a saved reply named {name!r} exists in this workspace; delete it first or "
                            "choose another name", field="name")
    return _saved(row)


def list_all(conn: psycopg.Connection[Any], workspace_id: str) -> list[SavedReply]:
    return list_all_later(conn, workspace_id)()


def list_all_later(conn: psycopg.Connection[Any], workspace_id: str) -> Callable[[], list[SavedReply]]:
    """``list_all`` sent now, read when called (in a pipeline: with other reads in one round trip)."""
    cur = conn.execute(Q["list"], {"workspace_id": workspace_id})
    return lambda: [_saved(r) for r in cur.fetchall()]


def get(conn: psycopg.Connection[Any], workspace_id: str, saved_reply_id: UUID) -> SavedReply:
    row = conn.execute(Q["get"], {"workspace_id": workspace_id, "id": saved_reply_id}).fetchone()
    if row is None:
        raise NotFoundError("saved reply", str(saved_reply_id))
    return _saved(row)


def delete(conn: psycopg.Connection[Any], workspace_id: str, saved_reply_id: UUID) -> None:
    with conn.transaction():
        if conn.execute(Q["delete"], {"workspace_id": workspace_id, "id": saved_reply_id}).fetchone() is None:
            raise NotFoundError("saved reply", str(saved_reply_id))


def values_for(author: str, author_name: str | None, account_name: str) -> dict[str, str]:
    """The placeholders' values for a reply, as shown on the replies page."""
    return {"author": saved.author_of(author, author_name), "account": account_name}


def filled(conn: psycopg.Connection[Any], workspace_id: str, saved_reply_id: UUID, reply_id: UUID) -> str:
    """The saved reply's text filled for this reply (its author, its share's account)."""
    chosen = get(conn, workspace_id, saved_reply_id)
    found = inbox.people_of_reply(conn, workspace_id, reply_id)
    if found is None:
        raise NotFoundError("reply", str(reply_id))
    return saved.fill(chosen.text, values_for(*found))
