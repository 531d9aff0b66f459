"""Event-log benchmark: the store against raw psycopg doing the same writes and reads.

Runs against the PostgreSQL named by ``DATABASE_URL`` (or an embedded one when it is
unset), in a scratch database dropped at the end. Store and raw baseline share the
run, the connections (the same pools) and the tables' shape: ``bench_raw`` is
``events`` without its triggers. Rounds alternate A/B, B/A (the machine is noisy)
and each figure is the median of its rounds.

    python bench/eventlog.py [--quick] [--rounds N] [...]   (see --help)

Readable lines first; the last line of standard output is one JSON object with every
figure. Progress goes to standard error.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
import structlog
from psycopg_pool import ConnectionPool

from bench import eventlog_workload as wl
from events import sqlfiles
from events.notifier import Notifier
from events.store import EventStore
from scheduler.db import connect_kwargs, make_pool
from scheduler.settings import Settings

Q = sqlfiles.load("bench.sql", "eventlog.sql")

GOALS = {"single": 0.9, "concurrent": 0.85, "batch": 0.8, "read": 0.5}
PEAK_READ_MB_GOAL = 200.0

DEFAULTS = {
    "rounds": 5,
    "single_events": 2000,
    "threads": 16,
    "concurrent_events": 8000,
    "batches": 100,
    "batch_size": 100,
    "read_events": 200_000,
    "read_batch": 1000,
    "memory_events": 1_000_000,
}
QUICK = {
    "rounds": 3,
    "single_events": 300,
    "concurrent_events": 1600,
    "batches": 15,
    "read_events": 20_000,
    "memory_events": 50_000,
}


# --- set-up -----------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"[eventlog] {message}", file=sys.stderr, flush=True)


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (host URLs and socket URLs alike)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@contextmanager
def server() -> Iterator[str]:
    """The URL of the PostgreSQL to use: ``DATABASE_URL``, or an embedded one for this run."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from scheduler import embedded

    with tempfile.TemporaryDirectory(prefix="bench_eventlog_") as home:
        progress("DATABASE_URL unset: starting the embedded PostgreSQL")
        servers = embedded.start(Path(home), need_database=True, need_broker=False)
        try:
            assert servers.database_url
            yield servers.database_url
        finally:
            servers.stop()


@contextmanager
def scratch_databases(admin_url: str) -> Iterator[tuple[str, str]]:
    """Two migrated scratch databases (the figures' and the memory test's), dropped after."""
    from workers.bootstrap import migrate

    tag = uuid.uuid4().hex[:8]
    main, memory = f"bench_eventlog_{tag}", f"bench_eventlog_{tag}_mem"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{main}"')
    try:
        url = with_database(admin_url, main)
        migrate(Settings(database_url=url, broker_url="redis://unused"))
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{memory}" TEMPLATE "{main}"')
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(Q["create_raw_table"])
        yield url, with_database(admin_url, memory)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            for name in (main, memory):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def check_raw_table(url: str) -> str:
    """Proves the baseline's table costs what ``events`` costs to write, minus the triggers."""
    with psycopg.connect(url, autocommit=True) as conn:

        def shape(table: str) -> set[str]:
            return {row[0] for row in conn.execute(Q["table_shape"], {"table": table})}

        def triggers(table: str) -> int:
            row = conn.execute(Q["user_triggers"], {"table": table}).fetchone()
            return int(row[0]) if row else 0

        events, raw = shape("events"), shape("bench_raw")
        if events != raw:
            raise SystemExit(f"bench_raw differs from events: {sorted(events ^ raw)}")
        if triggers("bench_raw"):
            raise SystemExit("bench_raw must not have triggers")
        indexes = sorted(item.removeprefix("index ") for item in events if item.startswith("index "))
        return f"bench_raw = events minus its {triggers('events')} triggers; indexes: " + "; ".join(indexes)


def pool_of(url: str, size: int) -> ConnectionPool[Any]:
    """A pool built the way the service builds its own (autocommit, checked on checkout)."""
    settings = Settings(database_url=url, broker_url="redis://unused", pool_min=size, pool_max=size)
    pool = make_pool(settings, url, role="bench", max_size=size)
    pool.open(wait=True)
    return pool


