"""Event-log benchmark: the store against raw psycopg doing the same writes and reads.

Runs against the PostgreSQL named by DATABASE_URL (an embedded one when it is unset),
in scratch databases dropped at the end. Store and raw baseline share the run, the
connections (the same pools) and the table's shape: bench_raw is `events` without
its triggers. Rounds alternate store/raw, raw/store (the machine is noisy) and each
figure is the median of its rounds. Peak memory is measured in a child process
reading the whole log through EventStore.read_all.

    python bench/eventlog.py [--quick] [--rounds N] [...]

Readable lines first; the last line of standard output is one JSON object with every
figure. Progress goes to standard error.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
import structlog
from psycopg import sql
from psycopg_pool import ConnectionPool

from bench import eventlog_figures as figures
from bench import eventlog_workload as wl
from bench.eventlog_figures import GOALS, Figure, progress
from events import sqlfiles
from events.notifier import Notifier
from events.pool import connect_kwargs, make_pool
from events.store import EventStore

Q = sqlfiles.load("bench.sql", "eventlog.sql")

PEAK_READ_MB_GOAL = 200.0
# The decoded whole-log read, absolute: the ceiling of every projection rebuild.
READ_EPS_GOAL = 100_000.0
LOAD_CHUNK = 100_000  # events per bulk-load transaction

DEFAULTS: dict[str, Any] = {
    "rounds": 5,
    "single_events": 2000,
    "threads": 16,
    "concurrent_events": 8000,
    "batches": 100,
    "batch_size": 100,
    "read_events": 200_000,
    "read_batch": 1000,
    "memory_events": 1_000_000,
    "memory_seconds": 120.0,
}
QUICK: dict[str, Any] = {
    "rounds": 3,
    "single_events": 200,
    "concurrent_events": 800,
    "batches": 10,
    "read_events": 5_000,
    "memory_events": 20_000,
    "memory_seconds": 20.0,
}


# --- servers and databases ----------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (host URLs and socket URLs alike)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@contextmanager
def server() -> Iterator[str]:
    """The URL of the PostgreSQL to use: DATABASE_URL, or an embedded one for this run."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from followthrough.local import embedded

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
    """Two migrated scratch databases, dropped afterwards: one for the write figures
    (with bench_raw), one holding the log that is read (the read figure, peak memory)."""
    from followthrough.schema import migrate

    tag = uuid.uuid4().hex[:8]
    writes, log = f"bench_eventlog_{tag}", f"bench_eventlog_{tag}_log"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(writes)))
    try:
        url = with_database(admin_url, writes)
        migrate(url)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(log), sql.Identifier(writes)))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(Q["create_raw_table"])
        yield url, with_database(admin_url, log)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            for name in (writes, log):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


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
        return f"bench_raw = events minus its {triggers('events')} triggers; indexes " + "; ".join(indexes)


def pool_of(url: str, size: int) -> ConnectionPool[Any]:
    """A pool built as the service builds its own (events.pool.make_pool), all connections open."""
    pool = make_pool(url, role="bench", max_size=size, min_size=size)
    pool.open(wait=True)
    return pool


