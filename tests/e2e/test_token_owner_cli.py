"""`followthrough token create --owner`: the person a token belongs to, as an operator names
them, and the actor of what the token then does through the API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from followthrough.settings import Settings
from tests.support.api import api_client
from tests.support.cli import cli, command_env
from tests.support.database import connect

pytestmark = pytest.mark.e2e

PLAN = [{"kind": "check_replies", "after": "PT1H", "owner": "alice"}]


@pytest.fixture
def env(database_url: str, broker_url: str, tmp_path: Any) -> dict[str, str]:
    return command_env(database_url, broker_url, tmp_path)


def test_a_token_created_with_an_owner_names_them_on_what_it_does_and_in_the_list(
    env: dict[str, str], settings: Settings, database_url: str
) -> None:
    # When an operator creates a token for ana, with the installed command in a shell of their own
    command = Path(sys.executable).parent / "followthrough"
    created = subprocess.run([str(command), "token", "create", "--workspace", "acme", "--scope", "write",
                              "--owner", "ana", "--label", "laptop"], env=env, capture_output=True, text=True,
                             timeout=60, check=False)
    # Then stdout holds the token alone
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert created.stdout == token + "\n"
    # And what the token does through the API is ana's in the log
    auth = {"Authorization": f"Bearer {token}"}
    with api_client(settings) as api:
        account = api.post("/v1/accounts", headers=auth, json={"name": "team", "channel": "console"}).json()
        planned = api.post("/v1/shares", headers=auth, json={"account_id": account["id"], "text": "Hi",
                                                             "response_plan": PLAN})
        assert planned.status_code == 201, planned.text
    with connect(database_url) as conn:
        actor = conn.execute("SELECT metadata->>'actor' FROM events WHERE stream_id = %s",
                             (f"share-{planned.json()['id']}",)).fetchone()
    assert actor == ("ana",)
    # And the list names the owner, in JSON and in the table (a token without one shows "-")
    assert cli("token", "create", "--workspace", "acme", "--scope", "read", "--label", "ci", env=env).returncode == 0
    listed = cli("token", "list", "--workspace", "acme", "--format", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert sorted((t["label"], t["owner"]) for t in orjson.loads(listed.stdout)["tokens"]) == [
        ("ci", None), ("laptop", "ana")]
    table = cli("token", "list", "--workspace", "acme", env=env)
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[-2:] == ["owner", "label"]
    assert sorted(row.split()[-2:] for row in rows) == [["-", "ci"], ["ana", "laptop"]]


@pytest.mark.parametrize("owner", ["", "  ", "ana\x07"])
def test_an_owner_that_names_no_one_gets_a_message_not_a_traceback(
    env: dict[str, str], database_url: str, owner: str
) -> None:
    refused = cli("token", "create", "--workspace", "acme", "--scope", "write", "--owner", owner, env=env)
    assert refused.returncode == 2
    assert "owner: must" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert refused.stdout == ""
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM api_tokens").fetchone() == (0,)
