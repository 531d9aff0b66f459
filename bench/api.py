"""API benchmark: planning and reading shares over HTTP, against two bare endpoints on the
same server stack.

The API runs as production runs it: uvicorn with ``FOLLOWTHROUGH_API_WORKERS`` processes
(default here: 2), every middleware (request ids, body bound, rate limits counted in Redis,
access log, metrics), its connection pool. Rate limits stay on, raised so that they count
without refusing (their cost is part of the figure). The same app also serves two bare
endpoints, through the same middleware and pool, without authentication or validation:
``POST /bench/bare-insert`` (one INSERT + COMMIT) and ``GET /bench/bare-read/{id}`` (one
row by primary key). N concurrent clients (asyncio + httpx, in this process) run each
phase for a fixed time:

  1. bare insert   2. POST /v1/shares (a share an hour ahead with a one-step plan)
  3. bare read     4. GET /v1/shares/{id} (ids planned in phase 2)
  5. POST /v1/shares as in 2, and the same share with 4 images of the library attached
     (uploaded before), in alternating rounds: ``plan_media_rps``
  6. POST /v1/media: 4 clients uploading ~0.5 MB PNGs (64 distinct files, repeated: a repeat
     is checked and hashed again but stored once): ``upload_mb_s``

Goals (issue #11): plan_rps >= 0.6 x bare_insert_rps, get_rps >= 0.7 x bare_read_rps;
(issue #22) plan_media_rps >= 0.5 x the plan_rps of step 5; p99 latencies printed. Readable
lines first; the last line of standard output is one JSON object.

    python bench/api.py [--clients 16] [--seconds 12] [--rounds 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
import psycopg
from PIL import Image
from psycopg import sql

from followthrough.local import embedded

ROOT = Path(__file__).resolve().parents[1]
PLAN = [{"kind": "check_replies", "after": "PT1H", "owner": "alice"}]
BARE_TABLE = "bench_bare"
UPLOAD_SIDE = 408  # pixels: a noisy RGB PNG of about 0.5 MB
UPLOAD_FILES = 64
UPLOAD_CLIENTS = 4


# --- the app under test (imported by each uvicorn worker process) ----------------------


def create_bench_app() -> Any:
    """The production app from the environment, plus the two bare endpoints on its pool."""
    from fastapi import Response

    from followthrough import bootstrap

    app = bootstrap.api_from_environment()
    pool = app.state.services.pool

    @app.post("/bench/bare-insert", include_in_schema=False)
    def bare_insert() -> Response:
        row_id = uuid.uuid4()
        with pool.connection() as conn:
            conn.execute("INSERT INTO bench_bare (id, body) VALUES (%s, %s)", (row_id, "bare"))
        return Response(orjson.dumps({"id": str(row_id)}), status_code=201, media_type="application/json")

    @app.get("/bench/bare-read/{row_id}", include_in_schema=False)
    def bare_read(row_id: uuid.UUID) -> Response:
        with pool.connection() as conn:
            row = conn.execute("SELECT id, body FROM bench_bare WHERE id = %s", (row_id,)).fetchone()
        if row is None:
            return Response(status_code=404)
        return Response(orjson.dumps({"id": str(row[0]), "body": row[1]}), media_type="application/json")

    return app


# --- set-up ------------------------------------------------------------------------------


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@contextlib.contextmanager
def servers(home: Path) -> Iterator[tuple[str, str]]:
    """PostgreSQL and Redis: the named ones, or embedded ones; a scratch database either way."""
    db_url, broker_url = os.environ.get("DATABASE_URL"), os.environ.get("BROKER_URL")
    found = embedded.start(home, need_database=not db_url, need_broker=not broker_url)
    admin = db_url or found.database_url or ""
    broker = broker_url or found.broker_url or ""
    name = f"bench_api_{uuid.uuid4().hex[:8]}"
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(url: str, broker: str, home: Path) -> tuple[str, str]:
    """Migrate, a token and a console account, and the bare endpoints' table."""
    from followthrough.connections import migrate
    from followthrough.settings import Settings
    from scheduler.services import accounts, workspaces

    migrate(Settings(database_url=url, broker_url=broker, home=home))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id uuid PRIMARY KEY, body text NOT NULL)").format(
            sql.Identifier(BARE_TABLE)))
        token = workspaces.create_token(conn, "bench", "write", label="bench/api.py")
        account = accounts.create(conn, workspace_id="bench", name="bench", channel="console", config={},
                                  default_response_plan=None, late_policy="send", max_lateness_seconds=None)
    return token, str(account.id)


