"""`mark-sent` with a url alone, through the HTTP API: the post's id is read from the url
for the share's channel (a Bluesky handle resolved to its DID by the account's service),
so the looks that follow find the thread under the post. Against the fake Mastodon and
the AT Protocol development network; a url that names no post is a 422 naming ``url``."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import orjson
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from events.catalogue import ShareSent
from events.store import EventStore
from followthrough import bootstrap
from followthrough.bootstrap import channel_client
from followthrough.settings import Settings
from scheduler.domain.plans import StepInput
from scheduler.services import accounts, workspaces
from scheduler.services.shares import PlanShare, ShareService
from tests.support.cli import cli, command_env
from tests.support.devnet import (  # noqa: F401 (devnet_network: the session fixture ``devnet``)
    Devnet,
    devnet_network,
    reply_to,
    session_token,
    xrpc,
)
from tests.support.fake_mastodon import TOKEN, FakeMastodon
from tests.support.replies import caught_up, inbox_page
from tests.support.servers import serve
from tests.support.shares import WS, Clock, runtime, share_service
from workers.channels import Publisher
from workers.channels.bluesky import BlueskyPublisher
from workers.channels.mastodon import MastodonPublisher
from workers.collection import collect_one
from workers.execution import execute_share

PLAN = [StepInput(kind="check_replies", after=timedelta(hours=1), owner="alice")]
LOOKS = {"replies": {"cadence": [{"until": "P1D", "every": "PT1S"}]}}


@pytest.fixture
def api(settings: Settings) -> Iterator[httpx.Client]:
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        token = workspaces.create_token(conn, WS, "write")
    with serve(bootstrap.build_api(settings)) as base_url, httpx.Client(
            base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def held_share(pool: ConnectionPool[Any], store: EventStore, channel: Publisher, name: str,
               config: dict[str, Any]) -> tuple[UUID, ShareService, Any]:
    """A share held as too late (found 2 minutes past due, its account holding past 1 minute):
    the team posts it by hand, then marks it sent."""
    with pool.connection() as conn:
        workspaces.ensure_workspace(conn, WS)
        account = accounts.create(conn, workspace_id=WS, name=name, channel=channel.channel, config=config,
                                  default_response_plan=None, late_policy="hold", max_lateness_seconds=60)
    clock = Clock()
    shares = share_service(pool, store, clock=clock)
    rt = runtime(pool, store, channel, clock=clock)
    share_id = shares.plan(WS, PlanShare(account_id=account.id, text="hello", response_plan=PLAN,
                                         scheduled_at=datetime.now(UTC) - timedelta(minutes=2)), actor="test").share_id
    assert execute_share(rt, share_id) == "share_held"
    return share_id, shares, rt


def sent_external_id(store: EventStore, share_id: UUID) -> str:
    [sent] = [r.event for r in store.read_stream(f"share-{share_id}") if isinstance(r.event, ShareSent)]
    return sent.external_id


def refused(response: httpx.Response, says: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "url" in response.text
    assert says in response.text


def collected(rt: Any, store: EventStore, pool: ConnectionPool[Any], settings: Settings, share_id: UUID,
              until: Callable[[list[dict[str, Any]]], bool], *, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Look at the thread until the inbox holds what ``until`` wants (an AppView indexes late)."""
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    while True:
        assert collect_one(rt, share_id) == "replies_collected"
        caught_up(store, settings.database_url or "")
        found = inbox_page(pool, share_id=share_id)
        if until(found) or datetime.now(UTC) > deadline:
            return found


def test_a_mastodon_share_marked_sent_with_its_url_alone_records_the_status_id_and_its_replies_are_found(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], mastodon: FakeMastodon,
    network_client: httpx.Client, api: httpx.Client,
) -> None:
    # Given a share held as too late on a Mastodon account, then posted by hand, with a reply
    config = {"base_url": mastodon.base_url, "access_token_env": "TEAM_MASTODON_TOKEN", **LOOKS}
    channel = MastodonPublisher(network_client, env={"TEAM_MASTODON_TOKEN": TOKEN})
    share_id, _, rt = held_share(pool, store, channel, "team", config)
    status = mastodon.seed("hello", datetime.now(UTC))
    mastodon.add_reply(status["id"], "Nice one!")
    mark = f"/v1/shares/{share_id}/mark-sent"
    # When it is marked sent with a url naming no status, or a status on another server
    # Then each is refused, naming the url, and nothing is written
    refused(api.post(mark, json={"url": f"{mastodon.base_url}/@team"}), "not a Mastodon post")
    refused(api.post(mark, json={"url": f"https://elsewhere.example/@team@x/{status['id']}"}),
            "not on the account's server")
    assert api.get(f"/v1/shares/{share_id}").json()["status"] == "held"
    # When it is marked sent with the status' url alone
    marked = api.post(mark, json={"url": status["url"]})
    # Then the post's id is the status id, not its url
    assert marked.status_code == 200, marked.text
    assert (marked.json()["status"], marked.json()["external_id"]) == ("sent", status["id"])
    assert sent_external_id(store, share_id) == status["id"]
    # And the next look asks for that status' context and finds the reply
    found = collected(rt, store, pool, settings, share_id, lambda r: len(r) == 1, timeout=10)
    assert [(r["author"], r["text"]) for r in found] == [("ana@example.social", "Nice one!")]
    assert f"/api/v1/statuses/{status['id']}/context" in "".join(mastodon.requests)


