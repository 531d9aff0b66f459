"""The publishing path's copies of frozen dataclasses (``scheduler.domain.frozen``): the same
result as ``dataclasses.replace``, and the classes stay frozen."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from scheduler.domain.frozen import replacer
from scheduler.domain.share import ShareState, TaskState


def test_a_copy_equals_replace_and_leaves_the_original_as_it_was() -> None:
    state = ShareState(share_id=uuid4(), version=3, status="sending", attempts=1,
                       tasks=(TaskState(task_id=uuid4(), kind="reply", owner="alice", after_seconds=60),))
    copy_with = replacer(ShareState)

    changed = copy_with(state, version=4, status="sent")

    assert changed == dataclasses.replace(state, version=4, status="sent")
    assert (state.version, state.status) == (3, "sending")
    assert changed.tasks is state.tasks  # values are shared, as replace shares them


def test_a_copy_is_still_frozen() -> None:
    changed = replacer(TaskState)(TaskState(task_id=uuid4(), kind="reply", owner="bob", after_seconds=1),
                                  due_at=datetime(2026, 12, 7, tzinfo=UTC))
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed.cancelled = True  # type: ignore[misc]


def test_a_name_that_is_no_field_is_refused() -> None:
    with pytest.raises(TypeError, match=r"ShareState has no field \['versoin'\]"):
        replacer(ShareState)(ShareState(), versoin=2)


def test_a_slotted_class_is_refused_when_the_copier_is_made() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:
        value: int = 0

    with pytest.raises(TypeError, match="has slots"):
        replacer(Slotted)
