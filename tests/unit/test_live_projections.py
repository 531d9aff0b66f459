"""The projections `/metrics` and `projections status` list before their first checkpoint
are the ones the projector runs."""

from __future__ import annotations

from events.monitoring import LIVE_PROJECTIONS
from followthrough.projectors import live_projections


def test_the_projections_listed_by_name_are_the_ones_the_projector_runs() -> None:
    assert tuple(p.name for p in live_projections()) == LIVE_PROJECTIONS
