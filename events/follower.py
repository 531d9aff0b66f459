"""The one follower loop: connect, lead, listen, step, reconnect.

The dispatcher, each projection runner and the webhook deliverer run this loop around
their own ``step``, so they lose and regain PostgreSQL the same way and say so with the
same log events (``follower_*``, with ``follower=<name>`` bound).

A follower with a lock leads by a session advisory lock on its own connection; another
replica waits as a standby and takes over when that session ends (a crash, a stop, or
``pg_terminate_backend``). Correctness never depends on the lock: every step claims its
work under row locks, leases or a locked checkpoint, so two leaders at once cost at most
duplicate effort. A follower without a lock (the webhook deliverer: its claims share the
outbox) only connects and listens.

``step()`` does one round of work and returns how long to sleep before the next (0: go
on at once); a NOTIFY on the follower's channel ends the sleep early. A connection error
(from the lead connection or from the step's pool) drops the lead, and the loop
reconnects after a capped exponential backoff with jitter; any other error from a step
is logged and the step retried after the same backoff, still leading.
"""

from __future__ import annotations

import random as random_module
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
from psycopg_pool import PoolTimeout

from events.notifier import listen, wait_for_notify

# Lost or unusable PostgreSQL: the server went away (OperationalError, which also covers
# an administrator's termination), the connection object is already closed
# (InterfaceError), or the step's pool could not hand out a connection in time.
CONNECTION_ERRORS: tuple[type[Exception], ...] = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)

log = structlog.get_logger("events.follower")

LEAD_SQL = "SELECT pg_try_advisory_lock(hashtext(%s))"
# A sleep is cut into slices this long so that ``stop`` ends it promptly: psycopg's wait
# cannot be woken by a threading.Event. Four wake-ups a second cost nothing measurable.
STOP_SLICE_SECONDS = 0.25
# While steps find work back to back the lead connection is never waited on; it is looked
# at (without a round trip) this often, so a leader whose session died steps down.
LEAD_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter: the n-th consecutive failure waits between
    half and all of ``min(cap, base * 2**(n-1))``, so replicas that lost the same server
    do not come back in step."""

    base: float = 0.25
    cap: float = 5.0

    def delay(self, failures: int, jitter: float) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** max(0, failures - 1))
        return ceiling * (0.5 + jitter / 2)


@dataclass(eq=False)
class Follower:
    """``name`` is logged as ``follower=<name>``; ``lock``, the advisory lock's key, or None
    for a follower that needs no lead; ``channel``, what it LISTENs on."""

    name: str
    conninfo: str
    channel: str
    step: Callable[[], float]
    lock: str | None
    connect_kwargs: dict[str, Any] = field(default_factory=dict)
    standby_poll: float = 0.5
    backoff: Backoff = field(default_factory=Backoff)
    random: Callable[[], float] = random_module.random
    # Set while this follower leads (or, without a lock, listens).
    leading: threading.Event = field(default_factory=threading.Event, init=False)
    # True while asleep in LISTEN between steps.
    idle: bool = field(default=False, init=False)
    _failures: int = field(default=0, init=False)

    def run(self, stop: threading.Event) -> None:
        """Follow until ``stop`` is set; returns within a slice of a second of it (or of
        the step in progress)."""
        lost_at: float | None = None
        while not stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, **self.connect_kwargs) as conn:
                    if lost_at is not None:
                        self.log.info("follower_reconnected", down_s=round(time.monotonic() - lost_at, 3))
                        lost_at = None
                    if not self._lead(conn, stop):
                        return
                    try:
                        listen(conn, self.channel)
                        self.leading.set()
                        self.log.info("follower_leading" if self.lock else "follower_listening", channel=self.channel)
                        self._follow(conn, stop)
                    finally:
                        if self.leading.is_set():
                            self.leading.clear()
                            self.log.info("follower_released")
            except CONNECTION_ERRORS as exc:
                lost_at = lost_at or time.monotonic()
                delay = self._failed()
                self.log.warning("follower_connection_lost", error=" ".join(str(exc).split()),
                                 error_type=type(exc).__name__, failures=self._failures, retry_in_s=round(delay, 3))
                stop.wait(delay)

    def _lead(self, conn: psycopg.Connection[Any], stop: threading.Event) -> bool:
        """Take the lead (True), or wait as a standby until it is free or ``stop`` is set."""
        if self.lock is None:
            return not stop.is_set()
        announced = False
        while not stop.is_set():
            row = conn.execute(LEAD_SQL, (self.lock,)).fetchone()
            if row and row[0]:
                return True
            if not announced:
                self.log.info("follower_standby")
                announced = True
            stop.wait(self.standby_poll)
        return False

    def _follow(self, conn: psycopg.Connection[Any], stop: threading.Event) -> None:
        checked = time.monotonic()
        while not stop.is_set():
            try:
                wait = self.step()
            except CONNECTION_ERRORS:
                raise  # reconnect and lead again, in run()
            except Exception as exc:  # one bad round (a broker outage, a bug) must not end the follower
                delay = self._failed()
                self.log.exception("follower_step_failed", error=repr(exc), failures=self._failures,
                                   retry_in_s=round(delay, 3))
                stop.wait(delay)
                continue
            self._failures = 0
            if wait > 0:
                self._sleep(conn, wait, stop)
            elif time.monotonic() - checked >= LEAD_CHECK_SECONDS:
                # Reads what is already on the socket: a dead session raises here.
                wait_for_notify(conn, 0)
            else:
                continue
            checked = time.monotonic()

    def _sleep(self, conn: psycopg.Connection[Any], seconds: float, stop: threading.Event) -> None:
        """Sleep up to ``seconds``: less if a NOTIFY comes or ``stop`` is set."""
        deadline = time.monotonic() + seconds
        self.idle = True
        try:
            while not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0 or wait_for_notify(conn, min(left, STOP_SLICE_SECONDS)):
                    return
        finally:
            self.idle = False

    @property
    def log(self) -> Any:
        # Bound when used, not when built: the logging set up later (or a test's
        # capture) applies to a follower made before it. Only state changes log.
        return log.bind(follower=self.name)

    def _failed(self) -> float:
        self._failures += 1
        return self.backoff.delay(self._failures, self.random())
