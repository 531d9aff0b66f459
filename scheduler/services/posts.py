"""Posts in the database: which shares a post made (``post_shares``, migration 0026).

A post is no stream of its own: each of its shares records it (``SharePlanned.post_id``),
and this index, written in the transaction that plans them, finds them all without
waiting for the read models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg

from events import sqlfiles

Conn = psycopg.Connection[Any]
Q = sqlfiles.load("scheduler.services", "posts.sql")


def index(conn: Conn, *, post_id: UUID, workspace_id: str, share_ids: Sequence[UUID]) -> None:
    conn.execute(Q["index"], {"post_id": post_id, "workspace_id": workspace_id, "share_ids": list(share_ids)})


def shares_of(conn: Conn, workspace_id: str, post_id: UUID) -> list[UUID]:
    """The post's shares in the request's order; none for another workspace's post."""
    rows = conn.execute(Q["shares_of"], {"post_id": post_id, "workspace_id": workspace_id}).fetchall()
    return [UUID(str(row[0])) for row in rows]
