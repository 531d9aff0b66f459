"""What a rebuild asks of a projection (``rebuild`` and its worker processes in
``partitions`` both use these, so neither imports the other for them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import psycopg

from events.records import RecordedEvent

__all__ = ["Rebuildable", "Rebuilder"]


class Rebuilder(Protocol):
    def apply(self, events: Sequence[RecordedEvent]) -> None: ...

    def flush(self) -> None: ...


@runtime_checkable
class Rebuildable(Protocol):
    name: str
    types: frozenset[str] | None
    tables: tuple[str, ...]
    # True when each row of the model derives from one stream's events alone: then the
    # log can be split by stream over worker processes (``partitions``).
    partition_by_stream: bool

    def rebuilder(
        self, conn: psycopg.Connection[Any], tables: Mapping[str, str], *, resume: bool = False
    ) -> Rebuilder:
        """Something that builds the model into ``tables`` (live name -> table being
        built) on ``conn``: ``apply`` a window of events at a time, in log order, then
        ``flush`` (each inside the caller's transaction). ``resume``: the tables hold
        rows already (written by other processes), which its events may update."""
        ...
