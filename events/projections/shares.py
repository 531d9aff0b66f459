"""The shares read model (``rm_shares``), the response inbox (``rm_response_tasks``)
and the replies inbox (``rm_replies``, kept through ``replies``).

Documented read API: dashboards read these tables and the views over them
(``response_inbox``, ``followthrough_daily``, ``integrity``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from events import sqlfiles
from events.catalogue import (
    DuplicatePosted,
    DuplicateRemoved,
    ResponseReceived,
    ResponseTaskCompleted,
    ResponseTasksCancelled,
    ResponseTasksRecorded,
    ShareAbandoned,
    ShareAttemptStarted,
    ShareCancelled,
    ShareFailed,
    ShareHeld,
    SharePlanned,
    ShareRescheduled,
    ShareSent,
)
from events.projections import replies
from events.projections.shares_fold import (
    REPLY_COLUMNS,
    SHARE_COLUMNS,
    TASK_COLUMNS,
    Row,
    SharesFold,
    share_id_of,
)
from events.records import RecordedEvent

Q = sqlfiles.load("events.projections.sql", "shares.sql")

__all__ = ["SharesProjection", "share_id_of"]

# The columns a rebuild writes, per table (every column the live statements keep).
COLUMNS: Mapping[str, Sequence[str]] = {
    "rm_shares": SHARE_COLUMNS, "rm_response_tasks": TASK_COLUMNS, "rm_replies": REPLY_COLUMNS,
}


class SharesProjection:
    name = "shares"
    types: frozenset[str] | None = frozenset(
        cls.type_name
        for cls in (
            SharePlanned,
            ShareRescheduled,
            ShareCancelled,
            ShareAttemptStarted,
            ResponseTasksRecorded,
            ShareSent,
            ShareFailed,
            ShareHeld,
            ShareAbandoned,
            ResponseTasksCancelled,
            ResponseTaskCompleted,
            ResponseReceived,
            DuplicatePosted,
            DuplicateRemoved,
        )
    ) | replies.TYPES
    # The tables it owns, in the order a rebuild builds them and locks them for the swap:
    # the order readers take them in (rm_shares before its tasks; the replies inbox reads
    # rm_replies, then rm_response_tasks), so a reader never holds one the swap waits for.
    tables = ("rm_shares", "rm_replies", "rm_response_tasks")
    # Each row derives from its share's stream alone (the share, its tasks, its replies).
    partition_by_stream = True

    def apply(self, conn: psycopg.Connection[Any], events: Sequence[RecordedEvent]) -> None:
        # One cursor for the batch: a fresh one per statement costs more than the
        # statement's own client work.
        cur = conn.cursor()
        for recorded in events:
            self._apply_one(cur, recorded)

    def _apply_one(self, cur: psycopg.Cursor[Any], r: RecordedEvent) -> None:
        base = {"share_id": share_id_of(r.stream_id), "version": r.stream_version, "at": r.recorded_at}
        event = r.event
        match event:
            case SharePlanned():
                cur.execute(Q["planned"], {
                    **base, "workspace_id": r.workspace_id, "account_id": event.account_id,
                    "account_name": event.account_name, "channel": event.channel, "text": event.text,
                    "scheduled_at": event.scheduled_at,
                })
            case ShareRescheduled():
                cur.execute(Q["rescheduled"], {**base, "scheduled_at": event.scheduled_at})
            case ShareCancelled():
                cur.execute(Q["status"], {**base, "status": "cancelled", "error": None})
            case ShareHeld():
                cur.execute(Q["status"], {**base, "status": "held", "error": event.reason})
            case ShareAbandoned():
                cur.execute(Q["status"], {**base, "status": "abandoned", "error": event.reason})
            case ShareAttemptStarted():
                cur.execute(Q["attempt_started"], {**base, "attempt": event.attempt})
            case ResponseTasksRecorded():
                cur.execute(Q["tasks_recorded"], base)
                for task in event.tasks:
                    cur.execute(Q["task_insert"], {**base, "task_id": task.task_id, "kind": task.kind,
                                                   "owner": task.owner, "after_seconds": task.after_seconds})
            case ShareSent():
                cur.execute(Q["sent"], {**base, "sent_at": event.sent_at, "lateness_ms": event.lateness_ms,
                                        "url": event.url, "external_id": event.external_id, "attempt": event.attempt})
                cur.execute(Q["tasks_open"], {**base, "sent_at": event.sent_at})
            case ShareFailed():
                cur.execute(Q["failed"], {**base, "reason": event.reason, "next_attempt_at": event.next_attempt_at})
            case ResponseTasksCancelled():
                cur.execute(Q["tasks_cancelled"], {"task_ids": list(event.task_ids)})
                cur.execute(Q["touch"], base)
            case ResponseTaskCompleted():
                cur.execute(Q["task_completed"], {"task_id": event.task_id, "completed_at": event.completed_at,
                                                  "completed_by": event.completed_by})
                cur.execute(Q["touch"], base)
            case ResponseReceived():
                cur.execute(Q["reply"], base)
                replies.apply(cur, event, base)
            case DuplicatePosted():
                cur.execute(Q["duplicate_posted"], base)
            case DuplicateRemoved():
                cur.execute(Q["duplicate_removed"], base)
            case _:
                replies.apply(cur, event, base)

    # --- rebuilding ---------------------------------------------------------------

    def rebuilder(
        self, conn: psycopg.Connection[Any], tables: Mapping[str, str], *, resume: bool = False
    ) -> SharesRebuilder:
        return SharesRebuilder(conn, tables, resume=resume)


class SharesRebuilder:
    """Builds the shares model into the tables named in ``tables`` (live name -> table
    being built), in bulk: events are folded in memory (``SharesFold``, equal in
    effect to the live statements above) over the shares in flight, and a share's
    rows are written (COPY) once it has gone ``KEEP_WINDOWS`` windows untouched, so
    most shares are written once and memory holds only the shares in flight. A
    share touched again after it was written is read back (and its rows deleted);
    with ``resume`` (tables that other processes filled), any share not in memory is."""

    KEEP_WINDOWS = 3

    def __init__(self, conn: psycopg.Connection[Any], tables: Mapping[str, str], *, resume: bool = False) -> None:
        self._conn = conn
        _check_columns(conn, tables, COLUMNS)
        self._shares = sql.Identifier(tables["rm_shares"])
        self._tasks = sql.Identifier(tables["rm_response_tasks"])
        self._replies = sql.Identifier(tables["rm_replies"])
        # Rows go out in COPY's binary format, each value dumped in C by its column's type
        # (measured 3.3 µs a share row against 9.1 µs as text).
        self._copies = [
            (table, columns, _column_types(conn, tables[live], columns))
            for live, table, columns in (("rm_shares", self._shares, SHARE_COLUMNS),
                                         ("rm_response_tasks", self._tasks, TASK_COLUMNS),
                                         ("rm_replies", self._replies, REPLY_COLUMNS))
        ]
        self._fold = SharesFold()
        self._last_window: dict[str, int] = {}  # in memory: stream -> the last window that touched it
        # The streams whose rows are in the tables, not in memory (None: any may be).
        self._written: set[str] | None = None if resume else set()
        self._window = 0

    def apply(self, events: Sequence[RecordedEvent]) -> None:
        """Fold one window of events (in log order), writing the shares it leaves behind."""
        self._window += 1
        touched = dict.fromkeys([r.stream_id for r in events])
        written = self._written
        if written is None:
            self._read_back([s for s in touched if s not in self._last_window])
        elif written:
            self._read_back([s for s in touched if s in written])
        self._fold.apply(events)
        last = self._last_window
        for stream_id in touched:
            last.pop(stream_id, None)
            last[stream_id] = self._window  # insertion order: least recently touched first
        done = []
        for stream_id, window in last.items():
            if window > self._window - self.KEEP_WINDOWS:
                break
            done.append(stream_id)
        self._write_out(done)

    def flush(self) -> None:
        """Write every share still in memory."""
        self._write_out(list(self._last_window))

    def _write_out(self, stream_ids: list[str]) -> None:
        shares, tasks, replies = [], [], []
        for stream_id in stream_ids:
            del self._last_window[stream_id]
            share, its_tasks, its_replies = self._fold.pop(stream_id)
            if share is not None:
                shares.append(share)
                if self._written is not None:
                    self._written.add(stream_id)
            tasks.extend(its_tasks)
            replies.extend(its_replies)
        with self._conn.cursor() as cur:
            for (table, columns, types), rows in zip(self._copies, (shares, tasks, replies), strict=True):
                if not rows:
                    continue
                names = sql.SQL(", ").join(map(sql.Identifier, columns))
                values = itemgetter(*columns)
                with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(table, names)) as copy:
                    copy.set_types(types)
                    for row in rows:
                        copy.write_row(values(row))

    def _read_back(self, stream_ids: list[str]) -> None:
        if not stream_ids:
            return
        stream_of = {share_id_of(stream_id): stream_id for stream_id in stream_ids}
        share_ids = list(stream_of)
        shares = {row["share_id"]: row for row in _take_rows(self._conn, self._shares, SHARE_COLUMNS, share_ids)}
        tasks = _by_share(_take_rows(self._conn, self._tasks, TASK_COLUMNS, share_ids))
        replies = _by_share(_take_rows(self._conn, self._replies, REPLY_COLUMNS, share_ids))
        for share_id, stream_id in stream_of.items():
            self._fold.add(stream_id, shares.get(share_id), tasks.get(share_id, ()), replies.get(share_id, ()))
        if self._written is not None:
            self._written.difference_update(stream_ids)


def _by_share(rows: list[Row]) -> dict[UUID, list[Row]]:
    found: dict[UUID, list[Row]] = {}
    for row in rows:
        found.setdefault(row["share_id"], []).append(row)
    return found


def _check_columns(
    conn: psycopg.Connection[Any], tables: Mapping[str, str], columns: Mapping[str, Sequence[str]]
) -> None:
    """Refuse to rebuild a table with a column the fold does not fill (a migration added it
    to the live statements only): the swap would lose that column's values."""
    for table, fresh in tables.items():
        found = {name for (name,) in conn.execute(Q["table_columns"], {"table": fresh})}
        unknown = sorted(found - set(columns.get(table, ())))
        if unknown:
            raise RuntimeError(f"the shares rebuild does not fill {table}: {', '.join(unknown)}")


def _column_types(conn: psycopg.Connection[Any], table: str, columns: Sequence[str]) -> list[str]:
    types = [name for (name,) in conn.execute(Q["column_types"], {"table": table, "columns": list(columns)})]
    if len(types) != len(columns):
        raise RuntimeError(f"{table} lacks columns the shares rebuild writes")
    return types


def _take_rows(
    conn: psycopg.Connection[Any], table: sql.Identifier, columns: Sequence[str], share_ids: list[UUID]
) -> list[Row]:
    """Delete the rows of these shares from ``table``, returning them."""
    query = sql.SQL("DELETE FROM {} WHERE share_id = ANY(%s) RETURNING {}").format(
        table, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    return [dict(zip(columns, row, strict=True)) for row in conn.execute(query, (share_ids,))]
