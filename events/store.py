"""The event store: append to a stream with optimistic concurrency, read a stream,
read and tail the whole log in gap-safe order.

The database does the enforcing (unique keys, append-only and first-write
triggers); this module translates its errors, once, into the store's own.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from events import codec, sqlfiles
from events.connection import CUSTOM_PLAN, cursor_for
from events.errors import (
    AppendOnlyViolationError,
    ConcurrencyError,
    NotFirstWriteError,
    PartialDuplicateError,
)
from events.notifier import EVENTS_CHANNEL, Notifier
from events.records import AppendResult, Checkpoint, NewEvent, RecordedEvent, StreamAppend

Q = sqlfiles.load("events.sql", "store.sql")

Conn = psycopg.Connection[Any]

NOT_FIRST_WRITE = "FT001"
APPEND_ONLY = "FT002"


class EventStore:
    """Appends and reads events. Connections come from ``pool`` (autocommit), or
    from the caller when an append belongs to a larger unit of work."""

    def __init__(self, pool: ConnectionPool[Any], notifier: Notifier | None = None) -> None:
        self._pool = pool
        self._notifier = notifier

    @property
    def pool(self) -> ConnectionPool[Any]:
        return self._pool

    # --- writing ------------------------------------------------------------------

    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None,
        workspace_id: str,
        conn: Conn | None = None,
    ) -> AppendResult:
        """Append ``events`` to ``stream_id`` atomically.

        ``expected_version`` is the version the caller read (0 for a new stream), or
        None to append at whatever the head is. Re-appending the same event ids is
        a success that writes nothing. With ``conn`` the append joins the caller's
        transaction and must be its first write; the caller then calls
        :meth:`appended` after commit to wake followers.
        """
        if not events:
            raise ValueError("append needs at least one event")
        write: Callable[[Conn, bool], AppendResult]
        if len(events) == 1 and expected_version is not None:
            # The commonest append (a share planned, attempted, sent), on its own lean path.
            def write(c: Conn, in_unit: bool) -> AppendResult:
                return self._append_one(c, stream_id, events, expected_version, workspace_id, in_unit=in_unit)
        else:
            params: dict[str, Any] = {"stream_id": stream_id, "workspace_id": workspace_id}
            params |= {"expected": expected_version} | codec.encode(events)
            query = Q["append"]

            def write(c: Conn, in_unit: bool) -> AppendResult:
                return self._append_on(
                    c, query, params, stream_id=stream_id, expected=expected_version, events=events, in_unit=in_unit
                )
        if conn is not None:
            return write(conn, True)
        with self._pool.connection() as own:
            result = write(own, False)
        if result.written:
            self.appended()
        return result

    def append_many(self, appends: Sequence[StreamAppend], *, conn: Conn) -> dict[str, int | None]:
        """Append to many streams in one statement (one round trip, one commit in
        autocommit mode). Each stream is all-or-nothing: written only if its head is at
        its expected version. Returns each stream's new version, or None where its head
        had moved on. A race with a concurrent append to one of the streams fails the
        whole statement with ConcurrencyError: retry stream by stream then.
        """
        if not appends:
            return {}
        for item in appends:
            if not item.events:
                raise ValueError(f"append to {item.stream_id!r} needs at least one event")
        params = {"rows": codec.append_rows(
            (a.stream_id, a.expected_version, a.workspace_id, a.events) for a in appends)}
        try:
            rows = cursor_for(conn).execute(Q["append_many"], params).fetchall()
        except pg_errors.UniqueViolation as exc:
            raise ConcurrencyError(",".join(a.stream_id for a in appends), None, -1) from exc
        except psycopg.Error as exc:
            raise _translate(exc, appends[0].stream_id) from exc
        return {stream: (None if last is None else int(last)) for stream, _head, last in rows}

    def appended(self) -> None:
        """Wake followers (after the commit that appended)."""
        if self._notifier is not None:
            self._notifier.notify((EVENTS_CHANNEL,))

    def _append_one(
        self, conn: Conn, stream_id: str, events: Sequence[NewEvent], expected: int, workspace_id: str, *, in_unit: bool
    ) -> AppendResult:
        params = codec.encode_one(events[0], stream_id, expected, workspace_id)
        try:
            row = cursor_for(conn).execute(Q["append_one"], params, prepare=True).fetchone()
        except pg_errors.UniqueViolation as exc:
            return self._lost_race(conn, exc, stream_id=stream_id, expected=expected, events=events, in_unit=in_unit)
        except psycopg.Error as exc:
            raise _translate(exc, stream_id) from exc
        if row is not None:
            return AppendResult(stream_id, expected + 1, 1)
        # Nothing written: the stream has not reached the expected version, or this is
        # a retry of an append that landed (and the stream moved on since).
        stored = self._stored(conn, events)
        if stored:
            return self._idempotent(stream_id, events, stored)
        raise ConcurrencyError(stream_id, expected, self._head_version(stream_id, None if in_unit else conn))

    def _append_on(
        self,
        conn: Conn,
        query: str,
        params: dict[str, Any],
        *,
        stream_id: str,
        expected: int | None,
        events: Sequence[NewEvent],
        in_unit: bool,
    ) -> AppendResult:
        try:
            row = cursor_for(conn).execute(query, params).fetchone()
        except pg_errors.UniqueViolation as exc:
            return self._lost_race(conn, exc, stream_id=stream_id, expected=expected, events=events, in_unit=in_unit)
        except psycopg.Error as exc:
            raise _translate(exc, stream_id) from exc
        assert row is not None
        head, last = row
        if last is not None:
            return AppendResult(stream_id, int(last), len(events))
        stored = self._stored(conn, events)
        if len(stored) == len(events):
            return self._idempotent(stream_id, events, stored)
        if stored:
            present = set(stored)
            raise PartialDuplicateError(
                stream_id,
                [e.event_id for e in events if e.event_id in present],
                [e.event_id for e in events if e.event_id not in present],
            )
        raise ConcurrencyError(stream_id, expected, int(head))

    def _lost_race(
        self,
        conn: Conn,
        exc: pg_errors.UniqueViolation,
        *,
        stream_id: str,
        expected: int | None,
        events: Sequence[NewEvent],
        in_unit: bool,
    ) -> AppendResult:
        """A unique key refused the append: a concurrent append won the version, or this
        is a duplicate delivery of an append already stored (then, outside a unit of
        work, an idempotent success). Inside a unit of work the transaction is aborted,
        so the head is read on another connection."""
        if not in_unit:
            stored = self._stored(conn, events)
            if len(stored) == len(events):
                return self._idempotent(stream_id, events, stored)
        raise ConcurrencyError(stream_id, expected, self._head_version(stream_id, None if in_unit else conn)) from exc

    def _stored(self, conn: Conn, events: Sequence[NewEvent]) -> dict[Any, tuple[str, int]]:
        rows = cursor_for(conn).execute(Q["stored_ids"], {"event_ids": [e.event_id for e in events]}).fetchall()
        return {event_id: (stream, version) for event_id, stream, version in rows}

    def _idempotent(
        self, stream_id: str, events: Sequence[NewEvent], stored: dict[Any, tuple[str, int]]
    ) -> AppendResult:
        streams = {stream for stream, _ in stored.values()}
        if streams != {stream_id}:
            raise PartialDuplicateError(stream_id, [e.event_id for e in events], [])
        return AppendResult(stream_id, max(version for _, version in stored.values()), 0)

    def _head_version(self, stream_id: str, conn: Conn | None) -> int:
        if conn is None:
            with self._pool.connection() as other:
                return self._head_version(stream_id, other)
        row = cursor_for(conn).execute(Q["head_version"], {"stream_id": stream_id}).fetchone()
        return int(row[0]) if row else 0

    # --- reading ------------------------------------------------------------------

    def read_stream(self, stream_id: str, *, after_version: int = 0, conn: Conn | None = None) -> list[RecordedEvent]:
        """A stream's events in version order."""
        params = {"stream_id": stream_id, "after_version": after_version}
        if conn is not None:
            return [codec.decode(r) for r in cursor_for(conn).execute(Q["read_stream"], params)]
        with self._pool.connection() as own:
            return [codec.decode(r) for r in cursor_for(own).execute(Q["read_stream"], params)]

    def read_streams(self, stream_ids: Sequence[str], *, conn: Conn) -> dict[str, list[RecordedEvent]]:
        """Several streams in one query, each in version order."""
        found: dict[str, list[RecordedEvent]] = {s: [] for s in stream_ids}
        # Planned each time (not prepared): see ``CUSTOM_PLAN``.
        for row in cursor_for(conn).execute(Q["read_streams"], {"stream_ids": list(stream_ids)}, prepare=CUSTOM_PLAN):
            recorded = codec.decode(row)
            found[recorded.stream_id].append(recorded)
        return found

    def stream_version(self, stream_id: str) -> int:
        return self._head_version(stream_id, None)

    def read_batch(
        self,
        after: Checkpoint,
        *,
        limit: int = 1000,
        types: Iterable[str] | None = None,
        conn: Conn | None = None,
    ) -> list[RecordedEvent]:
        """Up to ``limit`` events after ``after`` in log order, gap-safe."""
        wanted = None if types is None else list(types)
        if conn is not None:
            return codec.decode_rows(_page(conn, after, limit, wanted))
        with self._pool.connection() as own:
            return codec.decode_rows(_page(own, after, limit, wanted))

    def read_all(
        self,
        after: Checkpoint | None = None,
        *,
        batch_size: int = 1000,
        types: Iterable[str] | None = None,
        until: Checkpoint | None = None,
        partition: Partition | None = None,
    ) -> Iterator[RecordedEvent]:
        """Every visible event after ``after``, in batches: memory stays bounded by the
        batch size however long the log is. Stops at the current horizon, or at ``until``
        (included; a checkpoint that was below the horizon when it was taken). With
        ``partition`` (``until`` required): only the streams of that partition.

        Pages are fetched on a helper thread while this one decodes the page before:
        the server's part of a page (the index scan, jsonb to text) and the network
        then overlap with decoding instead of adding to it. At most
        ``PREFETCH_PAGES`` pages wait undecoded.
        """
        if partition is not None and until is None:
            raise ValueError("a partition of the log is read up to a checkpoint (until)")
        wanted = None if types is None else list(types)
        start = after or Checkpoint.start()
        bound = None if until is None else _Bound(until, partition or Partition(0, 1))
        with self._pool.connection() as conn, _Prefetcher(conn, start, batch_size, wanted, bound) as pages:
            for rows in pages:
                yield from codec.iter_decoded(rows)