def count_events(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(Q["count_events"]).fetchone()
        return int(row[0]) if row else 0


def load_log(url: str, upto: int) -> int:
    """Bulk-loads share events into the log until it holds ``upto``; returns the count."""
    have = count_events(url)
    if have >= upto:
        return have
    progress(f"loading {upto - have:,} events into the log (holds {have:,})")
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        while have < upto:
            chunk = min(LOAD_CHUNK, upto - have)
            conn.execute(Q["bulk_load"], wl.bulk_load_params(chunk))  # one transaction per chunk
            have += chunk
        conn.execute("VACUUM (ANALYZE) events")
    progress(f"loaded in {time.perf_counter() - started:.1f} s")
    return count_events(url)


# --- figures -------------------------------------------------------------------------------


def write_figures(args: argparse.Namespace, url: str) -> list[Figure]:
    notifier = None
    if args.notifier:
        notifier = Notifier(url, connect_kwargs=connect_kwargs("bench-notifier"))
        notifier.start()
    pool1, pool_n = pool_of(url, 1), pool_of(url, args.threads)
    try:
        store1, store_n = EventStore(pool1, notifier), EventStore(pool_n, notifier)
        return [
            figures.single(args, pool1, store1),
            figures.concurrent(args, pool_n, store_n),
            figures.batch(args, pool1, store1),
        ]
    finally:
        pool1.close()
        pool_n.close()
        if notifier is not None:
            notifier.stop()


def read_figure(args: argparse.Namespace, url: str) -> Figure:
    total = load_log(url, args.read_events)
    pool = pool_of(url, 1)
    try:
        return figures.read(args, pool, EventStore(pool), total)
    finally:
        pool.close()


def peak_read_memory(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """Reads the whole log (topped up to ``args.memory_events``) through
    ``EventStore.read_all`` in a child process; returns what the child reports."""
    total = load_log(url, args.memory_events)
    progress(f"memory: a child process reads {total:,} events (at most {args.memory_seconds:.0f} s)")
    command = [sys.executable, "-m", "bench.eventlog_memory", url, str(total), str(args.read_batch)]
    command.append(str(args.memory_seconds))
    child = subprocess.run(command, capture_output=True, text=True, check=False, cwd=Path(__file__).parent.parent)
    if child.returncode != 0:
        raise SystemExit(f"memory child failed ({child.returncode}):\n{child.stdout}\n{child.stderr}")
    result: dict[str, Any] = orjson.loads(child.stdout.strip().splitlines()[-1])
    return result


# --- reporting -----------------------------------------------------------------------------


def report(figs: list[Figure], memory: dict[str, Any], args: argparse.Namespace, setup: dict[str, str]) -> None:
    notifier = "with a started Notifier" if args.notifier else "without Notifier"
    print(f"PostgreSQL {setup['server']}; {os.cpu_count()} cores")
    print(f"store: EventStore on events.pool.make_pool (autocommit, check on checkout), {notifier}")
    print(f"raw:   {setup['raw_table']}")
    print(f"{args.rounds} rounds per figure, alternating store/raw and raw/store; medians of events/s")
    print()
    header = f"{'figure':<50} {'store/s':>10} {'raw/s':>10} {'ratio':>6} {'goal':>7}  result"
    print(header)
    print("-" * len(header))
    for f in figs:
        goal = f">={f.goal}"
        verdict = "PASS" if f.met else "MISS"
        print(f"{f.label:<50} {f.store_eps:>10,.0f} {f.raw_eps:>10,.0f} {f.ratio:>6.2f} {goal:>7}  {verdict}")
    peak, complete = memory["peak_rss_mb"], memory["events"] == memory["expected"]
    met_memory = complete and peak < PEAK_READ_MB_GOAL
    verdict = "PASS" if met_memory else ("MISS" if complete else f"MISS (incomplete: read {memory['events']:,})")
    goal = f"<{PEAK_READ_MB_GOAL:.0f}"
    label = f"peak RSS reading {memory['expected']:,} events, MB"
    print(f"{label:<50} {peak:>10.1f} {'':>10} {'':>6} {goal:>7}  {verdict}")
    read = next(f for f in figs if f.key == "read")
    met_read_eps = read.store_eps >= READ_EPS_GOAL
    label, goal = "decoded whole-log read, events/s", f">={READ_EPS_GOAL / 1000:.0f}k"
    print(f"{label:<50} {read.store_eps:>10,.0f} {'':>10} {'':>6} {goal:>7}  {'PASS' if met_read_eps else 'MISS'}")
    print()
    for f in figs:
        rounds = "  ".join(f"{s:,.0f}/{r:,.0f}" for s, r in zip(f.store, f.raw, strict=True))
        print(f"rounds {f.key:<10} store/raw: {rounds}")
    memory_eps = memory["events"] / memory["seconds"] if memory["seconds"] else 0.0
    print(
        f"memory child: RSS {memory['rss_before_read_mb']:.1f} MB before reading, peak {peak:.1f} MB;"
        f" read {memory['events']:,} of {memory['expected']:,} events in {memory['seconds']:.1f} s"
        f" ({memory_eps:,.0f}/s)" + (f"; {memory['stopped']}" if memory["stopped"] else "")
    )
    summary: dict[str, Any] = {}
    for f in figs:
        summary[f"{f.key}_store_eps"] = round(f.store_eps, 1)
        summary[f"{f.key}_raw_eps"] = round(f.raw_eps, 1)
        summary[f"ratio_{f.key}"] = round(f.ratio, 3)
    summary |= {
        "peak_read_mb": peak,
        "peak_read_events": memory["events"],
        "peak_read_expected": memory["expected"],
        "peak_read_complete": complete,
        "peak_read_stopped": memory["stopped"],
        "rss_before_read_mb": memory["rss_before_read_mb"],
        "memory_read_eps": round(memory_eps, 1),
        "goals": {**{f"ratio_{k}": v for k, v in GOALS.items()}, "peak_read_mb": PEAK_READ_MB_GOAL,
                  "read_store_eps": READ_EPS_GOAL},
        "met": {**{f"ratio_{f.key}": f.met for f in figs}, "peak_read_mb": met_memory,
                "read_store_eps": met_read_eps},
        "config": {k: getattr(args, k) for k in DEFAULTS} | {"notifier": args.notifier, "quick": args.quick},
    }
    print(orjson.dumps(summary).decode())


# --- entry point ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--quick", action="store_true", help="smoke run (under 30 s): small sizes, 20,000 events for memory")
    add("--rounds", type=int, help=f"rounds per figure and side (default {DEFAULTS['rounds']})")
    add("--single-events", type=int, help=f"single appends per round and side ({DEFAULTS['single_events']})")
    add("--threads", type=int, help=f"concurrent connections, one thread each ({DEFAULTS['threads']})")
    add("--concurrent-events", type=int, help=f"appends per round and side ({DEFAULTS['concurrent_events']})")
    add("--batches", type=int, help=f"batch appends per round and side ({DEFAULTS['batches']})")
    add("--batch-size", type=int, help=f"events per batch append ({DEFAULTS['batch_size']})")
    add("--read-events", type=int, help=f"events in the log of the read figure ({DEFAULTS['read_events']})")
    add("--read-batch", type=int, help=f"rows per read batch, store and raw ({DEFAULTS['read_batch']})")
    add("--memory-events", type=int, help=f"events read by the memory child ({DEFAULTS['memory_events']})")
    add(
        "--memory-seconds",
        type=float,
        help=f"time limit of the memory child, which also gives up once its rate shows it cannot meet it"
        f" ({DEFAULTS['memory_seconds']})",
    )
    add("--no-notifier", dest="notifier", action="store_false", help="give the store no Notifier")
    args = parser.parse_args(argv)
    for key, value in (DEFAULTS | (QUICK if args.quick else {})).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    started = time.perf_counter()
    with server() as admin_url, scratch_databases(admin_url) as (writes_url, log_url):
        progress("scratch databases migrated")
        with psycopg.connect(writes_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        setup = {"raw_table": check_raw_table(writes_url), "server": row[0] if row else "?"}
        figs = write_figures(args, writes_url)
        figs.append(read_figure(args, log_url))
        memory = peak_read_memory(args, log_url)
    progress(f"done in {time.perf_counter() - started:.0f} s")
    report(figs, memory, args, setup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
