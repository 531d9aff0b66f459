"""The follow-through's pure decisions: when to look, what a look records, answers and
dismissals, and the ``answer_replies`` tasks that settle from what happened."""

from __future__ import annotations

from datetime import timedelta
from uuid import NAMESPACE_URL, uuid5

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.catalogue import (
    Engagement,
    Event,
    RepliesLooked,
    ReplyAnswered,
    ReplyAssigned,
    ReplyCadence,
    ResponseReceived,
    ResponseStep,
    ResponseTaskCompleted,
)
from events.ids import reply_uuid as projected_reply_uuid
from scheduler.domain import share
from scheduler.domain.replies import DEFAULT_CADENCE, TaskDue, cadence_from_config, next_look
from scheduler.domain.retry import RetryPolicy
from scheduler.domain.schedule import Remove, Upsert, Wake, ops_for
from scheduler.domain.share import ThreadPost
from scheduler.errors import ConflictError, InvalidInputError, NotFoundError
from tests.support.factories import SHARE_ID, T0, sent_history

ANSWER_PLAN = (
    ResponseStep(kind="answer_replies", after_seconds=600, owner="alice"),
    ResponseStep(kind="check_replies", after_seconds=3600, owner="bob"),
)
DUE = T0 + timedelta(seconds=600)


def post(reply_id: str, *, at_seconds: int = 30, parent: str | None = None, by_account: bool = False,
         text: str = "Is it out on Android?") -> ThreadPost:
    return ThreadPost(reply_id=reply_id, parent_id=parent, author="team" if by_account else "ana@example.social",
                      text=text, url=f"https://example.social/@x/{reply_id}", created_at=T0 + timedelta(
                          seconds=at_seconds), by_account=by_account)


def look(history: list[Event], posts: list[ThreadPost] | None, *, at_seconds: int) -> list[Event]:
    """The history after a look (a look that changed nothing appends nothing)."""
    return [*history, *(e.event for e in looked(history, posts, at_seconds=at_seconds).events)]


def looked(history: list[Event], posts: list[ThreadPost] | None, *, at_seconds: int,
           ledger: share.LookLedger | None = None, error: str | None = None) -> share.Look:
    state = share.looks_counted(share.fold(history), ledger)
    found = share.record_look(state, posts, now=T0 + timedelta(seconds=at_seconds), error=error)
    assert found is not None
    return found


def counted(ledger: share.LookLedger | None, look: share.Look) -> share.LookLedger:
    """The ledger after ``look`` (as ``reply_looks`` counts it)."""
    x = look.looked
    return share.LookLedger(looks=(ledger.looks if ledger else 0) + 1, last_look_at=x.looked_at,
                            next_look_at=x.next_look_at, empty_looks=x.empty_looks, last_error=x.error)


def types(events: list[Event]) -> list[str]:
    return [e.type_name for e in events]


# --- when to look ------------------------------------------------------------------


def test_the_cadence_follows_the_post_age_band_and_stops_after_the_last() -> None:
    # Given the default cadence (2 min in the first hour, 15 min to a day, 2 h to a week)
    # When the next look is asked for at several ages, with no task due
    def after(age: timedelta) -> timedelta | None:
        at = next_look(DEFAULT_CADENCE, sent_at=T0, now=T0 + age, empty_looks=0, tasks=())
        return None if at is None else at - (T0 + age)

    # Then the interval is the band's, and nothing follows a week
    assert after(timedelta(minutes=10)) == timedelta(minutes=2)
    assert after(timedelta(hours=3)) == timedelta(minutes=15)
    assert after(timedelta(days=2)) == timedelta(hours=2)
    assert after(timedelta(days=7)) is None


