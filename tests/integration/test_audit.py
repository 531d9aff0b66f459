"""The audit against a real PostgreSQL: a recount from the log that agrees with faithful read
models, and that names the row, the field and the workspace when a read model was altered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import orjson
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from events.catalogue import ResponseTasksRecorded, SharePlanned, ShareSent
from events.projections.runner import ProjectionRunner
from events.projections.shares import SharesProjection
from events.records import NewEvent
from events.store import EventStore
from followthrough import bootstrap
from followthrough.settings import Settings
from scheduler.services import workspaces
from scheduler.services.audit import audit, wait_for_projection
from tests.support.cli import Ran, cli, command_env
from tests.support.fake_channel import FakeChannel
from tests.support.replies import account_on, inbox_page, reply_service, sent_share
from tests.support.servers import serve
from tests.support.shares import WS, Clock, make_account, plan, runtime, share_service, view
from workers.answering import publish_answers
from workers.channels.console import ConsolePublisher
from workers.channels.console_replies import write_reply
from workers.collection import collect_one
from workers.execution import execute_share


def catch_up(store: EventStore, settings: Settings) -> None:
    """Apply the whole log: a transaction running elsewhere on the server can hold the
    log's horizon back for a moment, so apply until nothing is left."""
    runner = ProjectionRunner(store, SharesProjection(), conninfo=settings.database_url or "")
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        for _ in range(300):
            runner.catch_up()
            if wait_for_projection(conn, timeout=0) == 0:
                return
            time.sleep(0.1)
    raise AssertionError("the shares projection did not catch up")


def run_audit(database_url: str, workspace_id: str | None = None) -> Any:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return audit(conn, workspace_id=workspace_id)


def cli_audit(settings: Settings, *args: str) -> Ran:
    return cli("audit", *args, env=command_env(settings.database_url, settings.broker_url, settings.home))


@pytest.fixture
def sent_and_followed(settings: Settings, store: EventStore, pool: ConnectionPool[Any]) -> list[UUID]:
    """Three shares sent (one task done on time), one cancelled, one still planned; projected."""
    shares = share_service(pool, store, None)
    rt = runtime(pool, store, FakeChannel(), clock=Clock())
    account = make_account(pool)
    sent = [plan(shares, account) for _ in range(3)]
    for share_id in sent:
        assert execute_share(rt, share_id) == "share_sent"
    shares.complete_task(WS, UUID(view(shares, sent[0])["response_tasks"][0]["id"]), by="alice", note="")
    shares.cancel(WS, plan(shares, account, at=datetime.now(UTC) + timedelta(hours=2)), reason="no", actor="test")
    plan(shares, account, at=datetime.now(UTC) + timedelta(hours=3))
    catch_up(store, settings)
    return sent


def test_a_faithful_read_model_audits_clean_with_every_share_and_task_recounted(
    settings: Settings, store: EventStore, sent_and_followed: list[UUID]
) -> None:
    # Given shares planned, sent, completed and cancelled, and the projection caught up
    # When the audit recounts the log
    found = run_audit(settings.database_url or "")
    # Then nothing differs, and it saw every share and task of the workspace
    assert found.clean, found.as_dict()
    [workspace] = found.workspaces.values()
    assert (workspace.workspace_id, workspace.shares, workspace.tasks) == (WS, 5, 6)
    assert found.unprojected_events == 0


def test_a_read_that_fails_on_the_audit_s_reading_thread_fails_the_audit_and_frees_its_connection(
    settings: Settings, sent_and_followed: list[UUID]
) -> None:
    # Given a read model the audit cannot read (its reads run on a thread of their own)
    url = settings.database_url or ""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE rm_replies RENAME TO rm_replies_away")
        # When the audit runs, with a log batch of one event so the reads run ahead
        # Then the read's error reaches the caller (no hang), and the connection is usable again
        with pytest.raises(psycopg.errors.UndefinedTable):
            audit(conn, batch_size=1)
        assert conn.execute("SELECT 1").fetchone() == (1,)
        conn.execute("ALTER TABLE rm_replies_away RENAME TO rm_replies")
        assert audit(conn, batch_size=1).clean