# --- measuring ---------------------------------------------------------------------------


@dataclass
class Figure:
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
    make: Callable[[int], Any],
    store_side: Callable[[Any], float],
    raw_side: Callable[[Any], float],
) -> tuple[list[float], list[float]]:
    """Rounds of the same workload for both sides, A/B then B/A, after one warm-up each."""
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


def append_all(store: EventStore, appends: Sequence[wl.Append]) -> int:
    written = 0
    for a in appends:
        written += store.append(
            a.stream_id, a.events, expected_version=a.expected_version, workspace_id=wl.WORKSPACE
        ).written
    return written


def insert_all(conn: psycopg.Connection[Any], rows: Sequence[wl.RawRow]) -> None:
    """Raw single inserts: one autocommit INSERT (one transaction) per event."""
    cur = conn.cursor()
    for row in rows:
        cur.execute(Q["raw_insert"], row)


def run_threads(workers: Sequence[Callable[[threading.Barrier], None]]) -> float:
    """Seconds from the moment every worker is ready until the last one is done."""
    barrier = threading.Barrier(len(workers) + 1)
    errors: list[BaseException] = []

    def run(work: Callable[[threading.Barrier], None]) -> None:
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


@dataclass
class Bench:
    args: argparse.Namespace
    pool1: ConnectionPool[Any]
    pool_n: ConnectionPool[Any]
    store1: EventStore
    store_n: EventStore

    def single(self) -> Figure:
        def make(r: int) -> tuple[list[wl.Append], list[wl.RawRow]]:
            appends = wl.single_appends(200 if r < 0 else self.args.single_events)
            return appends, [a.raw_rows()[0] for a in appends]

        def store_side(work: tuple[list[wl.Append], list[wl.RawRow]]) -> float:
            appends, _ = work
            started = time.perf_counter()
            written = append_all(self.store1, appends)
            elapsed = time.perf_counter() - started
            assert written == len(appends)
            return written / elapsed

        def raw_side(work: tuple[list[wl.Append], list[wl.RawRow]]) -> float:
            _, rows = work
            with self.pool1.connection() as conn:
                started = time.perf_counter()
                insert_all(conn, rows)
                elapsed = time.perf_counter() - started
            return len(rows) / elapsed

        store, raw = interleaved("single", self.args.rounds, make, store_side, raw_side)
        return Figure("single", "single-event append, 1 connection", GOALS["single"], store, raw)

    def concurrent(self) -> Figure:
        threads = self.args.threads
        per_thread = max(2, self.args.concurrent_events // threads)

        def make(r: int) -> list[tuple[list[wl.Append], list[wl.RawRow]]]:
            work = []
            for _ in range(threads):
                appends = wl.single_appends(20 if r < 0 else per_thread)
                work.append((appends, [a.raw_rows()[0] for a in appends]))
            return work

        def store_side(work: list[tuple[list[wl.Append], list[wl.RawRow]]]) -> float:
            def worker(appends: list[wl.Append]) -> Callable[[threading.Barrier], None]:
                def run(barrier: threading.Barrier) -> None:
                    barrier.wait()
                    assert append_all(self.store_n, appends) == len(appends)

                return run

            elapsed = run_threads([worker(appends) for appends, _ in work])
            return sum(len(appends) for appends, _ in work) / elapsed

        def raw_side(work: list[tuple[list[wl.Append], list[wl.RawRow]]]) -> float:
            def worker(rows: list[wl.RawRow]) -> Callable[[threading.Barrier], None]:
                def run(barrier: threading.Barrier) -> None:
                    with self.pool_n.connection() as conn:  # each thread its own connection
                        barrier.wait()
                        insert_all(conn, rows)

                return run

            elapsed = run_threads([worker(rows) for _, rows in work])
            return sum(len(rows) for _, rows in work) / elapsed

        store, raw = interleaved("concurrent", self.args.rounds, make, store_side, raw_side)
        label = f"single-event appends, {threads} connections"
        return Figure("concurrent", label, GOALS["concurrent"], store, raw)

    def batch(self) -> Figure:
        size = self.args.batch_size

        def make(r: int) -> tuple[list[wl.Append], list[list[wl.RawRow]]]:
            appends = wl.batch_appends(5 if r < 0 else self.args.batches, size)
            return appends, [a.raw_rows() for a in appends]

        def store_side(work: tuple[list[wl.Append], list[list[wl.RawRow]]]) -> float:
            appends, _ = work
            started = time.perf_counter()
            written = append_all(self.store1, appends)
            elapsed = time.perf_counter() - started
            assert written == len(appends) * size
            return written / elapsed

        def raw_side(work: tuple[list[wl.Append], list[list[wl.RawRow]]]) -> float:
            _, batches = work
            with self.pool1.connection() as conn:
                cur = conn.cursor()
                started = time.perf_counter()
                for rows in batches:
                    with conn.transaction():
                        cur.executemany(Q["raw_insert"], rows)
                elapsed = time.perf_counter() - started
            return sum(len(rows) for rows in batches) / elapsed

        store, raw = interleaved("batch", self.args.rounds, make, store_side, raw_side)
        return Figure("batch", f"{size}-event batch append", GOALS["batch"], store, raw)

    def read(self) -> Figure:
        limit = self.args.read_batch
        with self.pool1.connection() as conn:
            have = count_events(conn)
            if have < self.args.read_events:
                progress(f"read: loading {self.args.read_events - have:,} more events (log has {have:,})")
                conn.execute(Q["bulk_load"], wl.bulk_load_params(self.args.read_events - have))
            conn.execute("VACUUM (ANALYZE) events")
            total = count_events(conn)

        def store_side(_: None) -> float:
            started = time.perf_counter()
            count = sum(1 for _ in self.store1.read_all(batch_size=limit))
            elapsed = time.perf_counter() - started
            assert count == total, (count, total)
            return count / elapsed

        def raw_side(_: None) -> float:
            with self.pool1.connection() as conn:
                cur = conn.cursor()
                started = time.perf_counter()
                count, after = 0, 0
                while True:
                    cur.execute(Q["raw_read"], {"after": after, "limit": limit})
                    rows = cur.fetchall()
                    count += len(rows)
                    if len(rows) < limit:
                        break
                    after = rows[-1][0]
                elapsed = time.perf_counter() - started
            assert count == total, (count, total)
            return count / elapsed

        store, raw = interleaved("read", self.args.rounds, lambda _: None, store_side, raw_side)
        label = f"whole-log read ({total:,} events) into typed events"
        return Figure("read", label, GOALS["read"], store, raw)


def count_events(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(Q["count_events"]).fetchone()
    return int(row[0]) if row else 0


def peak_read_memory(url: str, events: int, batch: int) -> dict[str, Any]:
    """Loads ``events`` into the memory test's database, then reads them all through
    ``EventStore.read_all`` in a child process and returns what it reports."""
    progress(f"memory: loading {events:,} events")
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(Q["bulk_load"], wl.bulk_load_params(events))
    progress(f"memory: loaded in {time.perf_counter() - started:.1f} s; reading them in a child process")
    child = subprocess.run(
        [sys.executable, "-m", "bench.eventlog_memory", url, str(events), str(batch)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if child.returncode != 0:
        raise SystemExit(f"memory child failed ({child.returncode}):\n{child.stdout}\n{child.stderr}")
    result: dict[str, Any] = orjson.loads(child.stdout.strip().splitlines()[-1])
    return result


# --- reporting ---------------------------------------------------------------------------


def report(figures: list[Figure], memory: dict[str, Any], args: argparse.Namespace, setup: dict[str, Any]) -> None:
    print(f"PostgreSQL: {setup['server']}")
    print(
        f"store: EventStore over scheduler.db.make_pool (autocommit, check on checkout), notifier {setup['notifier']}"
    )
    print(f"raw:   {setup['raw_table']}")
    print(f"rounds: {args.rounds}, interleaved A/B, B/A; figures are medians of the rounds, in events/s")
    print()
    header = f"{'figure':<52} {'store':>11} {'raw':>11} {'ratio':>6} {'goal':>7}  result"
    print(header)
    print("-" * len(header))
    for f in figures:
        verdict = "PASS" if f.met else "MISS"
        goal = f">={f.goal}"
        print(f"{f.label:<52} {f.store_eps:>11,.0f} {f.raw_eps:>11,.0f} {f.ratio:>6.2f} {goal:>7}  {verdict}")
    peak = memory["peak_rss_mb"]
    verdict = "PASS" if peak < PEAK_READ_MB_GOAL else "MISS"
    label = f"peak memory reading {memory['events']:,} events (MB)"
    print(f"{label:<52} {peak:>11.1f} {'':>11} {'':>6} {'<' + str(int(PEAK_READ_MB_GOAL)):>7}  {verdict}")
    print()
    for f in figures:
        rounds = " ".join(f"{s:,.0f}/{r:,.0f}" for s, r in zip(f.store, f.raw, strict=True))
        print(f"rounds {f.key:<10} store/raw: {rounds}")
    memory_eps = memory["events"] / memory["seconds"]
    print(
        f"memory child: RSS {memory['rss_before_read_mb']:.1f} MB before reading, peak {peak:.1f} MB;"
        f" read {memory['events']:,} events in {memory['seconds']:.1f} s ({memory_eps:,.0f}/s)"
    )
    summary: dict[str, Any] = {}
    for f in figures:
        summary[f"{f.key}_store_eps"] = round(f.store_eps, 1)
        summary[f"{f.key}_raw_eps"] = round(f.raw_eps, 1)
        summary[f"ratio_{f.key}"] = round(f.ratio, 3)
    summary["peak_read_mb"] = peak
    summary["peak_read_events"] = memory["events"]
    summary["rss_before_read_mb"] = memory["rss_before_read_mb"]
    summary["memory_read_eps"] = round(memory_eps, 1)
    summary["goals"] = {**{f"ratio_{k}": v for k, v in GOALS.items()}, "peak_read_mb": PEAK_READ_MB_GOAL}
    summary["met"] = {**{f"ratio_{f.key}": f.met for f in figures}, "peak_read_mb": peak < PEAK_READ_MB_GOAL}
    summary["config"] = {k: getattr(args, k) for k in DEFAULTS} | {"notifier": setup["notifier"], "quick": args.quick}
    print(orjson.dumps(summary).decode())


# --- entry point -------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run (well under 30 s): small sizes")
    parser.add_argument("--rounds", type=int, help=f"rounds per figure and side (default {DEFAULTS['rounds']})")
    parser.add_argument("--single-events", type=int, help="single appends per round and side")
    parser.add_argument("--threads", type=int, help="concurrent connections (threads)")
    parser.add_argument("--concurrent-events", type=int, help="concurrent appends per round and side, all threads")
    parser.add_argument("--batches", type=int, help="batch appends per round and side")
    parser.add_argument("--batch-size", type=int, help="events per batch append")
    parser.add_argument("--read-events", type=int, help="events in the log read by the read figure (topped up)")
    parser.add_argument("--read-batch", type=int, help="rows per read batch, store and raw alike")
    parser.add_argument("--memory-events", type=int, help="events read by the peak-memory child")
    parser.add_argument("--no-notifier", action="store_true", help="give the store no Notifier")
    args = parser.parse_args(argv)
    sizes = DEFAULTS | (QUICK if args.quick else {})
    for key, value in sizes.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    with server() as admin_url, scratch_databases(admin_url) as (url, memory_url):
        progress("scratch databases migrated")
        setup: dict[str, Any] = {"raw_table": check_raw_table(url), "notifier": "off" if args.no_notifier else "on"}
        with psycopg.connect(url) as conn:
            setup["server"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        notifier = None
        if not args.no_notifier:
            settings = Settings(database_url=url, broker_url="redis://unused")
            notifier = Notifier(url, connect_kwargs=connect_kwargs(settings, "bench-notifier"))
            notifier.start()
        pool1, pool_n = pool_of(url, 1), pool_of(url, args.threads)
        try:
            bench = Bench(args, pool1, pool_n, EventStore(pool1, notifier), EventStore(pool_n, notifier))
            figures = [bench.single(), bench.concurrent(), bench.batch(), bench.read()]
        finally:
            pool1.close()
            pool_n.close()
            if notifier is not None:
                notifier.stop()
        memory = peak_read_memory(memory_url, args.memory_events, args.read_batch)
    report(figures, memory, args, setup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
