"""The Bluesky channel against the real AT Protocol development network (``@atproto/dev-env``:
PLC, PDS and AppView on loopback; ``tests/support/devnet.py``). The publisher is built as a
worker builds it (``followthrough.bootstrap.channel_client``) and called as a worker calls it.

Accounts: alice.test publishes, bob.test is mentioned and replies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from psycopg_pool import ConnectionPool

from events.catalogue import ShareSent
from events.store import EventStore
from followthrough.bootstrap import channel_client
from followthrough.settings import Settings
from scheduler.api.views import share_view
from scheduler.domain.plans import StepInput
from scheduler.errors import InvalidInputError
from scheduler.services import accounts, workspaces
from scheduler.services.shares import PlanShare, ShareService
from tests.support.devnet import (  # noqa: F401 (devnet_network: the session fixture ``devnet``)
    ROOT,
    Devnet,
    devnet_network,
    expired,
    get_record,
    on_appview,
    post_records,
    reply_to,
)
from tests.support.shares import WS, Clock, expire_lease, runtime, share_service
from workers.channels import PermanentChannelError, Post
from workers.channels.bluesky import BlueskyPublisher, record_key
from workers.execution import execute_share

PASSWORD_ENV = "DEVNET_ALICE_PASSWORD"
PLAN = [StepInput(kind="check_replies", after=timedelta(hours=1), owner="alice")]


@pytest.fixture(scope="module")
def alice_env(devnet: Devnet) -> dict[str, str]:
    return {PASSWORD_ENV: devnet.account("alice.test").password}


@pytest.fixture(scope="module")
def publisher(alice_env: dict[str, str]) -> Iterator[BlueskyPublisher]:
    client = channel_client(Settings())
    yield BlueskyPublisher(client, env=alice_env)
    client.close()


def alice_config(devnet: Devnet) -> dict[str, Any]:
    return {"service": devnet.pds, "handle": "alice.test", "app_password_env": PASSWORD_ENV}


def post_of(devnet: Devnet, text: str, *, share_id: UUID | None = None) -> Post:
    share_id = share_id or uuid.uuid4()
    return Post(share_id=share_id, workspace_id=WS, account_name="alice", account_config=alice_config(devnet),
                text=text, scheduled_at=datetime.now(UTC).replace(microsecond=0),
                idempotency_key=f"followthrough-{share_id}", attempt=1)


def texts_on_pds(devnet: Devnet, text: str) -> list[dict[str, Any]]:
    return [r for r in post_records(devnet, "alice.test") if r["value"]["text"] == text]


def unique(text: str) -> str:
    return f"{text} [{uuid.uuid4().hex[:8]}]"


# --- publishing -----------------------------------------------------------------------------


def test_a_post_with_a_link_and_a_mention_is_written_with_facets_at_utf8_byte_offsets(
    devnet: Devnet, publisher: BlueskyPublisher
) -> None:
    # Given a text whose link and mention come after characters of several UTF-8 bytes each
    text = unique("Café ☕ ünïcode 🚀 read https://example.com/launch?x=1, then ask @bob.test.")
    # When the worker's publisher publishes it
    published = publisher.publish(post_of(devnet, text))
    # Then the PDS holds the record, whose facets cover the link and the mention by bytes
    answer = get_record(devnet, published.external_id)
    assert answer.status_code == 200, answer.text
    record = answer.json()["value"]
    assert record["text"] == text
    by_kind = {f["features"][0]["$type"]: f for f in record["facets"]}
    encoded = text.encode()

    def covered(facet: dict[str, Any]) -> str:
        return encoded[facet["index"]["byteStart"]:facet["index"]["byteEnd"]].decode()

    link = by_kind["app.bsky.richtext.facet#link"]
    assert covered(link) == "https://example.com/launch?x=1"
    assert link["features"][0]["uri"] == "https://example.com/launch?x=1"
    mention = by_kind["app.bsky.richtext.facet#mention"]
    assert covered(mention) == "@bob.test"
    # And the mention names the second account by the DID the network gave it
    assert mention["features"][0]["did"] == devnet.account("bob.test").did
    # And the share's sent time is the record's own createdAt
    assert published.created_at == datetime.fromisoformat(record["createdAt"])
    # And the AppView, once it has indexed the post, shows the same text and facets
    post = on_appview(devnet, "app.bsky.feed.getPosts", {"uris": [published.external_id]},
                      lambda body: next(iter(body["posts"]), None))
    assert post["author"]["did"] == devnet.account("alice.test").did
    assert post["record"]["text"] == text
    assert post["record"]["facets"] == record["facets"]


def test_a_mention_of_a_handle_the_network_does_not_know_stays_plain_text(
    devnet: Devnet, publisher: BlueskyPublisher
) -> None:
    # Given a text mentioning a handle no account has, and one an account has
    text = unique("Thanks @nobody.test and @bob.test")
    # When it is published
    published = publisher.publish(post_of(devnet, text))
    # Then the record is there with one mention facet only: the known account's
    record = get_record(devnet, published.external_id).json()["value"]
    assert record["text"] == text
    assert [f["features"][0]["did"] for f in record["facets"]] == [devnet.account("bob.test").did]
    start = text.index("@bob.test")
    assert record["facets"][0]["index"] == {"byteStart": start, "byteEnd": start + len("@bob.test")}


def test_300_graphemes_are_accepted_by_the_pds_and_more_are_refused_by_the_planner_as_by_the_pds(
    devnet: Devnet, publisher: BlueskyPublisher, pool: ConnectionPool[Any], store: EventStore
) -> None:
    # Given texts of 300 and 301 graphemes, each grapheme several code points (e + accent, a flag)
    grapheme = "e\u0301"
    at_limit = "🇫🇷" + grapheme * 290 + uuid.uuid4().hex[:9]
    over = at_limit + "!"
    account = bluesky_account(pool, devnet)
    shares = share_service(pool, store)
    # When the share of 300 graphemes is planned and published
    plan_share(shares, account, at_limit)
    published = publisher.publish(post_of(devnet, at_limit))
    # Then the PDS holds it
    assert get_record(devnet, published.external_id).json()["value"]["text"] == at_limit
    # When one of 301 graphemes is planned, then it is refused, naming the field
    with pytest.raises(InvalidInputError) as refused:
        plan_share(shares, account, over)
    assert refused.value.field == "text"
    assert "301 graphemes" in str(refused.value)
    # And the PDS would have refused it too: the limit is the server's
    with pytest.raises(PermanentChannelError):
        publisher.publish(post_of(devnet, over))
    assert texts_on_pds(devnet, over) == []


def test_publishing_the_same_share_twice_as_a_retry_would_leaves_one_record(
    devnet: Devnet, publisher: BlueskyPublisher
) -> None:
    # Given a share already published
    share = post_of(devnet, unique("Published once, however often it is tried"))
    first = publisher.publish(share)
    # When a retried attempt publishes it again (same share, same idempotency key)
    again = publisher.publish(share)
    # Then the second answer is the first post, and the repository holds one record of it
    assert again == first
    assert [r["uri"] for r in texts_on_pds(devnet, share.text)] == [first.external_id]
    assert first.external_id.endswith("/" + record_key(share))


def test_find_returns_the_post_and_delete_removes_it(devnet: Devnet, publisher: BlueskyPublisher) -> None:
    # Given a published share
    share = post_of(devnet, unique("Found by its key, then removed"))
    published = publisher.publish(share)
    # When the worker looks for it, then it finds that post
    assert publisher.find(share) == published
    # When it is deleted
    publisher.delete(share, published.external_id)
    # Then the PDS has no such record, and a look-up finds nothing
    assert get_record(devnet, published.external_id).status_code in (400, 404)
    assert publisher.find(share) is None
    assert texts_on_pds(devnet, share.text) == []
    # And deleting it again is no error
    publisher.delete(share, published.external_id)


def test_a_reply_from_a_second_account_is_in_the_posts_thread_on_the_appview(
    devnet: Devnet, publisher: BlueskyPublisher
) -> None:
    # Given a published share
    published = publisher.publish(post_of(devnet, unique("Tell us what you think")))
    # When bob replies to it in the app
    reply_uri = reply_to(devnet, "bob.test", published.external_id, "Looks great! 👍")
    # Then the AppView's thread of the post holds bob's reply, with its author and text
    reply = on_appview(
        devnet, "app.bsky.feed.getPostThread", {"uri": published.external_id},
        lambda body: next((r for r in body["thread"].get("replies", []) if r["post"]["uri"] == reply_uri), None),
    )
    assert reply["post"]["author"]["did"] == devnet.account("bob.test").did
    assert reply["post"]["author"]["handle"] == "bob.test"
    assert reply["post"]["record"]["text"] == "Looks great! 👍"
    assert reply["post"]["record"]["reply"]["parent"]["uri"] == published.external_id


def test_a_session_token_that_expired_is_replaced_once_and_the_post_written_once(
    devnet: Devnet, alice_env: dict[str, str]
) -> None:
    # Given a worker whose session token has expired by the time it writes the post
    seen: list[tuple[str, int, str]] = []
    expire_next_write = [True]

    def on_request(request: httpx.Request) -> None:
        if request.url.path.endswith("/com.atproto.repo.createRecord") and expire_next_write:
            expire_next_write.clear()
            token = request.headers["Authorization"].removeprefix("Bearer ")
            request.headers["Authorization"] = f"Bearer {expired(token)}"

    def on_response(response: httpx.Response) -> None:
        response.read()
        error = response.json().get("error", "") if not response.is_success else ""
        seen.append((response.request.url.path.rsplit("/", 1)[1], response.status_code, error))

    client = channel_client(Settings())
    client.event_hooks = {"request": [on_request], "response": [on_response]}
    share = post_of(devnet, unique("Written after a new session"))
    # When it publishes
    try:
        published = BlueskyPublisher(client, env=alice_env).publish(share)
    finally:
        client.close()
    # Then the PDS refused the expired token, the publisher opened one new session and wrote once
    writes = [s for s in seen if s[0] == "com.atproto.repo.createRecord"]
    assert writes == [("com.atproto.repo.createRecord", 400, "ExpiredToken"),
                      ("com.atproto.repo.createRecord", 200, "")]
    assert [s[0] for s in seen].count("com.atproto.server.createSession") == 2
    assert [r["uri"] for r in texts_on_pds(devnet, share.text)] == [published.external_id]


# --- a worker killed mid-call ------------------------------------------------------------


def test_a_worker_killed_after_the_write_is_reconciled_by_the_next_delivery_into_one_record(
    devnet: Devnet, alice_env: dict[str, str], pool: ConnectionPool[Any], store: EventStore, settings: Settings
) -> None:
    # Given a due share on the devnet account
    shares = share_service(pool, store)
    text = unique("Sent once even though the worker died")
    share_id = plan_share(shares, bluesky_account(pool, devnet), text)
    # When a worker process runs its delivery and is SIGKILLed as soon as the PDS has written the post
    worker = subprocess.run(
        [sys.executable, "-m", "tests.support.devnet_worker", settings.database_url or "", str(share_id), "1.0"],
        cwd=ROOT, env={**os.environ, **alice_env}, capture_output=True, text=True, timeout=120, check=False,
    )
    # Then the worker died mid-call: the post is on the PDS, the log has the attempt and no outcome
    assert worker.returncode == -signal.SIGKILL, worker.stderr[-2000:]
    [written] = texts_on_pds(devnet, text)
    assert types(store, share_id) == ["SharePlanned", "ShareAttemptStarted", "ResponseTasksRecorded"]
    # When a later delivery comes, once the dead worker's call lease has run out
    expire_lease(pool, share_id)
    client = channel_client(settings)
    rt = runtime(pool, store, BlueskyPublisher(client, env=alice_env), clock=Clock(), call_budget_seconds=1.0)
    try:
        assert execute_share(rt, share_id) == "share_sent"
    finally:
        client.close()
    # Then it recorded the post the dead worker made, as reconciled, and the PDS holds exactly one
    sent = [r.event for r in store.read_stream(f"share-{share_id}") if isinstance(r.event, ShareSent)]
    assert [(s.external_id, s.reconciled) for s in sent] == [(written["uri"], True)]
    assert sent[0].sent_at == datetime.fromisoformat(written["value"]["createdAt"])
    assert len(texts_on_pds(devnet, text)) == 1


# --- helpers of this module ----------------------------------------------------------------


def bluesky_account(pool: ConnectionPool[Any], devnet: Devnet) -> accounts.Account:
    with pool.connection() as conn:
        workspaces.ensure_workspace(conn, WS)
        return accounts.create(conn, workspace_id=WS, name=f"alice-{uuid.uuid4().hex[:6]}", channel="bluesky",
                               config=alice_config(devnet), default_response_plan=None, late_policy="send",
                               max_lateness_seconds=None)


def plan_share(shares: ShareService, account: accounts.Account, text: str) -> UUID:
    planned = shares.plan(WS, PlanShare(account_id=account.id, text=text, scheduled_at=None, response_plan=PLAN),
                          actor="test", render=share_view)
    return UUID(planned.body["id"])


def types(store: EventStore, share_id: UUID) -> list[str]:
    return [r.type_name for r in store.read_stream(f"share-{share_id}")]