@contextlib.contextmanager
def api_server(env: dict[str, str], port: int, workers: int, log: Path) -> Iterator[str]:
    from followthrough.bootstrap import API_SERVER_OPTIONS

    argv = [sys.executable, "-m", "uvicorn", "bench.api:create_bench_app", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--no-access-log", "--no-server-header"]
    assert API_SERVER_OPTIONS["server_header"] is False  # the same options as the `api` role
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the API did not start; see {log}")
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


# --- load --------------------------------------------------------------------------------

Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


async def phase(base: str, headers: dict[str, str], request: Request, *, clients: int,
                seconds: float) -> tuple[float, list[float], list[httpx.Response]]:
    """``clients`` loops sending ``request`` for ``seconds``: requests/s, latencies (ms), answers."""
    latencies: list[float] = []
    answers: list[httpx.Response] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30, limits=limits) as client:
        for _ in range(clients):  # warm the connections
            await request(client)
        stop = time.perf_counter() + seconds

        async def loop() -> None:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                response = await request(client)
                latencies.append((time.perf_counter() - started) * 1000)
                answers.append(response)

        began = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    bad = [a for a in answers if a.status_code >= 300]
    if bad:
        raise SystemExit(f"{len(bad)} requests failed, e.g. {bad[0].status_code} {bad[0].text[:300]}")
    return len(answers) / elapsed, latencies, answers


def report(name: str, rps: float, latencies: Sequence[float]) -> None:
    print(f"{name:<22} {rps:9.1f} req/s   p50 {percentile(latencies, 0.5):7.2f} ms   "
          f"p99 {percentile(latencies, 0.99):7.2f} ms   ({len(latencies)} requests)")


async def paired(base: str, bare: tuple[dict[str, str], Request], real: tuple[dict[str, str], Request], *,
                 clients: int, seconds: float, rounds: int) -> tuple[Any, Any]:
    """The bare endpoint and the real one in alternating rounds, so that a machine whose load
    drifts (others' work) weighs on both alike; totals over the rounds."""
    totals: list[list[Any]] = [[0, 0.0, [], []], [0, 0.0, [], []]]
    for _ in range(rounds):
        for i, (headers, request) in enumerate((bare, real)):
            rps, latencies, answers = await phase(base, headers, request, clients=clients, seconds=seconds / rounds)
            totals[i][0] += len(answers)
            totals[i][1] += len(answers) / rps
            totals[i][2] += latencies
            totals[i][3] += answers
    return tuple((n / elapsed, latencies, answers) for n, elapsed, latencies, answers in totals)


def noisy_png(seed: int) -> bytes:
    """A PNG that does not compress: random pixels, stored without deflate."""
    pixels = random.Random(seed).randbytes(UPLOAD_SIDE * UPLOAD_SIDE * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (UPLOAD_SIDE, UPLOAD_SIDE), pixels).save(out, "PNG", compress_level=0)
    return out.getvalue()


