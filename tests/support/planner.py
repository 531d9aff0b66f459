"""The shares calendar's tests: a share taken through a worker's publish at a moment of the
test's choosing (a clock set to then), on a channel whose outcome the test scripts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool

from events.store import EventStore
from tests.support.fake_channel import FakeChannel
from tests.support.shares import Clock, runtime
from workers.execution import execute_share


def publish_at(pool: ConnectionPool[Any], store: EventStore, share_id: UUID | str, at: datetime,
               channel: FakeChannel | None = None) -> str:
    """Run the share's publish as a worker would at ``at`` (a console-named fake channel by
    default, which posts, dated then): the outcome's name (``share_sent``, ...)."""
    clock = Clock()
    clock.offset = at - datetime.now(UTC)
    rt = runtime(pool, store, channel or FakeChannel(created_at=at), clock=clock)
    return execute_share(rt, UUID(str(share_id)))
