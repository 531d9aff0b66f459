"""Soak: the whole system (`followthrough up`) at a steady rate for a long time.

For ``--minutes`` (30 by default) it plans ``--rate`` shares a second through the API, each
due a few seconds later with a response task, and completes as many open tasks a second,
while it samples every role's memory (RSS, summed over a role's processes) and the
projection's lag (from /metrics). At the end: RSS of every role at start, after the
warm-up and at the end, with the growth after warm-up; projection lag p99; lateness p99
of the shares sent; the share streams' length (``events_per_share``: the log's share
events over its shares; ``share_history_events``: mean, median, p99 and max events in one
share's stream) with the looks made and those recorded as events; and `followthrough
audit` on the result. The last line is one JSON object.

    DATABASE_URL=… BROKER_URL=redis://… .venv/bin/python -m bench.soak --minutes 30 --rate 2

Without DATABASE_URL / BROKER_URL it uses embedded servers; either way a scratch database.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import psycopg

from bench.dispatch import percentile, servers
from tests.support.servers import free_port

ROLES = ("api", "dispatcher", "projector", "worker")
LAG = re.compile(r'^followthrough_projection_lag_seconds\{projection="shares"\} (\S+)$', re.MULTILINE)
PLAN = [{"kind": "check_replies", "after": "PT1M", "owner": "soak"}]


def progress(message: str) -> None:
    print(f"[soak] {message}", file=sys.stderr, flush=True)


def role_of(cmdline: Sequence[str]) -> str | None:
    text = " ".join(cmdline)
    if "dramatiq" in text or " worker" in text:
        return "worker"
    for role in ("api", "dispatcher", "projector"):
        if f"followthrough.cli {role}" in text:
            return role
    return None


def rss_by_role(up: subprocess.Popen[bytes]) -> dict[str, float]:
    """MiB per role, summed over its processes (a worker role's Dramatiq master and children)."""
    found = dict.fromkeys(ROLES, 0.0)
    for proc in psutil.Process(up.pid).children(recursive=True):
        try:
            role = role_of(proc.cmdline())
            if role:
                found[role] += proc.memory_info().rss / 2**20
        except psutil.Error:
            continue
    return {k: round(v, 1) for k, v in found.items()}


def start_up(home: Path, db: str, broker: str, port: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "DATABASE_URL": db, "BROKER_URL": broker, "FOLLOWTHROUGH_LOG_FORMAT": "json",
           "FOLLOWTHROUGH_QUEUE_PREFIX": f"soak_{uuid.uuid4().hex[:8]}"}
    with log.open("ab") as out:
        up = subprocess.Popen([sys.executable, "-m", "followthrough.cli", "up", "--home", str(home), "--port",
                               str(port)], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    token_file = home / "default-write-token"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if up.poll() is not None:
            raise SystemExit(f"followthrough up exited: see {log}")
        if token_file.exists():
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    return up, token_file.read_text().strip()
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    raise SystemExit("followthrough up did not become ready in 180 s")


def stop_up(up: subprocess.Popen[bytes]) -> None:
    up.send_signal(signal.SIGTERM)
    try:
        up.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(up.pid, signal.SIGKILL)
        up.wait()


class Load:
    """Plans and completes at a fixed rate through the API; counts what it did."""

    def __init__(self, api: httpx.Client, account_id: str) -> None:
        self.api, self.account_id = api, account_id
        self.planned = self.completed = self.errors = 0

    def plan(self) -> None:
        due = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
        answer = self.api.post("/v1/shares", json={"account_id": self.account_id, "text": f"soak {self.planned}",
                                                   "scheduled_at": due, "response_plan": PLAN})
        if answer.status_code == 201:
            self.planned += 1
        else:
            self.errors += 1

    def complete(self, count: int) -> None:
        answer = self.api.get("/v1/response-tasks", params={"status": ["open", "overdue"], "limit": count})
        if answer.status_code != 200:
            self.errors += 1
            return
        for task in answer.json()["tasks"][:count]:
            done = self.api.post(f"/v1/response-tasks/{task['id']}/complete", json={"completed_by": "soak"})
            if done.status_code == 200:
                self.completed += 1
            else:
                self.errors += 1


def projection_lag(api: httpx.Client) -> float | None:
    try:
        found = LAG.search(api.get("/metrics").text)
    except httpx.HTTPError:
        return None
    return float(found.group(1)) if found else None


def lateness_p99(db: str) -> float | None:
    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute("SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY lateness_ms), count(*) "
                           "FROM rm_shares WHERE status = 'sent'").fetchone()
    return None if row is None or row[0] is None else round(float(row[0]), 1)


def share_histories(db: str) -> dict[str, Any]:
    """The share streams' length after the soak: events per share, a share's history
    (events in its stream: mean, median, p99, max), and the looks at the threads (every
    look made, from ``reply_looks``; those that changed something, recorded as events)."""
    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(sum(n), 0), avg(n), percentile_cont(0.5) WITHIN GROUP (ORDER BY n),"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY n), max(n)"
            " FROM (SELECT stream_id, count(*) AS n FROM events WHERE stream_id LIKE 'share-%' GROUP BY stream_id) s"
        ).fetchone()
        recorded = conn.execute("SELECT count(*) FROM events WHERE type = 'RepliesLooked'").fetchone()
        made = conn.execute("SELECT coalesce(sum(looks), 0) FROM reply_looks").fetchone()
        by_type = conn.execute("SELECT type, count(*) FROM events WHERE stream_id LIKE 'share-%' GROUP BY type"
                               " ORDER BY 2 DESC").fetchall()
    assert row is not None
    assert recorded is not None
    assert made is not None
    shares, events = int(row[0]), int(row[1])
    return {
        "shares": shares, "events": events,
        "events_per_share": round(events / shares, 2) if shares else None,
        "share_history_events": {"mean": round(float(row[2]), 2) if shares else None,
                                 "p50": float(row[3]) if shares else None,
                                 "p99": float(row[4]) if shares else None, "max": row[5]},
        "looks_made": int(made[0]), "looks_recorded": int(recorded[0]),
        # The same run as it would have been logged when every look was an event.
        "events_per_share_every_look_an_event": (
            round((events - int(recorded[0]) + int(made[0])) / shares, 2) if shares else None),
        "events_by_type": {t: int(n) for t, n in by_type},
    }


def audit(db: str, broker: str, home: Path) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": db, "BROKER_URL": broker, "FOLLOWTHROUGH_LOG_FORMAT": "json"}
    done = subprocess.run([sys.executable, "-m", "followthrough.cli", "audit", "--home", str(home), "--format",
                           "json", "--wait", "120"], env=env, capture_output=True, text=True, timeout=600, check=False)
    body: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    return {"exit_code": done.returncode, "clean": body["clean"], "events_read": body["events_read"],
            "seconds": body["seconds"],
            "differences": sum(w["differences_total"] for w in body["workspaces"]),
            "violations": sum(len(w["violations"]) for w in body["workspaces"])}


def steady(load: Load, api: httpx.Client, up: subprocess.Popen[bytes], args: argparse.Namespace,
           ) -> tuple[dict[str, float], dict[str, float], list[float]]:
    """Run the load for the whole duration; returns RSS after warm-up and at the end, and lag samples."""
    start = time.monotonic()
    end, warm_at = start + args.minutes * 60, start + args.warmup_minutes * 60
    warm: dict[str, float] = {}
    lags: list[float] = []
    tick, next_sample = 0, start
    while (now := time.monotonic()) < end:
        if not warm and now >= warm_at:
            warm = rss_by_role(up)
            progress(f"after warm-up: RSS {warm}")
        if now >= next_sample:
            lag = projection_lag(api)
            if lag is not None:
                lags.append(lag)
            next_sample += 5
        load.plan()
        if tick % max(1, round(args.rate)) == 0:
            load.complete(max(1, round(args.rate)))
        tick += 1
        time.sleep(max(0.0, start + tick / args.rate - time.monotonic()))
        if tick % round(60 * args.rate) == 0:
            progress(f"{(time.monotonic() - start) / 60:.1f} min: planned {load.planned}, completed "
                     f"{load.completed}, errors {load.errors}, RSS {rss_by_role(up)}")
    return warm or rss_by_role(up), rss_by_role(up), lags


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=2.0, help="shares planned (and tasks completed) a second")
    parser.add_argument("--warmup-minutes", type=float, default=None, help="default: a fifth of the run, at most 5")
    args = parser.parse_args(argv)
    if args.warmup_minutes is None:
        args.warmup_minutes = min(5.0, args.minutes / 5)
    with tempfile.TemporaryDirectory(prefix="ft_soak_") as tmp:
        home = Path(tmp)
        with servers(home / "servers") as (db, broker):
            return run(home, db, broker, args)


