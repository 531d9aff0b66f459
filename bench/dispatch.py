"""Dispatch benchmark: shares published at their due time through the real dispatcher
and Dramatiq workers on Redis, with the console channel.

Phases, in one run on one machine:
  1. light:  200 shares spread over 20 seconds (lateness under light load);
  2. burst:  10,000 shares all due within the same 10 seconds (lateness under a burst);
  3. capacity: 10,000 shares all due at one instant; shares/s is how fast the system
     drains them, saturated from the start (the burst above only shows the rate at
     which shares arrive, when the system keeps up);
  4. no-op baseline: a no-op Dramatiq actor draining 10,000 messages with the same
     broker, worker processes, threads and poll interval;
  5. commit baseline: raw single-row INSERT commits on as many connections as the
     workers have threads, for a few seconds;
  6. latency: shares due at one instant on a Mastodon account whose server (the tests'
     fake, in its own process on loopback) answers every post 500 ms late; shares/s
     against the bound of one call per worker thread at a time,
     (worker processes x threads) / latency.

Lateness is when the publish call starts minus the scheduled time (ShareSent records
both). Goals (issue #4): shares/s >= 0.5 x min(no-op msgs/s, commits/s / commits per
share); p99 lateness <= 250 ms for a burst within that rate; p99 <= 100 ms under light
load; latency phase shares/s >= 0.7 x (processes x threads) / latency (issue #8).
Issue #25: on the machine's own PostgreSQL and Redis, burst p99 <= 50 ms, shares/s >= 0.8 x
bound and cpu_ms_per_share <= 0.6 (the CPU of the dispatcher, the workers, this database's
PostgreSQL backends and the server's own processes, and Redis, over the burst, per share);
on the embedded servers p99 <= 100 ms and shares/s >= 0.55 x bound.
A share of the burst sent more than 5 s late was held by something other than the queue
(``burst_stragglers`` counts them): the latest few are printed with their events and the
roles' lines that name them, so that a rare one explains itself.
Readable lines first; the last line of standard output is one JSON object.

    python bench/dispatch.py [--shares 10000] [--light 200] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
import psutil
import psycopg
import redis
import structlog
from psycopg import sql
from psycopg_pool import ConnectionPool

from events.notifier import Notifier
from events.pool import make_pool
from events.store import EventStore
from followthrough.local import embedded
from followthrough.settings import Settings
from scheduler.domain.plans import StepInput
from scheduler.services import accounts, workspaces
from scheduler.services.share_stream import ShareStreams
from scheduler.services.shares import PlanShare, ShareService
from tests.support.fake_mastodon import TOKEN as MASTODON_TOKEN
from tests.support.fake_mastodon_process import fake_mastodon
from tests.support.servers import free_port

WS = "bench"
MASTODON_TOKEN_ENV = "BENCH_MASTODON_TOKEN"
HOURLY_LOOKS = {"replies": {"cadence": [{"until": "P7D", "every": "PT1H"}]}}
PLAN = [StepInput(kind="check_replies", after=timedelta(hours=1), owner="ops")]


@contextmanager
def slow_mastodon(latency: float) -> Iterator[str]:
    """The tests' fake Mastodon in its own process, answering every post ``latency`` s late."""
    with fake_mastodon(free_port(), "--latency", str(latency)) as url:
        yield url


