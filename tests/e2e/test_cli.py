"""The `followthrough` command as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from typing import Any

import orjson
import pytest

from events.catalogue import ShareCancelled
from events.records import NewEvent
from events.store import EventStore
from scheduler.services import workspaces
from tests.support.database import connect

pytestmark = pytest.mark.e2e


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "followthrough.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture
def env(database_url: str, broker_url: str, tmp_path: Any) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "BROKER_URL": broker_url,
            "FOLLOWTHROUGH_HOME": str(tmp_path), "FOLLOWTHROUGH_LOG_FORMAT": "json"}


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
    assert orjson.loads(followthrough.stdout) == {"rows": [], "sent_shares_without_response_tasks": 0}


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
