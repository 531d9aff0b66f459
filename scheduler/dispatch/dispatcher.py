"""The dispatcher: hands due work from the schedule table to the broker, at its due time.

One leader at a time, through the follower loop (``events.follower``: a session
advisory lock; a standby waits and takes over when the leader's connection goes).
Correctness never depends on the lock: claims use ``FOR UPDATE SKIP LOCKED`` and a
lease, and workers re-check the stream, so two dispatchers at once cause at most a
duplicate message that the worker drops. The broker only ever carries "run this now".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from psycopg_pool import ConnectionPool

from events.follower import Follower
from scheduler.dispatch import schedule_table as schedule
from scheduler.dispatch.schedule_table import SCHEDULE_CHANNEL, DueItem
from scheduler.domain.schedule import DISPATCHER_MAX_SLEEP

log = structlog.get_logger("scheduler.dispatch.dispatcher")

# The advisory lock's key, the one earlier releases took: old and new dispatchers exclude
# each other during a rolling update.
LEAD_LOCK = "followthrough:dispatcher"


class Dispatcher:
    def __init__(
        self,
        pool: ConnectionPool[Any],
        *,
        conninfo: str,
        connect_kwargs: dict[str, Any],
        send: Callable[[Sequence[DueItem]], Sequence[str] | None],
        batch: int,
        lease_seconds: float,
        lead_seconds: float = 0.0,
        max_sleep: float = DISPATCHER_MAX_SLEEP.total_seconds(),
        standby_poll: float = 0.5,
        tick: float = 0.01,
        send_threads: int = 4,
        message_size: int = 50,
    ) -> None:
        if max_sleep > DISPATCHER_MAX_SLEEP.total_seconds():
            # Writes due beyond the longest sleep wake no one (``wakes_dispatcher``): a longer
            # sleep would miss a row due between the two.
            raise ValueError(f"max_sleep must be at most {DISPATCHER_MAX_SLEEP.total_seconds():g} s, "
                             f"the sleep the schedule's writers count on; got {max_sleep:g}")
        self.pool = pool
        self.send = send
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.lead_seconds = lead_seconds
        self.max_sleep = max_sleep
        # Work due within a tick of the next is handed out together: under a dense burst
        # one claim serves many rows instead of one round trip per row.
        self.tick = tick
        self.message_size = message_size
        self.senders = ThreadPoolExecutor(send_threads, thread_name_prefix="send") if send_threads > 1 else None
        self.follower = Follower(
            "dispatcher", conninfo=conninfo, connect_kwargs=connect_kwargs, channel=SCHEDULE_CHANNEL,
            step=self.follow_step, lock=LEAD_LOCK, standby_poll=standby_poll,
        )

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
            sent = list(self.senders.map(self.send, groups))
        else:
            sent = [self.send(group) for group in groups]
        for group, message_ids in zip(groups, sent, strict=True):
            for index, item in enumerate(group):
                late_ms = int((now - item.due_at) / timedelta(milliseconds=1))
                event = "share_dispatched" if item.dispatch_count == 1 else "share_redispatched"
                log.info(
                    event,
                    share_id=str(item.share_id),
                    kind=item.kind,
                    due_at=item.due_at.isoformat(),
                    dispatch_lateness_ms=late_ms,
                    dispatch_count=item.dispatch_count,
                    # The worker's lines for this share's delivery carry the same id.
                    message_id=_message_for(message_ids, index),
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

    def follow_step(self) -> float:
        """One round for the follower loop: dispatch, then how long to sleep (0: more is due).
        A broker that refuses raises here; the loop retries after a backoff, and claimed rows
        that were not sent come back when their lease runs out."""
        sent = self.dispatch_once()
        if sent >= self.batch:
            return 0.0
        if sent:
            # Work is flowing (a burst): look again in a tick. Asking when the next row is
            # due after every claim cost as much as the claim itself (its scans pass over
            # the rows just handed out); it is asked once a claim finds nothing.
            return self.tick
        return self.seconds_to_next()

    def run(self, stop: threading.Event) -> None:
        """Lead and dispatch until ``stop`` is set (standby while another replica leads)."""
        self.follower.run(stop)

    @property
    def leading(self) -> threading.Event:
        return self.follower.leading

    @property
    def idle(self) -> bool:
        """True while asleep until the next due time (a NOTIFY wakes it sooner)."""
        return self.follower.idle


def _message_for(message_ids: Sequence[str] | None, index: int) -> str | None:
    """The message that carries a group's ``index``-th item: the group's one, or its own."""
    if not message_ids:
        return None
    return message_ids[0] if len(message_ids) == 1 else message_ids[index]