def test_a_mastodon_uri_of_the_users_statuses_form_works_as_well(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], mastodon: FakeMastodon,
    network_client: httpx.Client, api: httpx.Client,
) -> None:
    config = {"base_url": mastodon.base_url, "access_token_env": "TEAM_MASTODON_TOKEN", **LOOKS}
    channel = MastodonPublisher(network_client, env={"TEAM_MASTODON_TOKEN": TOKEN})
    share_id, _, _ = held_share(pool, store, channel, "team", config)
    status = mastodon.seed("hello", datetime.now(UTC))
    marked = api.post(f"/v1/shares/{share_id}/mark-sent", json={"url": status["uri"]})
    assert marked.status_code == 200, marked.text
    assert marked.json()["external_id"] == status["id"]


def test_the_command_line_marks_a_share_sent_from_its_url_and_refuses_a_bad_url_with_a_message(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], mastodon: FakeMastodon,
    network_client: httpx.Client,
) -> None:
    # Given a held Mastodon share, posted by hand
    config = {"base_url": mastodon.base_url, "access_token_env": "TEAM_MASTODON_TOKEN", **LOOKS}
    channel = MastodonPublisher(network_client, env={"TEAM_MASTODON_TOKEN": TOKEN})
    share_id, _, _ = held_share(pool, store, channel, "team", config)
    status = mastodon.seed("hello", datetime.now(UTC))
    env = command_env(settings.database_url, settings.broker_url, settings.home)
    # When `followthrough shares mark-sent` is given a url naming no post
    bad = cli("shares", "mark-sent", str(share_id), "--url", f"{mastodon.base_url}/@team", env=env)
    # Then it says what is wrong with the url, exits 2, and shows no traceback
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "followthrough: url: is not a Mastodon post's address" in bad.stderr
    assert "Traceback" not in bad.stderr
    # When it is given the post's url alone
    good = cli("shares", "mark-sent", str(share_id), "--url", status["url"], env=env)
    # Then the share is sent, the post's id read from the url
    assert good.returncode == 0, good.stdout + good.stderr
    shown = orjson.loads(good.stdout.splitlines()[-1])
    assert (shown["status"], shown["external_id"], shown["url"]) == ("sent", status["id"], status["url"])
    assert sent_external_id(store, share_id) == status["id"]


# --- Bluesky: the AT Protocol development network -------------------------------------------


def post_by_hand(devnet: Devnet, handle: str, text: str) -> str:
    """``handle`` posts ``text`` in the app; the post's at-uri."""
    record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": datetime.now(UTC).isoformat()}
    answer = xrpc(devnet.pds, "com.atproto.repo.createRecord", token=session_token(devnet, handle),
                  body={"repo": devnet.account(handle).did, "collection": "app.bsky.feed.post", "record": record})
    answer.raise_for_status()
    return str(answer.json()["uri"])


def test_a_bluesky_share_marked_sent_with_its_app_url_has_its_handle_resolved_and_its_replies_found(
    devnet: Devnet, settings: Settings, store: EventStore, pool: ConnectionPool[Any], api: httpx.Client,
) -> None:
    # Given a share held as too late on alice's Bluesky account, then posted by hand, with bob's reply
    env = {"DEVNET_ALICE_PASSWORD": devnet.account("alice.test").password}
    config = {"service": devnet.pds, "handle": "alice.test", "app_password_env": "DEVNET_ALICE_PASSWORD",
              "appview": devnet.appview, **LOOKS}
    client = channel_client(settings)
    try:
        share_id, _, rt = held_share(pool, store, BlueskyPublisher(client, env=env),
                                     f"alice-{uuid.uuid4().hex[:6]}", config)
        uri = post_by_hand(devnet, "alice.test", f"hello [{uuid.uuid4().hex[:8]}]")
        rkey = uri.rsplit("/", 1)[-1]
        reply_to(devnet, "bob.test", uri, "Congrats!")
        mark = f"/v1/shares/{share_id}/mark-sent"
        # When it is marked sent with a handle the network does not know, or no post at all
        # Then each is refused, naming the url
        refused(api.post(mark, json={"url": f"https://bsky.app/profile/nobody.test/post/{rkey}"}),
                "does not resolve")
        refused(api.post(mark, json={"url": "https://bsky.app/profile/alice.test"}), "not a Bluesky post")
        # When it is marked sent with the app's url alone, which names alice by her handle
        marked = api.post(mark, json={"url": f"https://bsky.app/profile/alice.test/post/{rkey}"})
        # Then the post's id is its at-uri with alice's DID, resolved by her account's service
        assert marked.status_code == 200, marked.text
        assert marked.json()["external_id"] == uri
        assert uri.startswith(f"at://{devnet.account('alice.test').did}/")
        # And the looks that follow find bob's reply in the thread
        found = collected(rt, store, pool, settings, share_id, lambda r: len(r) == 1)
        assert [(r["author"], r["text"]) for r in found] == [("bob.test", "Congrats!")]
    finally:
        client.close()


def test_a_bluesky_at_uri_naming_the_author_by_handle_is_resolved_as_well(
    devnet: Devnet, settings: Settings, store: EventStore, pool: ConnectionPool[Any], api: httpx.Client,
) -> None:
    env = {"DEVNET_ALICE_PASSWORD": devnet.account("alice.test").password}
    config = {"service": devnet.pds, "handle": "alice.test", "app_password_env": "DEVNET_ALICE_PASSWORD"}
    client = channel_client(settings)
    try:
        share_id, _, _ = held_share(pool, store, BlueskyPublisher(client, env=env),
                                    f"alice-{uuid.uuid4().hex[:6]}", config)
        uri = post_by_hand(devnet, "alice.test", f"hello [{uuid.uuid4().hex[:8]}]")
        by_handle = f"at://alice.test/app.bsky.feed.post/{uri.rsplit('/', 1)[-1]}"
        marked = api.post(f"/v1/shares/{share_id}/mark-sent", json={"url": by_handle})
        assert marked.status_code == 200, marked.text
        assert marked.json()["external_id"] == uri
    finally:
        client.close()
