"""Value types of the log: events to append, recorded events, checkpoints. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID, uuid4

from events.catalogue import Event


@dataclass(frozen=True, slots=True, order=True)
class Checkpoint:
    """A follower's place in the whole log: (log epoch, writing transaction id, position).

    Ordering by transaction id (not by position alone) is what keeps late
    committers from being skipped; the epoch keeps a restored database, whose
    transaction ids start again, ahead of every old checkpoint.
    """

    epoch: int
    tx_id: int
    position: int

    @classmethod
    def start(cls) -> Checkpoint:
        return cls(0, 0, 0)

    def __str__(self) -> str:
        return f"{self.epoch}/{self.tx_id}/{self.position}"


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event on its way into the log. A retry must reuse the same ``event_id``."""

    event: Event
    event_id: UUID = field(default_factory=uuid4)
    metadata: Mapping[str, Any] = field(default_factory=dict)


class RecordedEvent(NamedTuple):
    """An event as the log holds it, upcast to its type's current schema version.

    A named tuple rather than a frozen dataclass: the whole-log read builds one per
    event, and a tuple is built in C (measured 0.4 µs against 3.3 µs for the frozen
    dataclass's ``__init__``, a fifth of the read's client time per event). It is as
    immutable; only code that unpacks it positionally would notice the difference.
    """

    position: int
    event_id: UUID
    stream_id: str
    stream_version: int
    event: Event
    stored_schema_version: int
    metadata: Mapping[str, Any]
    workspace_id: str
    recorded_at: datetime
    epoch: int
    tx_id: int

    @property
    def type_name(self) -> str:
        return self.event.type_name

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.epoch, self.tx_id, self.position)


@dataclass(frozen=True, slots=True)
class StreamAppend:
    """One stream's part of a many-stream append."""

    stream_id: str
    events: Sequence[NewEvent]
    expected_version: int
    workspace_id: str


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append did: the stream's version after it, and how many events it wrote
    (0 for an idempotent retry of a batch already stored)."""

    stream_id: str
    version: int
    written: int


def metadata(
    *,
    workspace_id: str,
    actor: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> dict[str, Any]:
    """The metadata every event carries (correlation, causation, actor, workspace)."""
    meta: dict[str, Any] = {"workspace_id": workspace_id, "actor": actor}
    if correlation_id is not None:
        meta["correlation_id"] = correlation_id
    if causation_id is not None:
        meta["causation_id"] = causation_id
    return meta
