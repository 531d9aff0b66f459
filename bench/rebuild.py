"""Rebuild benchmark: the shares projection rebuilt from a log of realistic share
histories, beside the raw read rate of the same events in the same run.

    python bench/rebuild.py [--events 1000000] [--window 5000] [--workers N]

Runs against the PostgreSQL named by DATABASE_URL (an embedded one when it is unset),
in a scratch database dropped at the end. The log holds share histories (planned,
rescheduled, attempted with their response tasks, failed and retried, sent, held,
abandoned, replies, tasks completed, duplicates), many shares in flight at once,
written in transactions of 1,000 events. Then, in this order:

- raw read: the rebuild's own query (gap-safe keyset over (epoch, tx_id, position)
  below the horizon, pages of 1,000, the projection's event types), rows fetched as
  plain psycopg tuples, nothing decoded;
- rebuild: ``followthrough projections rebuild shares`` in a child process (read,
  decode, fold, write the fresh tables, swap), as that command runs it: split over
  one process per core (``--workers``, default the cores here); then the same in one
  process (``single_eps``), for comparison.

Goals: rebuild >= 50,000 events/s, peak RSS < 200 MB. The peak RSS is the rebuilding
process's plus every worker process's (a sum of high-water marks: an upper bound).
Readable lines first; the last line of standard output is one JSON object
(rebuild_eps, raw_read_eps, ratio, peak_rss_mb, ...).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
from psycopg import sql

from bench.eventlog import server, with_database
from bench.eventlog_memory import peak_mb
from events import codec
from events.pool import make_pool
from events.projections.rebuild import default_workers, rebuild
from events.projections.shares import SharesProjection
from events.records import Checkpoint
from events.store import EventStore
from events.store import Q as STORE
from tests.support.share_histories import share_appends

GOAL_EPS = 50_000
GOAL_RSS_MB = 200.0
TX_EVENTS = 1000
COLUMNS = ("event_id", "stream_id", "stream_version", "type", "schema_version", "data", "metadata", "workspace_id")
_STARTED = time.perf_counter()


def progress(message: str) -> None:
    print(f"[rebuild {time.perf_counter() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    from followthrough.schema import migrate

    name = f"bench_rebuild_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = with_database(admin_url, name)
        migrate(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def load(url: str, events: int) -> int:
    """Write about ``events`` events of share histories (COPY, transactions of ~1,000)."""
    started, written = time.perf_counter(), 0
    copy_sql = sql.SQL("COPY events ({}) FROM STDIN").format(sql.SQL(", ").join(map(sql.Identifier, COLUMNS)))
    appends = share_appends(events, seed=42, in_flight=2000)
    with psycopg.connect(url, autocommit=True) as conn:
        done = False
        while not done:
            in_tx = 0
            with conn.transaction(), conn.cursor().copy(copy_sql) as copy:
                while in_tx < TX_EVENTS:
                    append = next(appends, None)
                    if append is None:
                        done = True
                        break
                    cols = codec.encode(append.events)
                    for i, event_id in enumerate(cols["event_ids"]):
                        copy.write_row((event_id, append.stream_id, append.expected_version + i + 1, cols["types"][i],
                                        cols["schema_versions"][i], cols["data"][i], cols["metadata"][i],
                                        append.workspace_id))
                    in_tx += len(append.events)
            written += in_tx
            if written % 100_000 < in_tx:
                progress(f"loaded {written:,} events")
        conn.execute("VACUUM (ANALYZE) events")
    progress(f"loaded {written:,} events in {time.perf_counter() - started:.1f} s")
    return written


def raw_read(url: str) -> tuple[int, float]:
    """The rebuild's read, undecoded: (events, seconds)."""
    types = sorted(SharesProjection.types or ())
    count, after = 0, Checkpoint.start()
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        while True:
            params = {"epoch": after.epoch, "tx_id": str(after.tx_id), "position": after.position, "limit": 1000,
                      "types": types}
            rows = cur.execute(STORE["read_all"], params, prepare=True).fetchall()
            count += len(rows)
            if len(rows) < 1000:
                return count, time.perf_counter() - started
            last = rows[-1]
            after = Checkpoint(last[10], int(last[11]), last[0])


