"""Rebuilding a projection from the start of the log, with no downtime for readers.

1. Fresh tables ``<table>__rebuild`` (``LIKE <table> INCLUDING ALL``: columns,
   defaults, constraints, indexes) are filled from the whole log in windows of
   events by the projection's ``rebuilder`` (folded in memory, written in bulk).
   Readers keep reading the live tables, which the live projector keeps current.
2. The swap, one transaction: lock the projection's checkpoint row (a live step
   takes it first, so the live projector now waits), apply what the log gained
   since step 1, lock the live tables and their views (giving the locks back and
   trying again while a reader holds one, rather than deadlock with it: see
   ``_lock_for_swap``), rename the live tables away and the rebuilt ones in, give them the
   live tables' index names and privileges, rebind the views that read them, drop
   the old tables, and set the checkpoint to where the rebuild read up to.
   Readers see the old model until the commit and the whole new one after it;
   the waiting live step resumes from the new checkpoint, so nothing is applied twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from psycopg import sql

from events import sqlfiles
from events.errors import EventStoreError, RebuildBusyError
from events.projections.collector import few_collections
from events.projections.partitions import (
    PartitionJob,
    PartitionWorker,
    RebuildWorkerError,
    build_partition,
    fold_windows,
)
from events.projections.protocols import Rebuildable, Rebuilder
from events.projections.runner import passed_over
from events.records import Checkpoint
from events.store import EventStore, Partition

__all__ = [
    "RebuildBusyError", "RebuildWorkerError", "Rebuildable", "Rebuilder", "SwapLockError", "default_workers",
    "rebuild",
]

Q = sqlfiles.load("events.projections.sql", "rebuild.sql")
RUNNER = sqlfiles.load("events.projections.sql", "runner.sql")
log = structlog.get_logger("events.projections")

SUFFIX = "__rebuild"
RETIRED = "__retired"
LOCK_TIMEOUT_MS = 200  # a swap's wait for its locks before it gives them back and tries again
LOCK_ATTEMPTS = 180  # (with the pauses between them: about two minutes of readers holding them)
# Below this many events a rebuild runs in one process whatever it was asked: starting
# worker processes (an interpreter and the imports each, about a second) would cost more
# than it saves.
PARALLEL_MIN_EVENTS = 100_000
MAX_WORKERS = 8


class SwapLockError(RebuildBusyError):
    """The swap could not take the live tables: readers kept holding them (the rebuild is
    abandoned; the live model is untouched)."""

    def __init__(self, tables: Sequence[str]) -> None:
        EventStoreError.__init__(self, f"readers kept holding {', '.join(tables)}: the rebuild was not swapped in")
        self.name = ", ".join(tables)


@dataclass(frozen=True, slots=True)
class RebuildResult:
    name: str
    events: int
    checkpoint: Checkpoint
    seconds: float
    workers: int = 1
    worker_peak_rss_mb: tuple[float, ...] = ()
    """The worker processes' peak memory (a parallel rebuild; this process's own is apart)."""

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


Progress = Callable[[int, int], None]  # (events read so far, events to read)


def default_workers() -> int:
    """Processes for a rebuild when not told: one per core (at most ``MAX_WORKERS``)."""
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def rebuild(
    store: EventStore,
    projection: Rebuildable,
    *,
    window: int = 5000,
    progress: Progress | None = None,
    workers: int = 1,
    parallel_min_events: int = PARALLEL_MIN_EVENTS,
) -> RebuildResult:
    """Rebuild ``projection`` from the start of the log and swap it in. ``store``'s
    pool needs two connections (one reads the log ahead while the other writes).

    With ``workers`` > 1, a projection that is ``partition_by_stream`` and a log of at
    least ``parallel_min_events`` of its events is built by that many processes at once
    (this one and ``workers - 1`` started for it), each over its share of the streams."""
    started = time.perf_counter()
    with store.pool.connection() as conn, few_collections():
        if not _fetch_bool(conn, Q["try_rebuild_lock"], {"name": projection.name}):
            raise RebuildBusyError(projection.name)
        try:
            names = {table: table + SUFFIX for table in projection.tables}
            _create_tables(conn, names)
            try:
                total = _count(conn, projection)
                parts = _parts(projection, workers, total, parallel_min_events)
                log.info("projection_rebuild_started", projection=projection.name, events=total, workers=parts)
                until = _last_visible(conn, projection) if parts > 1 else None
                if until is not None:
                    applied, peaks = _build_in_parallel(store, conn, projection, names, until, parts=parts,
                                                        window=window, report=_reporter(progress, total))
                    builder, after = projection.rebuilder(conn, names, resume=True), until
                else:
                    parts, peaks = 1, ()
                    builder, after, applied = _build_here(store, conn, projection, names, window=window,
                                                          report=_reporter(progress, total))
                after, applied = _swap(store, conn, projection, builder, names, after=after, applied=applied)
            finally:
                _drop_tables(conn, names.values())
        finally:
            conn.execute(Q["rebuild_unlock"], {"name": projection.name})
    result = RebuildResult(projection.name, applied, after, time.perf_counter() - started, parts, peaks)
    log.info("projection_rebuilt", projection=projection.name, events=applied, checkpoint=str(after),
             seconds=round(result.seconds, 3), workers=parts)
    return result


def _parts(projection: Rebuildable, workers: int, total: int, parallel_min_events: int) -> int:
    if workers < 1:
        raise ValueError(f"a rebuild needs at least one worker (got {workers})")
    if not getattr(projection, "partition_by_stream", False) or total < parallel_min_events:
        return 1
    return min(workers, MAX_WORKERS)


def _reporter(progress: Progress | None, total: int) -> Callable[[int], None]:
    def report(done: int) -> None:
        if progress is not None:
            progress(done, max(total, done))
    return report


def _build_here(
    store: EventStore,
    conn: psycopg.Connection[Any],
    projection: Rebuildable,
    names: Mapping[str, str],
    *,
    window: int,
    report: Callable[[int], None],
) -> tuple[Rebuilder, Checkpoint, int]:
    """Build the whole model in this process, up to the horizon; the builder keeps the
    shares in flight in memory for the swap."""
    builder = projection.rebuilder(conn, names)
    after, applied = fold_windows(conn, builder, store.read_all(types=projection.types), window, report)
    return builder, after or Checkpoint.start(), applied


def _build_in_parallel(
    store: EventStore,
    conn: psycopg.Connection[Any],
    projection: Rebuildable,
    names: Mapping[str, str],
    until: Checkpoint,
    *,
    parts: int,
    window: int,
    report: Callable[[int], None],
) -> tuple[int, tuple[float, ...]]:
    """Build the model up to ``until`` in ``parts`` partitions at once: partition 0 here,
    the others in worker processes, each folding ``window / parts`` events at a time (the
    events in memory stay about ``window`` in all). Returns the events applied and the
    workers' peak RSS."""
    conninfo = store.pool.conninfo
    if callable(conninfo):  # a pool may be given a function that makes its connection string
        conninfo = conninfo()
    jobs = [PartitionJob(conninfo=conninfo, projection=projection, tables=dict(names),
                         partition=Partition(part, parts), until=until, window=max(window // parts, 1))
            for part in range(parts)]
    workers: list[PartitionWorker] = []
    try:
        for job in jobs[1:]:  # inside the try: one that cannot start stops those that did
            workers.append(PartitionWorker(job))

        def folded_here(done: int) -> None:
            for worker in workers:  # a worker that failed fails the rebuild now, not after this partition
                worker.raise_if_failed()
            report(done + sum(w.applied for w in workers))

        here = build_partition(store, conn, jobs[0], folded_here)
        for worker in workers:
            while not worker.wait(0.2):
                report(here + sum(w.applied for w in workers))
        done = [worker.result() for worker in workers]
    finally:
        for worker in workers:
            worker.stop()
    applied = here + sum(d.events for d in done)
    report(applied)
    return applied, tuple(d.peak_rss_mb for d in done)


def _swap(
    store: EventStore,
    conn: psycopg.Connection[Any],
    projection: Rebuildable,
    builder: Rebuilder,
    names: Mapping[str, str],
    *,
    after: Checkpoint,
    applied: int,
) -> tuple[Checkpoint, int]:
    name = projection.name
    conn.execute(RUNNER["ensure_checkpoint"], {"name": name})
    with conn.transaction():
        conn.execute(RUNNER["lock_checkpoint"], {"name": name})
        head = passed_over(conn, after)  # as the live runner does: past the events it does not use
        while batch := store.read_batch(after, limit=5000, types=projection.types, conn=conn):
            builder.apply(batch)
            after, applied = batch[-1].checkpoint, applied + len(batch)
        if head is not None:
            after = max(after, head)
        builder.flush()
        _lock_for_swap(conn, list(names))
        for table, fresh in names.items():
            _swap_table(conn, table, fresh)
        conn.execute(RUNNER["set_checkpoint"], {"name": name, "epoch": after.epoch, "tx_id": str(after.tx_id),
                                           "position": after.position, "applied": applied})
    return after, applied


def _lock_for_swap(conn: psycopg.Connection[Any], tables: Sequence[str]) -> None:
    """Take the live tables and the views over them (ACCESS EXCLUSIVE) for the swap. A
    reader can hold one of them while it waits for another (a transaction reading several
    tables, in any order): rather than deadlock with it, the swap gives back what it took
    after ``LOCK_TIMEOUT_MS`` (below PostgreSQL's ``deadlock_timeout``) and tries again, so
    the reader goes first and the swap follows."""
    views = {(schema, view) for table in tables
             for schema, view, _ in conn.execute(Q["dependent_views"], {"table": table})}
    targets = [sql.Identifier(table) for table in tables] + [sql.Identifier(*view) for view in sorted(views)]
    statement = sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.SQL(", ").join(targets))
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        try:
            with conn.transaction():  # a savepoint: giving up releases the locks it took
                previous = _fetch_one(conn, Q["set_lock_timeout"], {"timeout": f"{LOCK_TIMEOUT_MS}ms"})
                conn.execute(statement)
                conn.execute(Q["set_lock_timeout"], {"timeout": previous})
            return
        except psycopg.errors.LockNotAvailable:
            log.info("projection_swap_lock_waiting", tables=list(tables), attempt=attempt)
            time.sleep(min(0.02 * attempt, 0.5))
    raise SwapLockError(tables)


def _swap_table(conn: psycopg.Connection[Any], table: str, fresh: str) -> None:
    """Put ``fresh`` in the place of ``table`` (inside the swap's transaction)."""
    views = conn.execute(Q["dependent_views"], {"table": table}).fetchall()
    grants = conn.execute(Q["grants"], {"table": table}).fetchall()
    old_indexes = _indexes(conn, table)
    new_indexes = _indexes(conn, fresh)
    retired = table + RETIRED
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(table), sql.Identifier(retired)))
    for index in old_indexes.values():
        conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
            sql.Identifier(index), sql.Identifier(_retired_name(index))))
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(fresh), sql.Identifier(table)))
    for shape, index in new_indexes.items():
        if shape in old_indexes:
            conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                sql.Identifier(index), sql.Identifier(old_indexes[shape])))
    for role, privilege in grants:
        grantee = sql.SQL("PUBLIC") if role is None else sql.Identifier(role)
        conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(sql.SQL(privilege), sql.Identifier(table), grantee))
    for schema, view, definition in views:
        conn.execute(sql.SQL("CREATE OR REPLACE VIEW {}.{} AS {}").format(
            sql.Identifier(schema), sql.Identifier(view), sql.SQL(definition)))
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(retired)))