def test_empty_looks_stretch_the_interval_up_to_the_backoff_cap() -> None:
    # Given a cadence of 2 minutes, stretched at most 4 times
    # When looks keep finding nothing
    intervals = [next_look(DEFAULT_CADENCE, sent_at=T0, now=T0, empty_looks=n, tasks=()) for n in range(5)]
    # Then the interval doubles, then stays at 4 times the band's
    assert [(at - T0).total_seconds() / 60 for at in intervals if at] == [2, 4, 8, 8, 8]


def test_a_look_comes_just_before_each_due_time_and_at_a_self_settling_task_due_time() -> None:
    # Given a task due in 10 minutes that settles itself, on a slow cadence
    cadence = ReplyCadence(bands=((86_400, 3600),), before_due_seconds=30)
    due = T0 + timedelta(minutes=10)
    task = TaskDue(due, settles_itself=True)
    # When the next looks are asked for before and after the look just before the due time
    first = next_look(cadence, sent_at=T0, now=T0, empty_looks=0, tasks=(task,))
    second = next_look(cadence, sent_at=T0, now=due - timedelta(seconds=30), empty_looks=0, tasks=(task,))
    # Then one look comes 30 s before the due time, and the next at the due time itself
    assert first == due - timedelta(seconds=30)
    assert second == due


def test_a_retry_after_pushes_the_next_look_past_it() -> None:
    # Given a network that asked to wait ten minutes
    # When the next look is computed
    at = next_look(DEFAULT_CADENCE, sent_at=T0, now=T0, empty_looks=0, tasks=(), retry_after=timedelta(minutes=10))
    # Then it waits that long
    assert at == T0 + timedelta(minutes=10)


def test_an_account_cadence_is_read_from_its_config_and_bad_settings_name_their_field() -> None:
    # Given an account's replies settings
    config = {"replies": {"cadence": [{"until": "PT1H", "every": "PT5S"}], "before_due": "PT2S", "max_backoff": 2}}
    # When they are read
    cadence = cadence_from_config(config)
    # Then they are the account's; and a band that does not grow is refused, naming it
    assert cadence == ReplyCadence(bands=((3600, 5),), before_due_seconds=2, max_backoff=2)
    with pytest.raises(InvalidInputError) as refused:
        cadence_from_config({"replies": {"cadence": [{"until": "PT1H", "every": "PT1M"},
                                                     {"until": "PT30M", "every": "PT1M"}]}})
    assert refused.value.field == "config.replies.cadence.1.until"


# --- what a look records -----------------------------------------------------------


def test_the_first_look_is_scheduled_with_the_post() -> None:
    # Given a share sent with an answer_replies task after 10 minutes
    history = sent_history(plan=ANSWER_PLAN)
    # When the schedule rows of its history are derived
    ops = ops_for(history)
    # Then the post is followed by a look two minutes later (the first band)
    assert Upsert("check_replies", T0 + timedelta(minutes=2)) in ops


def test_the_whole_thread_counts_and_a_repeated_look_records_nothing_twice() -> None:
    # Given a sent share whose thread has a reply and a reply to that reply
    history = sent_history(plan=ANSWER_PLAN)
    thread = [post("1"), post("2", at_seconds=40, parent="1", text="Me too")]
    # When the thread is looked at twice
    history = look(history, thread, at_seconds=120)
    again = looked(history, thread, at_seconds=240)
    history = [*history, *(e.event for e in again.events)]
    # Then both replies are recorded once; the second look found nothing new and records nothing
    received = [e for e in history if isinstance(e, ResponseReceived)]
    assert [(r.reply_id, r.parent_id) for r in received] == [("1", None), ("2", "1")]
    looks = [e for e in history if isinstance(e, RepliesLooked)]
    assert [(x.found, x.new) for x in looks] == [(2, 2)]
    assert (again.recorded, again.looked.found, again.looked.new) == (False, 2, 0)
    assert again.looked.next_look_at is not None  # the next look is still decided (the schedule keeps it)


