"""The shares read model (``rm_shares``), the response inbox (``rm_response_tasks``)
and the replies inbox (``rm_replies``): one model, ``shares_fold``, kept live and rebuilt.

Live, a batch of events is folded over the rows it touches (read in bulk, one query
per table) and the rows it changed are written back in bulk, with the runner's
checkpoint in the same transaction. A rebuild folds windows of the whole log with the
same fold into fresh tables. Documented read API: dashboards read these tables and the
views over them (``response_inbox``, ``followthrough_daily``, ``integrity``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from events import sqlfiles
from events.catalogue import (
    DuplicatePosted,
    DuplicateRemoved,
    ResponseReceived,
    ResponseTaskCompleted,
    ResponseTasksCancelled,
    ResponseTasksRecorded,
    ShareAbandoned,
    ShareApproved,
    ShareAttemptStarted,
    ShareCancelled,
    ShareFailed,
    ShareHeld,
    SharePlanned,
    ShareRejected,
    ShareRescheduled,
    ShareReviewOverdue,
    ShareReviewRequested,
    ShareSent,
)
from events.projections import replies
from events.projections.share_rows import COLUMNS, Held, ShareRows, Snapshot
from events.projections.shares_fold import SharesFold
from events.records import RecordedEvent

Q = sqlfiles.load("events.projections.sql", "shares.sql")

__all__ = ["SharesProjection", "SharesRebuilder"]

LIVE_TABLES = {table: table for table in COLUMNS}


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
            ShareApproved,
            ShareRejected,
            ShareReviewOverdue,
            ShareReviewRequested,
        )
    ) | replies.TYPES
    # The tables it owns, in the order a rebuild builds them and locks them for the swap:
    # the order readers take them in (rm_shares before its tasks; the replies inbox reads
    # rm_replies, then rm_response_tasks), so a reader never holds one the swap waits for.
    tables: tuple[str, ...] = ("rm_shares", "rm_replies", "rm_response_tasks")
    # Each row derives from its share's stream alone (the share, its tasks, its replies).
    partition_by_stream = True

    # A share's events come in quick succession (planned; attempt and tasks; sent; looks,
    # replies): the rows of the shares the last batches wrote stay in memory, as written,
    # so that the next batches read back only the shares they have not seen lately. The
    # runner calls ``forget`` whenever the tables may have changed under them (another
    # replica led, a rebuild swapped, a batch failed). Measured on a log of share
    # histories: reading rows back was a third of the live projector's time.
    HELD_STREAMS = 20_000

    def __init__(self) -> None:
        # The live tables' rows in bulk (built on the first batch: it reads the column types).
        self._live: ShareRows | None = None
        # stream id -> its rows as last written (every row of the stream) with their values,
        # least recent first.
        self._held: dict[str, Held] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Neither goes to a parallel rebuild's workers (the projection is pickled for them).
        return {name: value for name, value in vars(self).items() if name not in ("_live", "_held")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        vars(self).update(state)

    def forget(self) -> None:
        """Drop the rows held in memory: the tables may no longer hold what was written."""
        self._held.clear()

    def apply(self, conn: psycopg.Connection[Any], events: Sequence[RecordedEvent]) -> None:
        """Fold a batch of events over the rows of the shares it touches and write back
        the rows it changed (inside the caller's transaction)."""
        if self._live is None:
            self._live = ShareRows(conn, LIVE_TABLES)
        rows, fold, held = self._live, SharesFold(), self._held
        streams = list(dict.fromkeys([r.stream_id for r in events]))
        missing: list[str] = []
        before: dict[str, Snapshot] = {}
        for stream_id in streams:
            kept = held.pop(stream_id, None)
            if kept is None:
                missing.append(stream_id)
            else:
                its_rows, before[stream_id] = kept
                fold.add(stream_id, *its_rows)
        if missing:
            # Every row of a stream read back (not only those its events need), so that
            # what is held afterwards is the whole stream.
            before.update(rows.seed(conn, fold, missing))
        fold.apply(events)
        rows.upsert(conn, rows.changed(fold, streams, before, keep=held))
        while len(held) > self.HELD_STREAMS:
            del held[next(iter(held))]

    # --- rebuilding ---------------------------------------------------------------

    def rebuilder(
        self, conn: psycopg.Connection[Any], tables: Mapping[str, str], *, resume: bool = False
    ) -> SharesRebuilder:
        return SharesRebuilder(conn, tables, resume=resume)


class SharesRebuilder:
    """Builds the shares model into the tables named in ``tables`` (live name -> table
    being built), in bulk: events are folded in memory (``SharesFold``, the fold the
    live projector applies) over the shares in flight, and a share's rows are written
    (COPY) once it has gone ``KEEP_WINDOWS`` windows untouched, so most shares are
    written once and memory holds only the shares in flight. A share touched again
    after it was written is read back (and its rows deleted); with ``resume`` (tables
    that other processes filled), any share not in memory is."""

    KEEP_WINDOWS = 3

    def __init__(self, conn: psycopg.Connection[Any], tables: Mapping[str, str], *, resume: bool = False) -> None:
        self._conn = conn
        _check_columns(conn, tables, COLUMNS)
        self._rows = ShareRows(conn, tables)
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
        self._rows.copy(self._conn, (shares, tasks, replies))

    def _read_back(self, stream_ids: list[str]) -> None:
        if not stream_ids:
            return
        self._rows.seed(self._conn, self._fold, stream_ids, take=True)
        if self._written is not None:
            self._written.difference_update(stream_ids)


def _check_columns(
    conn: psycopg.Connection[Any], tables: Mapping[str, str], columns: Mapping[str, Sequence[str]]
) -> None:
    """Refuse to rebuild a table with a column the fold does not fill (a migration added
    it without the fold): the swap would lose that column's values."""
    for table, fresh in tables.items():
        found = {name for (name,) in conn.execute(Q["table_columns"], {"table": fresh})}
        unknown = sorted(found - set(columns.get(table, ())))
        if unknown:
            raise RuntimeError(f"the shares rebuild does not fill {table}: {', '.join(unknown)}")
