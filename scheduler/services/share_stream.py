"""The one unit of work for share streams: append the events, write the schedule rows
they imply, commit, then wake the log's followers and (when work became due) the
dispatcher.

The events are the first write of the transaction (the log's ordering needs it);
the schedule is an inline projection, written in the same transaction, so it is
never behind the log. Every writer of a share stream (the API's use cases and the
workers) goes through here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg

from events import sqlfiles
from events.catalogue import SharePlanned
from events.errors import ConcurrencyError
from events.notifier import Notifier
from events.records import AppendResult, NewEvent, RecordedEvent, StreamAppend, metadata
from events.store import EventStore
from scheduler.domain import share as lifecycle
from scheduler.domain.plans import tasks_for
from scheduler.domain.schedule import Remove, ScheduleOp, Upsert, Wake, ops_for, wakes_dispatcher
from scheduler.domain.share import ShareState
from scheduler.services import slots

Conn = psycopg.Connection[Any]
Q = sqlfiles.load("scheduler.services", "schedule_writes.sql")
# The channel the dispatcher LISTENs on: work became due earlier than it planned for.
SCHEDULE_CHANNEL = "followthrough_schedule"
WRITE_TRIES = 3


def utc_now() -> datetime:
    return datetime.now(UTC)


def apply_schedule(conn: Conn, *, share_id: UUID, workspace_id: str, ops: Sequence[ScheduleOp]) -> bool:
    """Write ``ops``; True when a row became due soon (the dispatcher should look again)."""
    for op in ops:
        params = {"kind": op.kind, "share_id": share_id}
        match op:
            case Upsert():
                conn.execute(Q["upsert"], {**params, "workspace_id": workspace_id, "due_at": op.due_at})
            case Wake():
                conn.execute(Q["wake"], {**params, "workspace_id": workspace_id, "due_at": op.due_at})
            case Remove():
                conn.execute(Q["remove"], params)
    return wakes_dispatcher(ops, utc_now())


def apply_schedule_many(conn: Conn, items: Sequence[tuple[UUID, str, Sequence[ScheduleOp]]]) -> bool:
    """``apply_schedule`` for many shares: their removals and upserts in one statement per kind
    (a share's ops are of distinct kinds, so their order across kinds does not matter)."""
    removals: dict[str, list[UUID]] = {}
    upserts: dict[str, list[tuple[str, UUID, Any]]] = {}
    for share_id, workspace_id, ops in items:
        rest: list[ScheduleOp] = []
        for op in ops:
            if isinstance(op, Remove):
                removals.setdefault(op.kind, []).append(share_id)
            elif isinstance(op, Upsert):
                upserts.setdefault(op.kind, []).append((workspace_id, share_id, op.due_at))
            else:
                rest.append(op)
        if rest:
            apply_schedule(conn, share_id=share_id, workspace_id=workspace_id, ops=rest)
    for kind, share_ids in removals.items():
        conn.execute(Q["remove_many"], {"kind": kind, "share_ids": share_ids})
    for kind, rows in upserts.items():
        conn.execute(Q["upsert_many"], {"kind": kind, "workspace_ids": [r[0] for r in rows],
                                        "share_ids": [r[1] for r in rows], "due_ats": [r[2] for r in rows]})
    return wakes_dispatcher((op for _, _, ops in items for op in ops), utc_now())


def stamp(events: Iterable[NewEvent], *, workspace_id: str, actor: str, share_id: UUID,
          causation_id: str | None = None) -> list[NewEvent]:
    """The events with who wrote them and why (metadata), as every share write records."""
    meta = metadata(workspace_id=workspace_id, actor=actor, correlation_id=str(share_id), causation_id=causation_id)
    # Built directly: dataclasses.replace inspects every field each call (~4x slower, per event).
    return [NewEvent(e.event, e.event_id, meta) for e in events]


def _task_ids(share_id: UUID, events: Sequence[NewEvent]) -> list[UUID]:
    return [t.task_id for e in events if isinstance(e.event, SharePlanned)
            for t in tasks_for(share_id, e.event.response_plan)]


def _write_implied(conn: Conn, share_id: UUID, workspace_id: str, events: Sequence[NewEvent]) -> None:
    """In the events' transaction, what they imply beside the log: the schedule rows, the
    task index of a plan, the queue slot a cancel or a reschedule gives back."""
    apply_schedule(conn, share_id=share_id, workspace_id=workspace_id, ops=ops_for(e.event for e in events))
    if task_ids := _task_ids(share_id, events):
        conn.execute(Q["index_tasks"], {"task_ids": task_ids, "share_id": share_id, "workspace_id": workspace_id})
    for keep in slots.released_by(e.event for e in events):
        slots.release(conn, share_id, keep)


@dataclass
class ShareStreams:
    store: EventStore
    notifier: Notifier | None

    def load(self, share_id: UUID, *, conn: Conn | None = None) -> tuple[ShareState, list[RecordedEvent]]:
        history = self.store.read_stream(lifecycle.stream_id(share_id), conn=conn)
        return lifecycle.fold(r.event for r in history), history

    def commit(
        self,
        conn: Conn,
        *,
        share_id: UUID,
        workspace_id: str,
        events: Sequence[NewEvent],
        expected_version: int,
        also: Callable[[Conn, AppendResult], None] | None = None,
    ) -> AppendResult:
        """Append ``events`` (already stamped) and their schedule rows atomically; ``also``
        writes more in the same transaction (an idempotency record, a slot claim). A
        cancel or a reschedule to another time gives back the share's queue slot. Raises
        ``ConcurrencyError`` when the stream moved past ``expected_version``."""
        ops = ops_for(e.event for e in events)
        stream = lifecycle.stream_id(share_id)
        if not ops and also is None and not _task_ids(share_id, events) and not slots.released_by(
                e.event for e in events):
            # A single statement is its own transaction: one round trip.
            result = self.store.append(stream, events, expected_version=expected_version,
                                       workspace_id=workspace_id, conn=conn)
        else:
            # Not pipelined: on a local server psycopg's pipeline mode costs more CPU (and
            # time) than the round trips it saves: about 0.1 ms of worker CPU a share in a burst.
            with conn.transaction():
                result = self.store.append(stream, events, expected_version=expected_version,
                                           workspace_id=workspace_id, conn=conn)
                _write_implied(conn, share_id, workspace_id, events)
                if also is not None:
                    also(conn, result)
        self.committed(wake=wakes_dispatcher(ops, utc_now()))
        return result

    def commit_new(
        self,
        conn: Conn,
        *,
        workspace_id: str,
        shares: Sequence[tuple[UUID, Sequence[NewEvent]]],
        also: Callable[[Conn, Sequence[AppendResult]], None],
    ) -> list[AppendResult]:
        """New share streams (a post's shares) in one transaction: all their events in one
        append (the transaction's first write), then each one's schedule rows, task index
        and whatever ``also`` writes. All or none: nothing is written when one stream
        exists already (``ConcurrencyError``)."""
        appends = [StreamAppend(lifecycle.stream_id(share_id), events, 0, workspace_id) for share_id, events in shares]
        with conn.pipeline(), conn.transaction():
            written = self.store.append_many(appends, conn=conn)
            results: list[AppendResult] = []
            for (share_id, events), append in zip(shares, appends, strict=True):
                version = written.get(append.stream_id)
                if version is None:
                    raise ConcurrencyError(append.stream_id, 0, -1)
                results.append(AppendResult(stream_id=append.stream_id, version=version, written=len(events)))
                _write_implied(conn, share_id, workspace_id, events)
            also(conn, results)
        self.committed(wake=True)
        return results

    def commit_many(self, conn: Conn, batch: Sequence[tuple[UUID, StreamAppend]]) -> dict[str, int | None]:
        """Several shares' appends and schedule rows in one transaction. A stream whose
        events were all there already maps to None (and gets no schedule writes). Raises
        ``ConcurrencyError`` (nothing written) when any stream moved past its expected version."""
        ops = {a.stream_id: ops_for(e.event for e in a.events) for _, a in batch}
        if not any(ops.values()):
            # Attempts write no schedule rows: the append alone, a single statement, is its own transaction.
            written = self.store.append_many([a for _, a in batch], conn=conn)
            self.committed(wake=False)
            return written
        with conn.transaction():  # not pipelined: see ``commit``
            written = self.store.append_many([a for _, a in batch], conn=conn)
            items = [(share_id, a.workspace_id, ops[a.stream_id])
                     for share_id, a in batch if written.get(a.stream_id) is not None]
            wake = apply_schedule_many(conn, items)
        self.committed(wake=wake)
        return written

    def committed(self, *, wake: bool) -> None:
        """After a commit: followers learn of new events; the dispatcher of new due work."""
        self.store.appended()
        if wake and self.notifier is not None:
            self.notifier.notify((SCHEDULE_CHANNEL,))

    def change(
        self,
        conn: Conn,
        share_id: UUID,
        decide: Callable[[ShareState], Sequence[NewEvent]],
        *,
        workspace_id: str,
        actor: str,
        causation_id: str | None = None,
        state: ShareState | None = None,
    ) -> tuple[ShareState, tuple[NewEvent, ...]]:
        """Decide on the stream's current state and commit what was decided; when another
        writer got there first, decide again on the new state. Returns the state after
        the write and the events written (none when the decision was to do nothing)."""
        for _ in range(WRITE_TRIES):
            if state is None:
                state, _ = self.load(share_id, conn=conn)
            new = tuple(decide(state))
            if not new:
                return state, ()
            stamped = stamp(new, workspace_id=workspace_id, actor=actor, share_id=share_id,
                            causation_id=causation_id)
            try:
                result = self.commit(conn, share_id=share_id, workspace_id=workspace_id, events=stamped,
                                     expected_version=state.version)
            except ConcurrencyError:
                state = None  # the share moved on meanwhile: decide again on the new state
                continue
            return lifecycle.folded_at((e.event for e in new), state, result.version), new
        raise ConcurrencyError(lifecycle.stream_id(share_id), None, -1)
