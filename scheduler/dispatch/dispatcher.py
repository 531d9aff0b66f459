"""The dispatcher: hands due work from the schedule table to the broker, at its due time.

One leader at a time (a session advisory lock; a standby waits and takes over
when the leader's connection goes). Correctness never depends on the lock:
claims use ``FOR UPDATE SKIP LOCKED`` and a lease, and workers re-check the
stream, so two dispatchers at once cause at most a duplicate message that the
worker drops. The broker only ever carries "run this now".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import structlog
from psycopg_pool import ConnectionPool, PoolTimeout

from events.notifier import listen, wait_for_notify
from scheduler.dispatch import schedule_table as schedule
from scheduler.dispatch.schedule_table import SCHEDULE_CHANNEL, DueItem

log = structlog.get_logger("scheduler.dispatch.dispatcher")

LOCK_SQL = "SELECT pg_try_advisory_lock(hashtext('followthrough:dispatcher'))"


class Dispatcher:
    def __init__(
        self,
        pool: ConnectionPool[Any],
        *,
        conninfo: str,
        connect_kwargs: dict[str, Any],
        send: Callable[[Sequence[DueItem]], None],
        batch: int,
        lease_seconds: float,
        lead_seconds: float = 0.0,
        max_sleep: float = 5.0,
        standby_poll: float = 0.5,
        tick: float = 0.01,
        send_threads: int = 4,
        message_size: int = 50,
    ) -> None:
        self.pool = pool
        self.conninfo = conninfo
        self.connect_kwargs = connect_kwargs
        self.send = send
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.lead_seconds = lead_seconds
        self.max_sleep = max_sleep
        self.standby_poll = standby_poll
        # Work due within a tick of the next is handed out together: under a dense burst
        # one claim serves many rows instead of one round trip per row.
        self.tick = tick
        self.message_size = message_size
        self.senders = ThreadPoolExecutor(send_threads, thread_name_prefix="send") if send_threads > 1 else None
        self.leading = threading.Event()
        # True while idle in LISTEN: a stop signal may then interrupt at once (see cli).
        self.idle = False

    def dispatch_once(self) -> int:
        """Claim what is due and send it; returns how many items were sent."""
        with self.pool.connection() as conn:
            items = schedule.claim_due(
                conn, limit=self.batch, lease_seconds=self.lease_seconds, lead_seconds=self.lead_seconds
            )
        now = datetime.now(UTC)
        # Work due together travels together: one message per group of up to
        # message_size shares (a worker then settles them in a few statements).
        groups: list[list[DueItem]] = []
        for kind in sorted({i.kind for i in items}):
            same = [i for i in items if i.kind == kind]
            groups.extend(same[k:k + self.message_size] for k in range(0, len(same), self.message_size))
        if len(groups) > 1 and self.senders is not None:
            # Each enqueue is a broker round trip: overlap them for a burst.
            list(self.senders.map(self.send, groups))
        else:
            for group in groups:
                self.send(group)
        for item in items:
            late_ms = int((now - item.due_at) / timedelta(milliseconds=1))
            event = "share_dispatched" if item.dispatch_count == 1 else "share_redispatched"
            log.info(
                event,
                share_id=str(item.share_id),
                kind=item.kind,
                due_at=item.due_at.isoformat(),
                dispatch_lateness_ms=late_ms,
                dispatch_count=item.dispatch_count,
            )
        return len(items)

    def seconds_to_next(self) -> float:
        with self.pool.connection() as conn:
            wait = schedule.next_wakeup(conn, lead_seconds=self.lead_seconds)
        if wait is None:
            return self.max_sleep
        seconds = wait.total_seconds()
        if seconds <= 0:
            return 0.0
        return min(self.max_sleep, max(self.tick, seconds))

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, **self.connect_kwargs) as lock_conn:
                    if not self._lead(lock_conn, stop):
                        return
                    listen(lock_conn, SCHEDULE_CHANNEL)
                    self.leading.set()
                    log.info("dispatcher_leading")
                    self._loop(lock_conn, stop)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                log.warning("dispatcher_connection_lost", error=str(exc))
                stop.wait(1.0)
            finally:
                if self.leading.is_set():
                    log.info("dispatcher_released_lead")
                self.leading.clear()

    def _loop(self, lock_conn: psycopg.Connection[Any], stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if self.dispatch_once() >= self.batch:
                    continue
            except (psycopg.OperationalError, PoolTimeout):
                raise  # reconnect (and re-acquire the lead) in run()
            except Exception as exc:  # noqa: BLE001 - a broker outage must not end the dispatcher
                # Claimed rows that were not sent come back when their lease runs out.
                log.error("dispatch_failed", error=repr(exc))
                stop.wait(1.0)
                continue
            wait = self.seconds_to_next()
            if wait > 0:
                # Sleep until the earliest due time; a NOTIFY (earlier work planned) wakes us sooner.
                self.idle = True
                try:
                    # A stop signal that came just before ``idle`` was set did not interrupt
                    # anything: look once more, now that later ones will.
                    if stop.is_set():
                        return
                    wait_for_notify(lock_conn, wait)
                finally:
                    self.idle = False

    def _lead(self, conn: psycopg.Connection[Any], stop: threading.Event) -> bool:
        announced = False
        while not stop.is_set():
            row = conn.execute(LOCK_SQL).fetchone()
            if row and row[0]:
                return True
            if not announced:
                log.info("dispatcher_standby")
                announced = True
            stop.wait(self.standby_poll)
        return False