def _indexes(conn: psycopg.Connection[Any], table: str) -> dict[tuple[bool, str], str]:
    """The table's indexes by shape (unique or not, method and columns) -> name."""
    shapes = {}
    for name, definition in conn.execute(Q["indexes"], {"table": table}):
        head, _, using = definition.partition(" USING ")
        shapes[(head.startswith("CREATE UNIQUE"), using)] = name
    return shapes


def _retired_name(index: str) -> str:
    return index[: 63 - len(RETIRED)] + RETIRED


def _create_tables(conn: psycopg.Connection[Any], names: Mapping[str, str]) -> None:
    with conn.transaction():
        for table, fresh in names.items():
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(fresh)))  # a failed run's
            # LIKE copies columns, defaults, constraints and indexes, not the storage
            # parameters (fillfactor, autovacuum settings): they are carried over by hand.
            options = _storage_parameters(conn, table)
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL){}").format(
                sql.Identifier(fresh), sql.Identifier(table),
                sql.SQL(" WITH ({})").format(sql.SQL(", ").join(options)) if options else sql.SQL("")))


def _storage_parameters(conn: psycopg.Connection[Any], table: str) -> list[sql.Composed]:
    row = conn.execute(Q["storage_parameters"], {"table": table}).fetchone()
    options = [option.split("=", 1) for option in (row[0] if row and row[0] else [])]
    return [sql.SQL("{} = {}").format(sql.Identifier(name), sql.Literal(value)) for name, value in options]


def _drop_tables(conn: psycopg.Connection[Any], tables: Iterable[str]) -> None:
    with conn.transaction():
        for table in tables:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


def _last_visible(conn: psycopg.Connection[Any], projection: Rebuildable) -> Checkpoint | None:
    """The checkpoint of the last of the projection's events below the horizon (None: none)."""
    types = None if projection.types is None else sorted(projection.types)
    row = conn.execute(Q["last_visible"], {"types": types}).fetchone()
    return None if row is None else Checkpoint(int(row[0]), int(row[1]), int(row[2]))


def _count(conn: psycopg.Connection[Any], projection: Rebuildable) -> int:
    types = None if projection.types is None else sorted(projection.types)
    row = conn.execute(Q["events_to_read"], {"types": types}).fetchone()
    return int(row[0]) if row else 0


def _fetch_one(conn: psycopg.Connection[Any], query: Any, params: dict[str, Any]) -> Any:
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def _fetch_bool(conn: psycopg.Connection[Any], query: Any, params: dict[str, Any]) -> bool:
    row = conn.execute(query, params).fetchone()
    return bool(row and row[0])