def test_an_altered_share_row_is_reported_with_its_field_and_the_cli_exits_non_zero(
    settings: Settings, store: EventStore, sent_and_followed: list[UUID]
) -> None:
    # Given a clean audit from the command line
    clean = cli_audit(settings, "--format", "json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert orjson.loads(clean.stdout.splitlines()[-1])["clean"] is True
    # When someone edits a read-model row by hand
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        conn.execute("UPDATE rm_shares SET status = 'planned', attempts = 7 WHERE share_id = %s",
                     (sent_and_followed[1],))
    # Then the audit names that row's fields, with both values, under its workspace, and exits 1
    result = cli_audit(settings, "--format", "json")
    assert result.returncode == 1, result.stderr
    body = orjson.loads(result.stdout.splitlines()[-1])
    [workspace] = body["workspaces"]
    assert workspace["workspace_id"] == WS
    assert {(d["relation"], d["key"], d["field"], d["log"], d["read_model"]) for d in workspace["differences"]} == {
        ("rm_shares", str(sent_and_followed[1]), "status", "sent", "planned"),
        ("rm_shares", str(sent_and_followed[1]), "attempts", 1, 7),
    }
    # And the table for a person says the same
    table = cli_audit(settings, "--format", "table")
    assert table.returncode == 1
    assert f"rm_shares {sent_and_followed[1]} status: log 'sent', read model 'planned'" in table.stdout


def test_an_altered_task_and_a_deleted_task_show_in_the_tasks_and_the_follow_through_rows(
    settings: Settings, store: EventStore, sent_and_followed: list[UUID]
) -> None:
    # Given a task marked done by hand and another deleted from the read model
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        conn.execute("UPDATE rm_response_tasks SET status = 'done', completed_at = due_at "
                     "WHERE share_id = %s AND owner = 'bob'", (sent_and_followed[1],))
        conn.execute("DELETE FROM rm_response_tasks WHERE share_id = %s AND owner = 'alice'",
                     (sent_and_followed[2],))
    # When the audit runs
    found = run_audit(settings.database_url or "", WS)
    # Then both tasks are reported, and so are the follow-through rows they moved
    relations = {(d.relation, d.field) for d in found.workspaces[WS].differences}
    assert ("rm_response_tasks", "status") in relations
    assert ("rm_response_tasks", "row") in relations
    assert ("followthrough_daily", "done_on_time") in relations
    assert ("followthrough_daily", "open") in relations
    assert not found.clean


def test_a_wrong_rate_formula_in_the_database_is_caught_by_the_audits_own_recount(
    settings: Settings, store: EventStore, sent_and_followed: list[UUID]
) -> None:
    # Given a clean audit, then the database's followthrough_rate() replaced by a wrong one
    assert run_audit(settings.database_url or "", WS).clean
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        conn.execute("CREATE OR REPLACE FUNCTION followthrough_rate(done_on_time bigint, done_late bigint,"
                     " overdue bigint)"
                     " RETURNS double precision LANGUAGE sql IMMUTABLE AS $$ SELECT 0.5::float8 $$")
    # When the audit runs
    found = run_audit(settings.database_url or "", WS)
    # Then the rate differs from the recount's own (1.0 where the task was done on time) and the counts do not
    rates = [d for d in found.workspaces[WS].differences if d.relation == "followthrough_daily"]
    assert rates
    assert {d.field for d in rates} == {"rate"}
    assert (1.0, 0.5) in {(d.log, d.read_model) for d in rates}
    assert not found.clean


def test_a_share_sent_without_its_tasks_in_the_log_is_a_violation_even_when_the_read_model_agrees(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any]
) -> None:
    # Given a stream written around the domain: sent first, its tasks recorded after
    shares = share_service(pool, store, None)
    share_id = plan(shares, make_account(pool))
    history = store.read_stream(f"share-{share_id}")
    planned = history[0].event
    assert isinstance(planned, SharePlanned)
    now = datetime.now(UTC)
    store.append(f"share-{share_id}", [
        NewEvent(ShareSent(attempt=1, external_id="x", url=None, scheduled_at=now, sent_at=now, lateness_ms=0)),
        NewEvent(ResponseTasksRecorded(tasks=())),
    ], expected_version=len(history), workspace_id=WS)
    catch_up(store, settings)
    # When the audit runs
    found = run_audit(settings.database_url or "")
    # Then the log itself breaks the invariant, whatever the read models say
    assert WS in found.workspaces, found.as_dict()
    [violation] = found.workspaces[WS].violations
    assert (violation.share_id, violation.rule) == (str(share_id), "ShareSent without ResponseTasksRecorded before it")
    assert not found.clean


