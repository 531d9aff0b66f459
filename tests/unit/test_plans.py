"""Response plans: validation (errors name the field) and deterministic task ids."""

from __future__ import annotations

from datetime import timedelta
from uuid import NAMESPACE_URL, uuid4, uuid5

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.catalogue import ResponseStep
from scheduler.domain.plans import MAX_STEPS, StepInput, task_id, tasks_for, validate_plan
from scheduler.errors import InvalidInputError
from tests.support.factories import SHARE_ID, plans, share_ids

FAST = settings(max_examples=100, deadline=None, database=None)


def _step(kind: str = "check_replies", after: timedelta = timedelta(hours=1), owner: str = "alice") -> StepInput:
    return StepInput(kind=kind, after=after, owner=owner)


def test_a_valid_plan_becomes_steps_with_offsets_in_seconds() -> None:
    # Given a plan checking replies after 1 h and again after 24 h
    steps = [_step(after=timedelta(hours=1)), _step("check_again", timedelta(days=1), "bob")]
    # When it is validated
    plan = validate_plan(steps)
    # Then it is stored as steps with whole-second offsets
    assert plan == (
        ResponseStep(kind="check_replies", after_seconds=3600, owner="alice"),
        ResponseStep(kind="check_again", after_seconds=86_400, owner="bob"),
    )


@pytest.mark.parametrize("steps", [None, []], ids=["none", "empty"])
def test_a_plan_without_steps_is_refused_naming_the_response_plan(steps: list[StepInput] | None) -> None:
    # Given no response work
    # When the plan is validated
    # Then it is refused on field "response_plan", with an example of a step
    with pytest.raises(InvalidInputError) as caught:
        validate_plan(steps)
    assert caught.value.field == "response_plan"
    assert "at least one response step" in caught.value.message


def test_the_field_prefix_can_be_chosen_by_the_caller() -> None:
    # Given a plan nested under another field (an account's default plan)
    # When an empty one is validated
    # Then the error names that field
    with pytest.raises(InvalidInputError) as caught:
        validate_plan([], field="default_response_plan")
    assert caught.value.field == "default_response_plan"


def test_too_many_steps_are_refused() -> None:
    # Given one step more than allowed
    steps = [_step() for _ in range(MAX_STEPS + 1)]
    # When validated
    # Then the plan as a whole is refused
    with pytest.raises(InvalidInputError) as caught:
        validate_plan(steps)
    assert caught.value.field == "response_plan"
    assert validate_plan(steps[:MAX_STEPS])  # and exactly MAX_STEPS is fine


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (_step(kind="Check Replies"), "kind"),
        (_step(kind="1st_check"), "kind"),
        (_step(kind=""), "kind"),
        (_step(kind="a" * 64), "kind"),
        (_step(after=timedelta(seconds=-1)), "after"),
        (_step(after=timedelta(days=30, seconds=1)), "after"),
        (_step(after=timedelta(seconds=1.5)), "after"),
        (_step(owner=""), "owner"),
        (_step(owner="   "), "owner"),
        (_step(owner="x" * 201), "owner"),
    ],
)
def test_a_bad_step_is_refused_naming_its_indexed_field(bad: StepInput, field: str) -> None:
    # Given a plan whose second step is bad
    steps = [_step(), bad]
    # When it is validated
    # Then the error names the step's index and field, e.g. response_plan.1.after
    with pytest.raises(InvalidInputError) as caught:
        validate_plan(steps)
    assert caught.value.field == f"response_plan.1.{field}"


def test_the_first_bad_step_is_the_one_reported() -> None:
    # Given steps 0 and 2 both bad
    steps = [_step(after=timedelta(seconds=-5)), _step(), _step(owner="")]
    # When validated
    # Then step 0 is named
    with pytest.raises(InvalidInputError) as caught:
        validate_plan(steps)
    assert caught.value.field == "response_plan.0.after"


@pytest.mark.parametrize(
    "step",
    [
        _step(after=timedelta(0)),
        _step(after=timedelta(days=30)),
        _step(kind="a"),
        _step(kind="a" * 63),
        _step(owner="x" * 200),
    ],
    ids=["zero", "30 days", "one letter", "63 letters", "200 characters"],
)
def test_steps_at_the_limits_are_accepted(step: StepInput) -> None:
    # Given a step exactly at a limit
    # When validated
    # Then it is accepted
    assert len(validate_plan([step])) == 1


def test_owners_are_stored_without_surrounding_spaces() -> None:
    # Given an owner typed with spaces around it
    # When validated
    (step,) = validate_plan([_step(owner="  alice  ")])
    # Then the stored owner is trimmed
    assert step.owner == "alice"


def test_a_kind_with_a_trailing_newline_is_refused() -> None:
    # Given a kind with a trailing newline (e.g. pasted from a file)
    # When validated
    # Then it is refused like any other kind that is not a lower-case word
    with pytest.raises(InvalidInputError):
        validate_plan([_step(kind="check_replies\n")])


@FAST
@given(
    kind=st.from_regex(r"[a-z][a-z0-9_]{0,62}", fullmatch=True),
    seconds=st.integers(0, 30 * 86_400),
    owner=st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), min_size=1, max_size=200)
    .filter(lambda s: s.strip() == s and s),  # NUL and lone surrogates are refused (inputs.py): not valid steps
)
def test_every_valid_step_round_trips_to_the_same_offset_in_seconds(kind: str, seconds: int, owner: str) -> None:
    # Given any valid step
    # When validated
    (step,) = validate_plan([_step(kind, timedelta(seconds=seconds), owner)])
    # Then nothing is lost
    assert (step.kind, step.after_seconds, step.owner) == (kind, seconds, owner)


# --- task ids ---------------------------------------------------------------------------


@FAST
@given(share_id=share_ids, plan=plans)
def test_task_ids_are_the_same_every_time_they_are_derived(share_id: object, plan: tuple[ResponseStep, ...]) -> None:
    # Given a share and its plan
    # When its tasks are derived twice (a retried append, a replay)
    first, second = tasks_for(share_id, plan), tasks_for(share_id, plan)  # type: ignore[arg-type]
    # Then the ids are equal, distinct per step, and carry each step's kind, offset and owner
    assert first == second
    assert len({t.task_id for t in first}) == len(plan)
    assert [(t.kind, t.after_seconds, t.owner) for t in first] == [(s.kind, s.after_seconds, s.owner) for s in plan]


def test_task_ids_differ_between_shares_and_between_steps() -> None:
    # Given two shares
    other = uuid4()
    # When task ids are derived
    # Then they depend on both the share and the step index
    assert task_id(SHARE_ID, 0) != task_id(other, 0)
    assert task_id(SHARE_ID, 0) != task_id(SHARE_ID, 1)
    assert task_id(SHARE_ID, 0) == task_id(SHARE_ID, 0)


@FAST
@given(share_id=share_ids, index=st.integers(0, 20))
def test_task_ids_stay_the_standard_name_based_ids_already_recorded(share_id: object, index: int) -> None:
    # Given any share and step (ids already in the log were derived with uuid.uuid5)
    # When the task id is derived with the faster spelling
    # Then it is exactly that version 5 id: no recorded task changes its id
    derived = task_id(share_id, index)  # type: ignore[arg-type]
    assert derived == uuid5(NAMESPACE_URL, f"followthrough:share:{share_id}:task:{index}")
    assert derived.version == 5