def progress(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@contextmanager
def servers(home: Path) -> Iterator[tuple[str, str]]:
    """PostgreSQL and Redis: the named ones, or embedded ones; a scratch database either way."""
    db_url, broker_url = os.environ.get("DATABASE_URL"), os.environ.get("BROKER_URL")
    found = embedded.start(home, need_database=not db_url, need_broker=not broker_url)
    admin = db_url or found.database_url or ""
    broker = broker_url or found.broker_url or ""
    if not broker.startswith(("redis://", "unix://")):
        raise SystemExit("bench/dispatch.py measures Redis: set BROKER_URL to a redis:// URL or leave it unset")
    name = f"bench_dispatch_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urlsplit(admin)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    try:
        yield url, broker
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        found.stop()


class Roles:
    """The dispatcher and the worker processes, started as `followthrough up` starts them."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.database = urlsplit(env.get("DATABASE_URL", "")).path.lstrip("/") or "-"
        self.log_path = log_path
        self.procs: list[subprocess.Popen[bytes]] = []
        self.names: list[str] = []

    def start(self, argv: list[str], name: str = "role") -> None:
        self.names.append(name)
        with self.log_path.open("ab") as log:
            self.procs.append(
                subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by each role (with its children), Redis and PostgreSQL."""
        used: dict[str, float] = {}
        for name, proc in zip(self.names, self.procs, strict=True):
            try:
                root = psutil.Process(proc.pid)
                used[name] = sum(p.cpu_times().user + p.cpu_times().system for p in [root, *root.children(True)])
            except psutil.NoSuchProcess:
                continue
        used["postgres"] = used["redis"] = 0.0
        for p in psutil.process_iter(["name", "cmdline"]):
            name, title = p.info["name"] or "", " ".join(p.info["cmdline"] or [])
            if "redis-server" in name:
                label = "redis"
            elif "postgres" in name and (self.database in title or not _is_backend(title)):
                # This benchmark's backends, and the server's own processes (WAL writer,
                # checkpointer...): not the backends of other databases on a shared server.
                label = "postgres"
            else:
                continue
            with contextlib.suppress(psutil.Error):
                times = p.cpu_times()
                used[label] += times.user + times.system
        return used

    def ready_workers(self) -> int:
        count = 0
        for raw in self.log_path.read_bytes().splitlines():
            if b"worker_process_ready" in raw or b"Worker process is ready" in raw:
                count += 1
        return count


def _is_backend(title: str) -> bool:
    """A PostgreSQL process serving one database: a client's backend, whose title names user,
    database and client ("postgres: postgres bench_x 127.0.0.1(5432) idle"), or an autovacuum
    worker (its title names its database); the server's own are named by role."""
    return "(" in title or "[local]" in title or "autovacuum worker" in title


def planner(url: str) -> tuple[ConnectionPool[Any], Notifier, ShareService]:
    """A pool of the benchmark's own and a share service that plans as the API plans (its
    notifier wakes the dispatcher for new work). The caller stops the notifier and closes the pool."""
    pool = make_pool(url, role="bench", max_size=8)
    pool.open(wait=True)
    notifier = Notifier(url)
    notifier.start()
    return pool, notifier, ShareService(pool=pool, streams=ShareStreams(EventStore(pool, notifier), notifier))


def console_account(pool: ConnectionPool[Any]) -> accounts.Account:
    """The benchmark's console account, in its workspace. It looks for replies hourly: the
    benchmarks measure publishing, and no reply look of one phase's shares falls due in a later one."""
    with pool.connection() as conn:
        workspaces.ensure_workspace(conn, WS)
        return accounts.create(conn, workspace_id=WS, name="bench", channel="console", config=HOURLY_LOOKS,
                               default_response_plan=None, late_policy="send", max_lateness_seconds=None)


def plan_many(svc: ShareService, account_id: uuid.UUID, dues: Sequence[datetime], threads: int) -> list[uuid.UUID]:
    def one(due: datetime) -> uuid.UUID:
        planned = svc.plan(
            WS,
            PlanShare(account_id=account_id, text="benchmark post", scheduled_at=due, response_plan=PLAN),
            actor="bench",
        )
        return planned.share_id

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, dues))


def wait_all_sent(url: str, ids: Sequence[uuid.UUID], timeout: float) -> None:
    """Until the schedule holds no publish work (a sent share's row is deleted with its
    ShareSent), then check that these shares were all sent. The poll asks whether a row is
    left, not how many: its PostgreSQL CPU counts in the burst's, and a count read every
    row still due (3 ms four times a second, 10,000 rows into a burst)."""
    deadline = time.monotonic() + timeout
    streams = [f"share-{i}" for i in ids]
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT EXISTS (SELECT 1 FROM schedule WHERE kind = 'publish')").fetchone()
            if row is not None and not row[0]:
                row = conn.execute(
                    "SELECT count(*) FROM events WHERE type = 'ShareSent' AND stream_id = ANY(%s)", (streams,)
                ).fetchone()
                done = int(row[0]) if row else 0
                if done == len(ids):
                    return
                raise SystemExit(f"{len(ids) - done} shares left the schedule without being sent")
            if time.monotonic() > deadline:
                row = conn.execute("SELECT count(*) FROM schedule WHERE kind = 'publish'").fetchone()
                raise SystemExit(f"{row[0] if row else '?'} shares still unsent after {timeout:.0f} s")
            time.sleep(0.25)