@pytest.fixture
def client(settings: Settings) -> Iterator[httpx.Client]:
    with serve(bootstrap.build_api(settings)) as base_url, httpx.Client(base_url=base_url, timeout=30) as c:
        yield c


def test_get_audit_answers_for_the_tokens_workspace_only(
    settings: Settings, store: EventStore, sent_and_followed: list[UUID], client: httpx.Client
) -> None:
    # Given a second workspace whose read model was altered
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        ours = workspaces.create_token(conn, WS, "read")
        theirs = workspaces.create_token(conn, "globex", "read")
        conn.execute("UPDATE rm_shares SET workspace_id = 'globex' WHERE share_id = %s", (sent_and_followed[0],))
    # When each workspace asks for its audit
    mine = client.get("/v1/audit", headers={"Authorization": f"Bearer {ours}"})
    other = client.get("/v1/audit", headers={"Authorization": f"Bearer {theirs}"})
    # Then each sees its own side: the share went missing here and appeared there
    assert mine.status_code == 200, mine.text
    [ws] = mine.json()["workspaces"]
    assert (ws["workspace_id"], ws["clean"]) == (WS, False)
    assert {(d["key"], d["field"], d["read_model"]) for d in ws["differences"] if d["relation"] == "rm_shares"} == {
        (str(sent_and_followed[0]), "row", "missing")}
    [theirs_ws] = other.json()["workspaces"]
    assert theirs_ws["workspace_id"] == "globex"
    assert [(d["key"], d["log"]) for d in theirs_ws["differences"]] == [(str(sent_and_followed[0]), "missing")]


# --- the thread under a share: looks, replies, answers, dismissals ------------------------


@pytest.fixture
def reply_loop(settings: Settings, store: EventStore, pool: ConnectionPool[Any]) -> tuple[UUID, dict[str, str]]:
    """A console share with two replies, one answered and one dismissed, looked at before
    and after; projected. Returns the share and its replies' network ids by author."""
    clock = Clock()
    shares = share_service(pool, store, clock=clock)
    rt = runtime(pool, store, ConsolePublisher(settings.console_dir.resolve()), clock=clock)
    share_id = sent_share(rt, shares, account_on(pool, "console", {}))
    ana = write_reply(settings.console_dir, WS, "team", share_id=str(share_id), text="Linux?", author="ana")
    bo = write_reply(settings.console_dir, WS, "team", share_id=str(share_id), text="first!", author="bo")
    assert collect_one(rt, share_id) == "replies_collected"
    catch_up(store, settings)
    ids = {r["author"]: r["id"] for r in inbox_page(pool, share_id=share_id)}
    replies = reply_service(pool, store, shares)
    replies.assign(WS, ids["ana"], assignee="bob", by="alice")
    replies.assign(WS, ids["ana"], assignee="ana", by="bob")  # given on
    replies.answer(WS, ids["ana"], text="Yes.", by="alice")
    replies.dismiss(WS, ids["bo"], reason="no question", by="bob")
    replies.assign(WS, ids["bo"], assignee="carol", by="bob")  # after it was dismissed
    assert publish_answers(rt, share_id) == "reply_answered"
    assert collect_one(rt, share_id) == "replies_collected"
    catch_up(store, settings)
    return share_id, {"ana": ana["reply_id"], "bo": bo["reply_id"]}


