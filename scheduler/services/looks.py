"""Every look at a share's thread, beside the log (``reply_looks``), and the look that
changed nothing.

A look is an event (``RepliesLooked``) only when it changed something
(``scheduler.domain.share.record_look``); then its next look is written to the schedule by
the unit of work that appends it, as every event's rows are, and ``count_look`` runs in
that same transaction. A look that changed nothing appends no event: ``look_again``
writes its next look to the schedule (or drops the row: no more looks) and counts it,
guarded as ``answer_queue.release_answers`` is: with the share's ``check_replies`` row
locked, it writes only while the stream is still at the version the look decided on.
Else it writes nothing and the caller decides again on the newer state.

The schedule and ``reply_looks`` are not projections of the log: ``projections rebuild``
leaves them as they are. Were the schedule ever replayed from the log, a share's
``check_replies`` row would come back at its last recorded look's next time (past by
then): the look made at once writes the next one from the cadence and the clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from events import sqlfiles
from events.catalogue import RepliesLooked
from scheduler.domain import share as lifecycle
from scheduler.domain.share import LookLedger

Conn = psycopg.Connection[Any]
Q = sqlfiles.load("scheduler.services", "looks.sql")


def ledger(conn: Conn, share_id: UUID) -> LookLedger | None:
    """Every look at the share's thread so far (None: no look counted beside the log yet)."""
    row = conn.execute(Q["ledger"], {"share_id": share_id}).fetchone()
    return None if row is None else LookLedger(*row)


def ledgers(conn: Conn, share_ids: list[UUID]) -> dict[UUID, LookLedger]:
    rows = conn.execute(Q["looks_of_shares"], {"share_ids": share_ids}).fetchall()
    return {row[0]: LookLedger(*row[1:]) for row in rows}


def count_look(conn: Conn, *, share_id: UUID, workspace_id: str, looked: RepliesLooked, looks_before: int) -> None:
    """Count one look (``looks_before``: the looks the share had, counted or recorded,
    where it has no row yet). No result is read: it may run in a pipeline."""
    conn.execute(Q["count_look"], {
        "share_id": share_id, "workspace_id": workspace_id, "looks": looks_before + 1,
        "looked_at": looked.looked_at, "next_look_at": looked.next_look_at, "empty_looks": looked.empty_looks,
        "error": looked.error})


def look_again(conn: Conn, *, share_id: UUID, workspace_id: str, version: int, looked: RepliesLooked,
               looks_before: int) -> bool:
    """A look that changed nothing, decided on stream ``version``: its next look on the
    schedule (none: the row goes) and the look counted, in one transaction. False (nothing
    written) when the stream moved on meanwhile: decide again on the newer state."""
    at: datetime = looked.next_look_at or looked.looked_at
    params = {"share_id": share_id, "workspace_id": workspace_id, "due_at": at}
    with conn.transaction():
        conn.execute(Q["hold_look_row"], params)
        conn.execute(Q["lock_look_row"], params)
        head = conn.execute(Q["stream_head"], {"stream_id": lifecycle.stream_id(share_id)}).fetchone()
        if head is None or head[0] != version:
            moved_on = True
            raise psycopg.Rollback()
        moved_on = False
        if looked.next_look_at is None:
            conn.execute(Q["looks_done"], params)
        else:
            conn.execute(Q["look_later"], params)
        count_look(conn, share_id=share_id, workspace_id=workspace_id, looked=looked, looks_before=looks_before)
    return not moved_on