def sent_figures(url: str, ids: Sequence[uuid.UUID]) -> tuple[list[float], datetime, datetime, datetime]:
    streams = [f"share-{i}" for i in ids]
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT (data->>'lateness_ms')::float8, (data->>'scheduled_at')::timestamptz,"
            " (data->>'sent_at')::timestamptz FROM events WHERE type = 'ShareSent' AND stream_id = ANY(%s)",
            (streams,),
        ).fetchall()
    lateness = [r[0] for r in rows]
    return lateness, min(r[1] for r in rows), max(r[1] for r in rows), max(r[2] for r in rows)


# A share sent this late in the burst was not queueing behind others (that is tens of ms):
# something held it (a lease running out, a retry). Its story is printed so a rare one explains itself.
STRAGGLER_MS = 5000.0


def stragglers(url: str, ids: Sequence[uuid.UUID], log_lines: Sequence[dict[str, Any]],
               limit: int = 3) -> tuple[int, list[str]]:
    """How many shares were sent more than ``STRAGGLER_MS`` late, and the story of the first
    few: their events (with the second each was recorded at) and the roles' lines naming them."""
    streams = [f"share-{i}" for i in ids]
    with psycopg.connect(url, autocommit=True) as conn:
        late = [str(r[0]) for r in conn.execute(
            "SELECT stream_id FROM events WHERE type = 'ShareSent' AND stream_id = ANY(%s)"
            " AND (data->>'lateness_ms')::float8 > %s ORDER BY (data->>'lateness_ms')::float8 DESC",
            (streams, STRAGGLER_MS)).fetchall()]
        story = []
        for stream in late[:limit]:
            story.append(f"  {stream}:")
            for kind, at, data in conn.execute(
                    "SELECT type, recorded_at, data FROM events WHERE stream_id = %s ORDER BY stream_version",
                    (stream,)).fetchall():
                story.append(f"    event {kind} recorded {at.isoformat()} {orjson.dumps(data).decode()[:200]}")
            share = stream.removeprefix("share-")
            story.extend(f"    log {orjson.dumps(line).decode()[:300]}" for line in log_lines
                         if line.get("share_id") == share)
            # The deliveries that carried it: what each did, from every line of its message.
            messages = {line["message_id"] for line in log_lines
                        if line.get("share_id") == share and line.get("event") == "share_dispatched"
                        and line.get("message_id")}
            for message in sorted(messages):
                lines = [line for line in log_lines if line.get("message_id") == message]
                story.append(f"    message {message}: {len(lines)} lines, by event "
                             f"{dict(Counter(str(line.get('event')) for line in lines))}")
                story.extend(f"      {orjson.dumps(line).decode()[:300]}" for line in lines
                             if line.get("event") not in ("share_sent", "share_dispatched"))
    return len(late), story