def test_a_reply_loop_audits_clean_with_its_looks_answers_and_dismissals_recounted(
    settings: Settings, store: EventStore, reply_loop: tuple[UUID, dict[str, str]]
) -> None:
    # Given a share whose stream holds looks, replies, an answer's request, attempt and
    # outcome, a dismissal, and assignments (types the read models partly ignore)
    share_id, _ = reply_loop
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        types = {row[0] for row in conn.execute("SELECT type FROM events WHERE stream_id = %s", (f"share-{share_id}",))}
    assert {"RepliesLooked", "ReplyAnswerRequested", "ReplyAnswerAttemptStarted", "ReplyAnswered",
            "ReplyDismissed", "ReplyAssigned"} <= types
    # When the audit recounts the log
    found = run_audit(settings.database_url or "")
    # Then every event is read, the versions are contiguous, and nothing differs
    assert found.clean, found.as_dict()
    [workspace] = found.workspaces.values()
    assert (workspace.shares, workspace.replies) == (1, 2)
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        total = conn.execute("SELECT count(*) FROM events WHERE stream_id LIKE 'share-%'").fetchone()
    assert total is not None
    assert found.events_read == total[0]


def test_an_altered_reply_row_is_named_with_its_share_and_moves_the_reported_figures(
    settings: Settings, store: EventStore, reply_loop: tuple[UUID, dict[str, str]]
) -> None:
    # Given the answered reply set back to unanswered in the read model by hand
    share_id, network = reply_loop
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        answered_at = conn.execute("UPDATE rm_replies SET state = 'unanswered', answered_at = NULL"
                                   " WHERE share_id = %s AND network_reply_id = %s RETURNING answered_at",
                                   (share_id, network["ana"])).fetchone()
    assert answered_at is not None
    # When the audit runs, and the command line
    found = run_audit(settings.database_url or "", WS)
    result = cli_audit(settings, "--format", "table")
    # Then the reply row is named by its share and reply, both values given, and the figures
    # the read side reports (replies answered, time to answer) differ from the recount
    named = {(d.relation, d.key, d.field, d.log, d.read_model) for d in found.workspaces[WS].differences}
    key = f"{share_id}/{network['ana']}"
    assert ("rm_replies", key, "state", "answered", "unanswered") in named
    assert {(d.relation, d.field) for d in found.workspaces[WS].differences if d.relation == "followthrough"} == {
        ("followthrough", "replies_answered"), ("followthrough", "median_seconds_to_answer"),
        ("followthrough", "p90_seconds_to_answer")}
    assert not found.clean
    assert result.returncode == 1
    assert str(share_id) in result.stdout


def test_an_altered_assignee_is_named_with_its_share_and_reply(
    settings: Settings, store: EventStore, reply_loop: tuple[UUID, dict[str, str]]
) -> None:
    # Given the reply given on to ana, and the read model saying it went to someone else
    share_id, network = reply_loop
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        held = conn.execute("SELECT assignee FROM rm_replies WHERE share_id = %s AND network_reply_id = %s",
                            (share_id, network["ana"])).fetchone()
        conn.execute("UPDATE rm_replies SET assignee = 'mallory' WHERE share_id = %s AND network_reply_id = %s",
                     (share_id, network["ana"]))
    assert held == ("ana",)
    # When the audit runs
    found = run_audit(settings.database_url or "", WS)
    # Then the assignee is the difference, both values given
    named = {(d.relation, d.key, d.field, d.log, d.read_model) for d in found.workspaces[WS].differences}
    assert named == {("rm_replies", f"{share_id}/{network['ana']}", "assignee", "ana", "mallory")}
    assert not found.clean
