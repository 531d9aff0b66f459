"""The Bluesky channel against the real AT Protocol development network (``@atproto/dev-env``:
PLC, PDS and AppView on loopback; ``tests/support/devnet.py``). The publisher is built as a
worker builds it (``followthrough.bootstrap.channel_client``) and called as a worker calls it.

Accounts: alice.test publishes, bob.test is mentioned and replies, carol.test replies to him.
The reply loop runs as a user sees it: replies collected by the worker's look, read and
answered through the HTTP API, the answer published by the worker and seen in the thread.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from PIL import ExifTags, Image
from psycopg_pool import ConnectionPool
from structlog.testing import capture_logs

from events.catalogue import ReplyAnswered, ShareSent
from events.store import EventStore
from followthrough import bootstrap
from followthrough.bootstrap import channel_client
from followthrough.settings import Settings
from scheduler.domain.media import MediaRequest
from scheduler.domain.plans import StepInput
from scheduler.errors import InvalidInputError
from scheduler.services import accounts, workspaces
from scheduler.services.shares import PlanShare, ShareService
from tests.support.devnet import (  # noqa: F401 (devnet_network: the session fixture ``devnet``)
    ROOT,
    Devnet,
    devnet_network,
    engage,
    expired,
    get_record,
    on_appview,
    post_records,
    reply_to,
    xrpc,
)
from tests.support.link_pages import link_pages, og_page, png
from tests.support.media import exif_of, noisy_png, photo_with_location, stored
from tests.support.replies import ANSWER_PLAN, catch_up, inbox_page, reply_service, sent_share
from tests.support.servers import serve
from tests.support.shares import WS, Clock, expire_lease, runtime, share_service
from tests.support.threads import plan_thread
from workers.answering import publish_answers
from workers.channels import Attachment, PermanentChannelError, Post
from workers.channels.bluesky import BlueskyPublisher, record_key
from workers.channels.link_cards import LinkPreviews
from workers.collection import collect_one
from workers.execution import execute_share
from workers.runtime import Runtime

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


def test_an_image_post_retried_uploads_again_and_leaves_one_record_found_by_its_key(
    devnet: Devnet, publisher: BlueskyPublisher
) -> None:
    # Given a post with an image, already published
    image = png(30, 20)
    item = Attachment(media_id=uuid.uuid4(), kind="image", mime="image/png", data=image, width=30, height=20,
                      alt="A small square", focus=None, sha256=hashlib.sha256(image).hexdigest())
    share = replace(post_of(devnet, unique("An image, tried twice")), media=(item,))
    first = publisher.publish(share)
    # When a retried attempt publishes it again (its upload made again), and looks it up
    again = publisher.publish(share)
    found = publisher.find(share)
    # Then both answers are the first post, and the repository holds one record, with its image
    assert again == first == found
    [record] = texts_on_pds(devnet, share.text)
    assert record["uri"] == first.external_id
    assert [i["alt"] for i in record["value"]["embed"]["images"]] == ["A small square"]


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


# --- link cards (pages served on loopback by the test) --------------------------------------


def test_a_share_linking_a_page_with_open_graph_tags_is_published_with_its_card_and_thumb(
    devnet: Devnet, alice_env: dict[str, str], pool: ConnectionPool[Any], store: EventStore, settings: Settings
) -> None:
    with link_pages() as pages:
        # Given a page with Open Graph tags and an image, and a share linking it
        page = pages.page("/launch", og_page("Launch notes", "What we shipped &amp; why", "/og.png"))
        pages.image("/og.png", png(240, 126))
        text = unique(f"We launched: {page}")
        share_id = plan_share(share_service(pool, store), bluesky_account(pool, devnet), text)
        # When a worker delivers it with link cards (the page's server admitted as a page host)
        assert deliver(pool, store, settings, alice_env, share_id, pages.previews()) == "share_sent"
    # Then the record on the PDS has the card: the page's title, description and the image as a blob
    uri = sent_uri(store, share_id)
    record = get_record(devnet, uri).json()["value"]
    assert record["text"] == text
    assert record["embed"]["$type"] == "app.bsky.embed.external"
    external = record["embed"]["external"]
    assert (external["uri"], external["title"], external["description"]) == (
        page, "Launch notes", "What we shipped & why")
    thumb = external["thumb"]
    assert (thumb["$type"], thumb["mimeType"]) == ("blob", "image/png")
    did = devnet.account("alice.test").did
    blob = xrpc(devnet.pds, "com.atproto.sync.getBlob", params={"did": did, "cid": thumb["ref"]["$link"]})
    assert blob.status_code == 200, blob.text
    assert blob.content == png(240, 126)
    # And the AppView shows the post with the card
    view = on_appview(devnet, "app.bsky.feed.getPosts", {"uris": [uri]},
                      lambda body: next(iter(body["posts"]), None))
    assert view["embed"]["$type"] == "app.bsky.embed.external#view"
    assert view["embed"]["external"]["title"] == "Launch notes"


def test_a_share_whose_link_fails_is_published_without_a_card(
    devnet: Devnet, alice_env: dict[str, str], pool: ConnectionPool[Any], store: EventStore, settings: Settings
) -> None:
    with link_pages() as pages:
        # Given a share linking a page that redirects to the cloud's metadata address
        link = pages.redirect("/go", "http://169.254.169.254/latest/meta-data/")
        text = unique(f"Read {link}")
        share_id = plan_share(share_service(pool, store), bluesky_account(pool, devnet), text)
        # When a worker delivers it
        with capture_logs() as logs:
            outcome = deliver(pool, store, settings, alice_env, share_id, pages.previews())
    # Then the share is sent, its record has the link facet and no card, and the log says why
    assert outcome == "share_sent"
    record = get_record(devnet, sent_uri(store, share_id)).json()["value"]
    assert record["text"] == text
    assert "embed" not in record
    assert record["facets"][0]["features"][0]["uri"] == link
    assert [(e["event"], e["reason"]) for e in logs if e["event"].startswith("link_card")] == [
        ("link_card_skipped", "address_refused")]


def deliver(pool: ConnectionPool[Any], store: EventStore, settings: Settings, env: dict[str, str], share_id: UUID,
            previews: LinkPreviews | None = None) -> str:
    """One delivery of the share, as the publish actor runs it, by a publisher making link cards
    (when given ``previews``)."""
    client = channel_client(settings)
    rt = runtime(pool, store, BlueskyPublisher(client, env=env, link_previews=previews), clock=Clock())
    try:
        return execute_share(rt, share_id)
    finally:
        client.close()


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


# --- the reply loop: collected, answered through the API, seen in the thread ------------------


def test_a_reply_from_bob_is_collected_answered_through_the_api_and_the_answer_is_in_the_thread(
    devnet: Devnet, alice_env: dict[str, str], pool: ConnectionPool[Any], store: EventStore, settings: Settings
) -> None:
    # Given alice's Bluesky account (its threads read on the AppView), a share sent on it by the
    # worker, and a write token of the workspace
    shares = share_service(pool, store)
    client = channel_client(settings)
    rt = runtime(pool, store, BlueskyPublisher(client, env=alice_env), clock=Clock())
    try:
        share_id = sent_share(rt, shares, bluesky_account(pool, devnet, appview=True), unique("What do you think?"),
                              plan=ANSWER_PLAN)
        post_uri = sent_uri(store, share_id)
        with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
            auth = {"Authorization": f"Bearer {workspaces.create_token(conn, WS, 'write')}"}
        # When bob replies in the network, and carol replies to bob's reply, deeper in the thread
        bob_uri = reply_to(devnet, "bob.test", post_uri, "Does it work offline? 🤔")
        carol_uri = reply_to(devnet, "carol.test", bob_uri, "Asking myself the same")
        # And the worker looks at the thread until the AppView has indexed both
        collected = collect_until(rt, store, settings, share_id, lambda rows: len(rows) == 2)
        # Then both are recorded, each once, carol's as a reply to bob's
        by_author = {r["author"]: r for r in collected}
        assert set(by_author) == {"bob.test", "carol.test"}
        assert by_author["carol.test"]["parent_id"] == bob_uri
        with serve(bootstrap.build_api(settings)) as base_url, httpx.Client(base_url=base_url, timeout=30) as api:
            # And the API's inbox shows bob's reply as unanswered, with its author, text and url
            unanswered = api.get("/v1/replies", params={"state": "unanswered", "share_id": str(share_id)},
                                 headers=auth)
            assert unanswered.status_code == 200, unanswered.text
            items = {r["author"]: r for r in unanswered.json()["items"]}
            assert set(items) == {"bob.test", "carol.test"}
            bob = items["bob.test"]
            assert bob["text"] == "Does it work offline? 🤔"
            assert bob["url"] == f"https://bsky.app/profile/bob.test/post/{rkey_of(bob_uri)}"
            assert (bob["channel"], bob["in_reply_to"], bob["owner"]) == ("bluesky", None, "alice")
            assert items["carol.test"]["in_reply_to"] == bob_uri
            # When alice answers bob through the API, and the worker publishes the answer
            text = unique("Yes: fully offline, it syncs when you are back online")
            answered = api.post(f"/v1/replies/{bob['id']}/answer", json={"text": text}, headers=auth)
            assert answered.status_code == 202, answered.text
            assert answered.json()["answer"]["status"] == "requested"
            assert publish_answers(rt, share_id) == "reply_answered"
            assert publish_answers(rt, share_id) == "answers_idle"
            catch_up(store, settings.database_url or "")
            # Then the API shows bob's reply answered, with the answer's url; carol's is still unanswered
            done = api.get("/v1/replies", params={"state": "answered", "share_id": str(share_id)},
                           headers=auth).json()["items"]
            assert [(r["author"], r["answer"]["text"], r["answer"]["status"], r["answer"]["native"])
                    for r in done] == [("bob.test", text, "answered", False)]
            answer_url = done[0]["answer"]["url"]
            assert answer_url.startswith("https://bsky.app/profile/alice.test/post/")
            still = api.get("/v1/replies", params={"state": "unanswered", "share_id": str(share_id)},
                            headers=auth).json()["items"]
            assert [r["author"] for r in still] == ["carol.test"]
        # And alice's repository holds exactly one record of the answer: a reply to bob's, in the share's thread
        [record] = texts_on_pds(devnet, text)
        assert record["value"]["reply"]["parent"]["uri"] == bob_uri
        assert record["value"]["reply"]["root"]["uri"] == post_uri
        assert answer_url.endswith("/" + rkey_of(record["uri"]))
        # And the AppView shows it in the thread, by alice, under bob's reply (next to carol's)
        def bob_answered(body: dict[str, Any]) -> dict[str, Any] | None:
            node = child(body["thread"], bob_uri)
            return node if node is not None and child(node, record["uri"]) is not None else None

        under_bob = on_appview(devnet, "app.bsky.feed.getPostThread", {"uri": post_uri, "depth": 10}, bob_answered)
        answer = child(under_bob, record["uri"])
        assert answer is not None
        assert answer["post"]["author"]["handle"] == "alice.test"
        assert answer["post"]["author"]["did"] == devnet.account("alice.test").did
        assert answer["post"]["record"]["text"] == text
        assert child(under_bob, carol_uri) is not None
        # And the next look, which sees the answer, takes it for alice's answer, not for a new reply
        assert collect_one(rt, share_id) == "replies_collected"
        catch_up(store, settings.database_url or "")
        after = {r["author"]: r for r in inbox_page(pool, share_id=share_id)}
        assert set(after) == {"bob.test", "carol.test"}
        assert (after["bob.test"]["state"], after["bob.test"]["answered_natively"]) == ("answered", False)
        assert len(texts_on_pds(devnet, text)) == 1
    finally:
        client.close()


def test_a_reply_alice_writes_in_the_network_is_recorded_as_the_answer_to_the_reply_it_answers(
    devnet: Devnet, alice_env: dict[str, str], pool: ConnectionPool[Any], store: EventStore, settings: Settings
) -> None:
    # Given a share sent on alice's account, and bob's reply to it, collected (this account names
    # no AppView: its threads are read through its PDS, which proxies the AppView with the session)
    shares = share_service(pool, store)
    client = channel_client(settings)
    rt = runtime(pool, store, BlueskyPublisher(client, env=alice_env), clock=Clock())
    try:
        share_id = sent_share(rt, shares, bluesky_account(pool, devnet), unique("Questions welcome"),
                              plan=ANSWER_PLAN)
        bob_uri = reply_to(devnet, "bob.test", sent_uri(store, share_id), "Is there a dark mode?")
        [bob] = collect_until(rt, store, settings, share_id, lambda rows: len(rows) == 1)
        assert (bob["author"], bob["state"]) == ("bob.test", "unanswered")
        # When alice answers him in the app itself, not through Followthrough
        mine = reply_to(devnet, "alice.test", bob_uri, "Yes, since version 2.")
        # Then a later look records alice's post as the answer to bob's reply, and no new reply
        [answered] = collect_until(rt, store, settings, share_id, lambda rows: rows[0]["state"] == "answered")
        assert answered["answered_natively"] is True
        assert answered["answer_url"] == f"https://bsky.app/profile/alice.test/post/{rkey_of(mine)}"
        # And nothing is left for the worker to publish: the answer stays the one alice wrote
        assert publish_answers(rt, share_id) == "answers_idle"
        assert [r["uri"] for r in texts_on_pds(devnet, "Yes, since version 2.")] == [mine]
    finally:
        client.close()


def test_an_answer_whose_response_was_lost_is_found_by_its_record_key_and_written_once(
    devnet: Devnet, alice_env: dict[str, str], pool: ConnectionPool[Any], store: EventStore, settings: Settings
) -> None:
    # Given bob's reply to a share, collected, and an answer to it asked for
    clock = Clock()
    shares = share_service(pool, store, clock=clock)
    lose_next_answer = [True]

    def on_response(response: httpx.Response) -> None:
        request = response.request
        if (request.url.path.endswith("/com.atproto.repo.createRecord") and b'"reply"' in request.content
                and lose_next_answer):
            lose_next_answer.clear()
            response.read()
            raise httpx.ReadError("connection reset after the PDS wrote the record", request=request)

    client = channel_client(settings)
    client.event_hooks = {"request": [], "response": [on_response]}
    rt = runtime(pool, store, BlueskyPublisher(client, env=alice_env), clock=clock)
    try:
        share_id = sent_share(rt, shares, bluesky_account(pool, devnet, appview=True), unique("Feedback please"),
                              plan=ANSWER_PLAN)
        bob_uri = reply_to(devnet, "bob.test", sent_uri(store, share_id), "The export is slow")
        [bob] = collect_until(rt, store, settings, share_id, lambda rows: len(rows) == 1)
        text = unique("Fixed in 2.1, thanks for the report")
        reply_service(pool, store, shares).answer(WS, bob["id"], text=text, by="alice")
        # When the worker writes the answer and the connection drops before the PDS's answer comes back
        assert publish_answers(rt, share_id) == "answer_retry_scheduled"
        [written] = texts_on_pds(devnet, text)
        # And the retry comes, at its time
        clock.offset += timedelta(hours=2)
        assert publish_answers(rt, share_id) == "reply_answered"
        # Then it found the record the first attempt wrote instead of writing another
        answered = [r.event for r in store.read_stream(f"share-{share_id}") if isinstance(r.event, ReplyAnswered)]
        assert [(a.reply_id, a.external_id, a.reconciled) for a in answered] == [(bob_uri, written["uri"], True)]
        assert [r["uri"] for r in texts_on_pds(devnet, text)] == [written["uri"]]
        assert written["value"]["reply"]["parent"]["uri"] == bob_uri
    finally:
        client.close()


def test_a_like_and_a_repost_by_a_second_account_appear_in_the_share_engagement(
    devnet: Devnet, alice_env: dict[str, str], pool: ConnectionPool[Any], store: EventStore, settings: Settings
) -> None:
    # Given a share sent on alice's account (its threads read on the AppView) and a read token
    shares = share_service(pool, store)
    client = channel_client(settings)
    rt = runtime(pool, store, BlueskyPublisher(client, env=alice_env), clock=Clock())
    try:
        share_id = sent_share(rt, shares, bluesky_account(pool, devnet, appview=True), unique("Like this?"),
                              plan=ANSWER_PLAN)
        post_uri = sent_uri(store, share_id)
        with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
            auth = {"Authorization": f"Bearer {workspaces.create_token(conn, WS, 'read')}"}
        # When bob likes and reposts it in the network, and carol replies
        engage(devnet, "bob.test", post_uri, "like")
        engage(devnet, "bob.test", post_uri, "repost")
        reply_to(devnet, "carol.test", post_uri, "Nice one")
        # And the worker looks at the thread until the AppView has counted them
        deadline = time.monotonic() + 60
        counts: dict[str, Any] | None = None
        with serve(bootstrap.build_api(settings)) as base_url, httpx.Client(base_url=base_url, timeout=30) as api:
            while time.monotonic() < deadline:
                assert collect_one(rt, share_id) == "replies_collected"
                shown = api.get(f"/v1/shares/{share_id}", headers=auth)
                assert shown.status_code == 200, shown.text
                counts = shown.json()["engagement"]
                if counts is not None and (counts["likes"], counts["reposts"], counts["replies"]) == (1, 1, 1):
                    break
                time.sleep(0.25)
        # Then GET /v1/shares/{id} shows the like, the repost and the reply, as of a look
        assert counts is not None, "no engagement read"
        assert (counts["likes"], counts["reposts"], counts["replies"]) == (1, 1, 1), counts
        assert counts["quotes"] in (0, None)
        assert counts["as_of"] is not None
        # And the look that read them is in the log, and the read model holds them
        catch_up(store, settings.database_url or "")
        with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
            row = conn.execute("SELECT engagement_likes, engagement_reposts, engagement_replies FROM rm_shares "
                               "WHERE share_id = %s", (share_id,)).fetchone()
        assert row == (1, 1, 1)
    finally:
        client.close()


def collect_until(rt: Runtime, store: EventStore, settings: Settings, share_id: UUID,
                  done: Callable[[list[dict[str, Any]]], bool], *, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Looks at the share's thread, as the worker's scheduled looks would, until the inbox's
    replies of the share satisfy ``done`` (the AppView indexes asynchronously: a reply shows
    up a look or two later); those replies."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        assert collect_one(rt, share_id) == "replies_collected"
        catch_up(store, settings.database_url or "")
        rows = inbox_page(rt.pool, share_id=share_id)
        if rows and done(rows):
            return rows
        time.sleep(0.5)
    raise AssertionError(f"the looks never found it: last inbox {rows}")


def child(node: dict[str, Any] | None, uri: str) -> dict[str, Any] | None:
    """The thread node of ``uri`` at any depth under ``node`` (a getPostThread answer's thread)."""
    for reply in (node or {}).get("replies") or []:
        if reply.get("post", {}).get("uri") == uri:
            return dict(reply)
        if (found := child(reply, uri)) is not None:
            return found
    return None


def sent_uri(store: EventStore, share_id: UUID) -> str:
    [sent] = [r.event for r in store.read_stream(f"share-{share_id}") if isinstance(r.event, ShareSent)]
    return sent.external_id


def rkey_of(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


# --- helpers of this module ----------------------------------------------------------------


def bluesky_account(pool: ConnectionPool[Any], devnet: Devnet, *, appview: bool = False) -> accounts.Account:
    """Alice's account (``appview``: its threads read on the devnet's AppView, as the config names it)."""
    config = {**alice_config(devnet), **({"appview": devnet.appview} if appview else {})}
    with pool.connection() as conn:
        workspaces.ensure_workspace(conn, WS)
        return accounts.create(conn, workspace_id=WS, name=f"alice-{uuid.uuid4().hex[:6]}", channel="bluesky",
                               config=config, default_response_plan=None, late_policy="send",
                               max_lateness_seconds=None)


def plan_share(shares: ShareService, account: accounts.Account, text: str,
               media: Sequence[MediaRequest] = ()) -> UUID:
    planned = shares.plan(WS, PlanShare(account_id=account.id, text=text, scheduled_at=None, response_plan=PLAN,
                                        media=media), actor="test")
    return planned.share_id


def types(store: EventStore, share_id: UUID) -> list[str]:
    return [r.type_name for r in store.read_stream(f"share-{share_id}")]


# --- media ----------------------------------------------------------------------------------------


def test_an_image_share_is_written_with_its_images_alt_and_aspect_ratio_in_blobs_within_the_limit(
    devnet: Devnet, alice_env: dict[str, str], pool: ConnectionPool[Any], store: EventStore, settings: Settings
) -> None:
    # Given a ~5 MB PNG that does not compress and a phone photo with a GPS position, in the library
    big = noisy_png(1600, 1050)
    assert len(big) > 4_900_000
    big_id = stored(pool, big, alt="Static, wide")
    photo_id = stored(pool, photo_with_location(), alt="A blue square")
    # And a share attaching both (the photo's alt as the share gives it)
    account = bluesky_account(pool, devnet)
    text = unique("Two pictures")
    share_id = plan_share(share_service(pool, store), account, text,
                          [MediaRequest(big_id), MediaRequest(photo_id, alt="A blue square, from the phone")])
    # When a worker delivers it
    assert deliver(pool, store, settings, alice_env, share_id) == "share_sent"
    # Then the record embeds both images in order, with their alt and aspect ratio
    record = get_record(devnet, sent_uri(store, share_id)).json()["value"]
    assert record["text"] == text
    assert record["embed"]["$type"] == "app.bsky.embed.images"
    wide, photo = record["embed"]["images"]
    assert (wide["alt"], photo["alt"]) == ("Static, wide", "A blue square, from the phone")
    assert photo["aspectRatio"] == {"width": 64, "height": 48}
    # And the big one was re-encoded within 2,000,000 bytes, scaled down in proportion, never up
    did = devnet.account("alice.test").did
    blobs = [xrpc(devnet.pds, "com.atproto.sync.getBlob", params={"did": did, "cid": i["image"]["ref"]["$link"]})
             for i in (wide, photo)]
    assert [b.status_code for b in blobs] == [200, 200]
    assert len(blobs[0].content) <= 2_000_000
    assert wide["image"]["size"] == len(blobs[0].content)
    with Image.open(io.BytesIO(blobs[0].content)) as image:
        assert image.format == "JPEG"
        assert image.size == (wide["aspectRatio"]["width"], wide["aspectRatio"]["height"])
        assert image.width <= 1600
        assert abs(image.width / image.height - 1600 / 1050) < 0.01
    # And neither blob carries a position (the photo's GPS was removed when it was stored)
    for blob in blobs:
        assert not exif_of(blob.content).get_ifd(ExifTags.IFD.GPSInfo)
    # And the AppView shows the images
    view = on_appview(devnet, "app.bsky.feed.getPosts", {"uris": [sent_uri(store, share_id)]},
                      lambda body: next(iter(body["posts"]), None))
    assert view["embed"]["$type"] == "app.bsky.embed.images#view"
    assert [i["alt"] for i in view["embed"]["images"]] == ["Static, wide", "A blue square, from the phone"]


# --- threads, content warnings, languages -----------------------------------------------------


def test_a_three_part_thread_is_written_in_order_with_its_label_and_langs_and_the_appview_shows_it(
    devnet: Devnet, alice_env: dict[str, str], pool: ConnectionPool[Any], store: EventStore, settings: Settings
) -> None:
    # Given a three-part thread with a content warning (label graphic-media) in German
    shares = share_service(pool, store)
    texts = [unique("1/ Ein Faden"), unique("2/ in der Mitte"), unique("3/ am Ende")]
    share_id = plan_thread(shares, bluesky_account(pool, devnet).id, texts, language="de",
                           content_warning={"text": "Spinnen", "label": "graphic-media"})
    client = channel_client(settings)
    rt = runtime(pool, store, BlueskyPublisher(client, env=alice_env), clock=Clock())
    # When the worker publishes it
    try:
        assert execute_share(rt, share_id) == "share_sent"
    finally:
        client.close()
    # Then the PDS holds one record per part, each with the CW line, the self-label and langs
    records = [texts_on_pds(devnet, f"CW: Spinnen\n\n{t}") for t in texts]
    assert [len(r) for r in records] == [1, 1, 1]
    root, middle, last = (r[0] for r in records)
    for record in (root, middle, last):
        assert record["value"]["labels"] == {"$type": "com.atproto.label.defs#selfLabels",
                                             "values": [{"val": "graphic-media"}]}
        assert record["value"]["langs"] == ["de"]
    # And part 2 answers part 1, part 3 answers part 2, both in part 1's thread (uri and cid)
    assert "reply" not in root["value"]
    ref = {"uri": root["uri"], "cid": root["cid"]}
    assert middle["value"]["reply"] == {"root": ref, "parent": ref}
    assert last["value"]["reply"] == {"root": ref, "parent": {"uri": middle["uri"], "cid": middle["cid"]}}
    # And each part was created at least 1 ms after the one before
    times = [datetime.fromisoformat(r["value"]["createdAt"]) for r in (root, middle, last)]
    assert times[0] < times[1] < times[2]
    # And the AppView's thread of the first shows the parts in order
    thread = on_appview(devnet, "app.bsky.feed.getPostThread", {"uri": root["uri"]},
                        lambda body: body["thread"] if child(child(body["thread"], middle["uri"]), last["uri"])
                        else None)
    assert thread["post"]["uri"] == root["uri"]
    assert [r["post"]["uri"] for r in thread["replies"]] == [middle["uri"]]
    assert [r["post"]["uri"] for r in thread["replies"][0]["replies"]] == [last["uri"]]
    # And the share is sent as the first part, each part with its own url
    assert sent_uri(store, share_id) == root["uri"]
    parts = [r.event for r in store.read_stream(f"share-{share_id}") if r.type_name == "SharePartSent"]
    assert [p.external_id for p in parts] == [root["uri"], middle["uri"], last["uri"]]


def test_a_threads_second_part_is_written_with_its_own_image_and_the_first_without(
    devnet: Devnet, alice_env: dict[str, str], pool: ConnectionPool[Any], store: EventStore, settings: Settings
) -> None:
    # Given a two-part thread whose second part carries an image
    image_id = stored(pool, photo_with_location(), alt="A blue square")
    texts = [unique("1/ words first"), unique("2/ then the picture")]
    share_id = plan_thread(share_service(pool, store), bluesky_account(pool, devnet).id, texts,
                           part_media={1: [MediaRequest(image_id, alt="The blue square of part two")]})
    # When a worker delivers it
    assert deliver(pool, store, settings, alice_env, share_id) == "share_sent"
    # Then part 1's record has no embed; part 2's answers it and embeds the image with its alt
    [first], [second] = (texts_on_pds(devnet, t) for t in texts)
    assert "embed" not in first["value"]
    assert second["value"]["reply"]["parent"] == {"uri": first["uri"], "cid": first["cid"]}
    assert second["value"]["embed"]["$type"] == "app.bsky.embed.images"
    assert [(i["alt"], i["aspectRatio"]) for i in second["value"]["embed"]["images"]] == [
        ("The blue square of part two", {"width": 64, "height": 48})]


def test_a_worker_killed_mid_thread_leaves_each_part_posted_once(
    devnet: Devnet, alice_env: dict[str, str], pool: ConnectionPool[Any], store: EventStore, settings: Settings
) -> None:
    shares = share_service(pool, store)
    texts = [unique("1/ killed"), unique("2/ mid"), unique("3/ thread")]
    share_id = plan_thread(shares, bluesky_account(pool, devnet).id, texts)
    # When a worker process is SIGKILLed as soon as the PDS has written part 2
    worker = subprocess.run(
        [sys.executable, "-m", "tests.support.devnet_worker", settings.database_url or "", str(share_id), "1.0",
         "2"],
        cwd=ROOT, env={**os.environ, **alice_env}, capture_output=True, text=True, timeout=120, check=False,
    )
    assert worker.returncode == -signal.SIGKILL, worker.stderr[-2000:]
    # Then part 1 is recorded, part 2 is on the PDS but not in the log, part 3 was never sent
    assert types(store, share_id) == ["SharePlanned", "ShareAttemptStarted", "ResponseTasksRecorded",
                                      "SharePartSent"]
    assert [len(texts_on_pds(devnet, t)) for t in texts] == [1, 1, 0]
    # When a later delivery comes after the dead worker's lease
    expire_lease(pool, share_id)
    client = channel_client(settings)
    rt = runtime(pool, store, BlueskyPublisher(client, env=alice_env), clock=Clock(), call_budget_seconds=1.0)
    try:
        assert execute_share(rt, share_id) == "share_sent"
    finally:
        client.close()
    # Then part 2 was found by its record key (reconciled) and part 3 written: each part once
    assert [len(texts_on_pds(devnet, t)) for t in texts] == [1, 1, 1]
    parts = [r.event for r in store.read_stream(f"share-{share_id}") if r.type_name == "SharePartSent"]
    assert [(p.part, p.reconciled) for p in parts] == [(0, False), (1, True), (2, False)]
    [middle] = texts_on_pds(devnet, texts[1])
    [last] = texts_on_pds(devnet, texts[2])
    assert last["value"]["reply"]["parent"] == {"uri": middle["uri"], "cid": middle["cid"]}
