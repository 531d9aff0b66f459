"""The projections the projector role runs, each with its runner, from the settings (the
projector role and the ``projections`` commands)."""

from __future__ import annotations

from events.projections.runner import ProjectionRunner
from events.projections.shares import SharesProjection
from events.projections.webhooks import WebhooksProjection
from events.store import EventStore
from followthrough.connections import connect_kwargs, database_url
from followthrough.settings import Settings


def live_projections() -> tuple[SharesProjection, WebhooksProjection]:
    """The projections the projector runs (``events.monitoring.LIVE_PROJECTIONS`` names them)."""
    return SharesProjection(), WebhooksProjection()


def projection_runners(settings: Settings, store: EventStore) -> list[ProjectionRunner]:
    return [
        ProjectionRunner(
            store,
            projection,
            conninfo=database_url(settings),
            connect_kwargs=connect_kwargs(settings, "projector-lead"),
            batch_size=settings.projector_batch,
            poll_seconds=settings.projector_poll_seconds,
        )
        for projection in live_projections()
    ]
