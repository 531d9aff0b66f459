"""The log's append contract, run against the real store (PostgreSQL) and the unit tests'
fake log (``tests/support/lifecycle_model.FakeLog``): the property tests of the pure core
trust the fake only as far as this suite shows it behaves like the store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol
from uuid import uuid4

import pytest

from events.catalogue import ShareCancelled
from events.errors import ConcurrencyError, PartialDuplicateError
from events.records import NewEvent
from events.store import EventStore
from scheduler.domain import share
from tests.support.factories import SHARE_ID
from tests.support.lifecycle_model import FakeLog


class Log(Protocol):
    @property
    def version(self) -> int: ...

    def append(self, batch: tuple[NewEvent, ...], *, expected_version: int) -> int: ...


@dataclass
class StoreLog:
    """The store, seen through the fake's interface (one stream)."""

    store: EventStore
    stream: str = share.stream_id(SHARE_ID)

    @property
    def version(self) -> int:
        return self.store.stream_version(self.stream)

    def append(self, batch: tuple[NewEvent, ...], *, expected_version: int) -> int:
        return self.store.append(self.stream, list(batch), expected_version=expected_version,
                                 workspace_id="acme").written


@pytest.fixture(params=["fake", "store"])
def log(request: pytest.FixtureRequest) -> Iterator[Log]:
    if request.param == "fake":
        yield FakeLog()
    else:
        yield StoreLog(request.getfixturevalue("store"))


def events(n: int) -> tuple[NewEvent, ...]:
    return tuple(NewEvent(event=ShareCancelled(reason=f"reason {i}"), event_id=uuid4()) for i in range(n))


def test_an_append_at_the_expected_version_writes_every_event(log: Log) -> None:
    # Given an empty stream
    # When two events and then one more are appended at the versions read
    written = [log.append(events(2), expected_version=0), log.append(events(1), expected_version=2)]
    # Then all are written and the version counts them
    assert written == [2, 1]
    assert log.version == 3


def test_an_append_at_a_stale_version_is_a_concurrency_error(log: Log) -> None:
    # Given a stream that moved on to version 1
    log.append(events(1), expected_version=0)
    # When a writer that read version 0 appends new events
    # Then it is refused, and nothing is written
    with pytest.raises(ConcurrencyError):
        log.append(events(1), expected_version=0)
    assert log.version == 1


def test_an_append_ahead_of_the_stream_is_a_concurrency_error(log: Log) -> None:
    # Given an empty stream
    # When a writer claims to have read version 3
    # Then it is refused
    with pytest.raises(ConcurrencyError):
        log.append(events(1), expected_version=3)
    assert log.version == 0


def test_reappending_the_same_events_succeeds_and_writes_nothing(log: Log) -> None:
    # Given two events appended, then one more
    batch = events(2)
    log.append(batch, expected_version=0)
    log.append(events(1), expected_version=2)
    # When the first batch is appended again at its old version (a retried write)
    # Then it succeeds, writing nothing
    assert log.append(batch, expected_version=0) == 0
    assert log.version == 3


def test_a_batch_that_repeats_only_some_stored_events_is_refused_whole(log: Log) -> None:
    # Given one stored event
    first = events(1)
    log.append(first, expected_version=0)
    log.append(events(1), expected_version=1)
    # When a batch holding it and a new one is appended at a stale version
    # Then it is refused and the stream is unchanged
    with pytest.raises(PartialDuplicateError):
        log.append((*first, *events(1)), expected_version=0)
    assert log.version == 2
