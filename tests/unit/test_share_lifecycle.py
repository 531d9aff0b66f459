"""The share lifecycle under duplicate deliveries, crashes, failures, retries and time.

The model (``lifecycle_model.py``) runs the pure decisions the way the worker does, one
step per rule, so Hypothesis interleaves everything that can happen to a share.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.unit.lifecycle_model import ShareLifecycle

LIFECYCLE = settings(
    max_examples=200, stateful_step_count=40, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_no_share_is_posted_twice_or_published_before_its_tasks_whatever_happens() -> None:
    # Given any interleaving of deliveries, crashes, channel failures, API commands and time
    # When the worker's steps run through the pure decisions
    # Then every invariant of ShareLifecycle holds after every step
    run_state_machine_as_test(ShareLifecycle, settings=LIFECYCLE)
