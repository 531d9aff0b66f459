"""Publishing you can trust, shown under faults: workers SIGKILLed again and again and
the broker restarted once (Redis with and without persistence, RabbitMQ) while 500 shares
fall due over a minute. Afterwards every share is sent, exactly once, and never before its
response tasks were recorded."""

from __future__ import annotations

import contextlib
import random
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from statistics import median
from typing import Any

import httpx
import psutil
import pytest
import redis

from tests.support.brokers import OwnRedis, restart_rabbitmq
from tests.support.database import connect, delete_rabbit_queues
from tests.support.system import System, client_per_thread, running, wait_until
from workers.actors import queue_names

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SHARES = 500
# The shares fall due over SPREAD seconds, the first FIRST_DUE seconds after planning began
# (planning 500 through the API must be done by then); while they do, a worker process is
# killed every KILL_EVERY seconds (at least 6 in all) and the broker restarts once, halfway.
# Kills much closer together keep the workers down more than up (a role restarts in a few
# seconds): measured, 2.5-4 s apart over 30 s left shares 48 s late at the median and the
# test no quicker; 4-7 s apart over 47 s gives 6 kills at the least.
# Planning took 10-15 s on an idle machine and over 25 s beside two other test workers
# (make test runs three on two cores).
SPREAD = 45.0
FIRST_DUE = 40.0
KILL_EVERY = (4.0, 7.0)
FAULT_ENV = {
    "FOLLOWTHROUGH_LEASE_SECONDS": "4",
    "FOLLOWTHROUGH_WORKER_PROCESSES": "2",
    "FOLLOWTHROUGH_WORKER_THREADS": "4",
    "FOLLOWTHROUGH_WORKER_SHUTDOWN_SECONDS": "5",
    "FOLLOWTHROUGH_RESTART_BACKOFF_MAX_SECONDS": "2",
}


def worker_processes(system: System) -> list[psutil.Process]:
    """The Dramatiq worker processes under the current worker role process."""
    masters: dict[str, int] = {}
    for line in system.logs():
        if line.get("event") == "role_started" and str(line.get("child_role", "")).startswith("worker"):
            masters[line["child_role"]] = line["pid"]
    found = []
    for pid in masters.values():
        try:
            found.extend(psutil.Process(pid).children())
        except psutil.NoSuchProcess:
            continue
    return found


def run_faults(tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str,
               restart_broker: Callable[[System], None]) -> None:
    with running(tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix,
                 extra_env=FAULT_ENV) as system:
        token = system.cli("token", "create", "--workspace", "default", "--scope", "write")
        with system.client(token) as api:
            account = api.post("/v1/accounts", json={"name": "storm", "channel": "console"}).json()
            # Given 500 shares due over 45 seconds, each with response work
            start = datetime.now(UTC)

            def plan_one(client: Callable[[], httpx.Client], i: int) -> tuple[str, datetime]:
                due = start + timedelta(seconds=FIRST_DUE + SPREAD * i / SHARES)
                response = client().post("/v1/shares", json={
                    "account_id": account["id"], "text": f"post {i}", "scheduled_at": due.isoformat(),
                    "response_plan": [{"kind": "check_replies", "after": "PT1H", "owner": "ops"}]})
                assert response.status_code == 201, response.text
                return response.json()["id"], due

            with client_per_thread(system, token) as client, ThreadPoolExecutor(max_workers=8) as pool:
                planned = dict(pool.map(partial(plan_one, client), range(SHARES)))
            assert datetime.now(UTC) < start + timedelta(seconds=FIRST_DUE), "planning took too long"

            # When workers are SIGKILLed every few seconds and the broker restarts once
            kills: list[int] = []
            stop_faults = threading.Event()
            fault_errors: list[Exception] = []

            def inflict() -> None:
                rng = random.Random(7)
                begin = time.monotonic()
                restarted = False
                try:
                    while not stop_faults.wait(rng.uniform(*KILL_EVERY)):
                        victims = worker_processes(system)
                        if victims:
                            victim = rng.choice(victims)
                            # A listed process may be gone by now (its master reaps a killed
                            # sibling and stops the rest): that is no kill, and no reason to stop
                            with contextlib.suppress(psutil.NoSuchProcess):
                                victim.send_signal(signal.SIGKILL)
                                kills.append(victim.pid)
                        if not restarted and time.monotonic() - begin > SPREAD / 2:
                            restart_broker(system)
                            restarted = True
                except Exception as error:  # the main thread fails with it, and its traceback
                    fault_errors.append(error)

            faults = threading.Thread(target=inflict)
            time.sleep(max(0.0, FIRST_DUE - (datetime.now(UTC) - start).total_seconds() - 1))
            faults.start()
            time.sleep(SPREAD + 2)
            stop_faults.set()
            faults.join(timeout=120)
            if fault_errors:
                raise AssertionError("inflicting the faults failed") from fault_errors[0]
            assert len(kills) >= 6

            # Then every share is sent, in the end
            def all_sent() -> bool:
                with connect(database_url) as conn:
                    row = conn.execute("SELECT count(DISTINCT stream_id) FROM events WHERE type = 'ShareSent'"
                                       ).fetchone()
                return row is not None and row[0] == SHARES

            wait_until(all_sent, timeout=180, interval=1.0, what="every share to be sent")

        # And the console holds exactly one line per share: none lost, none doubled
        lines = Counter(line["share_id"] for line in system.console_lines("storm"))
        assert set(lines) == set(planned)
        assert max(lines.values()) == 1

        # And, from the log, every ShareSent follows the share's recorded tasks
        with connect(database_url) as conn:
            rows = conn.execute(
                "SELECT stream_id, stream_version, type, data FROM events WHERE stream_id LIKE 'share-%%'"
                " ORDER BY stream_id, stream_version").fetchall()
        streams: dict[str, list[tuple[int, str, dict[str, Any]]]] = defaultdict(list)
        for stream_id, version, type_, data in rows:
            streams[stream_id].append((version, type_, data))
        lateness = []
        for stream_id, events in streams.items():
            kinds = [t for _, t, _ in events]
            assert kinds.count("ShareSent") == 1, stream_id
            assert kinds.count("ResponseTasksRecorded") == 1, stream_id
            assert kinds.index("ResponseTasksRecorded") < kinds.index("ShareSent"), stream_id
            lateness.append(next(d["lateness_ms"] for _, t, d in events if t == "ShareSent"))
        attempts = Counter(kinds.count("ShareAttemptStarted") for kinds in
                           ([t for _, t, _ in ev] for ev in streams.values()))
        lateness.sort()
        print(f"{len(kills)} worker kills; attempts per share {dict(sorted(attempts.items()))}; "
              f"lateness p50 {median(lateness):.0f} ms, max {lateness[-1]} ms")
        # And the supervisor brought the worker role back each time it died
        events = [line.get("event") for line in system.logs()]
        assert events.count("role_exited") >= 1
        # And the read models agree: nothing sent without its tasks
        def projected() -> bool:
            with connect(database_url) as conn:
                row = conn.execute("SELECT count(*) FILTER (WHERE status = 'sent'),"
                                   " count(*) FILTER (WHERE sent_without_tasks) FROM rm_shares").fetchone()
            return row == (SHARES, 0)

        wait_until(projected, timeout=60, what="the shares projection to catch up")