def child(url: str, window: int, workers: int) -> int:
    """Rebuild from this process; print one JSON object with the figures and peak RSS."""
    pool = make_pool(url, role="bench-rebuild", max_size=2)
    pool.open(wait=True)
    cpu = time.process_time()
    try:
        result = rebuild(EventStore(pool), SharesProjection(), window=window, workers=workers)
    finally:
        pool.close()
    cpu_us = (time.process_time() - cpu) / max(result.events, 1) * 1e6
    here = peak_mb()
    figures = {"events": result.events, "seconds": result.seconds, "workers": result.workers,
               "peak_rss_mb": round(here + sum(result.worker_peak_rss_mb), 1),
               "peak_rss_mb_each": [round(here, 1), *result.worker_peak_rss_mb],
               "cpu_us_per_event": round(cpu_us, 1)}
    print(orjson.dumps(figures).decode())
    return 0


def run_child(url: str, window: int, workers: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.rebuild", "--child", url, "--window", str(window),
               "--workers", str(workers)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return dict(orjson.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log (1,000,000)")
    parser.add_argument("--window", type=int, default=5000, help="events folded and written at a time (5000)")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help=f"processes the rebuild is split over (the cores here: {default_workers()})")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.window, args.workers)
    with server() as admin_url, scratch_database(admin_url) as url:
        written = load(url, args.events)
        progress("raw read of the same events")
        raw_count, raw_seconds = raw_read(url)
        progress(f"rebuild (child process, {args.workers} workers)")
        rebuilt = run_child(url, args.window, args.workers)
        with psycopg.connect(url, autocommit=True) as conn:
            counts = "SELECT (SELECT count(*) FROM rm_shares), (SELECT count(*) FROM rm_response_tasks)"
            shares, tasks = conn.execute(counts).fetchone() or (0, 0)
        progress("rebuild in one process (for comparison)")
        single = run_child(url, args.window, 1)
    rebuild_eps = rebuilt["events"] / rebuilt["seconds"]
    single_eps = single["events"] / single["seconds"]
    raw_eps = raw_count / raw_seconds
    peak = float(rebuilt["peak_rss_mb"])
    print(f"log: {written:,} events; model: {shares:,} shares, {tasks:,} tasks")
    print(f"raw read      {raw_count:>10,} events {raw_seconds:7.1f} s {raw_eps:>10,.0f}/s")
    print(f"rebuild       {rebuilt['events']:>10,} events {rebuilt['seconds']:7.1f} s {rebuild_eps:>10,.0f}/s"
          f" ({rebuilt['workers']} processes)"
          f"  goal >= {GOAL_EPS:,}/s: {'met' if rebuild_eps >= GOAL_EPS else 'NOT met'}")
    print(f"  in one process {single['events']:>7,} events {single['seconds']:7.1f} s {single_eps:>10,.0f}/s"
          f" (client CPU {single['cpu_us_per_event']} us/event)")
    print(f"peak RSS of the rebuild: {peak:.1f} MB (processes: {rebuilt['peak_rss_mb_each']})"
          f"  goal < {GOAL_RSS_MB:.0f} MB: {'met' if peak < GOAL_RSS_MB else 'NOT met'}")
    print(orjson.dumps({
        "rebuild_eps": round(rebuild_eps, 1), "raw_read_eps": round(raw_eps, 1),
        "ratio": round(rebuild_eps / raw_eps, 3), "peak_rss_mb": peak, "events": rebuilt["events"],
        "workers": rebuilt["workers"], "peak_rss_mb_each": rebuilt["peak_rss_mb_each"],
        "single_eps": round(single_eps, 1), "single_peak_rss_mb": single["peak_rss_mb"],
        "ratio_parallel_single": round(rebuild_eps / single_eps, 3),
        "rebuild_cpu_us_per_event": single["cpu_us_per_event"],
        "goals": {"rebuild_eps": GOAL_EPS, "peak_rss_mb": GOAL_RSS_MB},
        "met": {"rebuild_eps": rebuild_eps >= GOAL_EPS, "peak_rss_mb": peak < GOAL_RSS_MB},
    }).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
