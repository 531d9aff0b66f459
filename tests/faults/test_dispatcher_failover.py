"""Two dispatchers as separate processes: one leads, one stands by. Killing the leader
(SIGKILL) or stopping it (SIGTERM) hands the lead over within seconds, and nothing the
old leader handed out is handed out again before its lease ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from psycopg_pool import ConnectionPool

from events.notifier import Notifier
from events.store import EventStore
from followthrough.settings import Settings
from tests.support.shares import make_account, plan, share_service
from tests.support.system import wait_until

pytestmark = pytest.mark.faults


class Dispatcher:
    def __init__(self, settings: Settings, log: Path) -> None:
        env = {**os.environ, "DATABASE_URL": settings.database_url or "", "BROKER_URL": settings.broker_url or "",
               "FOLLOWTHROUGH_QUEUE_PREFIX": settings.queue_prefix, "FOLLOWTHROUGH_LOG_FORMAT": "json",
               "FOLLOWTHROUGH_LEASE_SECONDS": "60"}
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "followthrough.cli", "dispatcher"], env=env,
                                            stdout=out, stderr=subprocess.STDOUT)

    def lines(self) -> list[dict[str, Any]]:
        found = []
        for raw in self.log.read_bytes().splitlines():
            try:
                found.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                continue
        return found

    def said(self, event: str) -> bool:
        """Whether the dispatcher's follower loop logged ``event``."""
        return any(line.get("event") == event and line.get("follower") == "dispatcher" for line in self.lines())

    def dispatched(self) -> set[str]:
        return {line["share_id"] for line in self.lines() if line.get("event") == "share_dispatched"}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@contextmanager
def two_dispatchers(settings: Settings, tmp_path: Path) -> Iterator[tuple[Dispatcher, Dispatcher]]:
    first = Dispatcher(settings, tmp_path / "first.log")
    try:
        wait_until(lambda: first.said("follower_leading"), timeout=60, what="the first dispatcher to lead")
        second = Dispatcher(settings, tmp_path / "second.log")
        try:
            wait_until(lambda: second.said("follower_standby"), timeout=60, what="the second to stand by")
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_the_standby_takes_the_lead_within_seconds_and_redispatches_nothing_early(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], notifier: Notifier, tmp_path: Path,
    how: signal.Signals,
) -> None:
    # Planned as the API plans: a NOTIFY wakes the leader (without it, it looks only every 5 s,
    # as long as the test waits for the new leader to dispatch)
    shares = share_service(pool, store, notifier)
    account = make_account(pool)
    with two_dispatchers(settings, tmp_path) as (leader, standby):
        # Given shares the leader has handed out
        before = {str(plan(shares, account)) for _ in range(5)}
        wait_until(lambda: before <= leader.dispatched(), timeout=20, what="the leader to dispatch")
        # When the leader is killed (or stopped)
        stopped = time.monotonic()
        leader.process.send_signal(how)
        # Then the standby leads within 5 seconds
        wait_until(lambda: standby.said("follower_leading"), timeout=5, interval=0.05,
                   what="the standby to take the lead")
        took_over = time.monotonic() - stopped
        print(f"{how.name}: standby leading {took_over:.2f} s after the leader was stopped")
        # And dispatches new work
        after = {str(plan(shares, account, at=datetime.now(UTC) + timedelta(milliseconds=200))) for _ in range(3)}
        wait_until(lambda: after <= standby.dispatched(), timeout=5, what="the new leader to dispatch")
        # And what the old leader handed out is not handed out again while its lease runs
        assert not (before & standby.dispatched())
        if how == signal.SIGTERM:
            assert leader.process.wait(timeout=10) == 0
            assert took_over < 2.0
