"""Lag that means something: a projection moves its checkpoint over the events it does not
use, so an idle one is at 0, and never past an event of its own still being written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from events import monitoring
from events.catalogue import ShareAbandoned, ShareCancelled
from events.projections.runner import ProjectionRunner
from events.projections.webhooks import WebhooksProjection
from events.records import NewEvent
from events.store import EventStore
from followthrough.settings import Settings
from tests.support.database import connect

pytestmark = pytest.mark.integration
WS = "acme"


def webhooks_runner(store: EventStore, settings: Settings) -> ProjectionRunner:
    assert settings.database_url is not None
    return ProjectionRunner(store, WebhooksProjection(), conninfo=settings.database_url, batch_size=50)


def cancelled(store: EventStore, count: int) -> None:
    """Events the webhooks projection does not use."""
    for _ in range(count):
        store.append(f"share-{uuid.uuid4()}", [NewEvent(ShareCancelled(reason="no"))], expected_version=0,
                     workspace_id=WS)


def lags(settings: Settings) -> dict[str, monitoring.FollowerLag]:
    assert settings.database_url is not None
    with connect(settings.database_url) as conn:
        return {lag.name: lag for lag in monitoring.follower_lags(conn)}


def test_a_projection_moves_its_checkpoint_over_the_events_it_does_not_use(
    store: EventStore, settings: Settings
) -> None:
    # Given a log of 120 events, none of them of a type the webhooks projection uses
    cancelled(store, 120)
    runner = webhooks_runner(store, settings)
    # When its runner steps until caught up
    applied = runner.catch_up()
    # Then it applied none, and its checkpoint is at the end of the log: nothing behind, lag 0
    assert applied == 0
    last = list(store.read_all())[-1].checkpoint
    assert lags(settings)["webhooks"].checkpoint == str(last)
    assert (lags(settings)["webhooks"].events_behind, lags(settings)["webhooks"].lag_seconds) == (0, 0.0)
    # And a projection that never ran yet is listed, every event behind
    assert lags(settings)["shares"].checkpoint == "0/0/0"
    assert lags(settings)["shares"].events_behind == 120
    assert lags(settings)["shares"].lag_seconds > 0


def test_a_projection_never_passes_over_an_event_of_its_own_that_commits_late(
    store: EventStore, settings: Settings
) -> None:
    assert settings.database_url is not None
    runner = webhooks_runner(store, settings)
    with connect(settings.database_url) as held:
        # Given an event the projection uses, written in a transaction still open
        with held.transaction():
            store.append(f"share-{uuid.uuid4()}", [NewEvent(ShareAbandoned(
                attempts=5, abandoned_at=datetime.now(UTC), reason="gave up"))], expected_version=0,
                workspace_id=WS, conn=held)
            # And events it does not use, committed after it
            cancelled(store, 3)
            # When the runner steps
            runner.catch_up()
            # Then its checkpoint stays before the open transaction's event (and so before the rest)
            behind = lags(settings)["webhooks"]
            assert (behind.checkpoint, behind.events_behind) == ("0/0/0", 3)
            assert behind.lag_seconds > 0
        # When that transaction commits and the runner steps again
        applied = runner.catch_up()
    # Then it applies that event, and passes over the rest
    assert applied == 1
    found = lags(settings)["webhooks"]
    assert (found.events_applied, found.events_behind, found.lag_seconds) == (1, 0, 0.0)
    assert found.checkpoint == str(list(store.read_all())[-1].checkpoint)
