"""Following the whole log: a tailing iterator that sleeps on LISTEN and wakes on NOTIFY.

It also re-polls on a timeout, because a notification can be missed (a writer
that died between commit and notify, a dropped connection) and because events
held behind the horizon become readable without any new notification.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg

from events.notifier import EVENTS_CHANNEL, listen, wait_for_notify
from events.records import Checkpoint, RecordedEvent
from events.store import EventStore


def tail(
    store: EventStore,
    conninfo: str,
    after: Checkpoint,
    *,
    batch_size: int = 500,
    poll_seconds: float = 1.0,
    stop: threading.Event | None = None,
    connect_kwargs: dict[str, Any] | None = None,
) -> Iterator[RecordedEvent]:
    """Yield every event after ``after`` forever (until ``stop`` is set), in log order."""
    with psycopg.connect(conninfo, autocommit=True, **(connect_kwargs or {})) as conn:
        listen(conn, EVENTS_CHANNEL)
        while stop is None or not stop.is_set():
            batch = store.read_batch(after, limit=batch_size, conn=conn)
            if batch:
                yield from batch
                after = batch[-1].checkpoint
                if len(batch) == batch_size:
                    continue
            # Drain wake-ups that arrived while reading, then sleep until the next one.
            wait_for_notify(conn, poll_seconds)
