"""How long `followthrough audit` takes on a large log.

Loads N shares (default 100,000) into a scratch database, each planned, attempted with its
two response tasks, sent, one reply, and every other one with a task completed (about 5.5
events a share), lets the real shares projection apply them, then times the audit (the
recount by the domain's fold plus the comparison with every read-model row).
Prints figures on stderr and, last, one JSON line.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/audit.py [--shares N]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import orjson
import psycopg
from psycopg import sql

from bench import eventlog_workload as wl
from bench.eventlog import pool_of, server, with_database
from events.catalogue import ResponseTaskCompleted, ResponseTasksRecorded
from events.projections.runner import ProjectionRunner
from events.projections.shares import SharesProjection
from events.records import NewEvent, StreamAppend
from events.store import EventStore
from scheduler.services.audit import audit

STREAMS_PER_STATEMENT = 500


def progress(message: str) -> None:
    print(f"[bench audit] {message}", file=sys.stderr, flush=True)


def share_events(share_id: uuid.UUID, complete: bool) -> list[NewEvent]:
    tasks = wl.tasks_recorded(share_id)
    events = [wl.planned(share_id), wl.attempt_started(share_id), tasks, wl.sent(share_id), wl.reply(share_id, 1)]
    if complete:
        recorded = tasks.event
        assert isinstance(recorded, ResponseTasksRecorded)
        first = recorded.tasks[0]
        events.append(NewEvent(ResponseTaskCompleted(
            task_id=first.task_id, completed_at=wl.NOW + timedelta(hours=2, minutes=30), completed_by="maria")))
    return events


def load(store: EventStore, shares: int) -> float:
    started = time.perf_counter()
    with store.pool.connection() as conn:
        for start in range(0, shares, STREAMS_PER_STATEMENT):
            appends = []
            for n in range(start, min(shares, start + STREAMS_PER_STATEMENT)):
                share_id = uuid.uuid4()
                appends.append(StreamAppend(f"share-{share_id}", share_events(share_id, n % 2 == 0), 0, wl.WORKSPACE))
            store.append_many(appends, conn=conn)
    return time.perf_counter() - started


def project(store: EventStore, url: str) -> float:
    started = time.perf_counter()
    runner = ProjectionRunner(store, SharesProjection(), conninfo=url, batch_size=2000)
    applied = runner.catch_up()
    progress(f"projected {applied} events")
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--shares", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (its URL is printed)")
    parser.add_argument("--reuse", metavar="URL", help="audit a database a --keep run left, without loading")
    args = parser.parse_args(argv)
    if args.reuse:
        return run(args.reuse, args)
    with server() as admin_url:
        name = f"bench_audit_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            return run(with_database(admin_url, name), args)
        finally:
            if args.keep:
                progress(f"kept: {with_database(admin_url, name)}")
            else:
                with psycopg.connect(admin_url, autocommit=True) as conn:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def run(url: str, args: argparse.Namespace) -> int:
    from followthrough.schema import migrate

    pool = pool_of(url, 2)
    store = EventStore(pool)
    load_s = project_s = 0.0
    try:
        if not args.reuse:
            migrate(url)
            progress(f"loading {args.shares} shares")
            load_s = load(store, args.shares)
            progress(f"loaded in {load_s:.1f} s; projecting")
            project_s = project(store, url)
        progress(f"auditing {args.runs} times")
        timings: list[float] = []
        found: Any = None
        for _ in range(args.runs):
            with psycopg.connect(url, autocommit=True) as conn:
                found = audit(conn)
            timings.append(found.seconds)
            progress(f"audit: {found.seconds:.2f} s, {found.events_read} events, clean={found.clean}")
    finally:
        pool.close()
    assert found is not None
    [workspace] = found.workspaces.values()
    result = {
        "bench": "audit", "shares": workspace.shares, "tasks": workspace.tasks, "events": found.events_read,
        "audit_seconds_best": round(min(timings), 2), "audit_seconds_worst": round(max(timings), 2),
        "events_per_second": round(found.events_read / min(timings)), "clean": found.clean,
        "load_seconds": round(load_s, 1), "projection_seconds": round(project_s, 1),
    }
    print(orjson.dumps(result).decode())
    return 0 if found.clean else 1


if __name__ == "__main__":
    sys.exit(main())
