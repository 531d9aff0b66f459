"""Errors raised by the event log; each carries its data as attributes."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID


class EventStoreError(Exception):
    """Base class of every error the event log raises."""


class ConcurrencyError(EventStoreError):
    """The stream moved on since the caller read it (optimistic concurrency)."""

    def __init__(self, stream_id: str, expected_version: int | None, actual_version: int) -> None:
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(f"stream {stream_id!r} is at version {actual_version}, expected {expected_version}")


class PartialDuplicateError(EventStoreError):
    """A batch repeats some already-stored event ids but not all: refused, never half-appended."""

    def __init__(self, stream_id: str, existing: Sequence[UUID], missing: Sequence[UUID]) -> None:
        self.stream_id = stream_id
        self.existing = tuple(existing)
        self.missing = tuple(missing)
        super().__init__(
            f"append to {stream_id!r} repeats {len(self.existing)} stored event ids "
            f"but {len(self.missing)} are new: a retry must resend the same batch"
        )


class NotFirstWriteError(EventStoreError):
    """An append was attempted after other writes in the same transaction.

    The log orders events by transaction id; a transaction that wrote something
    else first got its id earlier and could sort a stream's version n+1 before n.
    """

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        super().__init__(
            f"append to {stream_id!r} refused: the event insert must be the first write "
            "of its transaction (append first, then update other tables)"
        )


class UnknownEventTypeError(EventStoreError):
    """The log holds an event type (or schema version) this code cannot read."""

    def __init__(self, type_name: str, schema_version: int | None = None) -> None:
        self.type_name = type_name
        self.schema_version = schema_version
        detail = "" if schema_version is None else f" at schema version {schema_version}"
        super().__init__(f"unknown event type {type_name!r}{detail}")


class AppendOnlyViolationError(EventStoreError):
    """Something tried to change or remove a stored event."""


class RebuildBusyError(EventStoreError):
    """Another process is rebuilding this projection (one rebuild of each at a time)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"projection {name!r} is being rebuilt by another process")
        self.name = name