def test_looks_that_find_nothing_record_nothing_and_back_off_by_the_looks_counted() -> None:
    # Given a sent share (looks every 2 min in the first hour, doubling per empty look up to 4 times)
    history = sent_history(plan=())
    ledger: share.LookLedger | None = None
    nexts = []
    # When three looks find an empty thread, each counted beside the log
    for at in (120, 360, 840):
        found = looked(history, [], at_seconds=at, ledger=ledger)
        assert found.events == ()
        ledger = counted(ledger, found)
        nexts.append(found.looked.next_look_at)
    # Then none is an event, and the looks back off as they did when each was one: 4, 8, 8 min
    assert [(n - T0).total_seconds() - at for n, at in zip(nexts, (120, 360, 840), strict=True)] == [240, 480, 480]
    assert ledger is not None
    assert ledger.looks == 3
    # And the share's thread counts every look, not only the recorded ones
    thread = share.looks_counted(share.fold(history), ledger).thread
    assert (thread.looks, thread.last_look_at, thread.empty_looks) == (3, T0 + timedelta(seconds=840), 3)
    # And a look that finds a reply then is recorded, and the back-off starts over
    found = looked(history, [post("1")], at_seconds=1320, ledger=ledger)
    assert types([e.event for e in found.events]) == ["ResponseReceived", "RepliesLooked"]
    assert (found.looked.empty_looks, found.looked.next_look_at) == (0, T0 + timedelta(seconds=1440))


def test_an_error_is_recorded_when_it_appears_changes_or_clears_and_not_while_it_lasts() -> None:
    # Given a sent share
    history = sent_history(plan=())
    ledger: share.LookLedger | None = None
    recorded = []
    # When looks fail, fail again the same way, fail otherwise, then succeed twice
    for at, error in ((120, "mastodon not reachable"), (360, "mastodon not reachable"), (600, "token refused"),
                      (900, None), (1200, None)):
        found = looked(history, [], at_seconds=at, ledger=ledger, error=error)
        history = [*history, *(e.event for e in found.events)]
        ledger = counted(ledger, found)
        recorded.append(found.recorded)
    # Then the error's appearing, changing and clearing are events; it lasting, and an empty look, are not
    assert recorded == [True, False, True, True, False]
    assert [e.error for e in history if isinstance(e, RepliesLooked)] == [
        "mastodon not reachable", "token refused", None]
    assert share.fold(history).thread.last_error is None


def test_a_reply_by_the_account_itself_is_recorded_as_the_answer_to_the_reply_it_answers() -> None:
    # Given a recorded reply
    history = look(sent_history(plan=ANSWER_PLAN), [post("1")], at_seconds=120)
    # When the account answers it in the network's own app, and also posts under its own post
    thread = [post("1"), post("9", at_seconds=200, parent="1", by_account=True, text="Yes!"),
              post("10", at_seconds=210, by_account=True, text="Update: now on iOS")]
    history = look(history, thread, at_seconds=300)
    # Then the reply is answered (natively) by the account's post; the other post is no reply to answer
    answered = [e for e in history if isinstance(e, ReplyAnswered)]
    assert [(a.reply_id, a.external_id, a.native) for a in answered] == [("1", "9", True)]
    assert len(share.fold(history).thread.replies) == 1


@settings(max_examples=60, deadline=None)
@given(
    order=st.permutations(range(5)),
    repeats=st.lists(st.integers(0, 4), max_size=6),
)
def test_any_sequence_of_looks_records_each_reply_exactly_once(order: list[int], repeats: list[int]) -> None:
    # Given five replies showing up in any order, looked at in growing, repeated prefixes
    replies = [post(str(i), at_seconds=10 + i) for i in range(5)]
    history = sent_history(plan=ANSWER_PLAN)
    seen: list[ThreadPost] = []
    clock = 120
    for i in [*order, *repeats]:
        if replies[i] not in seen:
            seen.append(replies[i])
        clock += 60
        # When each look reads the thread as it is then
        history = look(history, list(seen), at_seconds=clock)
    # Then every reply is recorded once, whatever the order and the repeats
    received = sorted(e.reply_id for e in history if isinstance(e, ResponseReceived))
    assert received == [str(i) for i in sorted(set(order))]


