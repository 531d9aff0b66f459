"""The schedule rows of a share's follow-through, beyond what its events write: letting
the answer row go once nothing is pending, and the per-account budget of looks.

The answer row (kind ``answer``) is one per share: its answers go out one after the
other, under the share's call lease (``call_lease``, as a share's posts go out under the
``publish`` row's), so an answer whose outcome is unknown is looked for only when no
earlier request for it can still be in flight.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from events import sqlfiles
from scheduler.domain import share as lifecycle

Conn = psycopg.Connection[Any]
Q = sqlfiles.load("scheduler.services", "answer_queue.sql")


def release_answers(conn: Conn, share_id: UUID, *, version: int, next_at: datetime | None) -> bool:
    """The worker is done with the share's answers as of stream ``version``: drop the row,
    or make it due at ``next_at`` (a retry). False when the stream moved on meanwhile
    (an answer was asked for): the worker looks again."""
    with conn.transaction():
        conn.execute(Q["lock_answer_row"], {"share_id": share_id})
        head = conn.execute(Q["stream_head"], {"stream_id": lifecycle.stream_id(share_id)}).fetchone()
        if head is None or head[0] != version:
            return False
        if next_at is None:
            conn.execute(Q["answers_done"], {"share_id": share_id})
        else:
            conn.execute(Q["answers_later"], {"share_id": share_id, "due_at": next_at})
    return True


def postpone_look(conn: Conn, share_id: UUID, due_at: datetime) -> None:
    """The account's budget of looks is spent for this hour: look again at ``due_at``."""
    conn.execute(Q["postpone_look"], {"share_id": share_id, "due_at": due_at})


def take_look_budget(conn: Conn, account_id: UUID, now: datetime) -> int:
    """Count one look against the account's hour; returns the looks of that hour so far."""
    row = conn.execute(Q["take_look_budget"], {"account_id": account_id, "now": now}).fetchone()
    return int(row[0]) if row else 0
