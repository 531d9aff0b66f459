"""``share_owner()`` (SQL, migration 0022) and ``current_owner`` (Python, for views built
from a share's stream) pick the same owner: of the share's current task."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool

from events.store import EventStore
from scheduler.api.replies import current_owner
from scheduler.services.shares import ShareService
from tests.support.fake_channel import FakeChannel
from tests.support.replies import account_on, caught_up, sent_share
from tests.support.shares import WS, Clock, runtime


def _sql_owner(pool: ConnectionPool[Any], share_id: UUID) -> str | None:
    with pool.connection() as conn:
        row = conn.execute("SELECT share_owner(%s)", (share_id,)).fetchone()
    assert row is not None
    return row[0]


def test_the_sql_and_the_stream_pick_the_same_owner_as_tasks_are_done(
    pool: ConnectionPool[Any], store: EventStore, database_url: str, shares: ShareService, clock: Clock
) -> None:
    # Given a sent share whose tasks are alice's (due in 10 minutes) and bob's (in an hour)
    rt = runtime(pool, store, FakeChannel(), clock=clock)
    share_id = sent_share(rt, shares, account_on(pool, "console", {}))
    caught_up(store, database_url)
    state, _ = shares.load(WS, share_id)
    # Then the owner is alice's, the task due first, both ways
    assert _sql_owner(pool, share_id) == current_owner(state) == "alice"
    # When alice's task is done, the owner is bob's
    alice = next(t for t in state.tasks if t.owner == "alice")
    shares.complete_task(WS, alice.task_id, by="alice", note="")
    caught_up(store, database_url)
    state, _ = shares.load(WS, share_id)
    assert _sql_owner(pool, share_id) == current_owner(state) == "bob"
    # And a share with no task has no owner
    with pool.connection() as conn:
        row = conn.execute("SELECT share_owner(gen_random_uuid())").fetchone()
    assert row == (None,)
