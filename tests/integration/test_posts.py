"""One post to several accounts through the HTTP API, against a real PostgreSQL: a share
per account with its variant, each checked against its own network's limits; all or none;
one Idempotency-Key for the whole post; another workspace's post is not found."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg_pool import ConnectionPool

from events.projections import reports
from events.store import EventStore
from scheduler.domain.plans import StepInput
from scheduler.services.shares import PlanPost, PlanShare
from tests.support.api import PLAN, assert_problem, bearer, stored
from tests.support.media import uploaded
from tests.support.replies import account_on, caught_up, sent_share
from tests.support.shares import WS, Clock, runtime, share_service
from tests.support.slots import week_from_now
from workers.channels.console import ConsolePublisher
from workers.execution import execute_share


@pytest.fixture
def auth(database_url: str) -> dict[str, str]:
    return bearer(database_url)


def make_account(client: httpx.Client, auth: dict[str, str], name: str, channel: str) -> str:
    response = client.post("/v1/accounts", json={"name": name, "channel": channel}, headers=auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def console(client: httpx.Client, auth: dict[str, str]) -> str:
    return make_account(client, auth, "news", "console")


@pytest.fixture
def bluesky(client: httpx.Client, auth: dict[str, str]) -> str:
    return make_account(client, auth, "sky", "bluesky")


def test_a_post_plans_a_share_per_account_each_with_its_own_text_and_get_shows_them(
    client: httpx.Client, auth: dict[str, str], console: str, bluesky: str
) -> None:
    # Given a post to two accounts, with a shorter text for Bluesky
    body = {"text": "We launched! " * 30, "response_plan": PLAN,
            "accounts": [{"account_id": console}, {"account_id": bluesky, "text": "We launched!"}]}
    # When it is planned
    response = client.post("/v1/posts", headers=auth, json=body)
    # Then there are two shares, in order, each with its text, the post's plan and its id
    assert response.status_code == 201, response.text
    post = response.json()
    assert [(s["account_id"], s["text"], s["post_id"]) for s in post["shares"]] == [
        (console, body["text"], post["id"]), (bluesky, "We launched!", post["id"])]
    assert all(s["status"] == "planned" and len(s["response_tasks"]) == 1 for s in post["shares"])
    # And each is a share like any other, and the post lists them as GET /v1/shares/{id} does
    got = client.get(f"/v1/posts/{post['id']}", headers=auth)
    assert got.status_code == 200, got.text
    assert [s["id"] for s in got.json()["shares"]] == [s["id"] for s in post["shares"]]
    for share in got.json()["shares"]:
        assert client.get(f"/v1/shares/{share['id']}", headers=auth).json() == share


def test_one_variant_over_its_networks_limit_refuses_the_whole_post_naming_it_and_nothing_is_written(
    client: httpx.Client, auth: dict[str, str], console: str, bluesky: str, database_url: str
) -> None:
    before = stored(database_url)
    # Given a post whose text fits the console but is too long for Bluesky (300 graphemes)
    body = {"text": "x" * 301, "response_plan": PLAN,
            "accounts": [{"account_id": console}, {"account_id": bluesky}]}
    # When it is planned, then it is refused naming the second account's text
    assert_problem(client.post("/v1/posts", headers=auth, json=body), 422, "accounts.1.text")
    # And with a variant too long on the first account instead, that one is named
    body = {"text": "fits", "response_plan": PLAN,
            "accounts": [{"account_id": console, "text": "x" * 5001}, {"account_id": bluesky}]}
    assert_problem(client.post("/v1/posts", headers=auth, json=body), 422, "accounts.0.text")
    # And a variant's bad time or plan is named the same way
    body = {"text": "fits", "response_plan": PLAN,
            "accounts": [{"account_id": console}, {"account_id": bluesky, "scheduled_at": "tomorrow"}]}
    assert_problem(client.post("/v1/posts", headers=auth, json=body), 422, "accounts.1.scheduled_at")
    body = {"text": "fits", "accounts": [{"account_id": console, "response_plan": PLAN},
                                         {"account_id": bluesky, "response_plan": [{**PLAN[0], "after": "-PT1H"}]}]}
    assert_problem(client.post("/v1/posts", headers=auth, json=body), 422, "accounts.1.response_plan.0.after")
    # And nothing at all was written: no event, no schedule row, no task index, no post
    assert stored(database_url) == before


@pytest.mark.parametrize(("accounts", "field"), [
    (lambda c, b: [{"account_id": c}, {"account_id": b}, {"account_id": c}], "accounts.2.account_id"),
    (lambda c, b: [], "accounts"),
    (lambda c, b: [{"account_id": c}, {"account_id": "00000000-0000-0000-0000-000000000001"}], "accounts.1.account_id"),
    (lambda c, b: [{"account_id": c, "text": ""}], "accounts.0.text"),
    (lambda c, b: [{"account_id": c, "colour": "red"}], "accounts.0.colour"),
])
def test_a_post_is_refused_naming_the_field_for_duplicate_unknown_or_missing_accounts(
    client: httpx.Client, auth: dict[str, str], console: str, bluesky: str, database_url: str, accounts: Any,
    field: str,
) -> None:
    before = stored(database_url)
    response = client.post("/v1/posts", headers=auth,
                           json={"text": "hello", "response_plan": PLAN, "accounts": accounts(console, bluesky)})
    assert_problem(response, 422, field)
    assert stored(database_url) == before


def test_a_post_without_text_needs_a_text_on_every_account(
    client: httpx.Client, auth: dict[str, str], console: str, bluesky: str
) -> None:
    body: dict[str, Any] = {"response_plan": PLAN, "accounts": [{"account_id": console, "text": "mine"},
                                                                 {"account_id": bluesky}]}
    assert_problem(client.post("/v1/posts", headers=auth, json=body), 422, "accounts.1.text")
    body["accounts"][1]["text"] = "also mine"
    response = client.post("/v1/posts", headers=auth, json=body)
    assert response.status_code == 201, response.text
    assert [s["text"] for s in response.json()["shares"]] == ["mine", "also mine"]


def test_a_repeat_under_the_same_key_returns_the_same_post_and_a_different_body_is_refused(
    client: httpx.Client, auth: dict[str, str], console: str, bluesky: str, database_url: str
) -> None:
    body = {"text": "once", "response_plan": PLAN, "accounts": [{"account_id": console}, {"account_id": bluesky}]}
    headers = {**auth, "Idempotency-Key": "post-1"}
    first = client.post("/v1/posts", headers=headers, json=body)
    assert first.status_code == 201, first.text
    after_first = stored(database_url)
    # When the same request comes again (a client retrying), even after a share was cancelled
    share = first.json()["shares"][0]["id"]
    assert client.post(f"/v1/shares/{share}/cancel", headers=auth).json()["status"] == "cancelled"
    again = client.post("/v1/posts", headers=headers, json=body)
    # Then the answer is the first one, field for field, and no other share is planned
    assert again.status_code == 201
    assert again.json() == first.json()
    assert stored(database_url)["post_shares"] == after_first["post_shares"] == 2
    # And the same key with another body is refused, naming the header
    assert_problem(client.post("/v1/posts", headers=headers, json={**body, "text": "twice"}), 422,
                   "Idempotency-Key")
    # And a share's key is not a post's: the same key on /v1/shares is refused too
    share_body = {"account_id": console, "text": "once", "response_plan": PLAN}
    assert_problem(client.post("/v1/shares", headers=headers, json=share_body), 422, "Idempotency-Key")


def test_the_same_post_sent_eight_times_at_once_under_one_key_is_planned_once(
    client: httpx.Client, auth: dict[str, str], console: str, bluesky: str, database_url: str
) -> None:
    # Given one post, sent by eight clients at once under one Idempotency-Key
    body = {"text": "at once", "response_plan": PLAN, "accounts": [{"account_id": console}, {"account_id": bluesky}]}
    headers = {**auth, "Idempotency-Key": "post-race"}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.post("/v1/posts", headers=headers, json=body), range(8)))
    # Then every one gets the same post, and only its two shares exist
    assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len({s["id"] for a in answers for s in a.json()["shares"]}) == 2
    assert stored(database_url)["post_shares"] == 2


def test_a_workspace_cannot_see_another_workspaces_post(
    client: httpx.Client, auth: dict[str, str], console: str, database_url: str
) -> None:
    post = client.post("/v1/posts", headers=auth,
                       json={"text": "private", "response_plan": PLAN, "accounts": [{"account_id": console}]}).json()
    stranger = bearer(database_url, workspace="other")
    assert_problem(client.get(f"/v1/posts/{post['id']}", headers=stranger), 404, None)
    assert client.get(f"/v1/posts/{post['id']}", headers=auth).status_code == 200
    # And its account cannot be posted to from there
    response = client.post("/v1/posts", headers=stranger,
                           json={"text": "x", "response_plan": PLAN, "accounts": [{"account_id": console}]})
    assert_problem(response, 422, "accounts.0.account_id")


def test_next_slot_takes_each_accounts_own_first_free_slot(
    client: httpx.Client, auth: dict[str, str], console: str
) -> None:
    # Given two accounts with queue slots, one of them with its first slot taken already
    def queued(name: str) -> str:
        response = client.post("/v1/accounts", headers=auth,
                               json={"name": name, "channel": "console", "config": {"slots": week_from_now(5)}})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    first, second = queued("first"), queued("second")
    taken = client.post("/v1/shares", headers=auth, json={"account_id": second, "text": "before",
                                                          "scheduled_at": "next_slot", "response_plan": PLAN})
    assert taken.status_code == 201, taken.text
    free = {account: [s["at"] for s in client.get(f"/v1/accounts/{account}/slots", headers=auth).json()["slots"]
                      if s["share_id"] is None]
            for account in (first, second)}
    # When a post takes the next slot on both, and a fixed time on a third account
    response = client.post("/v1/posts", headers=auth, json={
        "text": "queued", "scheduled_at": "next_slot", "response_plan": PLAN,
        "accounts": [{"account_id": first}, {"account_id": second}, {"account_id": console, "scheduled_at": None}]})
    # Then each share holds its own account's first free slot (the third goes now)
    assert response.status_code == 201, response.text
    shares = response.json()["shares"]
    assert [at(s["scheduled_at"]) for s in shares[:2]] == [at(free[first][0]), at(free[second][0])]
    for account, share in zip((first, second), shares, strict=False):
        listed = client.get(f"/v1/accounts/{account}/slots", headers=auth).json()["slots"]
        assert share["id"] in {s["share_id"] for s in listed}
    # And an account without slots is refused naming it
    refused = client.post("/v1/posts", headers=auth, json={
        "text": "queued", "scheduled_at": "next_slot", "response_plan": PLAN,
        "accounts": [{"account_id": first}, {"account_id": console}]})
    assert_problem(refused, 422, "accounts.1.scheduled_at")


def at(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def test_the_follow_through_by_post_counts_each_posts_shares_and_leaves_out_shares_planned_alone(
    client: httpx.Client, auth: dict[str, str], store: EventStore, pool: ConnectionPool[Any], database_url: str,
    tmp_path: Path,
) -> None:
    # Given a post to two console accounts and a share planned alone, all published
    clock = Clock()
    shares = share_service(pool, store, clock=clock)
    rt = runtime(pool, store, ConsolePublisher(tmp_path), clock=clock)
    one, two = account_on(pool, "console", {}, name="one"), account_on(pool, "console", {}, name="two")
    plan = [StepInput(kind="check_replies", after=timedelta(hours=1), owner="alice")]
    post = shares.plan_post(WS, PlanPost(shares=[
        PlanShare(account_id=account.id, text="together", scheduled_at=None, response_plan=plan)
        for account in (one, two)]), actor="test")
    sent_share(rt, shares, one, plan=plan)
    for share in post.shares:
        assert execute_share(rt, share.share_id) == "share_sent"
    # And the first share's task done (on time), the second's still open
    state, _ = shares.load(WS, post.shares[0].share_id)
    shares.complete_task(WS, state.tasks[0].task_id, by="alice", note="")
    caught_up(store, database_url)
    # When the follow-through is asked by post
    with pool.connection() as conn:
        rows = reports.followthrough(conn, WS, by="post")
        everyone = reports.followthrough(conn, WS, by="workspace")
    # Then the post is one row with its two shares' tasks; the share alone is in none
    assert [(r["key"], r["open"], r["done_on_time"], r["rate"]) for r in rows] == [(str(post.post_id), 1, 1, 1.0)]
    assert (everyone[0]["open"], everyone[0]["done_on_time"]) == (2, 1)
    # And the API answers the same rows
    reader = bearer(database_url, workspace=WS, scope="read")
    answer = client.get("/v1/followthrough", params={"by": "post"}, headers=reader)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == json.loads(json.dumps(rows, default=str))


def test_a_post_with_media_holds_its_items_in_every_share_and_refuses_a_missing_alt(
    client: httpx.Client, database_url: str, auth: dict[str, str], console: str, bluesky: str
) -> None:
    # Given an image in the library, without alt of its own
    image = uploaded(client, auth, alt=None)
    # When a post attaches it without alt: refused naming the account's item, nothing stored
    before = stored(database_url)
    refused = client.post("/v1/posts", headers=auth, json={
        "text": "With a picture", "response_plan": PLAN, "media": [{"id": image["id"]}],
        "accounts": [{"account_id": console}, {"account_id": bluesky}]})
    assert_problem(refused, 422, "accounts.0.media.0.alt")
    assert stored(database_url) == before
    # When it is planned with an alt on the post and the account's own alt on Bluesky
    planned = client.post("/v1/posts", headers=auth, json={
        "text": "With a picture", "response_plan": PLAN, "media": [{"id": image["id"], "alt": "A red square"}],
        "accounts": [{"account_id": console},
                     {"account_id": bluesky, "media": [{"id": image["id"], "alt": "A square, red"}]}]})
    # Then each share holds the item with its alt, and the library keeps the item while they wait
    assert planned.status_code == 201, planned.text
    assert [[m["alt"] for m in s["media"]] for s in planned.json()["shares"]] == [["A red square"], ["A square, red"]]
    assert client.delete(f"/v1/media/{image['id']}", headers=auth).status_code == 409
