"""The `followthrough` command as an operator runs it (in this process: ``tests.support.cli``)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import psycopg
import pytest

from events.catalogue import ShareCancelled
from events.records import NewEvent
from events.store import EventStore
from scheduler.services import workspaces
from tests.support.cli import cli, command_env
from tests.support.database import connect
from tests.support.system import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(database_url: str, broker_url: str, tmp_path: Any) -> dict[str, str]:
    return command_env(database_url, broker_url, tmp_path)


def test_token_create_prints_only_the_token(env: dict[str, str]) -> None:
    result = cli("token", "create", "--workspace", "acme", "--scope", "read", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith("ft_")


def test_bad_input_gets_a_message_with_the_fix_not_a_traceback(env: dict[str, str]) -> None:
    bad_scope = cli("token", "create", "--workspace", "acme", "--scope", "admin", env=env)
    assert bad_scope.returncode == 2
    assert "invalid choice: 'admin'" in bad_scope.stderr
    bad_workspace = cli("token", "create", "--workspace", "Not OK", "--scope", "read", env=env)
    assert bad_workspace.returncode == 2
    assert "workspace: must be lower-case" in bad_workspace.stderr
    assert "Traceback" not in bad_workspace.stderr
    unreachable = cli("token", "create", "--workspace", "acme", "--scope", "read",
                      env={**env, "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"})
    assert unreachable.returncode == 2
    assert "check DATABASE_URL" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr


def test_log_tail_prints_one_line_per_event_and_log_status_reports_the_horizon(
    env: dict[str, str], store: EventStore
) -> None:
    stream = f"share-{uuid.uuid4()}"
    store.append(stream, [NewEvent(ShareCancelled(reason=str(i))) for i in range(3)], expected_version=0,
                 workspace_id="acme")
    # (read once no transaction older than the append still runs anywhere on the server:
    # the log's horizon, which `--no-follow` stops at)
    wait_until(lambda: sum(r.stream_id == stream for r in store.read_all()) == 3, timeout=30,
               what="the events below the log's horizon")
    tail = cli("log", "tail", "--from-start", "--no-follow", "--format", "json", env=env)
    assert tail.returncode == 0, tail.stderr
    lines = [orjson.loads(line) for line in tail.stdout.splitlines()]
    assert [(line["stream_id"], line["version"], line["type"]) for line in lines] == [
        (stream, v, "ShareCancelled") for v in (1, 2, 3)]
    status = cli("log", "status", "--format", "json", env=env)
    assert status.returncode == 0, status.stderr
    report = orjson.loads(status.stdout)
    assert report["horizon"]["epoch"] == 1
    assert report["followers"] == []
    followthrough = cli("report", "--workspace", "acme", "--format", "json", env=env)
    assert followthrough.returncode == 0, followthrough.stderr
    assert orjson.loads(followthrough.stdout) == {"by": "account", "hours": "all", "clock": "wall", "rows": [],
                                                  "sent_shares_without_response_tasks": 0}


def test_report_prints_a_table_csv_and_json_with_no_rate_where_nothing_is_settled(
    env: dict[str, str], database_url: str
) -> None:
    # Given a response task of a sent share, still open (nothing settled yet)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO rm_response_tasks (task_id, share_id, workspace_id, account_id, account_name, channel,"
            " kind, owner, after_seconds, status, recorded_at, due_at)"
            " VALUES (gen_random_uuid(), gen_random_uuid(), 'acme', gen_random_uuid(), 'launch', 'console',"
            " 'check_replies', 'alice', 3600, 'open', now(), now() + interval '1 hour')")
    # When the report is asked for in each format
    table = cli("report", "--workspace", "acme", "--by", "owner", env={**env, "COLUMNS": "240"})
    as_csv = cli("report", "--workspace", "acme", "--by", "owner", "--format", "csv", env=env)
    as_json = cli("report", "--workspace", "acme", "--by", "owner", "--format", "json", env=env)
    bad = cli("report", "--workspace", "acme", "--from", "yesterday", env=env)
    # Then the table has a row for alice that says no tasks are due rather than a rate
    assert table.returncode == 0, table.stderr
    assert "Follow-through by owner, all time" in table.stdout
    line = next(row for row in table.stdout.splitlines() if "alice" in row)
    assert "no tasks due" in line
    assert "%" not in line
    assert "sent shares without response tasks: 0" in table.stdout
    # And the CSV and JSON say the same, with an empty (null) rate
    assert as_csv.stdout.splitlines() == [
        "key,open,done_on_time,done_late,overdue,rate,median_seconds_to_complete,p90_seconds_to_complete,"
        "median_seconds_to_first_look,replies_received,replies_answered,median_seconds_to_answer,"
        "p90_seconds_to_answer,clock_to_answer,engagement_replies,engagement_reposts,engagement_likes,"
        "engagement_quotes",
        "alice,1,0,0,0,,,,,0,0,,,,,,,",  # no engagement by owner: a post's counts have no owner
    ]
    [row] = orjson.loads(as_json.stdout)["rows"]
    assert (row["key"], row["open"], row["rate"]) == ("alice", 1, None)
    # And a bad date names the option
    assert bad.returncode == 2
    assert "--from" in bad.stderr


def test_report_shows_the_times_to_answer_and_first_look_with_their_clock_and_takes_hours(
    env: dict[str, str], database_url: str
) -> None:
    # Given an account with two replies answered 90 s and 10 min after they were written (no
    # calendar: every reply counts as written in business hours), and an open task
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO rm_response_tasks (task_id, share_id, workspace_id, account_id, account_name, channel,"
            " kind, owner, after_seconds, status, recorded_at, due_at)"
            " VALUES (gen_random_uuid(), gen_random_uuid(), 'acme', gen_random_uuid(), 'launch', 'console',"
            " 'answer_replies', 'alice', 3600, 'open', now(), now() + interval '1 hour')")
        for n, delay in enumerate((90, 600)):
            conn.execute(
                "INSERT INTO rm_replies (id, share_id, workspace_id, account_id, account_name, channel,"
                " network_reply_id, author, text, received_at, collected_at, state, answered_at)"
                " VALUES (gen_random_uuid(), gen_random_uuid(), 'acme', gen_random_uuid(), 'launch', 'console',"
                " %s, 'ana', 'hi', now() - interval '1 hour', now() - interval '1 hour', 'answered',"
                " now() - interval '1 hour' + make_interval(secs => %s))", (f"r{n}", delay))
    # When the report is read as a table, as JSON, and for the replies written off hours
    table = cli("report", "--workspace", "acme", env={**env, "COLUMNS": "240"})
    as_json = cli("report", "--workspace", "acme", "--format", "json", env=env)
    off = cli("report", "--workspace", "acme", "--hours", "off", "--format", "csv", env=env)
    off_table = cli("report", "--workspace", "acme", "--hours", "off", env={**env, "COLUMNS": "240"})
    bad = cli("report", "--workspace", "acme", "--hours", "weekends", env=env)
    # Then the table has the reply columns: replies, answered, median and p90 to answer, clock
    assert table.returncode == 0, table.stderr
    header = " ".join(table.stdout.splitlines()[:4])
    for heading in ("median to first look", "median to answer", "p90 to answer", "answer clock"):
        assert heading in header, heading
    line = next(row for row in table.stdout.splitlines() if "launch" in row)
    assert "5 min 45 s" in line  # median of 90 s and 10 min
    assert "9 min 9 s" in line  # p90: 90 + 0.9 * 510 s
    assert "wall" in line
    assert "times on the wall clock" in table.stdout
    # And JSON carries the same figures, the hours and the clock, like the API
    report = orjson.loads(as_json.stdout)
    assert (report["hours"], report["clock"]) == ("all", "wall")
    [row] = report["rows"]
    assert (row["replies_received"], row["replies_answered"]) == (2, 2)
    assert (row["median_seconds_to_answer"], row["p90_seconds_to_answer"]) == (345.0, 549.0)
    assert row["clock_to_answer"] == "wall"
    # And --hours off counts no reply (both written in business hours), the tasks unchanged
    assert off.returncode == 0, off.stderr
    assert off.stdout.splitlines()[1] == "launch,1,0,0,0,,,,,0,0,,,,0,0,0,0"  # no counts read: 0 engagement
    assert "replies in off hours" in off_table.stdout
    # And a bad --hours names the choices
    assert bad.returncode == 2
    assert "--hours" in bad.stderr
    assert "business" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_tokens_can_be_created_listed_and_revoked_with_only_output_on_stdout(
    env: dict[str, str], database_url: str
) -> None:
    # Given chatty logging (debug), which must stay on stderr
    chatty = {**env, "FOLLOWTHROUGH_LOG_LEVEL": "debug"}
    # When a token is created with an expiry, the way a script captures it
    created = cli("token", "create", "--workspace", "acme", "--scope", "write", "--label", "ci",
                  "--expires-in", "P30D", env=chatty)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    # Then stdout holds the token alone
    assert created.stdout == token + "\n"
    assert token.startswith("ft_")
    # And the list shows it (never the token) with its expiry
    listed = cli("token", "list", "--workspace", "acme", "--format", "json", env=chatty)
    assert listed.returncode == 0, listed.stderr
    tokens = orjson.loads(listed.stdout)["tokens"]
    assert [(t["scope"], t["label"]) for t in tokens] == [("write", "ci")]
    assert tokens[0]["expires_at"] is not None
    assert token not in listed.stdout
    # When it is revoked
    revoked = cli("token", "revoke", "--workspace", "acme", tokens[0]["id"], env=chatty)
    assert revoked.returncode == 0, revoked.stderr
    # Then it no longer authenticates, and another workspace cannot revoke it (no such token there)
    with connect(database_url) as conn:
        assert workspaces.authenticate(conn, token) is None
    elsewhere = cli("token", "revoke", "--workspace", "other", tokens[0]["id"], env=chatty)
    assert elsewhere.returncode == 2
    assert "not found" in elsewhere.stderr
