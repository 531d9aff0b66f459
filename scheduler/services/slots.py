"""Queue slots in the database: which slots of an account shares hold (``slot_claims``),
and the lock under which a ``next_slot`` plan picks the first free one.

A claim is written in the share's planning transaction, after its ``SharePlanned``
(``slot: true``), and released in the transaction of the event that frees it
(``ShareCancelled``, or ``ShareRescheduled`` to another time): see ``share_stream``. The
log says the same (``released_by``), so the claims can always be told from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from events import sqlfiles
from events.catalogue import Event, ShareCancelled, SharePlanned, ShareRescheduled
from scheduler.domain import slots as slot_times
from scheduler.services.accounts import Account

Conn = psycopg.Connection[Any]
Q = sqlfiles.load("scheduler.services", "slots.sql")
# The first key of the two-key advisory lock: this lock's namespace ("slot" in hex-ish).
LOCK_CLASS = 0x5107


@contextmanager
def locked(conn: Conn, account_id: UUID) -> Iterator[None]:
    """Hold the account's slot lock on ``conn`` (a session lock, given back on the way out)."""
    params = {"class": LOCK_CLASS, "account_id": str(account_id)}
    conn.execute(Q["lock"], params)
    try:
        yield
    finally:
        with suppress(psycopg.OperationalError):  # a broken connection gave its locks back with it
            conn.execute(Q["unlock"], params)


def taken(conn: Conn, account_id: UUID, start: datetime, end: datetime) -> dict[datetime, UUID]:
    """The account's claimed slots in [start, end): slot instant -> the share holding it."""
    rows = conn.execute(Q["taken"], {"account_id": account_id, "start": start, "end": end}).fetchall()
    return {row[0]: UUID(str(row[1])) for row in rows}


def claim(conn: Conn, *, account_id: UUID, slot_at: datetime, workspace_id: str, share_id: UUID) -> None:
    conn.execute(Q["claim"], {"account_id": account_id, "slot_at": slot_at, "workspace_id": workspace_id,
                              "share_id": share_id})


def released_by(events: Iterable[Event]) -> list[datetime | None]:
    """What the events do to a share's slot: for each that may free it, the time the share
    keeps (a reschedule's; a slot at that very time stays held), None when it keeps none."""
    result: list[datetime | None] = []
    for event in events:
        if isinstance(event, ShareCancelled):
            result.append(None)
        elif isinstance(event, ShareRescheduled):
            result.append(event.scheduled_at)
    return result


def held_by(history: Iterable[Event]) -> datetime | None:
    """The slot a share holds by its history alone (the log's word for its claim): the time of
    a ``SharePlanned`` with ``slot``, until a cancel or a reschedule to another time."""
    held: datetime | None = None
    for event in history:
        if isinstance(event, SharePlanned):
            held = event.scheduled_at if event.slot else None
        elif held is not None and isinstance(event, ShareCancelled | ShareRescheduled):
            held = held if isinstance(event, ShareRescheduled) and event.scheduled_at == held else None
    return held


def release(conn: Conn, share_id: UUID, keep: datetime | None) -> None:
    conn.execute(Q["release"], {"share_id": share_id, "keep": keep})


def listing(conn: Conn, account: Account, start: datetime, end: datetime
            ) -> tuple[slot_times.Slots, list[tuple[datetime, UUID | None]]] | None:
    """The account's slots in [start, end), each with the share holding it (None: free);
    None when the account has no slots."""
    week = slot_times.from_config(account.config)
    if week is None:
        return None
    held = taken(conn, account.id, start, end)
    return week, [(at, held.get(at)) for at in slot_times.between(week, start, end)]