def test_a_channel_that_cannot_read_replies_ends_the_looks_and_says_so() -> None:
    # Given a sent share on a channel without a thread reader
    history = sent_history(plan=ANSWER_PLAN)
    # When a look cannot read the thread
    history = look(history, None, at_seconds=120)
    # Then no look follows, and the share says its replies are not collected
    assert ops_for(history[-1:]) == [Remove("check_replies")]
    assert share.fold(history).thread.collected is False


# --- tasks that settle from what happened ------------------------------------------


def test_an_answer_replies_task_with_no_reply_is_done_on_time_at_its_due_time() -> None:
    # Given a sent share and no reply
    history = sent_history(plan=ANSWER_PLAN)
    # When the look just before the due time is made, then the one at the due time
    history = look(history, [], at_seconds=599)
    assert not any(isinstance(e, ResponseTaskCompleted) for e in history)
    history = look(history, [], at_seconds=600)
    # Then its answer_replies task is done at the second, at its due time
    done = [e for e in history if isinstance(e, ResponseTaskCompleted)]
    assert [(d.completed_at, d.completed_by) for d in done] == [(DUE, "followthrough")]


def test_a_task_stays_overdue_while_a_reply_waits_and_is_done_late_when_the_last_is_handled() -> None:
    # Given two replies collected before the due time, one answered and one waiting
    history = look(sent_history(plan=ANSWER_PLAN), [post("1"), post("2")], at_seconds=120)
    state = share.fold(history)
    history += [e.event for e in share.request_answer(state, reply_id="1", text="Yes", by="alice",
                                                      now=T0 + timedelta(seconds=200))]
    history += [ReplyAnswered(reply_id="1", external_id="90", answered_at=T0 + timedelta(seconds=260), attempt=1)]
    # When the due time passes
    history = look(history, [post("1"), post("2")], at_seconds=600)
    state = share.fold(history)
    task = state.tasks[0]
    # Then the task is overdue
    assert task.status(T0 + timedelta(seconds=601)) == "overdue"
    # And when the other reply is dismissed later, the task is done late, at that time
    late = T0 + timedelta(seconds=900)
    written = share.dismiss(state, reply_id="2", reason="spam", by="bob", now=late)
    done = [e.event for e in written if isinstance(e.event, ResponseTaskCompleted)]
    assert [d.completed_at for d in done] == [late]


def test_a_task_whose_replies_were_handled_in_time_is_done_when_the_last_was_handled_not_at_its_due_time() -> None:
    # Given two replies collected before the due time, one answered at 260 s, one dismissed at 300 s
    history = look(sent_history(plan=ANSWER_PLAN), [post("1"), post("2")], at_seconds=120)
    history += [e.event for e in share.request_answer(share.fold(history), reply_id="1", text="Yes", by="alice",
                                                      now=T0 + timedelta(seconds=200))]
    history += [ReplyAnswered(reply_id="1", external_id="90", answered_at=T0 + timedelta(seconds=260), attempt=1)]
    history += [e.event for e in share.dismiss(share.fold(history), reply_id="2", reason="spam", by="bob",
                                               now=T0 + timedelta(seconds=300))]
    # When the look at the due time settles the answer_replies task
    history = look(history, [post("1"), post("2")], at_seconds=600)
    # Then it is done on time, completed when the last reply was handled (not at its due time)
    done = [e for e in history if isinstance(e, ResponseTaskCompleted)]
    assert [(d.completed_at, d.completed_by) for d in done] == [(T0 + timedelta(seconds=300), "followthrough")]
    assert done[0].completed_at <= DUE


