"""The audit's recount from stored events alone: statuses, task states, follow-through
counts and the invariant, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import orjson

from scheduler.services.recount import Recount, StoredEvent, daily_counts, share_row, task_row

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
        stored(5, "ResponseReceived"),
        stored(6, "ResponseTaskCompleted", task_id=T1, completed_at="2026-11-30T12:30:00+00:00"),
    ]


def test_a_sent_share_with_one_task_done_on_time_recounts_as_the_read_models_should_hold_it() -> None:
    # Given a share's history in log order
    recount = Recount()
    recount.add_all(history())
    # Then its row, its tasks and the follow-through counts follow from the events alone
    share = recount.shares[SHARE]
    assert share_row(share) == ("sent", ACCOUNT, datetime(2026, 11, 30, 11, 59, 59, tzinfo=UTC), 1, NOON, 1000,
                                "u", "x", True, False, 1, 0, 0)
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
    events.append(stored(9, "ResponseReceived"))
    recount = Recount()
    recount.add_all(events)
    # Then both are reported, the share flagged as sent without tasks
    assert [v.rule for v in recount.violations] == ["ShareSent without ResponseTasksRecorded before it",
                                                     "version 9 after 6"]
    assert recount.shares[SHARE].sent_without_tasks


def test_cancelled_tasks_count_nowhere_and_a_done_task_stays_done() -> None:
    recount = Recount()
    recount.add_all([*history(), stored(7, "ResponseTasksCancelled", task_ids=[T1, T2])])
    share = recount.shares[SHARE]
    assert (share.tasks[T1].stored_status, share.tasks[T2].stored_status) == ("done", "cancelled")
    assert daily_counts(recount, "acme", NOON) == {("acme", ACCOUNT, "alice", date(2026, 11, 30)): (0, 1, 0, 0)}
    assert daily_counts(recount, "other", NOON) == {}