def queued_messages(redis_server: OwnRedis) -> int:
    """Messages the Redis broker holds (queued or delivered and not yet acknowledged)."""
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    return sum(int(client.hlen(key)) for key in client.scan_iter(match="*.msgs"))


def restart_with_a_backlog(redis_server: OwnRedis, lost: list[int]) -> Callable[[System], None]:
    """Stops the workers for a few seconds so messages pile up, then restarts the broker:
    without persistence, what it held is gone."""
    def restart(system: System) -> None:
        stopped = []
        for process in worker_processes(system):
            # One may have exited since it was listed (the kill just before, reaped)
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGSTOP)
                stopped.append(process)
        try:
            time.sleep(3.0)
            lost.append(queued_messages(redis_server))
            redis_server.restart()
        finally:
            for process in stopped:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.send_signal(signal.SIGCONT)
    return restart


def test_shares_survive_worker_kills_and_a_redis_restart(
    tmp_path: Path, database_url: str, queue_prefix: str
) -> None:
    redis_server = OwnRedis(tmp_path / "redis")
    redis_server.start()
    try:
        run_faults(tmp_path, database_url, redis_server.url, queue_prefix, lambda _: redis_server.restart())
    finally:
        redis_server.stop()


def test_shares_survive_a_redis_restart_that_loses_every_queued_message(
    tmp_path: Path, database_url: str, queue_prefix: str
) -> None:
    # Given a Redis that keeps nothing on disk, restarted while it holds a backlog
    redis_server = OwnRedis(tmp_path / "redis", persist=False)
    redis_server.start()
    lost: list[int] = []
    try:
        run_faults(tmp_path, database_url, redis_server.url, queue_prefix, restart_with_a_backlog(redis_server, lost))
    finally:
        redis_server.stop()
    # Then the restart did drop messages, and (run_faults) every share was still sent exactly once:
    # the call leases in the database brought the dropped ones back
    print(f"the Redis restart dropped {lost} queued messages")
    assert len(lost) == 1
    assert lost[0] > 0


@pytest.mark.rabbitmq
@pytest.mark.restarts_rabbitmq
def test_shares_survive_worker_kills_and_a_rabbitmq_restart(
    tmp_path: Path, database_url: str, rabbitmq_url: str, queue_prefix: str
) -> None:
    try:
        run_faults(tmp_path, database_url, rabbitmq_url, queue_prefix, lambda _: restart_rabbitmq())
    finally:
        delete_rabbit_queues(rabbitmq_url, list(queue_names(queue_prefix).values()))
