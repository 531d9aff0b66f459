"""One share of a message being handled: every write a worker makes to a share's stream
goes through here into the one unit of work for share streams (``ShareStreams``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from uuid import UUID

import psycopg

from events.records import AppendResult, NewEvent, RecordedEvent
from scheduler.domain import share as lifecycle
from scheduler.domain.share import ShareState
from scheduler.services.share_stream import stamp
from workers.runtime import Runtime

Conn = psycopg.Connection[Any]
ACTOR = "worker"


@dataclass
class Delivery:
    """One share of a message being handled, on the message's connection."""

    rt: Runtime
    conn: Conn
    share_id: UUID
    message_id: str | None
    workspace_id: str = ""

    @cached_property
    def stream_id(self) -> str:
        return lifecycle.stream_id(self.share_id)

    def load(self) -> tuple[ShareState, list[RecordedEvent]]:
        history = self.rt.store.read_stream(self.stream_id, conn=self.conn)
        if history:
            self.workspace_id = history[0].workspace_id
        return lifecycle.fold(r.event for r in history), history

    def stamp(self, events: Sequence[NewEvent]) -> list[NewEvent]:
        """The events with this delivery's metadata (actor, correlation, causation)."""
        return stamp(events, workspace_id=self.workspace_id, actor=ACTOR, share_id=self.share_id,
                     causation_id=self.message_id)

    def commit(self, events: Sequence[NewEvent], *, expected_version: int,
               also: Callable[[Conn, AppendResult], None] | None = None) -> AppendResult:
        """Append ``events`` and the schedule changes they imply (and what ``also`` writes), atomically."""
        return self.rt.streams.commit(self.conn, share_id=self.share_id, workspace_id=self.workspace_id,
                                      events=self.stamp(events), expected_version=expected_version, also=also)

    def change(self, decide: Callable[[ShareState], Sequence[NewEvent]], *,
               state: ShareState | None = None) -> tuple[ShareState, tuple[NewEvent, ...]]:
        """Decide on the stream and commit, deciding again when another writer got there
        first (``ShareStreams.change``); the state after and the events written."""
        return self.rt.streams.change(self.conn, self.share_id, decide, workspace_id=self.workspace_id,
                                      actor=ACTOR, causation_id=self.message_id, state=state)
