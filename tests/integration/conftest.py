"""Fixtures for integration tests: a store over a fresh, migrated database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from events.notifier import Notifier
from events.store import EventStore
from scheduler.db import make_pool
from scheduler.settings import Settings


@pytest.fixture
def pool(settings: Settings) -> Iterator[ConnectionPool[Any]]:
    p = make_pool(settings, settings.database_url or "", role="test", max_size=30)
    p.open(wait=True)
    yield p
    p.close()


@pytest.fixture
def notifier(settings: Settings) -> Iterator[Notifier]:
    n = Notifier(settings.database_url or "")
    n.start()
    yield n
    n.stop()


@pytest.fixture
def store(pool: ConnectionPool[Any], notifier: Notifier) -> EventStore:
    return EventStore(pool, notifier)
