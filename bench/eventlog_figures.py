"""The event-log benchmark's figures: each runs the store and the raw psycopg baseline
on the same workload and the same connections, in alternating rounds.

Raw single insert: one autocommit INSERT per event on a held connection (a reused
cursor). Raw batch: ``executemany`` of the rows inside one transaction (psycopg
pipelines it). Raw read: plain SELECT of the same columns by position, in batches
of the store's size, jsonb left to psycopg's default loader.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from bench import eventlog_workload as wl
from events import sqlfiles
from events.store import EventStore

Q = sqlfiles.load("bench.sql", "eventlog.sql")

GOALS = {"single": 0.9, "concurrent": 0.85, "batch": 0.8, "read": 0.5}

W = TypeVar("W")
Worker = Callable[[threading.Barrier], None]


_STARTED = time.perf_counter()


def progress(message: str) -> None:
    print(f"[eventlog {time.perf_counter() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Figure:
    """Events/s of both sides, round by round; the figure is the median."""

    key: str
    label: str
    goal: float
    store: list[float]
    raw: list[float]

    @property
    def store_eps(self) -> float:
        return statistics.median(self.store)

    @property
    def raw_eps(self) -> float:
        return statistics.median(self.raw)

    @property
    def ratio(self) -> float:
        return self.store_eps / self.raw_eps

    @property
    def met(self) -> bool:
        return self.ratio >= self.goal


def interleaved(
    name: str,
    rounds: int,
    make: Callable[[int], W],
    store_side: Callable[[W], float],
    raw_side: Callable[[W], float],
) -> tuple[list[float], list[float]]:
    """Rounds of the same workload for both sides, A/B then B/A, after one warm-up each
    (``make(-1)`` builds the warm-up's workload)."""
    warm = make(-1)
    store_side(warm)
    raw_side(warm)
    store: list[float] = []
    raw: list[float] = []
    for r in range(rounds):
        work = make(r)
        if r % 2 == 0:
            store.append(store_side(work))
            raw.append(raw_side(work))
        else:
            raw.append(raw_side(work))
            store.append(store_side(work))
        progress(f"{name} round {r + 1}/{rounds}: store {store[-1]:,.0f}/s, raw {raw[-1]:,.0f}/s")
    return store, raw


def append_all(store: EventStore, appends: Sequence[wl.Append], conn: psycopg.Connection[Any]) -> int:
    """Store appends on the connection the raw side uses too (autocommit: each append is
    its own transaction), waking followers after each as a writer does."""
    written = 0
    for a in appends:
        result = store.append(
            a.stream_id, a.events, expected_version=a.expected_version, workspace_id=wl.WORKSPACE, conn=conn
        )
        store.appended()
        written += result.written
    return written


def insert_all(conn: psycopg.Connection[Any], rows: Sequence[wl.RawRow]) -> None:
    """Raw single inserts: one autocommit INSERT (one transaction) per event."""
    cur = conn.cursor()
    for row in rows:
        cur.execute(Q["raw_insert"], row)


def run_threads(workers: Sequence[Worker]) -> float:
    """Seconds from the moment every worker is ready (at the barrier) until the last is done."""
    barrier = threading.Barrier(len(workers) + 1)
    errors: list[BaseException] = []

    def run(work: Worker) -> None:
        try:
            work(barrier)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


Singles = tuple[list[wl.Append], list[wl.RawRow]]


def _singles(count: int) -> Singles:
    appends = wl.single_appends(count)
    return appends, [a.raw_rows()[0] for a in appends]


def single(args: argparse.Namespace, pool: ConnectionPool[Any], store: EventStore) -> Figure:
    """Single-event appends on one connection (``pool`` holds one)."""

    def store_side(work: Singles) -> float:
        appends, _ = work
        with pool.connection() as conn:
            started = time.perf_counter()
            written = append_all(store, appends, conn)
            elapsed = time.perf_counter() - started
        assert written == len(appends)
        return written / elapsed

    def raw_side(work: Singles) -> float:
        _, rows = work
        with pool.connection() as conn:
            started = time.perf_counter()
            insert_all(conn, rows)
            elapsed = time.perf_counter() - started
        return len(rows) / elapsed

    def make(r: int) -> Singles:
        return _singles(200 if r < 0 else args.single_events)

    store_eps, raw_eps = interleaved("single", args.rounds, make, store_side, raw_side)
    return Figure("single", "single-event append, 1 connection", GOALS["single"], store_eps, raw_eps)


def concurrent(args: argparse.Namespace, pool: ConnectionPool[Any], store: EventStore) -> Figure:
    """Single-event appends from ``args.threads`` threads, each on its own connection
    (``pool`` holds one per thread; the store takes them per append, raw holds one)."""
    threads = args.threads
    per_thread = max(2, args.concurrent_events // threads)

    def store_side(work: list[Singles]) -> float:
        def worker(appends: list[wl.Append]) -> Worker:
            def run(barrier: threading.Barrier) -> None:
                with pool.connection() as conn:
                    barrier.wait()
                    assert append_all(store, appends, conn) == len(appends)

            return run

        elapsed = run_threads([worker(appends) for appends, _ in work])
        return sum(len(appends) for appends, _ in work) / elapsed

    def raw_side(work: list[Singles]) -> float:
        def worker(rows: list[wl.RawRow]) -> Worker:
            def run(barrier: threading.Barrier) -> None:
                with pool.connection() as conn:
                    barrier.wait()
                    insert_all(conn, rows)

            return run

        elapsed = run_threads([worker(rows) for _, rows in work])
        return sum(len(rows) for _, rows in work) / elapsed

    def make(r: int) -> list[Singles]:
        return [_singles(20 if r < 0 else per_thread) for _ in range(threads)]

    store_eps, raw_eps = interleaved("concurrent", args.rounds, make, store_side, raw_side)
    label = f"single-event appends, {threads} connections"
    return Figure("concurrent", label, GOALS["concurrent"], store_eps, raw_eps)


Batches = tuple[list[wl.Append], list[list[wl.RawRow]]]


def batch(args: argparse.Namespace, pool: ConnectionPool[Any], store: EventStore) -> Figure:
    """Appends of ``args.batch_size`` events to a new stream each, one connection."""
    size = args.batch_size

    def make(r: int) -> Batches:
        appends = wl.batch_appends(5 if r < 0 else args.batches, size)
        return appends, [a.raw_rows() for a in appends]

    def store_side(work: Batches) -> float:
        appends, _ = work
        with pool.connection() as conn:
            started = time.perf_counter()
            written = append_all(store, appends, conn)
            elapsed = time.perf_counter() - started
        assert written == len(appends) * size
        return written / elapsed

    def raw_side(work: Batches) -> float:
        _, batches = work
        with pool.connection() as conn:
            cur = conn.cursor()
            started = time.perf_counter()
            for rows in batches:
                with conn.transaction():
                    cur.executemany(Q["raw_insert"], rows)
            elapsed = time.perf_counter() - started
        return sum(len(rows) for rows in batches) / elapsed

    store_eps, raw_eps = interleaved("batch", args.rounds, make, store_side, raw_side)
    return Figure("batch", f"{size}-event batch append", GOALS["batch"], store_eps, raw_eps)


def read(args: argparse.Namespace, pool: ConnectionPool[Any], store: EventStore, total: int) -> Figure:
    """The whole log (``total`` events) read through ``store.read_all`` into typed events."""
    limit = args.read_batch

    def store_side(_: None) -> float:
        started = time.perf_counter()
        count = sum(1 for _ in store.read_all(batch_size=limit))
        elapsed = time.perf_counter() - started
        assert count == total, (count, total)
        return count / elapsed

    def raw_side(_: None) -> float:
        with pool.connection() as conn:
            cur = conn.cursor()
            started = time.perf_counter()
            count, after = 0, 0
            while True:
                rows = cur.execute(Q["raw_read"], {"after": after, "limit": limit}).fetchall()
                count += len(rows)
                if len(rows) < limit:
                    break
                after = rows[-1][0]
            elapsed = time.perf_counter() - started
        assert count == total, (count, total)
        return count / elapsed

    store_eps, raw_eps = interleaved("read", args.rounds, lambda _: None, store_side, raw_side)
    label = f"whole-log read ({total:,} events) into typed events"
    return Figure("read", label, GOALS["read"], store_eps, raw_eps)