def run(home: Path, db: str, broker: str, args: argparse.Namespace) -> int:
    port, log = free_port(), home / "up.log"
    up, token = start_up(home / "up", db, broker, port, log)
    try:
        at_start = rss_by_role(up)
        progress(f"up on port {port}; RSS at start {at_start}; {args.rate}/s for {args.minutes} min")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as api:
            account = api.post("/v1/accounts", json={"name": "soak", "channel": "console"}).json()
            load = Load(api, account["id"])
            warm, at_end, lags = steady(load, api, up, args)
            time.sleep(5)  # the last shares fall due
    finally:
        stop_up(up)
    growth = {r: (round(100 * (at_end[r] - warm[r]) / warm[r], 1) if warm[r] else None) for r in ROLES}
    result = {
        "bench": "soak", "minutes": args.minutes, "rate_per_second": args.rate,
        "warmup_minutes": args.warmup_minutes, "planned": load.planned, "completed": load.completed,
        "errors": load.errors, "rss_mib_start": at_start, "rss_mib_after_warmup": warm, "rss_mib_end": at_end,
        "rss_growth_after_warmup_pct": growth,
        "projection_lag_p99_s": round(percentile(lags, 0.99), 3) if lags else None,
        "lateness_p99_ms": lateness_p99(db), "audit": audit(db, broker, home / "up"),
    }
    histories = share_histories(db)
    result.update(histories)
    progress(f"RSS growth after warm-up (%): {growth}")
    progress(f"projection lag p99 {result['projection_lag_p99_s']} s, lateness p99 {result['lateness_p99_ms']} ms")
    progress(f"events per share {histories['events_per_share']} ({histories['events']} events, "
             f"{histories['shares']} shares); a share's history: {histories['share_history_events']} events; "
             f"looks made {histories['looks_made']}, recorded as events {histories['looks_recorded']}")
    progress(f"events by type: {histories['events_by_type']}")
    progress(f"audit: {result['audit']}")
    print(orjson.dumps(result).decode())
    return 0 if result["audit"]["clean"] else 1


if __name__ == "__main__":
    sys.exit(main())