def test_a_reply_collected_after_the_due_time_does_not_reopen_a_settled_task() -> None:
    # Given an answer_replies task settled on time with no reply
    history = look(sent_history(plan=ANSWER_PLAN), [], at_seconds=600)
    # When a reply arrives afterwards
    history = look(history, [post("1", at_seconds=650)], at_seconds=700)
    # Then the task stays done on time, and the reply is in the thread to answer
    state = share.fold(history)
    assert state.tasks[0].completed_at == DUE
    assert [r.inbox_state for r in state.thread.replies] == ["unanswered"]


# --- answering ---------------------------------------------------------------------


def test_an_answer_goes_out_once_its_attempt_is_recorded_and_a_lost_attempt_looks_first() -> None:
    # Given a reply whose answer was asked for
    history = look(sent_history(plan=ANSWER_PLAN), [post("1")], at_seconds=120)
    history += [e.event for e in share.request_answer(share.fold(history), reply_id="1", text="Yes", by="alice",
                                                      now=T0 + timedelta(seconds=130))]
    # When a worker starts it, and the worker dies before recording an outcome
    first = share.start_answer(share.fold(history), now=T0 + timedelta(seconds=131))
    assert first is not None
    assert not first.reconcile
    history += [e.event for e in first.events]
    again = share.start_answer(share.fold(history), now=T0 + timedelta(seconds=200))
    # Then the next attempt has the same idempotency key, a new attempt number, and looks first
    assert again is not None
    assert (again.idempotency_key, again.attempt, again.reconcile) == (first.idempotency_key, 2, True)
    assert again.idempotency_key == share.answer_key(SHARE_ID, "1")


def test_a_failed_answer_is_retried_from_the_schedule_and_given_up_after_the_last_attempt() -> None:
    # Given an answer whose call fails with a transient error
    history = look(sent_history(plan=ANSWER_PLAN), [post("1")], at_seconds=120)
    history += [e.event for e in share.request_answer(share.fold(history), reply_id="1", text="Yes", by="alice",
                                                      now=T0 + timedelta(seconds=130))]
    policy = RetryPolicy(max_attempts=2)
    outcomes = []
    for n in range(2):
        call = share.start_answer(share.fold(history), now=T0 + timedelta(hours=n + 1))
        assert call is not None
        history += [e.event for e in call.events]
        failed = share.record_answer_failure(share.fold(history), reply_id="1", attempt=call.attempt, reason="502",
                                             retryable=True, outcome_unknown=False,
                                             now=T0 + timedelta(hours=n + 1), policy=policy, random=0.5)
        history += [e.event for e in failed]
        outcomes.append(getattr(failed[0].event, "next_attempt_at", None) is not None)
    # Then the first failure schedules a retry, the second gives up; the reply stays unanswered
    assert outcomes == [True, False]
    state = share.fold(history)
    assert share.start_answer(state, now=T0 + timedelta(days=1)) is None
    assert state.thread.replies[0].inbox_state == "unanswered"


def test_answering_twice_is_once_and_a_different_answer_while_one_is_pending_is_refused() -> None:
    # Given an answer asked for
    history = look(sent_history(plan=ANSWER_PLAN), [post("1")], at_seconds=120)
    history += [e.event for e in share.request_answer(share.fold(history), reply_id="1", text="Yes", by="alice",
                                                      now=T0 + timedelta(seconds=130))]
    state = share.fold(history)
    # When the same answer is asked for again, and then another one
    # Then the first repeat writes nothing and the other is refused
    assert share.request_answer(state, reply_id="1", text="Yes", by="alice", now=T0 + timedelta(seconds=140)) == ()
    with pytest.raises(ConflictError):
        share.request_answer(state, reply_id="1", text="No", by="alice", now=T0 + timedelta(seconds=140))
    # And the request wakes the share's answer row
    assert Wake("answer", T0 + timedelta(seconds=130)) in ops_for(history)


