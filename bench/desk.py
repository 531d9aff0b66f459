"""Desk benchmark: the replies page (``/dashboard/replies``) and ``GET /v1/replies`` over a
workspace with 20,000 replies under 2,000 shares.

The API runs as production runs it (uvicorn, ``--workers`` processes, every middleware, rate
limits counted but raised so they never refuse; ``bench.api``'s harness). The workspace is
written straight into the read models the page and the API read (``rm_shares``,
``rm_response_tasks``, ``rm_replies``), as the shares projection keeps them: each share sent
over the last week with an ``answer_replies`` task (due an hour after it was sent, owners
spread over five people) and ten replies, a third of them answering the reply before; 60 %
unanswered (so some breached, some at risk), 30 % answered, 10 % dismissed. No event log
behind them: the figures are the reads'.

N concurrent clients (asyncio + httpx) ask for the page's first page (signed in: a session
cookie), then for the API's first page, each for a fixed time. Goal (issue #21): the page's
p99 <= 150 ms on the machine's PostgreSQL. Printed: p50 and p99 of each, the plans of the
page's queries (EXPLAIN ANALYZE), and last one JSON object: replies, page_p50_ms,
page_p99_ms, api_p50_ms, api_p99_ms, and the CPU used per request (figures a busy shared
machine moves far less than the latencies): page_cpu_ms and api_cpu_ms, the API's processes'
(uvicorn's and its workers'), page_db_cpu_ms and api_db_cpu_ms, PostgreSQL's backends' on
the bench's database (when PostgreSQL runs on this machine; else 0).

    python bench/desk.py [--clients 8] [--seconds 10] [--workers 2] [--shares 2000] [--per-share 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import api_server, free_port, percentile, phase, prepare, progress, servers

SEED = """
WITH shares AS (
    SELECT gen_random_uuid() AS share_id, g AS n, now() - (g * interval '5 minutes') AS sent_at
    FROM generate_series(1, %(shares)s) g
), s AS (
    INSERT INTO rm_shares (share_id, workspace_id, account_id, account_name, channel, text, status, scheduled_at,
                           planned_at, sent_at, attempts, url, tasks_recorded, replies_received, version,
                           updated_at, replies_answered, replies_collected)
    SELECT share_id, 'bench', %(account)s::uuid, 'bench', 'console', 'Benchmark post number ' || n, 'sent',
           sent_at, sent_at, sent_at, 1, 'file:///bench/' || share_id, true, %(per_share)s, 10, now(), 0, true
    FROM shares
    RETURNING share_id
), t AS (
    INSERT INTO rm_response_tasks (task_id, share_id, workspace_id, account_id, account_name, channel, kind, owner,
                                   after_seconds, due_at, status, recorded_at)
    SELECT gen_random_uuid(), share_id, 'bench', %(account)s::uuid, 'bench', 'console', 'answer_replies',
           'owner' || (n %% 5), 3600, sent_at + interval '1 hour',
           'open', sent_at
    FROM shares
    RETURNING share_id
)
INSERT INTO rm_replies (id, share_id, workspace_id, account_id, account_name, channel, network_reply_id, parent_id,
                        author, text, url, received_at, collected_at, state, answer_text, answer_status, answer_url,
                        answered_at, dismissed_at, dismiss_reason)
SELECT gen_random_uuid(), sh.share_id, 'bench', %(account)s::uuid, 'bench', 'console', 'r' || k,
       CASE WHEN k > 1 AND k %% 3 = 0 THEN 'r' || (k - 1) END,
       'person' || ((sh.n * 7 + k) %% 997), 'Reply ' || k || ' to post ' || sh.n || ': see https://example.org/' || k,
       'file:///bench/' || sh.share_id || '#r' || k, sh.sent_at + k * interval '1 minute',
       sh.sent_at + k * interval '1 minute' + interval '5 seconds',
       CASE WHEN (sh.n + k) %% 10 < 6 THEN 'unanswered' WHEN (sh.n + k) %% 10 < 9 THEN 'answered' ELSE 'dismissed' END,
       CASE WHEN (sh.n + k) %% 10 BETWEEN 6 AND 8 THEN 'Thanks!' END,
       CASE WHEN (sh.n + k) %% 10 BETWEEN 6 AND 8 THEN 'answered' END,
       CASE WHEN (sh.n + k) %% 10 BETWEEN 6 AND 8 THEN 'file:///bench/answer' END,
       CASE WHEN (sh.n + k) %% 10 BETWEEN 6 AND 8 THEN sh.sent_at + interval '30 minutes' END,
       CASE WHEN (sh.n + k) %% 10 = 9 THEN sh.sent_at + interval '30 minutes' END,
       CASE WHEN (sh.n + k) %% 10 = 9 THEN 'spam' END
