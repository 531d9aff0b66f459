"""Rotating the keys that seal webhook signing secrets, as an operator does it: a new key
put first, `followthrough webhooks reseal`, then the old key removed; receivers notice
nothing, and a secret no key opens is named, never silently dropped."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import psycopg
import pytest
from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from events.store import EventStore
from followthrough.settings import Settings
from followthrough.webhooks import local_key
from scheduler.services import webhooks
from scheduler.services.webhook_secrets import SecretBox, SecretUnreadableError, generate_key
from tests.support.cli import Ran, cli, command_env
from tests.support.fake_channel import FakeChannel
from tests.support.shares import WS, Clock, make_account, plan, runtime, share_service
from tests.support.webhook_receiver import Receiver
from tests.support.webhooks import bearer, deliver_until, deliverer, fast, projection, register
from workers.execution import execute_share


def reseal(settings: Settings, keys: str) -> Ran:
    return cli("webhooks", "reseal", env=command_env(settings.database_url, settings.broker_url, settings.home,
                                                      FOLLOWTHROUGH_WEBHOOK_SECRET_KEYS=keys))


def json_lines(text: str) -> list[dict[str, Any]]:
    """The log lines among a command's stderr (its messages to the operator are plain text)."""
    return [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]


def stored_secrets(database_url: str) -> dict[str, str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return {str(i): s for i, s in conn.execute("SELECT id, secret FROM webhook_endpoints").fetchall()}


def test_reseal_moves_every_secret_to_the_new_key_so_the_old_one_can_go_and_receivers_still_verify(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], client: httpx.Client, receiver: Receiver,
    http: httpx.Client,
) -> None:
    database_url = settings.database_url or ""
    # Given an endpoint registered under the roles' key (here the one kept under home), a deleted one,
    # and one in another workspace sealed under a key nobody has any more
    auth = bearer(database_url, WS)
    endpoint = register(client, auth, receiver.url, ["share.sent"])
    receiver.secret = endpoint["secret"]
    gone = register(client, auth, receiver.url, ["share.failed"])
    assert client.delete(f"/v1/webhooks/{gone['id']}", headers=auth).status_code == 204
    old = local_key(settings.home / "webhook-secret.key")
    bearer(database_url, "elsewhere")  # the other workspace
    with psycopg.connect(database_url, autocommit=True) as conn:
        lost = webhooks.register(conn, SecretBox([generate_key()]), "elsewhere", url=receiver.url,
                                 events=["share.sent"])
    before = stored_secrets(database_url)

    # When the operator puts a new key in front of the old one and reseals
    new = generate_key()
    result = reseal(settings, f"{new},{old}")

    # Then the secret it could open is sealed under the new key alone, the same secret
    assert result.stdout == (
        "resealed 1 webhook signing secret under the first key of FOLLOWTHROUGH_WEBHOOK_SECRET_KEYS\n")
    after = stored_secrets(database_url)
    assert after[endpoint["id"]] != before[endpoint["id"]]
    assert SecretBox([new]).open(after[endpoint["id"]]) == endpoint["secret"]
    with pytest.raises(SecretUnreadableError):
        SecretBox([old]).open(after[endpoint["id"]])
    # And the one no key opens is left as it was, named with its workspace and the fix, exit 1
    assert after[str(lost.id)] == before[str(lost.id)]
    assert after[gone["id"]] == ""
    assert result.returncode == 1
    assert f"webhook endpoint {lost.id} (workspace elsewhere): no configured key opens its secret" in result.stderr
    assert "or delete those endpoints (DELETE /v1/webhooks/{id}) and register them again" in result.stderr
    assert "Traceback" not in result.stderr
    for secret in (endpoint["secret"], lost.secret, new, old):
        assert secret not in result.stdout + result.stderr
    [logged] = [line for line in json_lines(result.stderr) if line["event"] == "webhook_secrets_resealed"]
    assert (logged["level"], logged["resealed"], logged["unreadable"]) == ("warning", 1, 1)

    # When the old key is removed from the roles, a share is sent and delivered
    execute_share(runtime(pool, store, FakeChannel(), clock=Clock()),
                  plan(share_service(pool, store), make_account(pool)))
    hooks = deliverer(fast(settings, webhook_secret_keys=SecretStr(new)), pool, http)
    deliver_until(hooks, projection(store, settings), receiver.accepted, what="the share.sent delivery")
    # Then the receiver verified its signature with the secret it was given at registration
    [got] = receiver.accepted()
    assert got.payload is not None
    assert got.payload["type"] == "share.sent"

    # When the endpoint whose key is lost is deleted, resealing again finds nothing amiss
    with psycopg.connect(database_url, autocommit=True) as conn:
        webhooks.delete(conn, "elsewhere", lost.id)
    again = reseal(settings, new)
    assert (again.returncode, again.stdout) == (
        0, "resealed 1 webhook signing secret under the first key of FOLLOWTHROUGH_WEBHOOK_SECRET_KEYS\n")
    assert SecretBox([new]).open(stored_secrets(database_url)[endpoint["id"]]) == endpoint["secret"]


def test_a_sealing_key_that_is_not_a_fernet_key_is_refused_with_the_fix_and_nothing_changes(
    settings: Settings, client: httpx.Client, receiver: Receiver,
) -> None:
    database_url = settings.database_url or ""
    endpoint = register(client, bearer(database_url, WS), receiver.url, ["share.sent"])
    before = stored_secrets(database_url)
    result = reseal(settings, "not-a-key," + local_key(settings.home / "webhook-secret.key"))
    assert result.returncode == 2
    assert "FOLLOWTHROUGH_WEBHOOK_SECRET_KEYS must be comma-separated Fernet keys" in result.stderr
    assert "Traceback" not in result.stderr
    assert stored_secrets(database_url) == before
    assert endpoint["id"] in before
