"""Every worker line names its context: a failing Mastodon share's lines say whose share it
is (workspace, account id and name, channel, the server's host) and, where the product
knows the fix, a ``hint``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from psycopg_pool import ConnectionPool
from structlog.testing import capture_logs

from events.store import EventStore
from followthrough.settings import Settings
from tests.support.fake_mastodon import FakeMastodon
from tests.support.replies import account_on, sent_share
from tests.support.shares import WS, Clock, mastodon_account, plan, runtime, share_service
from workers.channels.console import ConsolePublisher
from workers.channels.mastodon import MastodonPublisher
from workers.collection import collect_one
from workers.execution import execute_share

pytestmark = pytest.mark.integration


@pytest.fixture
def network() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(5.0, read=2.0)) as c:
        yield c


def failure_line(logs: list[dict[str, Any]]) -> dict[str, Any]:
    [line] = [line for line in logs if line["event"] in ("share_failed", "share_retry_scheduled", "share_abandoned")]
    return line


@pytest.mark.parametrize(("env", "hint"), [
    ({}, "set LAUNCH_MASTODON_TOKEN"),
    ({"LAUNCH_MASTODON_TOKEN": "not-the-token"}, "refused the account's token"),
], ids=["variable unset", "token refused"])
def test_a_failing_mastodon_shares_line_names_workspace_account_host_and_the_fix(
    store: EventStore, pool: ConnectionPool[Any], mastodon: FakeMastodon, network: httpx.Client,
    env: dict[str, str], hint: str,
) -> None:
    # Given a Mastodon account whose token is missing from the workers' environment, or refused
    shares = share_service(pool, store)
    account = mastodon_account(pool, mastodon.base_url, name="launch-team", token_env="LAUNCH_MASTODON_TOKEN")
    share_id = plan(shares, account)
    rt = runtime(pool, store, MastodonPublisher(network, env=env), clock=Clock())
    # When a worker tries to publish its share
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:  # the bound context too
        assert execute_share(rt, share_id) == "share_failed"
    # Then the failure's line says whose share it is, on which server, and what to do
    line = failure_line(logs)
    assert line["share_id"] == str(share_id)
    assert (line["workspace_id"], line["account_id"], line["account_name"], line["channel"]) == (
        WS, str(account.id), "launch-team", "mastodon")
    assert line["host"] == "127.0.0.1"
    assert hint in line["hint"]
    # And the publishing line before it names the same context
    [publishing] = [entry for entry in logs if entry["event"] == "share_publishing"]
    assert (publishing["account_name"], publishing["host"]) == ("launch-team", "127.0.0.1")


def test_a_look_for_replies_names_the_shares_workspace_account_and_channel(
    store: EventStore, pool: ConnectionPool[Any], settings: Settings
) -> None:
    # Given a sent console share
    shares = share_service(pool, store)
    rt = runtime(pool, store, ConsolePublisher(settings.console_dir.resolve()), clock=Clock())
    account = account_on(pool, "console", {})
    share_id = sent_share(rt, shares, account)
    # When a worker looks for its replies
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        collect_one(rt, share_id)
    # Then the look's line says whose share it is
    [look] = [line for line in logs if line["event"] in ("replies_collected", "replies_postponed")]
    assert (look["workspace_id"], look["account_id"], look["account_name"], look["channel"]) == (
        WS, str(account.id), account.name, "console")
