"""Threads, content warnings and languages against a real PostgreSQL: planned through the API
(limits per part), published part by part exactly once on the console channel, an in-memory
channel and the fake Mastodon, resumed after the last part recorded when a worker dies."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import structlog.testing
from psycopg_pool import ConnectionPool

from events.store import EventStore
from scheduler.services.audit import audit
from scheduler.services.shares import ShareService
from tests.support.api import bearer
from tests.support.database import connect
from tests.support.fake_channel import Crash, FakeChannel
from tests.support.fake_mastodon import TOKEN, FakeMastodon
from tests.support.replies import caught_up
from tests.support.shares import WS, Clock, expire_lease, make_account, mastodon_account, runtime
from tests.support.shares import view as share_view_of
from tests.support.system import wait_until
from tests.support.threads import DiesAfterPart, plan_thread
from workers.channels.console import ConsolePublisher
from workers.channels.mastodon import MastodonPublisher
from workers.collection import collect_one
from workers.execution import execute_share, execute_shares
from workers.runtime import Runtime

TEXTS = ["1/ We launched", "2/ It took a year", "3/ Thank you all"]
PLAN = [{"kind": "check_replies", "after": "PT1H", "owner": "alice"}]


def types(store: EventStore, share_id: UUID) -> list[str]:
    return [r.type_name for r in store.read_stream(f"share-{share_id}")]


def after_the_lease(clock: Clock, pool: ConnectionPool[Any], share_id: UUID) -> None:
    clock.offset += timedelta(minutes=1)
    expire_lease(pool, share_id)


# --- planning through the API ---------------------------------------------------------------


@pytest.fixture
def auth(database_url: str) -> dict[str, str]:
    return bearer(database_url)


@pytest.fixture
def console_account(client: httpx.Client, auth: dict[str, str]) -> str:
    response = client.post("/v1/accounts", json={"name": "main", "channel": "console"}, headers=auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_thread_is_planned_with_its_parts_warning_and_language(
    client: httpx.Client, auth: dict[str, str], console_account: str
) -> None:
    body = {"account_id": console_account, "response_plan": PLAN, "language": "pt-br",
            "content_warning": {"text": "spoilers", "label": "graphic-media"},
            "parts": [{"text": TEXTS[0]}, {"text": TEXTS[1], "content_warning": {"text": "the ending"}},
                      {"text": TEXTS[2]}]}
    planned = client.post("/v1/shares", json=body, headers=auth)
    assert planned.status_code == 201, planned.text
    share = client.get(f"/v1/shares/{planned.json()['id']}", headers=auth).json()
    assert share["text"] == TEXTS[0]
    assert share["language"] == "pt-BR"
    assert share["content_warning"] == {"text": "spoilers", "label": "graphic-media"}
    assert [(p["text"], p["status"], p["url"]) for p in share["parts"]] == [(t, "planned", None) for t in TEXTS]
    assert share["parts"][1]["content_warning"] == {"text": "the ending", "label": None}


@pytest.mark.parametrize(("change", "field"), [
    ({"parts": [{"text": "fine"}, {"text": "x" * 5001}]}, "parts.1.text"),
    ({"parts": [{"text": "fine"}, {"text": " "}]}, "parts.1.text"),
    ({"text": "both", "parts": [{"text": "a"}, {"text": "b"}]}, "parts"),
    ({"parts": [{"text": "a"}, {"text": "b", "media": [{"id": str(UUID(int=0))}]}]}, "parts.1.media.0.id"),
    ({"text": "hello", "language": "english!"}, "language"),
    ({"text": "hello", "content_warning": {"text": ""}}, "content_warning.text"),
    ({"text": "hello", "content_warning": {"text": "cw", "label": "gore"}}, "content_warning.label"),
    ({"parts": []}, "parts"),
    ({}, "text"),
])
def test_bad_thread_content_is_a_422_naming_the_field(
    client: httpx.Client, auth: dict[str, str], console_account: str, change: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/shares", json={"account_id": console_account, "response_plan": PLAN, **change},
                           headers=auth)
    assert response.status_code == 422, response.text
    body = response.json()
    assert field in [e["field"] for e in body.get("errors", [])] or body.get("field") == field, body


# --- publishing ----------------------------------------------------------------------------


def test_a_console_thread_is_consecutive_lines_each_naming_the_one_it_answers(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock, tmp_path: Path
) -> None:
    console = ConsolePublisher(tmp_path)
    rt = runtime(pool, store, console, clock=clock)
    share_id = plan_thread(shares, make_account(pool).id, TEXTS, language="de-CH",
                           content_warning={"text": "loud", "label": None})
    assert execute_share(rt, share_id) == "share_sent"
    lines = console.lines_for(WS, "main")
    assert [line["text"] for line in lines] == TEXTS
    assert [line.get("part", 0) for line in lines] == [0, 1, 2]
    assert [line.get("in_reply_to") for line in lines] == [None, str(share_id), f"{share_id}/1"]
    assert all(line["language"] == "de-CH" and line["content_warning"] == {"text": "loud"} for line in lines)
    # And the share is sent with the first part's url, each part with its own
    view = share_view_of(shares, share_id)
    assert view["status"] == "sent"
    assert [p["status"] for p in view["parts"]] == ["sent"] * 3
    assert view["url"] == view["parts"][0]["url"]
    assert len({p["url"] for p in view["parts"]}) == 3
    # The tasks went in with the attempt, before any part
    assert types(store, share_id) == ["SharePlanned", "ShareAttemptStarted", "ResponseTasksRecorded",
                                      "SharePartSent", "SharePartSent", "SharePartSent", "ShareSent"]


@pytest.mark.parametrize("dies", ["crash_before", "crash_after"])
def test_a_worker_that_dies_mid_thread_resumes_at_the_next_part_and_posts_each_once(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock, dies: str
) -> None:
    channel = FakeChannel()
    rt = runtime(pool, store, channel, clock=clock)
    share_id = plan_thread(shares, make_account(pool).id, TEXTS)
    # Given a worker that posts part 1, then dies while posting part 2 (before or after it is made)
    channel.script = ["ok", dies]
    with pytest.raises(Crash):
        execute_share(rt, share_id)
    view = share_view_of(shares, share_id)
    assert [p["status"] for p in view["parts"]] == ["sent", "sending", "planned"]
    # When the lease runs out and the next delivery comes
    after_the_lease(clock, pool, share_id)
    assert execute_share(rt, share_id) == "share_sent"
    # Then it looked up part 2 only (part 1 is in the log), and every part was made once
    assert len(channel.find_calls) == 1
    assert len(channel.made) == 3
    assert len(channel.posts) == 3
    assert [p["status"] for p in share_view_of(shares, share_id)["parts"]] == ["sent"] * 3


def test_threads_due_together_are_published_concurrently_each_part_once(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock
) -> None:
    channel = FakeChannel(delay=0.05)
    with ThreadPoolExecutor(4) as calls:
        rt = runtime(pool, store, channel, clock=clock, calls=calls)
        account = make_account(pool)
        ids = [plan_thread(shares, account.id, [f"{i}: {t}" for t in TEXTS]) for i in range(4)]
        assert execute_shares(rt, ids) == dict.fromkeys(ids, "share_sent")
    assert channel.max_in_flight > 1
    assert len(channel.made) == 12
    assert len(channel.posts) == 12


def test_a_part_that_fails_is_retried_without_posting_the_parts_before_again(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock
) -> None:
    channel = FakeChannel(script=["ok", "ok", "transient"])
    rt = runtime(pool, store, channel, clock=clock)
    share_id = plan_thread(shares, make_account(pool).id, TEXTS)
    assert execute_share(rt, share_id) == "share_retry_scheduled"
    assert [p["status"] for p in share_view_of(shares, share_id)["parts"]] == ["sent", "sent", "failed"]
    clock.offset += timedelta(hours=2)
    assert execute_share(rt, share_id) == "share_sent"
    assert len(channel.made) == 3
    assert channel.find_calls == []  # a failure before the request left: nothing to look up


@pytest.mark.parametrize("remove", [False, True])
def test_a_part_posted_again_by_a_takeover_is_recorded_and_removed_when_the_account_asks(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock, remove: bool
) -> None:
    # Given a thread whose first part hangs on the network past its lease (a server hanging
    # past every timeout), on an account that asks for duplicates to be removed, or not
    channel = FakeChannel()
    rt = runtime(pool, store, channel, clock=clock)
    share_id = plan_thread(shares, make_account(pool, config={"remove_duplicates": remove}).id, TEXTS)
    with structlog.testing.capture_logs() as logs:
        first_outcome = _hang_then_take_over(rt, channel, clock, pool, share_id)
    # Then that attempt stops at its extra post, and the share stays sent with the takeover's thread
    assert first_outcome == ("share_duplicate_removed" if remove else "share_duplicate_posted")
    # And its log says so: the extra post is a duplicate, never a part sent
    extra_id = next(line["external_id"] for line in logs if line["event"] == "duplicate_posted")
    assert [line["event"] for line in logs if line.get("external_id") == extra_id] == (
        ["duplicate_posted", "duplicate_removed"] if remove else ["duplicate_posted"])
    assert len(channel.made) == 4
    view = share_view_of(shares, share_id)
    assert view["status"] == "sent"
    assert [p["status"] for p in view["parts"]] == ["sent"] * 3
    [extra] = view["duplicate_posts"]
    assert extra["external_id"] == extra_id
    assert extra["external_id"] not in {p["external_id"] for p in view["parts"]}
    assert extra["removed"] is remove
    # And the extra post is deleted through the channel only when the account asks for that
    assert channel.deleted == ([extra["external_id"]] if remove else [])
    assert ("DuplicateRemoved" in types(store, share_id)) is remove


def _hang_then_take_over(rt: Runtime, channel: FakeChannel, clock: Clock, pool: ConnectionPool[Any],
                         share_id: UUID) -> str:
    """The first part hangs past its lease; a takeover posts the whole thread; then the first
    attempt's answer comes back. The first attempt's outcome."""
    gate = threading.Event()
    channel.gates[share_id] = gate
    first = ThreadPoolExecutor(1).submit(execute_share, rt, share_id)
    try:
        wait_until(lambda: channel.in_flight == 1, timeout=10, what="the first part to be in flight")
        # And a takeover once the lease ran out, on a server whose timeline does not show the
        # first post yet, which therefore posts the whole thread again
        after_the_lease(clock, pool, share_id)
        channel.posts.clear()
        del channel.gates[share_id]
        assert execute_share(rt, share_id) == "share_sent"
    finally:
        # When the first attempt's answer finally comes back
        gate.set()
        outcome = first.result(timeout=30)
    return outcome


# --- Mastodon ------------------------------------------------------------------------------


@pytest.fixture
def to_mastodon(network_client: httpx.Client) -> MastodonPublisher:
    return MastodonPublisher(network_client, env={"TEAM_MASTODON_TOKEN": TOKEN})


def test_mastodon_gets_the_spoiler_text_sensitive_language_and_each_part_under_the_one_before(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock, mastodon: FakeMastodon,
    to_mastodon: MastodonPublisher,
) -> None:
    rt = runtime(pool, store, to_mastodon, clock=clock)
    share_id = plan_thread(shares, mastodon_account(pool, mastodon.base_url).id, TEXTS, language="pt-BR",
                           content_warning={"text": "spoilers", "label": "graphic-media"})
    assert execute_share(rt, share_id) == "share_sent"
    made = mastodon.stats()["made"]
    assert [m["text"] for m in made] == TEXTS
    assert [m["in_reply_to_id"] for m in made] == [None, made[0]["id"], made[1]["id"]]
    assert all((m["spoiler_text"], m["sensitive"], m["language"]) == ("spoilers", True, "pt") for m in made)
    view = share_view_of(shares, share_id)
    assert view["external_id"] == made[0]["id"]
    assert [p["external_id"] for p in view["parts"]] == [m["id"] for m in made]


def test_a_mastodon_thread_killed_between_parts_posts_each_part_once_even_when_keys_are_ignored(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock, mastodon: FakeMastodon,
    to_mastodon: MastodonPublisher,
) -> None:
    # Given a server that ignores Idempotency-Key, and a worker that dies right after part 2 is out
    mastodon.knobs.honour_idempotency_key = False
    rt = runtime(pool, store, DiesAfterPart(to_mastodon, part=1), clock=clock)
    share_id = plan_thread(shares, mastodon_account(pool, mastodon.base_url).id, TEXTS)
    with pytest.raises(Crash):
        execute_share(rt, share_id)
    # When the next delivery comes after the lease
    after_the_lease(clock, pool, share_id)
    assert execute_share(rt, share_id) == "share_sent"
    # Then it found part 2 (under part 1) and posted only part 3: one post per part
    assert mastodon.counts_by_text() == dict.fromkeys(TEXTS, 1)
    made = mastodon.stats()["made"]
    assert [m["in_reply_to_id"] for m in made] == [None, made[0]["id"], made[1]["id"]]
    view = share_view_of(shares, share_id)
    assert [p["status"] for p in view["parts"]] == ["sent"] * 3


def test_a_mastodon_part_whose_answer_is_lost_is_looked_up_not_posted_again(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock, mastodon: FakeMastodon,
    to_mastodon: MastodonPublisher,
) -> None:
    mastodon.knobs.honour_idempotency_key = False
    rt = runtime(pool, store, to_mastodon, clock=clock)
    share_id = plan_thread(shares, mastodon_account(pool, mastodon.base_url).id, TEXTS)
    # Given part 1 goes out and part 2 is made, its connection dropped unanswered
    original = mastodon.knobs.drop_after_write_every
    mastodon.knobs.drop_after_write_every = 2
    assert execute_share(rt, share_id) == "share_retry_scheduled"
    mastodon.knobs.drop_after_write_every = original
    assert share_view_of(shares, share_id)["parts"][1]["status"] == "failed"
    # When the retry comes
    clock.offset += timedelta(hours=2)
    assert execute_share(rt, share_id) == "share_sent"
    # Then part 2 was found, and each part made once
    assert mastodon.counts_by_text() == dict.fromkeys(TEXTS, 1)


def test_replies_under_every_part_are_collected_and_the_audit_stays_clean(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock, mastodon: FakeMastodon,
    to_mastodon: MastodonPublisher, database_url: str,
) -> None:
    rt = runtime(pool, store, to_mastodon, clock=clock)
    share_id = plan_thread(shares, mastodon_account(pool, mastodon.base_url).id, TEXTS)
    assert execute_share(rt, share_id) == "share_sent"
    made = mastodon.stats()["made"]
    # Given replies under the first part and under the last
    mastodon.add_reply(made[0]["id"], "great news")
    mastodon.add_reply(made[2]["id"], "thanks to you")
    # When the worker looks
    assert collect_one(rt, share_id) == "replies_collected"
    # Then both are the share's replies, and the thread's own parts are not
    view = share_view_of(shares, share_id)
    assert view["replies_received"] == 2
    # And the read models agree with the audit's recount of the log
    caught_up(store, database_url)
    with connect(database_url) as conn:
        found = audit(conn, workspace_id=WS)
    assert found.clean, found
