"""Where a single-event append's time goes: CPU per append, client and server, by layer.

A diagnostic beside bench/eventlog.py, for when its ratios miss. On a machine with two
cores shared by client and server, throughput under concurrency is bounded by total
CPU per append, so CPU time (not wall time, which the noise of a shared machine
dominates) is what this compares, peeling the store's append one layer at a time:

    raw INSERT into bench_raw            the baseline of bench/eventlog.py
    raw INSERT into events               + the table's triggers
    append statement                     + the store's statement, parameters encoded beforehand
    store.append, held connection        + the store's Python (codec, result), as the benchmark runs it
    store.append, held conn. + Notifier  + waking followers (a coalesced NOTIFY from the notifier thread)
    store.append, pool checkout each     + a pool checkout per append, as a service's unit of work does

Server CPU is read from /proc for the database's backends, so it needs the server on
this machine (else it shows as n/a).

    python bench/eventlog_breakdown.py [--events N] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import structlog
from psycopg_pool import ConnectionPool

from bench import eventlog_workload as wl
from bench.eventlog import pool_of, scratch_databases, server
from bench.eventlog_figures import progress
from events import codec, sqlfiles
from events.notifier import Notifier
from events.store import EventStore
from events.store import Q as STORE_Q

Q = sqlfiles.load("bench.sql", "eventlog.sql")
TICK = os.sysconf("SC_CLK_TCK")

Variant = Callable[[list[wl.Append]], None]


class Meter:
    """CPU seconds of this process and of the database's other backends, and WAL position."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)

    def server_cpu(self) -> float | None:
        pids = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        total = 0.0
        for (pid,) in pids:
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                return None  # not on this machine (or not ours to read)
            total += (int(fields[11]) + int(fields[12])) / TICK
        return total

    def wal(self) -> str:
        row = self.conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        return str(row[0]) if row else "0/0"

    def wal_bytes(self, start: str, end: str) -> float:
        row = self.conn.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", (end, start)).fetchone()
        return float(row[0]) if row else 0.0


def variants(plain: ConnectionPool[Any], checked: ConnectionPool[Any], notifier: Notifier) -> dict[str, Variant]:
    def raw(table: str) -> Variant:
        query = Q["raw_insert"].replace("bench_raw", table)

        def run(appends: list[wl.Append]) -> None:
            rows = [a.raw_rows()[0] for a in appends]
            with plain.connection() as conn:
                cur = conn.cursor()
                for row in rows:
                    cur.execute(query, row)

        return run

    def statement(appends: list[wl.Append]) -> None:
        params = [codec.encode_one(a.events[0], a.stream_id, a.expected_version, wl.WORKSPACE) for a in appends]
        with plain.connection() as conn:
            cur = conn.cursor()
            for p in params:
                cur.execute(STORE_Q["append_one"], p, prepare=True)

    def held(store: EventStore, *, wake: bool) -> Variant:
        def run(appends: list[wl.Append]) -> None:
            with store.pool.connection() as conn:
                for a in appends:
                    store.append(
                        a.stream_id, a.events, expected_version=a.expected_version, workspace_id=wl.WORKSPACE, conn=conn
                    )
                    if wake:
                        store.appended()

        return run

    def checkout(store: EventStore) -> Variant:
        def run(appends: list[wl.Append]) -> None:
            for a in appends:
                store.append(a.stream_id, a.events, expected_version=a.expected_version, workspace_id=wl.WORKSPACE)

        return run

    return {
        "raw INSERT into bench_raw": raw("bench_raw"),
        "raw INSERT into events (triggers)": raw("events"),
        "append statement, encoded beforehand": statement,
        "store.append, held connection": held(EventStore(checked), wake=False),
        "store.append, held conn. + Notifier": held(EventStore(checked, notifier), wake=True),
        "store.append, pool checkout each": checkout(EventStore(checked, notifier)),
    }


def measure(meter: Meter, run: Variant, appends: list[wl.Append]) -> tuple[float, ...]:
    """Per append: client CPU, server CPU (or nan), WAL bytes, wall time; all in µs or bytes."""
    n = len(appends)
    time.sleep(0.05)  # let the notifier's last NOTIFY land before the server is read
    server0, wal0 = meter.server_cpu(), meter.wal()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run(appends)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    time.sleep(0.05)
    server1, wal1 = meter.server_cpu(), meter.wal()
    server_us = float("nan") if server0 is None or server1 is None else (server1 - server0) / n * 1e6
    return cpu / n * 1e6, server_us, meter.wal_bytes(wal0, wal1) / n, wall / n * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1500, help="appends per variant and round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds (variants alternate order)")
    args = parser.parse_args(argv)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    with server() as admin_url, scratch_databases(admin_url) as (url, _):
        plain = ConnectionPool(url, min_size=1, max_size=1, kwargs={"autocommit": True}, open=True)
        checked = pool_of(url, 1)
        notifier = Notifier(url)
        notifier.start()
        meter = Meter(url)
        try:
            plain.wait()
            table = variants(plain, checked, notifier)
            results: dict[str, list[tuple[float, ...]]] = {name: [] for name in table}
            for r in range(args.rounds + 1):  # round 0 warms up (prepared statements, caches)
                names = list(table) if r % 2 == 0 else list(table)[::-1]
                for name in names:
                    sample = measure(meter, table[name], wl.single_appends(args.events if r else 100))
                    if r:
                        results[name].append(sample)
                progress(f"round {r}/{args.rounds} done")
        finally:
            meter.conn.close()
            notifier.stop()
            plain.close()
            checked.close()
    print(f"per single-event append, medians of {args.rounds} rounds of {args.events:,} (one connection)")
    header = f"{'variant':<38} {'client µs':>9} {'server µs':>9} {'CPU µs':>8} {'WAL B':>7} {'wall µs':>8}"
    print(header)
    print("-" * len(header))
    for name, samples in results.items():
        client, server_us, wal, wall = (statistics.median(s[i] for s in samples) for i in range(4))
        print(f"{name:<38} {client:>9.0f} {server_us:>9.0f} {client + server_us:>8.0f} {wal:>7.0f} {wall:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
