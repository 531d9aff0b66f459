"""Times that mean what they say, against a real PostgreSQL and the console channel: an
``answer_replies`` task settled from evidence is completed when its last reply was
handled, time to answer runs from the reply's own time to the answer's publish time,
and an answer's outcome that arrives after the reply is settled is no error."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from psycopg_pool import ConnectionPool
from structlog.testing import capture_logs

from events.projections import reports
from events.store import EventStore
from followthrough.settings import Settings
from scheduler.services.audit import audit
from scheduler.services.shares import ShareService
from tests.support.replies import account_on, caught_up, inbox_page, reply_service, sent_share
from tests.support.shares import WS, Clock, runtime, view
from workers.answering import publish_answers
from workers.channels import Answer, Published, TransientChannelError
from workers.channels.console import ConsolePublisher
from workers.channels.console_replies import write_reply
from workers.collection import collect_one
from workers.runtime import Runtime


def console_lines(settings: Settings) -> list[dict[str, Any]]:
    path = settings.console_dir / WS / "team.replies.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_an_answer_task_done_in_time_is_completed_when_its_last_reply_was_handled_and_time_to_answer_is_network_time(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock,
) -> None:
    # Given a console share with an answer_replies task due 10 minutes after the post
    rt = runtime(pool, store, ConsolePublisher(settings.console_dir.resolve()), clock=clock)
    share_id = sent_share(rt, shares, account_on(pool, "console", {}))
    # And a reply written under it, collected, and answered through the worker at once
    written = write_reply(settings.console_dir, WS, "team", share_id=str(share_id), text="Linux?", author="ana")
    assert collect_one(rt, share_id) == "replies_collected"
    caught_up(store, settings.database_url or "")
    [reply] = inbox_page(pool, share_id=share_id)
    reply_service(pool, store, shares).answer(WS, reply["id"], text="Yes.", by="alice")
    assert publish_answers(rt, share_id) == "reply_answered"
    # When the look at the due time settles the task
    clock.offset += timedelta(minutes=11)
    assert collect_one(rt, share_id) == "replies_collected"
    caught_up(store, settings.database_url or "")
    # Then the task is done on time, completed when the answer was published (not at its due time)
    answer_line = next(line for line in console_lines(settings) if line["by_account"])
    published = datetime.fromisoformat(answer_line["created_at"])
    task = next(t for t in view(shares, share_id)["response_tasks"] if t["kind"] == "answer_replies")
    assert task["status"] == "done"
    assert datetime.fromisoformat(task["completed_at"]) == published
    assert published < datetime.fromisoformat(task["due_at"])
    # And time to answer runs from the reply's own time to the answer's publish time
    [answered] = inbox_page(pool, share_id=share_id)
    assert datetime.fromisoformat(str(answered["received_at"])) == datetime.fromisoformat(written["created_at"])
    assert answered["answered_at"] == published
    expected = (published - datetime.fromisoformat(written["created_at"])).total_seconds()
    with pool.connection() as conn:
        [row] = reports.followthrough(conn, WS, by="workspace")
    assert row["median_seconds_to_answer"] == pytest.approx(expected, abs=1e-6)
    assert row["done_on_time"] == 1
    # And the audit's own recount agrees
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        found = audit(conn, workspace_id=WS)
    assert found.clean, found.as_dict()


class AnswerFoundWhileTheCallHangs(ConsolePublisher):
    """A console whose answer lands, then a look finds it in the thread (recording the
    reply answered) before the call comes back with a timeout."""

    rt: Runtime

    def answer(self, answer: Answer) -> Published:
        super().answer(answer)
        assert collect_one(self.rt, answer.post.share_id) == "replies_collected"
        raise TransientChannelError("read timeout", outcome_unknown=True)


def test_an_answer_timing_out_after_a_look_recorded_it_answered_is_an_info_line_not_an_error(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock,
) -> None:
    # Given a reply whose answer is asked for, on a channel whose call hangs while a look
    # finds the answer in the thread
    channel = AnswerFoundWhileTheCallHangs(settings.console_dir.resolve())
    rt = channel.rt = runtime(pool, store, channel, clock=clock)
    share_id = sent_share(rt, shares, account_on(pool, "console", {}))
    write_reply(settings.console_dir, WS, "team", share_id=str(share_id), text="Linux?", author="ana")
    assert collect_one(rt, share_id) == "replies_collected"
    caught_up(store, settings.database_url or "")
    [reply] = inbox_page(pool, share_id=share_id)
    reply_service(pool, store, shares).answer(WS, reply["id"], text="Yes.", by="alice")
    # When the call's timeout comes back after the look recorded the reply answered
    with capture_logs() as logs:
        outcome = publish_answers(rt, share_id)
    # Then the late outcome is logged at info, no answer_failed error, nothing retried
    assert outcome == "answer_outcome_after_settled"
    late = [line for line in logs if line["event"] == "answer_outcome_after_settled"]
    assert [(line["log_level"], line["reply_state"]) for line in late] == [("info", "answered")]
    assert not [line for line in logs if line["event"] in ("answer_failed", "answer_retry_scheduled")]
    assert not [line for line in logs if line["log_level"] == "error"]
    caught_up(store, settings.database_url or "")
    [answered] = inbox_page(pool, share_id=share_id)
    assert (answered["state"], answered["answer_status"]) == ("answered", "answered")
    assert [line["text"] for line in console_lines(settings) if line["by_account"]] == ["Yes."]
