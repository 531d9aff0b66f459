"""Decisions after an attempt whose outcome is unknown, on a channel that cannot look for
its own earlier post: hold for a person, resend when the account chose to, and a person's
settling (mark sent, reschedule)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from events.catalogue import Event, ShareHeld
from scheduler.domain import share
from scheduler.errors import ConflictError
from tests.support.factories import GRACE, T0, appended, planned, publish_decision

BLIND = share.Lookup(can_look_up=False, candidate_url="https://social.example/@team")
LATER = T0 + GRACE + timedelta(minutes=1)


def stalled() -> list[Event]:
    """A share whose first attempt started and never reported back."""
    history: list[Event] = [planned()]
    return appended(history, publish_decision(share.fold(history), T0))


def test_an_unknown_outcome_on_a_channel_that_cannot_look_holds_the_share_with_where_to_look() -> None:
    # Given a stalled attempt on a channel that cannot show the account's earlier posts
    state = share.fold(stalled())
    # When the share is delivered again
    decision = share.start_attempt(state, now=LATER, in_flight_grace=GRACE, lookup=BLIND)
    # Then it is held for a person, saying why and where to look, instead of posting again
    assert isinstance(decision, share.Hold)
    held = decision.events[0].event
    assert isinstance(held, ShareHeld)
    assert held.outcome_unknown is True
    assert held.candidate_url == "https://social.example/@team"
    assert "mark the share sent" in held.reason
    after = share.fold((e.event for e in decision.events), state)
    assert after.status == "held"


def test_a_channel_that_can_look_reconciles_instead_of_holding() -> None:
    # Given the same stalled attempt on a channel that can look
    state = share.fold(stalled())
    # When delivered again
    decision = share.start_attempt(state, now=LATER, in_flight_grace=GRACE)
    # Then the next attempt looks first
    assert isinstance(decision, share.Publish)
    assert decision.reconcile is True


def test_an_account_that_chose_resend_posts_again_without_looking() -> None:
    state = share.fold(stalled())
    decision = share.start_attempt(state, now=LATER, in_flight_grace=GRACE,
                                   lookup=share.Lookup(can_look_up=False, resend_unknown=True))
    assert isinstance(decision, share.Publish)
    assert (decision.attempt, decision.reconcile) == (2, False)


def test_a_person_who_reschedules_a_held_share_has_it_posted_without_a_look() -> None:
    # Given a share held for an unknown outcome
    history = stalled()
    history = appended(history, share.start_attempt(share.fold(history), now=LATER, in_flight_grace=GRACE,
                                                    lookup=BLIND))
    # When a person reschedules it (they looked and found nothing)
    history = appended(history, share.reschedule(share.fold(history), scheduled_at=LATER))
    state = share.fold(history)
    # Then the next attempt publishes without looking or holding again
    assert state.outcome_unknown is False
    decision = share.start_attempt(state, now=LATER, in_flight_grace=GRACE, lookup=BLIND)
    assert isinstance(decision, share.Publish)
    assert decision.reconcile is False


def test_marking_a_held_share_sent_records_the_post_at_its_own_time() -> None:
    # Given a held share
    history = stalled()
    history = appended(history, share.start_attempt(share.fold(history), now=LATER, in_flight_grace=GRACE,
                                                    lookup=BLIND))
    posted = T0 + timedelta(seconds=2)
    # When a person marks it sent with the post's url and time
    events = share.mark_sent(share.fold(history), url="https://social.example/@team/7", external_id="7",
                             sent_at=posted, now=LATER)
    state = share.fold((e.event for e in events), share.fold(history))
    # Then it is sent at the post's time, and its tasks count from there
    assert state.status == "sent"
    assert state.sent is not None
    assert (state.sent.external_id, state.sent.sent_at, state.sent.reconciled) == ("7", posted, True)
    assert [t.due_at for t in state.tasks] == [posted + timedelta(hours=1), posted + timedelta(days=1)]
    # And marking it again with the same url changes nothing; another url is a conflict
    assert share.mark_sent(state, url="https://social.example/@team/7", external_id=None, sent_at=None,
                           now=LATER) == ()
    with pytest.raises(ConflictError, match="already sent"):
        share.mark_sent(state, url="https://social.example/@team/8", external_id=None, sent_at=None, now=LATER)


def test_a_share_held_as_too_late_and_posted_by_hand_gets_its_tasks_before_it_is_sent() -> None:
    # Given a share held by the late policy (never attempted, so no tasks recorded yet)
    history: list[Event] = [planned(late_policy="hold", max_lateness_seconds=60)]
    history = appended(history, share.start_attempt(share.fold(history), now=T0 + timedelta(hours=1),
                                                    in_flight_grace=GRACE))
    assert share.fold(history).status == "held"
    # When a person marks it sent
    events = share.mark_sent(share.fold(history), url="https://social.example/@team/9", external_id=None,
                             sent_at=None, now=T0 + timedelta(hours=2))
    # Then its tasks are recorded first, then the send (the invariant holds for posts made by hand too)
    assert [e.event.type_name for e in events] == ["ResponseTasksRecorded", "ShareSent"]


def test_a_planned_share_cannot_be_marked_sent() -> None:
    with pytest.raises(ConflictError, match="never attempted"):
        share.mark_sent(share.fold([planned()]), url="https://x.example/1", external_id=None, sent_at=None, now=T0)
