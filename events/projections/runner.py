"""The projection runner: read a batch after the checkpoint (gap-safe), apply it and
store the new checkpoint in the same transaction (exactly-once effect), and wait on
LISTEN when caught up. A projection that reads only some event types still moves its
checkpoint over the others once it has applied every one of its own up to them
(``passed_over``), so an idle projection is never behind. One runner holds each
projection (a session advisory lock, taken by the follower loop, ``events.follower``);
another replica waits as a standby.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import psycopg
import structlog

from events import sqlfiles
from events.follower import Follower
from events.notifier import EVENTS_CHANNEL
from events.records import Checkpoint, RecordedEvent
from events.store import EventStore

Q = sqlfiles.load("events.projections.sql", "runner.sql")
log = structlog.get_logger("events.projections")


class Projection(Protocol):
    name: str
    # The event types it needs, or None for all.
    types: frozenset[str] | None

    def apply(self, conn: psycopg.Connection[Any], events: Sequence[RecordedEvent]) -> None: ...


@runtime_checkable
class Remembering(Protocol):
    """A projection that keeps what it wrote in memory between batches: the runner
    tells it to ``forget`` whenever its tables may have changed since its last batch."""

    def forget(self) -> None: ...


def passed_over(conn: psycopg.Connection[Any], after: Checkpoint) -> Checkpoint | None:
    """The last event of the whole log below the horizon, if it is after ``after`` (else
    None). Read before a typed batch in the same transaction, every event up to it is
    visible to that batch: a batch that is not full holds all of its types up to it."""
    row = conn.execute(Q["visible_head"], {"epoch": after.epoch, "tx_id": str(after.tx_id),
                                           "position": after.position}).fetchone()
    return None if row is None else Checkpoint(int(row[0]), int(row[1]), int(row[2]))


class ProjectionRunner:
    def __init__(
        self,
        store: EventStore,
        projection: Projection,
        *,
        conninfo: str,
        connect_kwargs: dict[str, Any] | None = None,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.projection = projection
        self.conninfo = conninfo
        self.connect_kwargs = connect_kwargs or {}
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self._committed: Checkpoint | None = None
        # The lock's key is the one earlier releases took: old and new replicas exclude each other.
        self.follower = Follower(
            f"projection:{projection.name}", conninfo=conninfo, connect_kwargs=self.connect_kwargs,
            channel=EVENTS_CHANNEL, step=self.follow_step, lock=f"followthrough:projection:{projection.name}",
            standby_poll=1.0,
        )

    def checkpoint(self, conn: psycopg.Connection[Any]) -> Checkpoint:
        row = conn.execute(Q["checkpoint"], {"name": self.projection.name}).fetchone()
        if row is None:
            return Checkpoint.start()
        return Checkpoint(int(row[0]), int(row[1]), int(row[2]))

    def _locked_checkpoint(self, conn: psycopg.Connection[Any]) -> Checkpoint:
        """The checkpoint, its row locked until the step commits: a rebuild's swap
        takes the same lock, so a step never applies a batch across a swap."""
        name = {"name": self.projection.name}
        row = conn.execute(Q["lock_checkpoint"], name).fetchone()
        if row is None:
            conn.execute(Q["ensure_checkpoint"], name)
            row = conn.execute(Q["lock_checkpoint"], name).fetchone()
        assert row is not None
        return Checkpoint(int(row[0]), int(row[1]), int(row[2]))

    def step(self) -> int:
        """Apply one batch; returns how many events it applied (0: caught up)."""
        # The checkpoint this runner committed last: if the step finds another one, someone
        # else moved the tables on (another replica, a rebuild's swap); if it fails, what
        # it applied is rolled back. Either way a projection's memory of its rows is stale.
        committed, self._committed = self._committed, None
        with self.store.pool.connection() as conn, conn.transaction():
            after = self._locked_checkpoint(conn)
            if after != committed and isinstance(self.projection, Remembering):
                self.projection.forget()
            # Taken before the batch: every event up to it is visible to the read below.
            head = None if self.projection.types is None else passed_over(conn, after)
            events = self.store.read_batch(after, limit=self.batch_size, types=self.projection.types, conn=conn)
            if events:
                self.projection.apply(conn, events)
                last = events[-1].checkpoint
                if head is not None and len(events) < self.batch_size:
                    last = max(last, head)  # every one of its types up to ``head`` is in this batch
            elif head is not None:
                last = head
            else:
                self._committed = after
                return 0
            conn.execute(
                Q["save_checkpoint"],
                {
                    "name": self.projection.name,
                    "epoch": last.epoch,
                    "tx_id": str(last.tx_id),
                    "position": last.position,
                    "applied": len(events),
                },
            )
        self._committed = last
        return len(events)

    def catch_up(self) -> int:
        """Apply batches until caught up; returns how many events it applied."""
        total = 0
        while (n := self.step()) > 0:
            total += n
        return total

    def catch_up_fully(self, *, timeout: float = 30.0, poll: float = 0.05) -> int:
        """Apply every event committed so far, however long a transaction elsewhere on the
        server holds the log's horizon back (``catch_up`` stops at the horizon): for tools
        and tests that read the model right after writing. Raises ``TimeoutError`` when
        events are still left after ``timeout`` seconds."""
        total, deadline = self.catch_up(), time.monotonic() + timeout
        types = None if self.projection.types is None else sorted(self.projection.types)
        while True:
            with self.store.pool.connection() as conn:
                at = self.checkpoint(conn)
                row = conn.execute(Q["left_after"], {"epoch": at.epoch, "tx_id": str(at.tx_id),
                                                     "position": at.position, "types": types}).fetchone()
            if not (row and row[0]):
                return total
            if time.monotonic() >= deadline:
                raise TimeoutError(f"projection {self.projection.name} still behind after {timeout:.0f} s")
            time.sleep(poll)
            total += self.catch_up()

    def follow_step(self) -> float:
        """One round for the follower loop: a batch, then how long to sleep (0: read on)."""
        applied = self.step()
        if applied:
            log.debug("projection_applied", projection=self.projection.name, events=applied)
            return 0.0
        return self.poll_seconds

    def run(self, stop: threading.Event) -> None:
        """Lead this projection until ``stop`` is set (standby while another replica leads)."""
        self.follower.run(stop)