def test_a_reply_id_is_the_same_in_the_domain_and_in_the_read_model() -> None:
    # Given a share and a network's reply id
    # When both sides derive the reply's id
    # Then they agree (one function, owned by events.ids), and it is the standard name-based (version 5) id
    assert share.reply_uuid is projected_reply_uuid
    for reply_id in ("at://did:plc:x/app.bsky.feed.post/3k", "109876543210", "é ü ✓"):
        derived = share.reply_uuid(SHARE_ID, reply_id)
        assert derived == projected_reply_uuid(SHARE_ID, reply_id)
        assert derived == uuid5(NAMESPACE_URL, f"followthrough:share:{SHARE_ID}:reply:{reply_id}")
        assert derived.version == 5


@settings(max_examples=80, deadline=None)
@given(replies=st.lists(st.tuples(st.integers(1, 1200), st.one_of(st.none(), st.integers(1, 1500)),
                                  st.booleans()), max_size=5))
def test_an_answer_replies_task_settles_at_the_time_the_rule_says(
    replies: list[tuple[int, int | None, bool]],
) -> None:
    # Given replies collected at various times (seconds after the post), each handled later
    # (answered or dismissed) or never, and a task due 600 s after the post
    history = sent_history(plan=ANSWER_PLAN)
    events: list[tuple[int, str, int, bool]] = []  # (when, what, which, answered)
    for i, (collected, handled_after, answered) in enumerate(replies):
        events.append((collected, "collect", i, answered))
        if handled_after is not None:
            events.append((collected + handled_after, "handle", i, answered))
    events.append((600, "due", -1, False))
    seen: list[ThreadPost] = []
    for when, what, i, answered in sorted(events, key=lambda e: (e[0], e[1] != "collect")):
        state = share.fold(history)
        at = T0 + timedelta(seconds=when)
        # When each happens in time order (a look at each collection and at the due time)
        if what in ("collect", "due"):
            if what == "collect":
                seen.append(post(str(i), at_seconds=max(when - 5, 0)))  # written a little before it is seen
            found = share.record_look(state, list(seen), now=at)
            history += [e.event for e in (found.events if found else ())]
        elif answered:
            history += [e.event for e in share.request_answer(state, reply_id=str(i), text="ok", by="a", now=at)]
            history += [e.event for e in share.record_answer(
                share.fold(history), reply_id=str(i), attempt=1, external_id=f"a{i}", url=None, answered_at=at,
                reconciled=False, now=at)]
        else:
            history += [e.event for e in share.dismiss(state, reply_id=str(i), reason="", by="a", now=at)]
    # Then the task is done at the last handling of the replies collected before its due
    # time (on time or late), at its due time when none came, and not done while one waits
    owed = [(c, h) for c, h, _ in replies if c < 600]
    if any(h is None for _, h in owed):
        expected = None
    else:
        expected = T0 + timedelta(seconds=max((c + (h or 0) for c, h in owed), default=600))
    assert share.fold(history).tasks[0].completed_at == expected


# --- engagement: the post's counts at each look --------------------------------------


def engaged(history: list[Event], counts: Engagement | None, *, at_seconds: int, posts: list[ThreadPost] | None = None,
            error: str | None = None, ledger: share.LookLedger | None = None) -> share.Look:
    state = share.looks_counted(share.fold(history), ledger)
    found = share.record_look(state, [] if posts is None else posts, now=T0 + timedelta(seconds=at_seconds),
                              error=error, engagement=counts)
    assert found is not None
    return found


