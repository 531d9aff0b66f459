"""Projector benchmark: the live shares projector beside the rebuild, on the same log,
then the projection lag while a burst of shares goes out through `followthrough up`.

    python bench/projector.py [--events 500000] [--shares 10000] [--batch N] [--no-burst]

1. Catch-up: a log of share histories in the product's mix (planned, rescheduled,
   attempted with their response tasks, failed and retried, sent, held, abandoned,
   looks at the thread, replies received, answered or dismissed, tasks completed,
   duplicates; ``tests.support.share_histories``, as ``bench/rebuild.py`` loads it) in
   a scratch database. From a cold checkpoint the live projector (the real runner's
   step loop, ``ProjectionRunner.catch_up``) applies the whole log: ``live_eps``. Then
   the rebuild of the same log in this process, one worker (``rebuild_eps``), so the
   two compare like for like. Goal: ``ratio_live = live_eps / rebuild_eps >= 0.5``.
2. Burst: `followthrough up` (every role, on the PostgreSQL of DATABASE_URL and the
   Redis of BROKER_URL, embedded ones when unset) publishes ``--shares`` shares all
   due within 10 s while its projector follows; the projection lag (the age of the
   oldest event the shares projection has not applied, as ``projections status`` and
   ``/metrics`` compute it) is sampled every 100 ms from just before the first due
   time until the projector has applied the last share's events. Goal:
   ``burst_lag_p99_s <= 2``.

Figures are noisy on a shared machine. Readable lines first; the last line of standard
output is one JSON object.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import structlog

from bench import dispatch
from bench.eventlog import pool_of, server
from bench.rebuild import load, scratch_database
from events.monitoring import FollowerLag, follower_lags, horizon
from events.notifier import Notifier
from events.pool import make_pool
from events.projections.collector import few_collections
from events.projections.rebuild import rebuild
from events.projections.runner import ProjectionRunner
from events.projections.shares import SharesProjection
from events.store import EventStore
from followthrough.settings import Settings
from scheduler.services import accounts, workspaces
from scheduler.services.share_stream import ShareStreams
from scheduler.services.shares import ShareService
from tests.support.servers import free_port

GOAL_RATIO_LIVE = 0.5
GOAL_BURST_LAG_P99_S = 2.0
SAMPLE_SECONDS = 0.1
WARM_SHARES = 100
_STARTED = time.perf_counter()


def progress(message: str) -> None:
    print(f"[projector {time.perf_counter() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def catch_up(events: int, batch: int) -> dict[str, Any]:
    """Load the log, then the live projector from a cold checkpoint, then the rebuild."""
    with server() as admin_url, scratch_database(admin_url) as scratch:
        written = load(scratch, events)
        pool = pool_of(scratch, 2)
        store = EventStore(pool)
        try:
            runner = ProjectionRunner(store, SharesProjection(), conninfo=scratch, batch_size=batch)
            progress(f"live projector from a cold checkpoint (batches of {batch})")
            started, cpu = time.perf_counter(), time.process_time()
            with few_collections():  # as the projector role runs (followthrough.bootstrap)
                applied = runner.catch_up()
            live_s, live_cpu = time.perf_counter() - started, time.process_time() - cpu
            progress(f"live: {applied:,} events in {live_s:.1f} s; rebuild in this process")
            cpu = time.process_time()
            result = rebuild(store, SharesProjection(), window=5000, workers=1)
            rebuild_cpu = time.process_time() - cpu
        finally:
            pool.close()
    return {"events": applied, "written": written, "live_seconds": live_s, "rebuild_seconds": result.seconds,
            "rebuild_events": result.events, "live_cpu_us_per_event": live_cpu / max(applied, 1) * 1e6,
            "rebuild_cpu_us_per_event": rebuild_cpu / max(result.events, 1) * 1e6}


def burst(shares: int, seconds: float) -> dict[str, Any]:
    """`followthrough up` publishing ``shares`` shares due within ``seconds``; the shares
    projection's lag sampled every 100 ms until it has applied the burst's last event."""
    with tempfile.TemporaryDirectory(prefix="bench-projector-") as tmp, \
            dispatch.servers(Path(tmp) / "servers") as (url, broker):
        home, prefix = Path(tmp) / "home", f"benchprojector{uuid.uuid4().hex[:6]}"
        env = {**os.environ, "DATABASE_URL": url, "BROKER_URL": broker, "FOLLOWTHROUGH_QUEUE_PREFIX": prefix,
               "FOLLOWTHROUGH_HOME": str(home), "FOLLOWTHROUGH_LOG_FORMAT": "json"}
        settings = Settings(database_url=url, broker_url=broker, home=home, queue_prefix=prefix, pool_max=8)
        from followthrough.connections import migrate

        migrate(settings)
        pool = make_pool(url, role="bench", max_size=8)
        pool.open(wait=True)
        notifier = Notifier(url)  # planned as the API plans: the notifier wakes the dispatcher
        notifier.start()
        svc = ShareService(pool=pool, streams=ShareStreams(EventStore(pool, notifier), notifier))
        with pool.connection() as conn:
            workspaces.ensure_workspace(conn, dispatch.WS)
            # Looks for replies hourly: no look of the burst's shares falls due during it.
            account = accounts.create(conn, workspace_id=dispatch.WS, name="bench", channel="console",
                                      config=dispatch.HOURLY_LOOKS, default_response_plan=None,
                                      late_policy="send", max_lateness_seconds=None)
        log_path = Path(tmp) / "up.log"
        roles = dispatch.Roles(env, log_path)
        roles.start([sys.executable, "-m", "followthrough.cli", "up", "--port", str(free_port())], "up")
        try:
            _wait_up(roles, log_path, settings.worker_processes)
            progress("followthrough up: every role ready")
            started = time.monotonic()
            warm = dispatch.plan_many(svc, account.id, [datetime.now(UTC)] * WARM_SHARES, threads=4)
            plan_rate = WARM_SHARES / (time.monotonic() - started)
            dispatch.wait_all_sent(url, warm, timeout=120)
            lead = max(10.0, 1.5 * shares / plan_rate + 5)
            t0 = datetime.now(UTC) + timedelta(seconds=lead)
            dues = [t0 + timedelta(seconds=seconds * i / shares) for i in range(shares)]
            progress(f"burst: planning {shares:,} shares due from {lead:.0f} s ahead over {seconds:.0f} s")
            ids = dispatch.plan_many(svc, account.id, dues, threads=4)
            if datetime.now(UTC) > t0:
                raise SystemExit("planning the burst overran its first due time: lower --shares")
            time.sleep(max(0.0, (t0 - datetime.now(UTC)).total_seconds() - 0.5))
            lags, held, events = _sample_lag(url, timeout=600)
            dispatch.wait_all_sent(url, ids, timeout=5)
        finally:
            roles.stop()
            notifier.stop()
            pool.close()
    return {"lags": lags, "held": held, "burst_events": events}


def _leading(log_path: Path, follower: bytes) -> bool:
    """Whether the log has a line saying this follower leads (the follower loop's words)."""
    return any(b"follower_leading" in line and follower in line for line in log_path.read_bytes().splitlines())


def _wait_up(roles: dispatch.Roles, log_path: Path, workers: int) -> None:
    deadline = time.monotonic() + 180
    while roles.ready_workers() < workers or not _leading(log_path, b"projection:shares"):
        if time.monotonic() > deadline:
            raise SystemExit(f"followthrough up did not get ready in 180 s (see {log_path})")
        time.sleep(0.2)


def _shares_lag(conn: psycopg.Connection[Any]) -> FollowerLag:
    return next(lag for lag in follower_lags(conn, ["shares"]) if lag.name == "shares")


def _sample_lag(url: str, *, timeout: float) -> tuple[list[float], list[float], int]:
    """The shares projection's lag every 100 ms (as ``projections status`` computes it)
    until nothing is left to publish and the projection has applied every event; returns
    the samples, the horizon's hold at each, and the events it applied meanwhile."""
    lags: list[float] = []
    held: list[float] = []
    with psycopg.connect(url, autocommit=True) as conn:
        first = _shares_lag(conn)
        deadline = time.monotonic() + timeout
        next_at = time.monotonic()
        while True:
            now = _shares_lag(conn)
            lags.append(now.lag_seconds)
            # How long committed events have waited behind the log's horizon (a running
            # transaction anywhere on the server): lag no projector can win back.
            held.append(horizon(conn).held_seconds or 0.0)
            row = conn.execute("SELECT EXISTS (SELECT 1 FROM schedule WHERE kind = 'publish')").fetchone()
            if row is not None and not row[0] and now.events_behind == 0:
                return lags, held, now.events_applied - first.events_applied
            if time.monotonic() > deadline:
                raise SystemExit(f"the projector was still {now.events_behind} events behind after {timeout:.0f} s")
            next_at += SAMPLE_SECONDS
            time.sleep(max(0.0, next_at - time.monotonic()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500_000, help="events in the log (500,000)")
    parser.add_argument("--batch", type=int, default=None, help="the live projector's batch (the default setting)")
    parser.add_argument("--shares", type=int, default=10_000, help="shares in the burst (10,000)")
    parser.add_argument("--burst-seconds", type=float, default=10.0)
    parser.add_argument("--no-burst", action="store_true", help="the catch-up phase only")
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    batch = args.batch or Settings.model_fields["projector_batch"].default
    caught = catch_up(args.events, batch)
    live_eps = caught["events"] / caught["live_seconds"]
    rebuild_eps = caught["rebuild_events"] / caught["rebuild_seconds"]
    ratio = live_eps / rebuild_eps
    print(f"log: {caught['written']:,} events of share histories")
    print(f"live projector  {caught['events']:>9,} events {caught['live_seconds']:7.1f} s {live_eps:>9,.0f}/s"
          f"  (batches of {batch}; client CPU {caught['live_cpu_us_per_event']:.1f} us/event)")
    print(f"rebuild         {caught['rebuild_events']:>9,} events {caught['rebuild_seconds']:7.1f} s"
          f" {rebuild_eps:>9,.0f}/s  (one process; client CPU {caught['rebuild_cpu_us_per_event']:.1f} us/event)")
    print(f"ratio live/rebuild {ratio:.2f}  goal >= {GOAL_RATIO_LIVE}: "
          f"{'met' if ratio >= GOAL_RATIO_LIVE else 'NOT met'}")
    figures: dict[str, Any] = {
        "live_eps": round(live_eps, 1), "rebuild_eps": round(rebuild_eps, 1), "ratio_live": round(ratio, 3),
        "events": caught["events"], "batch": batch,
        "live_cpu_us_per_event": round(caught["live_cpu_us_per_event"], 1),
        "rebuild_cpu_us_per_event": round(caught["rebuild_cpu_us_per_event"], 1),
        "burst_lag_p99_s": None,
    }
    met = {"ratio_live": ratio >= GOAL_RATIO_LIVE}
    if not args.no_burst:
        progress(f"burst through followthrough up: {args.shares:,} shares due within {args.burst_seconds:.0f} s")
        found = burst(args.shares, args.burst_seconds)
        lags = found["lags"]
        p50, p99 = dispatch.percentile(lags, 0.5), dispatch.percentile(lags, 0.99)
        figures.update(burst_lag_p99_s=round(p99, 3), burst_lag_p50_s=round(p50, 3),
                       burst_lag_max_s=round(max(lags), 3), burst_samples=len(lags), burst_shares=args.shares,
                       burst_seconds=args.burst_seconds, burst_events=found["burst_events"],
                       burst_horizon_held_p99_s=round(dispatch.percentile(found["held"], 0.99), 3))
        met["burst_lag_p99_s"] = p99 <= GOAL_BURST_LAG_P99_S
        print(f"burst: {args.shares:,} shares due within {args.burst_seconds:.0f} s, {found['burst_events']:,} events"
              f" projected; lag every {SAMPLE_SECONDS * 1000:.0f} ms ({len(lags)} samples): p50 {p50:.2f} s,"
              f" p99 {p99:.2f} s, max {max(lags):.2f} s  goal p99 <= {GOAL_BURST_LAG_P99_S:.0f} s: "
              f"{'met' if met['burst_lag_p99_s'] else 'NOT met'}")
        print(f"  events held behind the log's horizon (running transactions), p99 "
              f"{figures['burst_horizon_held_p99_s']:.2f} s")
    figures["goals"] = {"ratio_live": GOAL_RATIO_LIVE, "burst_lag_p99_s": GOAL_BURST_LAG_P99_S}
    figures["met"] = met
    print(orjson.dumps(figures).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