class Partition(NamedTuple):
    """Part ``part`` (from 0) of the log split ``parts`` ways by stream."""

    part: int
    parts: int


class _Bound(NamedTuple):
    until: Checkpoint
    partition: Partition


PREFETCH_PAGES = 2


def _page(
    conn: Conn, after: Checkpoint, limit: int, types: list[str] | None, bound: _Bound | None = None
) -> list[codec.Row]:
    """One gap-safe page of raw rows. A binary cursor: uuid, timestamptz and integers
    load from binary in C, faster than parsing their text (jsonb goes out as text
    either way: the query casts it)."""
    params: dict[str, Any] = {"epoch": after.epoch, "tx_id": str(after.tx_id), "position": after.position,
                              "limit": limit, "types": types}
    query = Q["read_all"]
    if bound is not None:
        query = Q["read_partition"]
        params.update(until_epoch=bound.until.epoch, until_tx_id=str(bound.until.tx_id),
                      until_position=bound.until.position, part=bound.partition.part,
                      parts=bound.partition.parts)
    with conn.cursor(binary=True) as cur:
        return cur.execute(query, params, prepare=True).fetchall()


class _Prefetcher:
    """Raw pages of the whole log from ``after`` on, fetched on a helper thread into
    a bounded queue; iterating yields them in order, ending at the horizon. Leaving
    the ``with`` block (a consumer that stops early included) stops the thread."""

    def __init__(
        self, conn: Conn, after: Checkpoint, limit: int, types: list[str] | None, bound: _Bound | None = None
    ) -> None:
        self._conn, self._after, self._limit, self._types, self._bound = conn, after, limit, types, bound
        self._pages: queue.Queue[list[codec.Row] | Exception | None] = queue.Queue(PREFETCH_PAGES)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fetch, name="log-prefetch", daemon=True)

    def __enter__(self) -> Iterator[list[codec.Row]]:
        self._thread.start()
        return self._drain()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._pages.get(timeout=0.05)

    def _drain(self) -> Iterator[list[codec.Row]]:
        while (page := self._pages.get()) is not None:
            if isinstance(page, Exception):
                raise page
            yield page

    def _fetch(self) -> None:
        after = self._after
        try:
            while not self._stop.is_set():
                rows = _page(self._conn, after, self._limit, self._types, self._bound)
                if rows:
                    self._put(rows)
                if len(rows) < self._limit:
                    break
                last = rows[-1]
                after = Checkpoint(last[10], last[11], last[0])
        except Exception as exc:  # noqa: BLE001 -- handed to the consumer, raised there
            self._put(exc)
            return
        self._put(None)

    def _put(self, item: list[codec.Row] | Exception | None) -> None:
        while not self._stop.is_set():
            try:
                self._pages.put(item, timeout=0.1)
                return
            except queue.Full:
                continue


def _translate(exc: psycopg.Error, stream_id: str) -> Exception:
    state = exc.sqlstate
    if state == NOT_FIRST_WRITE:
        return NotFirstWriteError(stream_id)
    if state == APPEND_ONLY:
        return AppendOnlyViolationError(str(exc))
    return exc
