"""Saved replies through the API: saved by a write token, listed by a read token, one name
per workspace, refused input named by its field (an unknown placeholder among it), deleted
once, and invisible to another workspace."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api import assert_problem, bearer, stored

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
