"""The audit's recount from stored events alone: statuses, task states, follow-through
counts and the invariant, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import orjson

from scheduler.services.recount import Recount, StoredEvent, daily_counts, share_row, task_row
from scheduler.services.recount_figures import percentile, workspace_figures
from scheduler.services.recount_replies import REPLY_FIELDS, reply_row

SHARE = str(uuid.uuid4())
ACCOUNT = str(uuid.uuid4())
T1, T2 = str(uuid.uuid4()), str(uuid.uuid4())
NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def stored(version: int, type_name: str, **data: object) -> StoredEvent:
    return (version * 10, f"share-{SHARE}", version, type_name, "acme", orjson.dumps(data).decode())


def history() -> list[StoredEvent]:
    return [
        stored(1, "SharePlanned", account_id=ACCOUNT, scheduled_at="2026-11-30T11:59:59+00:00"),
        stored(2, "ShareAttemptStarted", attempt=1),
        stored(3, "ResponseTasksRecorded", tasks=[
            {"task_id": T1, "kind": "check_replies", "owner": "alice", "after_seconds": 3600},
            {"task_id": T2, "kind": "check_replies", "owner": "bob", "after_seconds": 86400}]),
        stored(4, "ShareSent", attempt=1, sent_at="2026-11-30T12:00:00+00:00", lateness_ms=1000, url="u",
               external_id="x"),
        stored(5, "ResponseReceived", reply_id="r1", author="ana", text="hi", received_at="2026-11-30T12:10:00+00:00",
               collected_at="2026-11-30T12:11:00+00:00"),
        stored(6, "ResponseTaskCompleted", task_id=T1, completed_at="2026-11-30T12:30:00+00:00"),
    ]


def test_a_sent_share_with_one_task_done_on_time_recounts_as_the_read_models_should_hold_it() -> None:
    # Given a share's history in log order
    recount = Recount()
    recount.add_all(history())
    # Then its row, its tasks and the follow-through counts follow from the events alone
    share = recount.shares[SHARE]
    assert share_row(share) == ("sent", ACCOUNT, datetime(2026, 11, 30, 11, 59, 59, tzinfo=UTC), 1, NOON, 1000,
                                "u", "x", True, False, 1, 0, 0, 0, None, None, None,
                                None, None, None, None, None)  # no look: no counts
    assert task_row(SHARE, share.tasks[T1])[1:2] == ("done",)
    assert task_row(SHARE, share.tasks[T2])[1:2] == ("open",)
    later = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)  # bob's task is past due by then
    assert daily_counts(recount, None, later) == {
        ("acme", ACCOUNT, "alice", date(2026, 11, 30)): (0, 1, 0, 0),
        ("acme", ACCOUNT, "bob", date(2026, 12, 1)): (0, 0, 0, 1),
    }
    assert recount.violations == []


def test_a_share_sent_before_its_tasks_and_a_version_out_of_step_are_violations() -> None:
    # Given a log where ShareSent comes before ResponseTasksRecorded, then a version jumps
    events = history()
    tasks, sent = events[2], events[3]
    events[2] = (sent[0], sent[1], 3, sent[3], sent[4], sent[5])
    events[3] = (tasks[0], tasks[1], 4, tasks[3], tasks[4], tasks[5])
    events.append(stored(9, "ShareAbandoned"))
    recount = Recount()
    recount.add_all(events)
    # Then both are reported, the share flagged as sent without tasks
    assert [v.rule for v in recount.violations] == ["ShareSent without ResponseTasksRecorded before it",
                                                     "version 9 after 6"]
    assert recount.shares[SHARE].sent_without_tasks


def test_a_threads_part_out_before_its_tasks_is_a_violation_and_after_them_none() -> None:
    events = history()
    part = stored(3, "SharePartSent", attempt=1, part=0, external_id="x", url="u", sent_at="2026-11-30T12:00:00Z")
    before = [*events[:2], part, *((p, s, v + 1, t, w, d) for p, s, v, t, w, d in events[2:])]
    recount = Recount()
    recount.add_all(before)
    assert [v.rule for v in recount.violations] == ["SharePartSent without ResponseTasksRecorded before it"]
    after = [*events[:3], (35, f"share-{SHARE}", 4, "SharePartSent", "acme", part[5]),
             *((p, s, v + 1, t, w, d) for p, s, v, t, w, d in events[3:])]
    fine = Recount()
    fine.add_all(after)
    assert fine.violations == []
    assert fine.shares[SHARE].status == "sent"


def test_cancelled_tasks_count_nowhere_and_a_done_task_stays_done() -> None:
    recount = Recount()
    recount.add_all([*history(), stored(7, "ResponseTasksCancelled", task_ids=[T1, T2])])
    share = recount.shares[SHARE]
    assert (share.tasks[T1].stored_status, share.tasks[T2].stored_status) == ("done", "cancelled")
    assert daily_counts(recount, "acme", NOON) == {("acme", ACCOUNT, "alice", date(2026, 11, 30)): (0, 1, 0, 0)}
    assert daily_counts(recount, "other", NOON) == {}


def test_every_event_type_steps_the_version_and_the_thread_is_recounted_from_its_own_events() -> None:
    # Given a reply loop: looks, two replies, an answer asked for, attempted and made, a
    # dismissal, assignments (one after the answer, one of a reply never received), and a type
    # this code has never heard of, all on the share's stream
    events = [
        *history(),
        stored(7, "ReplyAnswerRequested", reply_id="r1", text="yes", requested_by="a"),
        stored(8, "ReplyAnswerAttemptStarted", reply_id="r1", attempt=1),
        stored(9, "ReplyAnswered", reply_id="r1", external_id="a1", answered_at="2026-11-30T12:10:21+00:00"),
        stored(10, "ResponseReceived", reply_id="r2", author="bo", text="!", received_at="2026-11-30T12:20:00+00:00"),
        stored(11, "ReplyDismissed", reply_id="r2", dismissed_by="b", dismissed_at="2026-11-30T12:30:00+00:00"),
        stored(12, "ReplyAnswered", reply_id="r2", external_id="a2", native=True,
               answered_at="2026-11-30T12:40:00+00:00"),
        stored(13, "RepliesLooked", looked_at="2026-11-30T12:41:00+00:00", next_look_at=None, collected=True,
               engagement={"replies": 2, "reposts": 1, "likes": 4, "quotes": None}),
        stored(14, "ReplyAssigned", reply_id="r2", assignee="ana", assigned_by="b",
               assigned_at="2026-11-30T12:42:00+00:00"),
        stored(15, "ReplyAssigned", reply_id="r2", assignee="ben", assigned_by="ana",
               assigned_at="2026-11-30T12:43:00+00:00"),
        stored(16, "ReplyAssigned", reply_id="r9", assignee="cy", assigned_by="ana",
               assigned_at="2026-11-30T12:44:00+00:00"),
        stored(17, "SomethingAddedLater", anything=1),
    ]
    recount = Recount()
    recount.add_all(events)
    # Then the versions are contiguous over all of them, every one counted
    assert recount.violations == []
    assert recount.events == 17
    # And the thread is as the read models should hold it: the dismissed reply later answered
    # natively counts as answered, time to answer runs from the reply's time to the answer's
    thread = recount.shares[SHARE].thread
    assert {k: r.state for k, r in thread.replies.items()} == {"r1": "answered", "r2": "answered"}
    assert thread.replies["r1"].seconds_to_answer == 21.0
    fields = dict(zip(REPLY_FIELDS, reply_row(SHARE, thread.replies["r2"]), strict=True))
    assert fields["answered_natively"] is True
    # And a reply's assignee is its last assignment's, answered or not; r1 was never assigned
    assert (fields["assignee"], thread.replies["r1"].assignee) == ("ben", None)
    assert set(thread.replies) == {"r1", "r2"}
    looked_at = datetime(2026, 11, 30, 12, 41, tzinfo=UTC)
    assert share_row(recount.shares[SHARE])[-9:] == (2, looked_at, None, True, 2, 1, 4, None, looked_at)


def test_the_workspace_figures_recount_rate_times_to_respond_and_to_answer() -> None:
    # Given the history above, one reply answered 21 s after it was written
    recount = Recount()
    recount.add_all([*history(), stored(7, "ReplyAnswered", reply_id="r1", external_id="a1",
                                        answered_at="2026-11-30T12:10:21+00:00")])
    # When its figures are recounted a day later (bob's task overdue by then)
    [(workspace, figures)] = workspace_figures(recount, None, datetime(2026, 12, 1, 13, 0, tzinfo=UTC)).items()
    row = figures.row()
    # Then the rate counts alice's task done on time and bob's overdue; time to respond runs
    # from the post (30 min), time to answer from the reply (21 s)
    assert workspace == "acme"
    assert (row["done_on_time"], row["overdue"], row["rate"]) == (1, 1, 0.5)
    assert row["median_seconds_to_complete"] == 1800.0
    assert (row["replies_received"], row["replies_answered"], row["median_seconds_to_answer"]) == (1, 1, 21.0)


def test_percentiles_interpolate_between_ranks_as_percentile_cont_does() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([10.0, 0.0, 20.0, 30.0, 40.0], 0.9) == 36.0