FROM shares sh CROSS JOIN generate_series(1, %(per_share)s) k
"""


def seed(url: str, account: str, *, shares: int, per_share: int) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SEED, {"account": account, "shares": shares, "per_share": per_share})
        conn.execute("ANALYZE rm_shares; ANALYZE rm_response_tasks; ANALYZE rm_replies")
        row = conn.execute("SELECT count(*) FROM rm_replies WHERE workspace_id = 'bench'").fetchone()
    return int(row[0]) if row else 0


def explain(url: str) -> None:
    """The plans of the page's queries, as the page runs them (its first page, no filter)."""
    from events.projections import replies

    params = replies.desk_params("bench", limit=51)
    with psycopg.connect(url, autocommit=True) as conn:
        plan = conn.execute(b"EXPLAIN (ANALYZE, BUFFERS) " + replies.Q["desk"].encode(), params).fetchall()
        print("EXPLAIN ANALYZE of the page's query (desk):")
        for (line,) in plan:
            print("  " + line)
        rows = replies.desk(conn, "bench", state=None, account_id=None, owner=None, share_id=None, limit=50)
        parents = [(r["share_id"], r["parent_id"]) for r in rows if r["parent_id"]]
        plan = conn.execute(b"EXPLAIN (ANALYZE, BUFFERS) " + replies.Q["thread_above"].encode(), {
            "workspace_id": "bench", "share_ids": [p[0] for p in parents],
            "parent_ids": [p[1] for p in parents]}).fetchall()
        print(f"EXPLAIN ANALYZE of the threads above the page's replies (thread_above, {len(parents)} parents):")
        for (line,) in plan:
            print("  " + line)
        plan = conn.execute(b"EXPLAIN (ANALYZE, BUFFERS) " + replies.Q["owners_and_people"].encode(),
                            {"workspace_id": "bench"}).fetchall()
        print("EXPLAIN ANALYZE of the page's owners and people (its filters and Assign list):")
        for (line,) in plan:
            print("  " + line)


def server_cpu() -> float:
    """CPU seconds the API's processes (uvicorn and its workers: this process's descendants)
    have used: per request, a figure a busy shared machine moves far less than latency."""
    total = 0.0
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def database_cpu(url: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend on the bench's database (the API's pool), by
    pid: read from /proc, so only when PostgreSQL runs on this machine (else none)."""
    with psycopg.connect(url, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
    found = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            found[pid] = times.user + times.system
    return found


def database_cpu_since(url: str, before: dict[int, float]) -> tuple[float, dict[int, float]]:
    now = database_cpu(url)
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items()), now


async def measure(base: str, token: str, url: str, *, clients: int, seconds: float) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        signed = await client.post("/dashboard/signin", data={"token": token, "next": "/dashboard/replies"})
        if signed.status_code != 303:
            raise SystemExit(f"could not sign in: {signed.status_code} {signed.text[:300]}")
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    cpu, db = server_cpu(), database_cpu(url)
    _, page_ms, pages = await phase(base, {"Cookie": cookie}, lambda c: c.get("/dashboard/replies"),
                                    clients=clients, seconds=seconds)
    page_cpu, cpu = (server_cpu() - cpu) * 1000 / (len(page_ms) + clients), server_cpu()
    page_db, db = database_cpu_since(url, db)
    if pages[-1].text.count("<article ") != 50:
        raise SystemExit("the page did not show 50 replies")
    auth = {"Authorization": f"Bearer {token}"}
    _, api_ms, answers = await phase(base, auth, lambda c: c.get("/v1/replies"), clients=clients, seconds=seconds)
    api_cpu = (server_cpu() - cpu) * 1000 / (len(api_ms) + clients)
    api_db, _ = database_cpu_since(url, db)
    if len(answers[-1].json()["items"]) != 50:
        raise SystemExit("the API did not give 50 replies")
    return {"page": page_ms, "api": api_ms, "page_cpu_ms": page_cpu, "api_cpu_ms": api_cpu,
            "page_db_cpu_ms": page_db * 1000 / (len(page_ms) + clients),
            "api_db_cpu_ms": api_db * 1000 / (len(api_ms) + clients)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="per endpoint")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("FOLLOWTHROUGH_API_WORKERS", "2")))
    parser.add_argument("--shares", type=int, default=2000)
    parser.add_argument("--per-share", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-desk-") as tmp, servers(Path(tmp)) as (url, broker):
        home = Path(tmp)
        progress("migrating and preparing...")
        token, account = prepare(url, broker, home)
        count = seed(url, account, shares=args.shares, per_share=args.per_share)
        progress(f"{count} replies under {args.shares} shares")
        explain(url)
        env = {**os.environ, "DATABASE_URL": url, "BROKER_URL": broker, "FOLLOWTHROUGH_HOME": str(home),
               "FOLLOWTHROUGH_LOG_FORMAT": "json", "FOLLOWTHROUGH_LOG_LEVEL": "warning",
               "FOLLOWTHROUGH_QUEUE_PREFIX": f"benchdesk{uuid.uuid4().hex[:8]}",
               "FOLLOWTHROUGH_RATE_LIMIT_PER_TOKEN": "1000000/second",
               "FOLLOWTHROUGH_RATE_LIMIT_PER_ADDRESS": "1000000/second",
               "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        progress(f"API: {args.workers} uvicorn workers; {args.clients} clients, {args.seconds:.0f} s each")
        with api_server(env, free_port(), args.workers, home / "api.log") as base:
            figures = asyncio.run(measure(base, token, url, clients=args.clients, seconds=args.seconds))
    out: dict[str, Any] = {"replies": count}
    for name, label in (("page", "GET /dashboard/replies"), ("api", "GET /v1/replies")):
        p50, p99 = percentile(figures[name], 0.5), percentile(figures[name], 0.99)
        cpu, db = figures[f"{name}_cpu_ms"], figures[f"{name}_db_cpu_ms"]
        print(f"{label:<24} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   ({len(figures[name])} requests; "
              f"CPU each: {cpu:.2f} ms the API's, {db:.2f} ms PostgreSQL's)")
        out |= {f"{name}_p50_ms": round(p50, 2), f"{name}_p99_ms": round(p99, 2), f"{name}_cpu_ms": round(cpu, 2),
                f"{name}_db_cpu_ms": round(db, 2)}
    met = out["page_p99_ms"] <= 150
    print(f"page p99 {out['page_p99_ms']} ms (goal <= 150 ms: {'met' if met else 'NOT met'})")
    print(orjson.dumps({**out, "clients": args.clients, "workers": args.workers, "seconds": args.seconds}).decode())


if __name__ == "__main__":
    main()