def test_counts_that_changed_are_recorded_and_counts_unchanged_append_nothing() -> None:
    # Given a sent share whose first look reads no engagement at all: an empty look, no event
    history = sent_history(plan=ANSWER_PLAN)
    assert engaged(history, Engagement(replies=0, reposts=0, likes=0), at_seconds=30).events == ()
    # When a look reads 0 replies, 1 boost, 2 likes
    first = engaged(history, Engagement(replies=0, reposts=1, likes=2), at_seconds=60)
    # Then that look is an event carrying the counts (nothing else changed)
    assert types([e.event for e in first.events]) == ["RepliesLooked"]
    assert first.looked.engagement == Engagement(replies=0, reposts=1, likes=2)
    history += [e.event for e in first.events]
    ledger = counted(None, first)
    # When the next look reads the same counts: no event, only counted
    same = engaged(history, Engagement(replies=0, reposts=1, likes=2), at_seconds=120, ledger=ledger)
    assert same.events == ()
    ledger = counted(ledger, same)
    # And the share shows the counts as of that later look
    state = share.looks_counted(share.fold(history), ledger)
    assert state.thread.engagement == Engagement(replies=0, reposts=1, likes=2)
    assert state.thread.engagement_at == T0 + timedelta(seconds=60)
    assert state.thread.engagement_seen_at == T0 + timedelta(seconds=120)
    # When a like comes: the look is recorded again, with the new counts
    more = engaged(history, Engagement(replies=0, reposts=1, likes=3), at_seconds=180, ledger=ledger)
    assert types([e.event for e in more.events]) == ["RepliesLooked"]
    history += [e.event for e in more.events]
    assert share.fold(history).thread.engagement == Engagement(replies=0, reposts=1, likes=3)
    # And quotes appearing (a server that counts them now) is a change too
    quoted = engaged(history, Engagement(replies=0, reposts=1, likes=3, quotes=0), at_seconds=240,
                     ledger=counted(ledger, more))
    assert quoted.recorded


def test_a_look_that_failed_or_reads_no_counts_keeps_the_last_counts() -> None:
    # Given a share whose counts were recorded
    history = sent_history(plan=ANSWER_PLAN)
    first = engaged(history, Engagement(replies=1, reposts=0, likes=0), at_seconds=60)
    history += [e.event for e in first.events]
    ledger = counted(None, first)
    # When a look fails: it is recorded for its error, without counts, and the counts stay
    failed = engaged(history, Engagement(replies=9, reposts=9, likes=9), at_seconds=120, error="502", ledger=ledger)
    assert failed.looked.engagement is None
    history += [e.event for e in failed.events]
    ledger = counted(ledger, failed)
    state = share.looks_counted(share.fold(history), ledger)
    assert state.thread.engagement == Engagement(replies=1, reposts=0, likes=0)
    assert state.thread.engagement_seen_at == T0 + timedelta(seconds=60)  # the failed look read nothing
    # When a channel reads no counts (None) and nothing else changed: no event
    recovered = engaged(history, None, at_seconds=180, ledger=ledger)
    assert types([e.event for e in recovered.events]) == ["RepliesLooked"]  # the error cleared
    history += [e.event for e in recovered.events]
    quiet = engaged(history, None, at_seconds=240, ledger=counted(ledger, recovered))
    assert quiet.events == ()
    assert share.fold(history).thread.engagement == Engagement(replies=1, reposts=0, likes=0)


def test_assigning_a_reply_twice_to_the_same_person_is_once_and_an_unknown_reply_is_404() -> None:
    # Given a reply collected under a sent share
    history = look(sent_history(plan=ANSWER_PLAN), [post("1")], at_seconds=120)
    at = T0 + timedelta(seconds=200)
    # When it is assigned to ben, to ben again, then to carol
    for person in ("ben", "ben", "carol"):
        history += [e.event for e in share.assign(share.fold(history), reply_id="1", assignee=person, by="ana",
                                                  now=at)]
    # Then two assignments are recorded, and the reply is carol's; it still waits for an answer
    assert [(e.assignee, e.assigned_by) for e in history if isinstance(e, ReplyAssigned)] == [
        ("ben", "ana"), ("carol", "ana")]
    reply = share.fold(history).thread.reply("1")
    assert reply is not None
    assert (reply.assignee, reply.inbox_state) == ("carol", "unanswered")
    # And a reply the share never received cannot be assigned
    with pytest.raises(NotFoundError):
        share.assign(share.fold(history), reply_id="9", assignee="ben", by="ana", now=at)