async def media_phases(base: str, auth: dict[str, str], account: str, *, clients: int, seconds: float,
                       rounds: int) -> dict[str, Any]:
    """Planning with 4 images against planning without, then uploads."""
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=30) as client:
        images = []
        for seed in range(4):
            answer = await client.post("/v1/media", files={"file": ("b.png", noisy_png(seed), "image/png")},
                                       data={"alt": f"Benchmark image {seed}"})
            answer.raise_for_status()
            images.append(answer.json()["id"])
    due = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    plain = {"account_id": account, "text": "benchmark post", "scheduled_at": due, "response_plan": PLAN}
    plain_body = orjson.dumps(plain)
    media_body = orjson.dumps({**plain, "media": [{"id": i} for i in images]})
    json_auth = {**auth, "Content-Type": "application/json"}
    (plan_rps, plan_ms, _), (media_rps, media_ms, _) = await paired(
        base, (json_auth, lambda c: c.post("/v1/shares", content=plain_body)),
        (json_auth, lambda c: c.post("/v1/shares", content=media_body)),
        clients=clients, seconds=seconds, rounds=rounds)
    report("POST /v1/shares", plan_rps, plan_ms)
    report("  ... with 4 images", media_rps, media_ms)
    uploads = [noisy_png(1000 + i) for i in range(UPLOAD_FILES)]
    turn = iter(range(10**9))

    def upload(c: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        data = uploads[next(turn) % len(uploads)]
        return c.post("/v1/media", files={"file": ("b.png", data, "image/png")}, data={"alt": "Benchmark"})

    upload_rps, upload_ms, _ = await phase(base, auth, upload, clients=UPLOAD_CLIENTS, seconds=seconds / 2)
    report("POST /v1/media", upload_rps, upload_ms)
    upload_mb_s = upload_rps * len(uploads[0]) / 1e6
    return {"plan_media_rps": round(media_rps, 1), "plan_rps_beside_media": round(plan_rps, 1),
            "ratio_plan_media": round(media_rps / plan_rps, 3),
            "plan_media_p99_ms": round(percentile(media_ms, 0.99), 2),
            "upload_mb_s": round(upload_mb_s, 2), "upload_rps": round(upload_rps, 1),
            "upload_p99_ms": round(percentile(upload_ms, 0.99), 2)}


async def run_phases(base: str, token: str, account: str, *, clients: int, seconds: float,
                     rounds: int) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    due = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    plan_body = orjson.dumps({"account_id": account, "text": "benchmark post", "scheduled_at": due,
                              "response_plan": PLAN})
    json_type = {"Content-Type": "application/json"}

    (bare_insert_rps, bare_insert_ms, inserted), (plan_rps, plan_ms, planned) = await paired(
        base, ({}, lambda c: c.post("/bench/bare-insert")),
        ({**auth, **json_type}, lambda c: c.post("/v1/shares", content=plan_body)),
        clients=clients, seconds=seconds, rounds=rounds)
    report("bare insert", bare_insert_rps, bare_insert_ms)
    report("POST /v1/shares", plan_rps, plan_ms)
    rows = [r.json()["id"] for r in inserted]
    shares = [r.json()["id"] for r in planned]
    rng = random.Random(11)
    (bare_read_rps, bare_read_ms, _), (get_rps, get_ms, _) = await paired(
        base, ({}, lambda c: c.get(f"/bench/bare-read/{rng.choice(rows)}")),
        (auth, lambda c: c.get(f"/v1/shares/{rng.choice(shares)}")),
        clients=clients, seconds=seconds, rounds=rounds)
    report("bare read", bare_read_rps, bare_read_ms)
    report("GET /v1/shares/{id}", get_rps, get_ms)
    media = await media_phases(base, auth, account, clients=clients, seconds=seconds, rounds=rounds)
    return {
        **media,
        "plan_rps": round(plan_rps, 1), "bare_insert_rps": round(bare_insert_rps, 1),
        "ratio_plan": round(plan_rps / bare_insert_rps, 3),
        "get_rps": round(get_rps, 1), "bare_read_rps": round(bare_read_rps, 1),
        "ratio_get": round(get_rps / bare_read_rps, 3),
        "plan_p99_ms": round(percentile(plan_ms, 0.99), 2), "get_p99_ms": round(percentile(get_ms, 0.99), 2),
        "bare_insert_p99_ms": round(percentile(bare_insert_ms, 0.99), 2),
        "bare_read_p99_ms": round(percentile(bare_read_ms, 0.99), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=12.0, help="per endpoint, over all rounds")
    parser.add_argument("--rounds", type=int, default=4, help="alternating bare / real rounds")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("FOLLOWTHROUGH_API_WORKERS", "2")))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp, servers(Path(tmp)) as (url, broker):
        home = Path(tmp)
        progress("migrating and preparing...")
        token, account = prepare(url, broker, home)
        env = {**os.environ, "DATABASE_URL": url, "BROKER_URL": broker, "FOLLOWTHROUGH_HOME": str(home),
               "FOLLOWTHROUGH_LOG_FORMAT": "json", "FOLLOWTHROUGH_LOG_LEVEL": "warning",
               "FOLLOWTHROUGH_QUEUE_PREFIX": f"benchapi{uuid.uuid4().hex[:8]}",
               "FOLLOWTHROUGH_RATE_LIMIT_PER_TOKEN": "1000000/second",
               "FOLLOWTHROUGH_RATE_LIMIT_PER_ADDRESS": "1000000/second",
               "PYTHONPATH": str(ROOT)}
        progress(f"API: {args.workers} uvicorn workers; {args.clients} clients, {args.seconds:.0f} s a phase")
        with api_server(env, free_port(), args.workers, home / "api.log") as base:
            figures = asyncio.run(run_phases(base, token, account, clients=args.clients, seconds=args.seconds,
                                             rounds=args.rounds))
    ok_plan, ok_get = figures["ratio_plan"] >= 0.6, figures["ratio_get"] >= 0.7
    ok_media = figures["ratio_plan_media"] >= 0.5
    print(f"plan / bare insert: {figures['ratio_plan']:.2f} (goal >= 0.6: {'met' if ok_plan else 'NOT met'}); "
          f"get / bare read: {figures['ratio_get']:.2f} (goal >= 0.7: {'met' if ok_get else 'NOT met'}); "
          f"plan with 4 images / plan: {figures['ratio_plan_media']:.2f} "
          f"(goal >= 0.5: {'met' if ok_media else 'NOT met'}); uploads: {figures['upload_mb_s']:.1f} MB/s")
    print(orjson.dumps({**figures, "workers": args.workers, "clients": args.clients,
                        "seconds_per_endpoint": args.seconds, "rounds": args.rounds}).decode())


if __name__ == "__main__":
    main()
