"""Saved replies through the API: saved by a write token, listed by a read token, one name
per workspace, refused input named by its field (an unknown placeholder among it), deleted
once, invisible to another workspace, and used to answer a reply with its placeholders
filled."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
from psycopg_pool import ConnectionPool

from events.catalogue import ResponseReceived
from events.store import EventStore
from scheduler.domain import share as lifecycle
from scheduler.services.share_stream import ShareStreams
from tests.support.api import assert_problem, bearer, stored
from tests.support.dashboard import event_count
from tests.support.fake_channel import FakeChannel
from tests.support.replies import caught_up
from tests.support.shares import WS, Clock, runtime
from workers.execution import execute_share

THANKS = {"name": "thanks", "text": "Thank you, {author}! The {account} team"}


def test_a_saved_reply_is_saved_listed_unique_by_name_and_deleted_once(client: httpx.Client, database_url: str,
                                                                        ) -> None:
    writer, reader = bearer(database_url), bearer(database_url, scope="read")
    # When a write token saves a reply
    created = client.post("/v1/saved-replies", headers=writer, json=THANKS)
    # Then it is there, with its id, and a read token lists it
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: body[k] for k in ("name", "text")} == THANKS
    listed = client.get("/v1/saved-replies", headers=reader)
    assert listed.status_code == 200, listed.text
    assert [s["id"] for s in listed.json()["items"]] == [body["id"]]
    assert listed.json()["placeholders"] == ["author", "account"]
    # And the same name again is a conflict naming the field, whatever the text
    again = client.post("/v1/saved-replies", headers=writer, json={"name": "thanks", "text": "Other"})
    assert_problem(again, 409, "name")
    # And a read token can neither save nor delete
    assert client.post("/v1/saved-replies", headers=reader, json={"name": "x", "text": "y"}).status_code == 403
    assert client.delete(f"/v1/saved-replies/{body['id']}", headers=reader).status_code == 403
    # When the write token deletes it
    assert client.delete(f"/v1/saved-replies/{body['id']}", headers=writer).status_code == 204
    # Then it is gone, a second delete finds nothing, and its name is free again
    assert client.get("/v1/saved-replies", headers=reader).json()["items"] == []
    assert_problem(client.delete(f"/v1/saved-replies/{body['id']}", headers=writer), 404, None)
    assert client.post("/v1/saved-replies", headers=writer, json=THANKS).status_code == 201


def test_another_workspace_neither_sees_nor_deletes_a_saved_reply_and_may_use_the_same_name(
    client: httpx.Client, database_url: str,
) -> None:
    ours, theirs = bearer(database_url, "acme"), bearer(database_url, "globex")
    saved = client.post("/v1/saved-replies", headers=ours, json=THANKS).json()
    assert client.get("/v1/saved-replies", headers=theirs).json()["items"] == []
    assert_problem(client.delete(f"/v1/saved-replies/{saved['id']}", headers=theirs), 404, None)
    assert client.post("/v1/saved-replies", headers=theirs, json=THANKS).status_code == 201
    assert [s["id"] for s in client.get("/v1/saved-replies", headers=ours).json()["items"]] == [saved["id"]]


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "hi", "text": "Hello {author}, from {acount}"}, "text"),
    ({"name": "hi", "text": "Hello {Author}"}, "text"),
    ({"name": "", "text": "Hello"}, "name"),
    ({"name": "   ", "text": "Hello"}, "name"),
    ({"name": "n" * 101, "text": "Hello"}, "name"),
    ({"name": "hi", "text": ""}, "text"),
    ({"name": "hi", "text": "x" * 5001}, "text"),
    ({"name": "hi", "text": "nul \u0000"}, "text"),
    ({"name": "hi"}, "text"),
    ({"text": "Hello"}, "name"),
    ({"name": "hi", "text": "Hello", "shared": True}, "shared"),
])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_saved(
    client: httpx.Client, database_url: str, body: dict[str, object], field: str,
) -> None:
    writer = bearer(database_url)
    before = stored(database_url)
    assert_problem(client.post("/v1/saved-replies", headers=writer, json=body), 422, field)
    assert stored(database_url) == before


def test_braces_around_anything_but_a_word_are_text(client: httpx.Client, database_url: str) -> None:
    writer = bearer(database_url)
    created = client.post("/v1/saved-replies", headers=writer,
                          json={"name": "code", "text": "Try {\"a\": 1} or { author }, {author}."})
    assert created.status_code == 201, created.text


def test_a_reply_is_answered_with_a_saved_reply_its_placeholders_filled_for_it(
    client: httpx.Client, database_url: str, store: EventStore, pool: ConnectionPool[Any],
) -> None:
    auth = bearer(database_url, WS)
    # Given a sent share of the account "launch", a reply to it by Ana Lima, and a saved reply
    account = client.post("/v1/accounts", json={"name": "launch", "channel": "console"}, headers=auth).json()
    share_id = UUID(client.post("/v1/shares", headers=auth, json={
        "account_id": account["id"], "text": "We launched", "response_plan": [
            {"kind": "answer_replies", "after": "PT1H", "owner": "alice"}]}).json()["id"])
    assert execute_share(runtime(pool, store, FakeChannel(), clock=Clock()), share_id) == "share_sent"
    received = ResponseReceived(reply_id="q1", author="ana@example.social", author_name="Ana Lima", text="Congrats!",
                                url="https://example.social/@ana/1", received_at=datetime.now(UTC))
    with pool.connection() as conn:
        ShareStreams(store, None).change(conn, share_id, lambda s: lifecycle.receive_replies(s, [received]),
                                         workspace_id=WS, actor="test")
    caught_up(store, database_url)
    reply_id = client.get("/v1/replies", headers=auth).json()["items"][0]["id"]
    saved = client.post("/v1/saved-replies", headers=auth, json=THANKS).json()
    # When the answer names neither text nor a saved reply, both, or a saved reply that is not there
    before = event_count(database_url)
    assert_problem(client.post(f"/v1/replies/{reply_id}/answer", headers=auth, json={}), 422, "text")
    assert_problem(client.post(f"/v1/replies/{reply_id}/answer", headers=auth,
                               json={"text": "Hi", "saved_reply_id": saved["id"]}), 422, "text")
    assert_problem(client.post(f"/v1/replies/{reply_id}/answer", headers=auth,
                               json={"saved_reply_id": "00000000-0000-4000-8000-00000000beef"}), 404, None)
    # Then nothing is written
    assert event_count(database_url) == before
    # When it is answered with the saved reply
    answered = client.post(f"/v1/replies/{reply_id}/answer", headers=auth, json={"saved_reply_id": saved["id"]})
    # Then the answer asked for is its text with the author's name and the account's filled in
    assert answered.status_code == 202, answered.text
    assert answered.json()["answer"]["text"] == "Thank you, Ana Lima! The launch team"
    assert answered.json()["answer"]["status"] == "requested"
