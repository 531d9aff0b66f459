"""A share's call lease: the one rule that makes a look-up for an unknown outcome mean
something, for posts and answers alike.

An attempt calls the network only while it holds its share's lease (the ``publish`` or
``answer`` schedule row names the attempt and until when), for longer than a request can
take; another attempt may start (or look) only once that lease has run out, when no earlier
request can still be in flight. The keeper (``workers.lease``) extends it right before
every request that may publish.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal
from uuid import UUID

import psycopg

from events import sqlfiles
from events.connection import CUSTOM_PLAN

Conn = psycopg.Connection[Any]
Kind = Literal["publish", "answer"]
Q = sqlfiles.load("scheduler.services", "call_lease.sql")


def claim(conn: Conn, kind: Kind, attempts: Sequence[tuple[UUID, int]], *, budget_seconds: float,
          same_attempt: bool = False) -> set[UUID]:
    """Take each share's lease for its attempt; returns the shares taken. A share whose lease
    another attempt holds, not yet run out, is left out (``same_attempt``: unless the holder
    is this very attempt)."""
    if not attempts:
        return set()
    rows = conn.execute(Q["claim"], {
        "kind": kind,
        "share_ids": [share_id for share_id, _ in attempts],
        "attempts": [attempt for _, attempt in attempts],
        "budget": budget_seconds,
        "same_attempt": same_attempt,
    }, prepare=CUSTOM_PLAN).fetchall()
    return {row[0] for row in rows}


def extend(conn: Conn, kind: Kind, share_id: UUID, attempt: int, *, budget_seconds: float) -> bool:
    """Extend the lease ``attempt`` holds so it covers the next request. False when another
    attempt has taken the lease over."""
    row = conn.execute(Q["extend"], {"kind": kind, "share_id": share_id, "attempt": attempt,
                                     "budget": budget_seconds}).fetchone()
    return row is not None
