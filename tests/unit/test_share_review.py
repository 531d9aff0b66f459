"""Approval before publishing, pure: the account's setting, who may review, and a share's
review from planned to published (history + command -> new events)."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.catalogue import (
    Event,
    ShareApproved,
    ShareAttemptStarted,
    ShareRejected,
    ShareRescheduled,
    ShareReviewOverdue,
    ShareReviewRequested,
)
from events.projections.shares_fold import SharesFold
from events.records import RecordedEvent
from scheduler.domain import approval, share
from scheduler.domain.approval import Approval
from scheduler.domain.schedule import Remove, Upsert, ops_for
from scheduler.errors import ConflictError, ForbiddenError, InvalidInputError
from scheduler.services.recount import Recount
from tests.support.factories import GRACE, SHARE_ID, T0, appended, planned

TEAM = Approval(required=True, approvers=("ana", "ben"))
AUTHOR = "ana"


def _in_review() -> list[Event]:
    return [planned(approval_required=True)]


def _approved(by: str = "ben") -> list[Event]:
    history = _in_review()
    earlier = T0 - timedelta(hours=1)
    return appended(history, share.approve(share.fold(history), TEAM, by=by, author=AUTHOR, now=earlier))


# --- the setting ---------------------------------------------------------------------------


def test_an_account_without_the_setting_needs_no_approval() -> None:
    assert approval.from_config({}) == approval.NOT_REQUIRED


def test_the_setting_is_read_with_its_approvers_trimmed() -> None:
    got = approval.from_config({"approval": {"required": True, "approvers": [" ana", "ben"], "self_approval": True}})
    assert got == Approval(required=True, approvers=("ana", "ben"), self_approval=True)


@pytest.mark.parametrize(("value", "field"), [
    ("yes", "config.approval"),
    ({"required": True, "approvers": ["ana"], "who": 1}, "config.approval"),
    ({"required": "yes", "approvers": ["ana"]}, "config.approval.required"),
    ({"required": True, "approvers": []}, "config.approval.approvers"),
    ({"required": True, "approvers": "ana"}, "config.approval.approvers"),
    ({"required": True, "approvers": ["ana", 7]}, "config.approval.approvers.1"),
    ({"required": True, "approvers": ["ana", "ana"]}, "config.approval.approvers.1"),
    ({"required": True, "approvers": ["ana", " "]}, "config.approval.approvers.1"),
    ({"required": True, "approvers": ["ana"], "self_approval": "no"}, "config.approval.self_approval"),
])
def test_a_bad_setting_is_refused_naming_its_place(value: object, field: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        approval.from_config({"approval": value})
    assert refused.value.field == field


# --- planning and publishing ----------------------------------------------------------------


def test_a_share_planned_where_approval_is_required_is_in_review() -> None:
    state = share.fold(_in_review())
    assert (state.status, state.review) == ("in_review", "pending")
    assert share.fold([planned()]).status == "planned"


def test_a_share_in_review_is_not_published_at_its_time_it_turns_review_overdue() -> None:
    history = _in_review()
    decision = share.start_attempt(share.fold(history), now=T0, in_flight_grace=GRACE)
    assert isinstance(decision, share.ReviewOverdue)
    overdue = decision.events[0].event
    assert isinstance(overdue, ShareReviewOverdue)
    assert overdue.due_at == T0
    history = appended(history, decision)
    assert share.fold(history).status == "review_overdue"
    # Its publish row goes: nothing is handed out again until an approval.
    assert ops_for([overdue]) == [Remove("publish")]
    later = share.start_attempt(share.fold(history), now=T0 + timedelta(hours=1), in_flight_grace=GRACE)
    assert isinstance(later, share.Skip)


def test_a_share_in_review_before_its_time_waits_as_any_share_does() -> None:
    decision = share.start_attempt(share.fold(_in_review()), now=T0 - timedelta(hours=1), in_flight_grace=GRACE)
    assert isinstance(decision, share.Skip)
    assert decision.reason == "not due yet"


def test_an_approved_share_is_planned_and_published_at_its_time() -> None:
    history = _approved()
    state = share.fold(history)
    assert (state.status, state.review) == ("planned", "approved")
    approved = history[-1]
    assert isinstance(approved, ShareApproved)
    assert (approved.approved_by, approved.publish_at) == ("ben", T0)
    assert ops_for([approved]) == [Upsert("publish", T0)]
    assert isinstance(share.start_attempt(state, now=T0, in_flight_grace=GRACE), share.Publish)


def test_a_share_approved_past_its_time_is_due_at_once_and_goes_out_late() -> None:
    history = _in_review()
    history = appended(history, share.start_attempt(share.fold(history), now=T0, in_flight_grace=GRACE))
    now = T0 + timedelta(minutes=10)
    history = appended(history, share.approve(share.fold(history), TEAM, by="ben", author=AUTHOR, now=now))
    approved = history[-1]
    assert isinstance(approved, ShareApproved)
    assert approved.publish_at == now
    decision = share.start_attempt(share.fold(history), now=now, in_flight_grace=GRACE)
    assert isinstance(decision, share.Publish)


def test_a_share_approved_past_its_time_is_held_under_a_holding_late_policy() -> None:
    history: list[Event] = [planned(approval_required=True, late_policy="hold", max_lateness_seconds=60)]
    history = appended(history, share.start_attempt(share.fold(history), now=T0, in_flight_grace=GRACE))
    now = T0 + timedelta(minutes=10)
    history = appended(history, share.approve(share.fold(history), TEAM, by="ben", author=AUTHOR, now=now))
    assert isinstance(share.start_attempt(share.fold(history), now=now, in_flight_grace=GRACE), share.Hold)


def test_approving_twice_is_the_same_as_once() -> None:
    assert share.approve(share.fold(_approved()), TEAM, by="ben", author=AUTHOR, now=T0) == ()


# --- who may review ------------------------------------------------------------------------


def test_someone_who_is_not_an_approver_may_not_approve_or_reject() -> None:
    state = share.fold(_in_review())
    with pytest.raises(ForbiddenError, match="carol is not an approver"):
        share.approve(state, TEAM, by="carol", author=AUTHOR, now=T0)
    with pytest.raises(ForbiddenError, match="not an approver"):
        share.reject(state, TEAM, by="carol", author=AUTHOR, reason="no", now=T0)


def test_four_eyes_the_author_may_not_approve_their_own_share() -> None:
    with pytest.raises(ForbiddenError, match="four eyes"):
        share.approve(share.fold(_in_review()), TEAM, by=AUTHOR, author=AUTHOR, now=T0)


def test_an_account_may_allow_self_approval() -> None:
    rules = Approval(required=True, approvers=("ana",), self_approval=True)
    assert share.approve(share.fold(_in_review()), rules, by=AUTHOR, author=AUTHOR, now=T0)


def test_a_share_that_needed_no_approval_has_nothing_to_review() -> None:
    with pytest.raises(ConflictError, match="nothing to review"):
        share.approve(share.fold([planned()]), TEAM, by="ben", author=AUTHOR, now=T0)


# --- rejection and changes ------------------------------------------------------------------


def test_a_rejected_share_is_not_published_and_cannot_be_approved_as_it_is() -> None:
    history = _in_review()
    history = appended(history, share.reject(share.fold(history), TEAM, by="ben", author=AUTHOR,
                                             reason="Not before the press release", now=T0))
    state = share.fold(history)
    rejected = history[-1]
    assert isinstance(rejected, ShareRejected)
    assert (state.status, state.review, rejected.reason) == ("rejected", "rejected", "Not before the press release")
    assert ops_for([rejected]) == [Remove("publish")]
    assert isinstance(share.start_attempt(state, now=T0, in_flight_grace=GRACE), share.Skip)
    with pytest.raises(ConflictError, match="change it"):
        share.approve(state, TEAM, by="ben", author=AUTHOR, now=T0)


def test_a_rejection_must_say_why() -> None:
    with pytest.raises(InvalidInputError) as refused:
        share.reject(share.fold(_in_review()), TEAM, by="ben", author=AUTHOR, reason="  ", now=T0)
    assert refused.value.field == "reason"


def test_a_change_of_time_sends_a_rejected_share_back_to_review() -> None:
    history = _in_review()
    history = appended(history, share.reject(share.fold(history), TEAM, by="ben", author=AUTHOR, reason="later",
                                             now=T0))
    history = appended(history, share.reschedule(share.fold(history), scheduled_at=T0 + timedelta(days=1)))
    assert [type(e) for e in history[-2:]] == [ShareRescheduled, ShareReviewRequested]
    assert share.fold(history).status == "in_review"


def test_a_change_of_time_sends_an_approved_share_back_to_review() -> None:
    history = _approved()
    history = appended(history, share.reschedule(share.fold(history), scheduled_at=T0 + timedelta(hours=2)))
    state = share.fold(history)
    assert (state.status, state.review) == ("in_review", "pending")
    decision = share.start_attempt(state, now=T0 + timedelta(hours=2), in_flight_grace=GRACE)
    assert isinstance(decision, share.ReviewOverdue)


def test_a_share_past_due_in_review_moved_to_a_new_time_is_in_review_for_it() -> None:
    history = _in_review()
    history = appended(history, share.start_attempt(share.fold(history), now=T0, in_flight_grace=GRACE))
    history = appended(history, share.reschedule(share.fold(history), scheduled_at=T0 + timedelta(hours=1)))
    assert share.fold(history).status == "in_review"
    assert not any(isinstance(e, ShareReviewRequested) for e in history)  # it was never reviewed


def test_a_share_in_review_cannot_be_marked_sent_by_hand() -> None:
    with pytest.raises(ConflictError, match="approval"):
        share.mark_sent(share.fold(_in_review()), url="https://example.social/@team/1", external_id="1",
                        sent_at=None, now=T0)


def test_an_approved_share_publishes_with_its_tasks_as_any_other() -> None:
    history = _approved()
    decision = share.start_attempt(share.fold(history), now=T0, in_flight_grace=GRACE)
    assert isinstance(decision, share.Publish)
    assert isinstance(decision.events[0].event, ShareAttemptStarted)
    assert share.fold(appended(history, decision)).tasks_recorded


# --- any order of commands: the invariant, and three folds that agree -------------------------

PEOPLE = ("ana", "ben", "carol")
COMMANDS = st.lists(st.tuples(st.sampled_from(("approve", "reject", "reschedule", "attempt", "cancel")),
                              st.sampled_from(PEOPLE), st.integers(min_value=-60, max_value=180)),
                    max_size=12)


def _apply(history: list[Event], command: str, person: str, minutes: int) -> list[Event]:
    """One command as the services run it: refused commands change nothing."""
    state = share.fold(history)
    now = T0 + timedelta(minutes=minutes)
    try:
        if command == "approve":
            return appended(history, share.approve(state, TEAM, by=person, author=AUTHOR, now=now))
        if command == "reject":
            return appended(history, share.reject(state, TEAM, by=person, author=AUTHOR, reason="no", now=now))
        if command == "reschedule":
            return appended(history, share.reschedule(state, scheduled_at=now))
        if command == "cancel":
            return appended(history, share.cancel(state, reason="no"))
    except (ConflictError, ForbiddenError):
        return history
    decision = share.start_attempt(state, now=now, in_flight_grace=GRACE)
    if isinstance(decision, share.Publish):
        sent = share.record_sent(share.fold(appended(history, decision)), attempt=decision.attempt,
                                 external_id="1", url=None, sent_at=now, reconciled=False)
        return appended(appended(history, decision), sent)
    return appended(history, decision)


@settings(max_examples=300, deadline=None)
@given(COMMANDS)
def test_whatever_is_done_nothing_is_published_without_a_standing_approval_and_the_folds_agree(
    commands: list[tuple[str, str, int]],
) -> None:
    history = _in_review()
    for command in commands:
        history = _apply(history, *command)
    # Never an attempt unless an approval stands (none by its author, none undone since by a
    # rejection or a change of time)
    standing = False
    for event in history:
        if isinstance(event, ShareApproved):
            assert event.approved_by != AUTHOR
            standing = True
        elif isinstance(event, ShareRejected | ShareRescheduled):
            standing = False
        elif isinstance(event, ShareAttemptStarted):
            assert standing, history
    # And the read model's fold and the audit's recount see the share as the domain does
    recorded = [RecordedEvent(i, uuid4(), f"share-{SHARE_ID}", i, e, e.schema_version, {}, "acme", T0, 1, i)
                for i, e in enumerate(history, start=1)]
    rows = SharesFold()
    rows.apply(recorded)
    recount = Recount()
    recount.add_all((r.position, r.stream_id, r.stream_version, r.type_name, "acme",
                     r.event.__pydantic_serializer__.to_json(r.event).decode()) for r in recorded)
    status = share.fold(history).status
    assert rows.shares[f"share-{SHARE_ID}"]["status"] == status
    assert recount.shares[str(SHARE_ID)].status == status
    assert recount.violations == []