def read_log(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_bytes().splitlines():
        with contextlib.suppress(orjson.JSONDecodeError):
            lines.append(orjson.loads(raw))
    return lines


def event_counts(url: str, ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """The shares' events by type (the everyday path: planned, tasks, attempt, sent)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT type, count(*) FROM events WHERE stream_id = ANY(%s) GROUP BY type ORDER BY type",
                            ([f"share-{i}" for i in ids],)).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def xid_horizon(url: str) -> int:
    """Transaction ids handed out so far (cluster-wide): writing commits, counted without consuming one."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text").fetchone()
    return int(row[0]) if row else 0


def noop_baseline(
    env: dict[str, str], log_path: Path, broker_url: str, prefix: str, *, messages: int, processes: int, threads: int
) -> float:
    """Messages/s of a no-op actor draining ``messages`` queued messages."""
    # The worker module builds its broker from the environment at import.
    os.environ.update({"BROKER_URL": broker_url, "FOLLOWTHROUGH_QUEUE_PREFIX": prefix})
    from bench import noop_worker

    actor = noop_worker.broker.get_actor("noop")
    client = redis.Redis.from_url(broker_url)
    msgs_key = f"{prefix}:{prefix}.noop.msgs"
    for i in range(messages):
        actor.send(str(i))
    progress(f"no-op baseline: {messages} messages queued; starting {processes} x {threads} workers")
    roles = Roles(env, log_path)
    start = time.monotonic()
    for _ in range(processes):
        roles.start(
            [
                sys.executable,
                "-m",
                "dramatiq",
                "bench.noop_worker",
                "--processes",
                "1",
                "--threads",
                str(threads),
                "--skip-logging",
            ]
        )
    try:
        first = None
        while True:
            left = client.hlen(msgs_key)
            if first is None and left < messages:
                first = time.monotonic()
            if left == 0:
                break
            if time.monotonic() - start > 300:
                raise SystemExit("no-op baseline did not drain in 300 s")
            time.sleep(0.01)
        end = time.monotonic()
    finally:
        roles.stop()
        client.close()
    return messages / (end - (first or start))


def commit_baseline(url: str, *, connections: int, seconds: float) -> float:
    """Raw single-row INSERT commits/s on ``connections`` concurrent connections."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commits (id bigserial PRIMARY KEY, payload text)")
    counts = [0] * connections
    stop = threading.Event()

    def run(i: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("INSERT INTO bench_commits (payload) VALUES (%s)", ("x" * 200,))
                counts[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(counts) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shares", type=int, default=10_000, help="burst size")
    parser.add_argument("--burst-seconds", type=float, default=10.0)
    parser.add_argument("--light", type=int, default=200, help="light-load shares")
    parser.add_argument("--light-seconds", type=float, default=20.0)
    parser.add_argument("--processes", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,000 burst, 50 light")
    parser.add_argument("--keep-log", type=Path, help="copy the roles' log lines here")
    parser.add_argument("--latency-shares", type=int, default=400, help="shares of the latency phase")
    parser.add_argument("--latency-ms", type=float, default=500.0, help="how late the server answers each post")
    args = parser.parse_args()
    if args.quick:
        args.shares, args.light, args.light_seconds, args.latency_shares = 1000, 50, 5.0, 100
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    latency = args.latency_ms / 1000
    on_own_servers = bool(os.environ.get("DATABASE_URL") and os.environ.get("BROKER_URL"))
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp, \
            servers(Path(tmp) / "servers") as (url, broker), slow_mastodon(latency) as mastodon_url:
        home = Path(tmp) / "home"
        prefix = f"benchdispatch{uuid.uuid4().hex[:6]}"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "BROKER_URL": broker,
            "FOLLOWTHROUGH_QUEUE_PREFIX": prefix,
            "FOLLOWTHROUGH_HOME": str(home),
            "FOLLOWTHROUGH_LOG_FORMAT": "json",
            # The run reads the roles' info lines (workers ready, shares dispatched): a level
            # set for the shell the benchmark runs in would leave it waiting for them.
            "FOLLOWTHROUGH_LOG_LEVEL": "info",
            "FOLLOWTHROUGH_WORKER_THREADS": str(args.threads),
            MASTODON_TOKEN_ENV: MASTODON_TOKEN,
        }
        settings = Settings(database_url=url, broker_url=broker, home=home, queue_prefix=prefix, pool_max=8)
        from followthrough.connections import migrate

        migrate(settings)
        pool, notifier, svc = planner(url)
        account = console_account(pool)
        with pool.connection() as conn:
            slow_account = accounts.create(
                conn, workspace_id=WS, name="bench-mastodon", channel="mastodon",
                config={"base_url": mastodon_url, "access_token_env": MASTODON_TOKEN_ENV, **HOURLY_LOOKS},
                default_response_plan=None, late_policy="send", max_lateness_seconds=None,
            )
        log_path = Path(tmp) / "roles.log"
        roles = Roles(env, log_path)
        me = [sys.executable, "-m", "followthrough.cli"]
        roles.start([*me, "dispatcher"], "dispatcher")
        for i in range(args.processes):
            roles.start([*me, "worker", "--processes", "1", "--threads", str(args.threads)], f"worker-{i + 1}")
        late_count, late_story = 0, []  # set by the burst phase; read when the roles stop
        try:
            while roles.ready_workers() < 2 * args.processes:
                time.sleep(0.2)
            progress("dispatcher and workers ready")
            # Warm-up (connections, prepared statements), not measured.
            warm = plan_many(svc, account.id, [datetime.now(UTC)] * 20, threads=4)
            wait_all_sent(url, warm, timeout=60)

            # Phase 1: light load.
            t0 = datetime.now(UTC) + timedelta(seconds=3)
            dues = [t0 + timedelta(seconds=args.light_seconds * i / args.light) for i in range(args.light)]
            started = time.monotonic()
            light_ids = plan_many(svc, account.id, dues, threads=4)
            plan_rate = args.light / (time.monotonic() - started)
            progress(f"light: {args.light} shares planned ({plan_rate:.0f}/s), due over {args.light_seconds:.0f} s")
            wait_all_sent(url, light_ids, timeout=args.light_seconds + 120)
            light, *_ = sent_figures(url, light_ids)

            # Phase 2: the burst, planned ahead of time.
            lead = max(10.0, 1.5 * args.shares / plan_rate + 5)
            t0 = datetime.now(UTC) + timedelta(seconds=lead)
            dues = [t0 + timedelta(seconds=args.burst_seconds * i / args.shares) for i in range(args.shares)]
            progress(f"burst: planning {args.shares} shares due from {lead:.0f} s ahead over {args.burst_seconds} s")
            burst_ids = plan_many(svc, account.id, dues, threads=4)
            if datetime.now(UTC) > t0:
                raise SystemExit("planning the burst overran its first due time: lower --shares")
            time.sleep(max(0.0, (t0 - datetime.now(UTC)).total_seconds() - 0.5))
            xids_before = xid_horizon(url)
            cpu_before = roles.cpu_seconds()
            wait_all_sent(url, burst_ids, timeout=600)
            cpu_after = roles.cpu_seconds()
            xids_after = xid_horizon(url)
            burst_log = read_log(log_path)
            dispatch_lag = [float(line["dispatch_lateness_ms"]) for line in burst_log
                            if line.get("event") == "share_dispatched" and "dispatch_lateness_ms" in line]
            burst, first_due, _, last_sent = sent_figures(url, burst_ids)
            late_count, late_story = stragglers(url, burst_ids, burst_log)

            # Phase 3: capacity. The same number of shares all due at one instant, so the
            # system is saturated from the start: shares/s is what it can do, not what arrives.
            t0 = datetime.now(UTC) + timedelta(seconds=lead)
            progress(f"capacity: planning {args.shares} shares all due {lead:.0f} s ahead")
            capacity_ids = plan_many(svc, account.id, [t0] * args.shares, threads=4)
            if datetime.now(UTC) > t0:
                raise SystemExit("planning the capacity burst overran its due time: lower --shares")
            wait_all_sent(url, capacity_ids, timeout=600)
            capacity_lateness, capacity_due, _, capacity_last = sent_figures(url, capacity_ids)

            # Phase 6: a slow network. Shares due at one instant on a server answering each post late.
            t0 = datetime.now(UTC) + timedelta(seconds=5)
            progress(f"latency: {args.latency_shares} shares due at once, "
                     f"the server answering {args.latency_ms:.0f} ms late")
            slow_ids = plan_many(svc, slow_account.id, [t0] * args.latency_shares, threads=4)
            wait_all_sent(url, slow_ids, timeout=600)
            _, slow_due, _, slow_last = sent_figures(url, slow_ids)
            slow_posts = httpx.get(f"{mastodon_url}/_fake/stats").json()["posts"]
            slow_events = event_counts(url, slow_ids)
        finally:
            roles.stop()
            if args.keep_log:
                args.keep_log.write_bytes(log_path.read_bytes())
            elif late_count:
                # A straggler is rare: keep everything the roles wrote, to read after the run.
                written = log_path.read_bytes()
                kept = Path(tempfile.gettempdir()) / f"bench-dispatch-roles-{datetime.now(UTC):%Y%m%dT%H%M%S}.log"
                kept.write_bytes(written)
                late_story.append(f"  the roles' whole log is kept in {kept}")
                late_story.extend(f"  not JSON: {raw.decode(errors='replace')[:300]}"
                                  for raw in written.splitlines() if raw.strip() and not raw.lstrip().startswith(b"{"))
        # Anything not routine in the roles' logs: a run that retried or looked up a share is
        # not measuring the everyday path (and a share sent without its post is a fault).
        unusual = [line for line in read_log(log_path) if line.get("level") in ("warning", "error", "critical")]
        notifier.stop()
        pool.close()

        span = (last_sent - first_due).total_seconds()
        delivered_per_s = args.shares / span
        capacity_span = (capacity_last - capacity_due).total_seconds()
        shares_per_s = args.shares / capacity_span
        commits_per_share = (xids_after - xids_before) / args.shares
        progress("baselines: no-op actor, then raw commits")
        noop = noop_baseline(
            env,
            Path(tmp) / "noop.log",
            broker,
            prefix,
            messages=args.shares,
            processes=args.processes,
            threads=args.threads,
        )
        commits = commit_baseline(url, connections=args.processes * args.threads, seconds=5.0)

    bound = min(noop, commits / commits_per_share)
    # The sent time is the post's creation on the server; the answer comes `latency` later.
    latency_span = (slow_last - slow_due).total_seconds() + latency
    latency_per_s = args.latency_shares / latency_span
    latency_bound = args.processes * args.threads / latency
    arrival = args.shares / args.burst_seconds
    within = arrival <= shares_per_s
    figures: dict[str, Any] = {
        "burst_shares": args.shares,
        "burst_seconds": args.burst_seconds,
        "lateness_p50_ms": round(percentile(burst, 0.5), 1),
        "lateness_p95_ms": round(percentile(burst, 0.95), 1),
        "lateness_p99_ms": round(percentile(burst, 0.99), 1),
        "lateness_max_ms": round(max(burst), 1),
        "burst_stragglers": late_count,
        "shares_per_s": round(shares_per_s, 1),
        "burst_delivered_per_s": round(delivered_per_s, 1),
        "capacity_lateness_p99_ms": round(percentile(capacity_lateness, 0.99), 1),
        "noop_msgs_per_s": round(noop, 1),
        "commits_per_s": round(commits, 1),
        "commits_per_share": round(commits_per_share, 2),
        "throughput_bound_per_s": round(bound, 1),
        "ratio_throughput": round(shares_per_s / bound, 3),
        "light_shares": args.light,
        "light_p50_ms": round(percentile(light, 0.5), 1),
        "light_p99_ms": round(percentile(light, 0.99), 1),
        "light_max_ms": round(max(light), 1),
        "dispatch_lag_p50_ms": round(percentile(dispatch_lag, 0.5), 1),
        "dispatch_lag_p99_ms": round(percentile(dispatch_lag, 0.99), 1),
        "cpu_seconds_in_burst": {k: round(cpu_after.get(k, 0) - v, 1) for k, v in cpu_before.items()},
        "cpu_ms_per_share": round(1000 * sum(cpu_after.get(k, 0) - v for k, v in cpu_before.items()) / args.shares, 3),
        "worker_processes": args.processes,
        "worker_threads": args.threads,
        "latency_ms": args.latency_ms,
        "latency_shares": args.latency_shares,
        "latency_posts_made": slow_posts,
        "latency_shares_per_s": round(latency_per_s, 1),
        "latency_bound": round(latency_bound, 1),
        "ratio_latency": round(latency_per_s / latency_bound, 2),
        "latency_events": slow_events,
        "log_warnings": dict(Counter(str(line.get("event")) for line in unusual)),
    }

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    print(f"burst: {args.shares} shares due within {args.burst_seconds:.0f} s ({arrival:.0f}/s arriving)")
    print(
        f"  lateness p50 {figures['lateness_p50_ms']} ms, p95 {figures['lateness_p95_ms']} ms, "
        f"p99 {figures['lateness_p99_ms']} ms, max {figures['lateness_max_ms']} ms"
    )
    print(f"  delivered {delivered_per_s:.0f} shares/s (first due -> last sent: {span:.1f} s)")
    if late_count:
        print(f"CHECK: {late_count} shares sent more than {STRAGGLER_MS / 1000:.0f} s late; the latest:")
        print("\n".join(late_story))
    print(f"  dispatcher hand-out vs due time: p50 {figures['dispatch_lag_p50_ms']} ms, "
          f"p99 {figures['dispatch_lag_p99_ms']} ms (negative: handed out ahead, by the lead)")
    print(f"  CPU seconds used during the burst: {figures['cpu_seconds_in_burst']}: "
          f"{figures['cpu_ms_per_share']} ms of CPU per share")
    print(f"capacity: {args.shares} shares due at one instant, all sent in {capacity_span:.1f} s: "
          f"{shares_per_s:.0f} shares/s (p99 {figures['capacity_lateness_p99_ms']:.0f} ms late: queued behind others)")
    print(
        f"baselines, same machine and run: no-op Dramatiq actor {noop:.0f} msgs/s; raw commits {commits:.0f}/s "
        f"on {args.processes * args.threads} connections; {commits_per_share:.2f} writing commits per share"
    )
    print(f"  bound = min({noop:.0f}, {commits:.0f} / {commits_per_share:.2f}) = {bound:.0f}/s")
    print(
        f"goal shares/s >= 0.5 x bound: {shares_per_s:.0f} vs {0.5 * bound:.0f} "
        f"(ratio {shares_per_s / bound:.2f}) {verdict(shares_per_s >= 0.5 * bound)}"
    )
    p99_goal = "PASS" if figures["lateness_p99_ms"] <= 250 else ("MISS" if within else "n/a (burst above rate)")
    print(f"goal burst p99 <= 250 ms: {figures['lateness_p99_ms']} ms {p99_goal}")
    # Issue #25's goals: tighter on the machine's own servers than on the embedded ones.
    p99_max, ratio_min = (50, 0.8) if on_own_servers else (100, 0.55)
    print(f"goal (issue #25) burst p99 <= {p99_max} ms: {verdict(figures['lateness_p99_ms'] <= p99_max)}; "
          f"ratio >= {ratio_min}: {verdict(shares_per_s / bound >= ratio_min)}; "
          f"cpu_ms_per_share <= 0.6: {figures['cpu_ms_per_share']} {verdict(figures['cpu_ms_per_share'] <= 0.6)}")
    print(
        f"light: {args.light} shares over {args.light_seconds:.0f} s: p50 {figures['light_p50_ms']} ms, "
        f"p99 {figures['light_p99_ms']} ms, max {figures['light_max_ms']} ms"
    )
    print(f"goal light p99 <= 100 ms: {verdict(figures['light_p99_ms'] <= 100)}")
    print(
        f"latency: {args.latency_shares} shares due at once, each post answered {args.latency_ms:.0f} ms late: "
        f"{latency_per_s:.1f} shares/s ({slow_posts} posts made on the server)"
    )
    print(f"  its shares' events: {slow_events}")
    if slow_posts != args.latency_shares or unusual:
        print(f"CHECK: {args.latency_shares} shares, {slow_posts} posts made; "
              f"warnings and errors in the roles' logs: {figures['log_warnings']}")
        for line in unusual[:10]:
            print(f"  {orjson.dumps(line).decode()[:600]}")
    print(
        f"goal latency shares/s >= 0.7 x (processes x threads) / latency = 0.7 x {latency_bound:.1f}: "
        f"{latency_per_s:.1f} vs {0.7 * latency_bound:.1f} (ratio {latency_per_s / latency_bound:.2f}) "
        f"{verdict(latency_per_s >= 0.7 * latency_bound)}"
    )
    print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
