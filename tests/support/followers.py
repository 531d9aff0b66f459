"""Running follower loops in threads against the test's PostgreSQL, and ending their sessions
from outside as an administrator (or a failing server) would."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from events.follower import Backoff, Follower

LOCK = "followthrough:test-follower"
CHANNEL = "followthrough_test_follower"


@dataclass
class Steps:
    """A step that records when it ran and sleeps ``wait`` seconds between rounds;
    ``failures`` are raised, one per round, before it succeeds."""

    wait: float = 0.05
    failures: list[Exception] = field(default_factory=list)
    at: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        self.at.append(time.monotonic())
        if self.failures:
            raise self.failures.pop(0)
        return self.wait


def follower(
    database_url: str, name: str, step: Callable[[], float], *, lock: str | None = LOCK, **kw: Any
) -> Follower:
    """A follower whose sessions are named ``ft-test-<name>`` (to find and end them)."""
    kw.setdefault("standby_poll", 0.05)
    kw.setdefault("backoff", Backoff(base=0.05, cap=0.2))
    return Follower(name, conninfo=database_url, connect_kwargs={"application_name": f"ft-test-{name}"},
                    channel=CHANNEL, step=step, lock=lock, **kw)


@dataclass
class Running:
    stop: threading.Event
    threads: list[threading.Thread]

    def returned(self) -> bool:
        return not any(thread.is_alive() for thread in self.threads)


@contextmanager
def following(*followers: Follower) -> Iterator[Running]:
    """Run each follower in a thread until the block ends (or its ``stop`` is set)."""
    stop = threading.Event()
    running = Running(stop, [threading.Thread(target=f.run, args=(stop,), name=f"follower-{f.name}")
                             for f in followers])
    for thread in running.threads:
        thread.start()
    try:
        yield running
    finally:
        running.stop.set()
        for thread in running.threads:
            thread.join(timeout=10)


def terminate_sessions(database_url: str, name: str) -> int:
    """End the follower's sessions with ``pg_terminate_backend``; returns how many."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            (f"ft-test-{name}",),
        ).fetchone()
    assert row is not None
    return int(row[0])


def lock_is_free(database_url: str, lock: str = LOCK) -> bool:
    """Whether another session can take the lead now (taken and let go again at once)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (lock,)).fetchone()
        return bool(row and row[0])
