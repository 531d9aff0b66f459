"""Replies collected, answered and dismissed against a real PostgreSQL, with the worker's
code in this process and real channels: the console's replies file, and the fake
Mastodon and Bluesky servers on loopback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
from psycopg_pool import ConnectionPool
from structlog.testing import capture_logs

from events.store import EventStore
from followthrough import bootstrap
from followthrough.settings import Settings
from scheduler.services import workspaces
from scheduler.services.shares import PlanShare, ShareService
from tests.support.fake_bluesky import APP_PASSWORD, HANDLE, FakeBluesky
from tests.support.fake_channel import FakeChannel
from tests.support.fake_mastodon import ACCT, TOKEN, FakeMastodon
from tests.support.replies import (
    ANSWER_PLAN,
    account_on,
    catch_up,
    inbox_page,
    reply_service,
    schedule_due,
    sent_share,
)
from tests.support.servers import serve
from tests.support.shares import WS, Clock, runtime, view
from workers.answering import publish_answers
from workers.channels.bluesky import BlueskyPublisher
from workers.channels.console import ConsolePublisher
from workers.channels.console_replies import write_reply
from workers.channels.mastodon import MastodonPublisher
from workers.collection import collect_one
from workers.execution import execute_shares

FAST = {"replies": {"cadence": [{"until": "P1D", "every": "PT1S"}], "before_due": "PT1S"}}


# --- the console channel, through the API -------------------------------------------


def test_console_replies_reach_the_inbox_once_and_are_answered_and_dismissed_through_the_api(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock,
) -> None:
    # Given the API, a console account looking for replies every second, and a sent share
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        auth = {"Authorization": f"Bearer {workspaces.create_token(conn, WS, 'write')}"}
    console = ConsolePublisher(settings.console_dir.resolve())
    rt = runtime(pool, store, console, clock=clock)
    account = account_on(pool, "console", FAST)
    share_id = sent_share(rt, shares, account)
    assert schedule_due(pool, "check_replies", share_id) is not None  # the first look is on the schedule
    # When two people reply (one to the other) and a look is made twice
    first = write_reply(settings.console_dir, WS, "team", share_id=str(share_id), text="When on Android?",
                        author="ana")
    write_reply(settings.console_dir, WS, "team", share_id=str(share_id), text="Same question", author="bo",
                parent_id=first["reply_id"])
    with capture_logs() as logs:
        assert collect_one(rt, share_id) == "replies_collected"
        assert collect_one(rt, share_id) == "replies_collected"
    catch_up(store, settings.database_url or "")
    looks = [line for line in logs if line["event"] == "replies_collected"]
    assert [(line["found"], line["new"]) for line in looks] == [(2, 2), (2, 0)]
    assert looks[0]["next_look_at"] is not None
    with serve(bootstrap.build_api(settings)) as base_url, httpx.Client(base_url=base_url, timeout=10) as api:
        # Then both are in the inbox once, newest first, a page at a time
        page = api.get("/v1/replies", params={"state": "unanswered", "limit": 1}, headers=auth).json()
        assert [r["author"] for r in page["items"]] in (["bo"], ["ana"])
        rest = api.get("/v1/replies", params={"state": "unanswered", "limit": 1, "cursor": page["next_cursor"]},
                       headers=auth).json()
        assert rest["next_cursor"] is None
        both = {r["author"]: r for r in [*page["items"], *rest["items"]]}
        assert set(both) == {"ana", "bo"}
        assert both["ana"]["owner"] == "alice"
        assert both["bo"]["in_reply_to"] == first["reply_id"]
        # And the filters narrow it by owner, account and share
        def count(**params: str) -> int:
            return len(api.get("/v1/replies", params=params, headers=auth).json()["items"])

        assert (count(owner="alice"), count(owner="bob")) == (2, 0)
        assert count(account_id=str(account.id), share_id=str(share_id)) == 2
        assert count(share_id="00000000-0000-4000-8000-00000000beef") == 0
        # And when one is answered and the other dismissed
        answered = api.post(f"/v1/replies/{both['ana']['id']}/answer", json={"text": "Next week!"}, headers=auth)
        assert answered.status_code == 202, answered.text
        assert answered.json()["answer"]["status"] == "requested"
        dismissed = api.post(f"/v1/replies/{both['bo']['id']}/dismiss", json={"reason": "asked above"},
                             headers=auth)
        assert dismissed.status_code == 200, dismissed.text
        with capture_logs() as logs:
            assert publish_answers(rt, share_id) == "reply_answered"
        assert schedule_due(pool, "answer", share_id) is None  # nothing left to publish
        assert collect_one(rt, share_id) == "replies_collected"  # our own answer is no new reply
        catch_up(store, settings.database_url or "")
        # Then the answer is on the channel once, its url on the reply, and the figures count it
        lines = [orjson.loads(x) for x in (settings.console_dir / WS / "team.replies.jsonl").read_bytes().splitlines()]
        assert [x["text"] for x in lines if x["by_account"]] == ["Next week!"]
        done = api.get("/v1/replies", params={"state": "answered"}, headers=auth).json()["items"]
        assert [(r["author"], r["answer"]["url"] is not None) for r in done] == [("ana", True)]
        assert len(api.get("/v1/replies", params={"state": "dismissed"}, headers=auth).json()["items"]) == 1
        assert [line["event"] for line in logs if line["event"] == "reply_answered"] == ["reply_answered"]
        row = api.get("/v1/followthrough", params={"by": "account"}, headers=auth).json()["rows"][0]
        assert (row["replies_received"], row["replies_answered"]) == (2, 1)
        assert row["median_seconds_to_answer"] is not None
        shown = api.get(f"/v1/shares/{share_id}", headers=auth).json()["replies"]
        assert (shown["received"], shown["answered"], shown["collected"]) == (2, 1, True)
        assert shown["last_look_at"] is not None
        # And answering it again is refused (problem+json, naming the field)
        again = api.post(f"/v1/replies/{both['ana']['id']}/answer", json={"text": "Again"}, headers=auth)
        assert again.status_code == 409, again.text


def test_a_channel_that_cannot_read_replies_leaves_its_tasks_manual_and_says_so(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock,
) -> None:
    # Given a share sent through a channel without a thread reader
    rt = runtime(pool, store, FakeChannel(), clock=clock)
    share_id = sent_share(rt, shares, account_on(pool, "console", {}))
    # When its first look is made
    assert collect_one(rt, share_id) == "replies_not_collected"
    # Then no other look is scheduled, the share view says so, and its tasks stay open
    assert schedule_due(pool, "check_replies", share_id) is None
    shown = view(shares, share_id)
    assert shown["replies"]["note"] == "replies not collected"
    assert [t["status"] for t in shown["response_tasks"]] == ["open", "open"]


def test_looks_past_the_account_budget_move_to_the_next_hour(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock, settings: Settings,
) -> None:
    # Given an account allowed one look per hour
    rt = runtime(pool, store, ConsolePublisher(settings.console_dir.resolve()), clock=clock)
    account = account_on(pool, "console", {"replies": {"budget_per_hour": 1}})
    share_id = sent_share(rt, shares, account)
    # When two looks are asked for in the same hour
    assert collect_one(rt, share_id) == "replies_collected"
    assert collect_one(rt, share_id) == "replies_postponed"
    # Then the second waits for the next hour
    now = clock()
    assert schedule_due(pool, "check_replies", share_id) == now.replace(minute=0, second=0, microsecond=0) + timedelta(
        hours=1)


# --- Mastodon ------------------------------------------------------------------------


def mastodon_account(pool: ConnectionPool[Any], fake: FakeMastodon) -> Any:
    return account_on(pool, "mastodon", {"base_url": fake.base_url, "access_token_env": "TEAM_MASTODON_TOKEN", **FAST})


def test_a_mastodon_thread_counts_whole_and_the_account_own_reply_answers_the_reply_it_answers(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock, mastodon: FakeMastodon,
    network_client: httpx.Client, settings: Settings,
) -> None:
    # Given a share posted on Mastodon, whose server pages a status' context two at a time
    rt = runtime(pool, store, MastodonPublisher(network_client, env={"TEAM_MASTODON_TOKEN": TOKEN}), clock=clock)
    share_id = sent_share(rt, shares, mastodon_account(pool, mastodon))
    post_id = mastodon.made[0]["id"]
    mastodon.knobs.context_page_size = 2
    # When someone replies, another replies to them, a third replies, and the team answers the first in its app
    ana = mastodon.add_reply(post_id, "Does it work offline?")
    mastodon.add_reply(ana["id"], "Wondering too", author="bo@example.social")
    mastodon.add_reply(post_id, "Congrats!", author="cy@example.social")
    mine = mastodon.add_reply(ana["id"], "Yes, fully offline.", author=ACCT)
    assert collect_one(rt, share_id) == "replies_collected"
    assert collect_one(rt, share_id) == "replies_collected"
    catch_up(store, settings.database_url or "")
    # Then the three replies are recorded once, and the first is answered by the team's own post
    replies = {r["author"]: r for r in inbox_page(pool, share_id=share_id)}
    assert set(replies) == {"ana@example.social", "bo@example.social", "cy@example.social"}
    assert replies["ana@example.social"]["state"] == "answered"
    assert replies["ana@example.social"]["answered_natively"] is True
    assert replies["ana@example.social"]["answer_url"] == mine["url"]
    assert replies["bo@example.social"]["parent_id"] == ana["id"]
    assert sum(1 for r in mastodon.requests if r.endswith("/context")) >= 4  # two pages per look


def test_a_mastodon_answer_lost_on_the_way_back_is_found_and_posted_once(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock, mastodon: FakeMastodon,
    network_client: httpx.Client, settings: Settings,
) -> None:
    # Given a reply under a Mastodon share, and a server that ignores Idempotency-Key
    rt = runtime(pool, store, MastodonPublisher(network_client, env={"TEAM_MASTODON_TOKEN": TOKEN}), clock=clock)
    share_id = sent_share(rt, shares, mastodon_account(pool, mastodon))
    post_id = mastodon.made[0]["id"]
    asked = mastodon.add_reply(post_id, "Any discount?")
    collect_one(rt, share_id)
    catch_up(store, settings.database_url or "")
    [reply] = inbox_page(pool, share_id=share_id)
    mastodon.knobs.honour_idempotency_key = False
    reply_service(pool, store, shares).answer(WS, reply["id"], text="Ten percent this week.", by="alice")
    # When the answer is made but its connection dropped before the answer came back
    mastodon.drop_next_after_write()
    assert publish_answers(rt, share_id) == "answer_retry_scheduled"
    clock.offset += timedelta(hours=2)  # past the retry's time
    # Then the next attempt finds it instead of posting again
    assert publish_answers(rt, share_id) == "reply_answered"
    assert mastodon.texts["Ten percent this week."] == 1
    made = next(s for s in mastodon.statuses if "Ten percent" in s["content"])
    assert made["in_reply_to_id"] == asked["id"]
    # And the next look does not take the team's answer for a new reply, nor answer twice
    collect_one(rt, share_id)
    catch_up(store, settings.database_url or "")
    [after] = inbox_page(pool, share_id=share_id)
    assert (after["state"], after["answered_natively"]) == ("answered", False)


def test_a_mastodon_rate_limit_pushes_the_next_look_past_its_retry_after(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock, mastodon: FakeMastodon,
    network_client: httpx.Client,
) -> None:
    # Given a share posted on Mastodon
    rt = runtime(pool, store, MastodonPublisher(network_client, env={"TEAM_MASTODON_TOKEN": TOKEN}), clock=clock)
    share_id = sent_share(rt, shares, mastodon_account(pool, mastodon))
    # When a look is refused with 429 and Retry-After: 600
    mastodon.fail_next(1, 429, headers={"Retry-After": "600"}, path="/context")
    before = datetime.now(UTC)
    assert collect_one(rt, share_id) == "replies_collected"
    # Then the next look waits ten minutes, and the share shows why
    assert schedule_due(pool, "check_replies", share_id) >= before + timedelta(seconds=599)
    assert "429" in (view(shares, share_id)["replies"]["last_error"] or "")


# --- Bluesky (the fake PDS, its AppView calls proxied) -------------------------------


def test_a_bluesky_thread_is_read_from_getpostthread_and_answered_in_it(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock, bluesky: FakeBluesky,
    network_client: httpx.Client, settings: Settings,
) -> None:
    # Given a share posted on Bluesky and a reply to it, and a reply to that reply
    publisher = BlueskyPublisher(network_client, env={"TEAM_BSKY_PASSWORD": APP_PASSWORD})
    rt = runtime(pool, store, publisher, clock=clock)
    config = {"service": bluesky.base_url, "handle": HANDLE, "app_password_env": "TEAM_BSKY_PASSWORD", **FAST}
    share_id = sent_share(rt, shares, account_on(pool, "bluesky", config))
    [post] = bluesky.records.values()
    first = bluesky.add_reply(post["uri"], "Love it")
    bluesky.add_reply(first["uri"], "Me too", handle="bo.example.com")
    # When a look is made and the first reply is answered through the service
    assert collect_one(rt, share_id) == "replies_collected"
    catch_up(store, settings.database_url or "")
    replies = {r["author"]: r for r in inbox_page(pool, share_id=share_id)}
    assert set(replies) == {"ana.example.com", "bo.example.com"}
    reply_service(pool, store, shares).answer(WS, replies["ana.example.com"]["id"], text="Thank you!", by="alice")
    assert publish_answers(rt, share_id) == "reply_answered"
    assert publish_answers(rt, share_id) == "answers_idle"
    # Then the answer is a post in the thread, under the reply, rooted at the share's post, once
    answers = [r for r in bluesky.records.values() if r["value"]["text"] == "Thank you!"]
    assert len(answers) == 1
    assert answers[0]["value"]["reply"]["parent"]["uri"] == first["uri"]
    assert answers[0]["value"]["reply"]["root"]["uri"] == post["uri"]
    # And the next look sees it as the team's answer, not as a reply
    collect_one(rt, share_id)
    catch_up(store, settings.database_url or "")
    assert len(inbox_page(pool, share_id=share_id)) == 2
    assert inbox_page(pool, state="answered")[0]["answer_url"].startswith("https://bsky.app/profile/")


def test_bad_replies_requests_get_problems_naming_the_field_and_write_nothing(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any],
) -> None:
    # Given the API, a write token and a read token
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        write = {"Authorization": f"Bearer {workspaces.create_token(conn, WS, 'write')}"}
        read = {"Authorization": f"Bearer {workspaces.create_token(conn, WS, 'read')}"}
        before = conn.execute("SELECT count(*) FROM events").fetchone()
    unknown = "00000000-0000-4000-8000-00000000beef"
    with serve(bootstrap.build_api(settings)) as base_url, httpx.Client(base_url=base_url, timeout=10) as api:
        # When the inbox is asked with a cursor it never gave, and a state it does not know
        cursor = api.get("/v1/replies", params={"cursor": "not-a-cursor"}, headers=read)
        state = api.get("/v1/replies", params={"state": "maybe"}, headers=read)
        # And an unknown reply is answered, an empty answer sent, and a read token writes
        missing = api.post(f"/v1/replies/{unknown}/answer", json={"text": "hi"}, headers=write)
        empty = api.post(f"/v1/replies/{unknown}/answer", json={"text": ""}, headers=write)
        refused = api.post(f"/v1/replies/{unknown}/dismiss", json={}, headers=read)
    # Then each is a problem+json naming what is wrong, and nothing was written
    for response, status in ((cursor, 422), (state, 422), (missing, 404), (empty, 422), (refused, 403)):
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    assert "cursor" in cursor.text
    assert "text" in empty.text
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == before


def test_shares_sent_together_each_get_their_first_look_on_the_schedule(
    store: EventStore, pool: ConnectionPool[Any], shares: ShareService, clock: Clock, settings: Settings,
) -> None:
    # Given three console shares due together, on an account looking every 5 seconds
    rt = runtime(pool, store, ConsolePublisher(settings.console_dir.resolve()), clock=clock)
    account = account_on(pool, "console", {"replies": {"cadence": [{"until": "P1D", "every": "PT5S"}]}})
    ids = [shares.plan(WS, PlanShare(account_id=account.id, text=f"note {i}", scheduled_at=None,
                                     response_plan=ANSWER_PLAN), actor="test").share_id
           for i in range(3)]
    # When one message publishes them (their posts recorded in one transaction)
    assert set(execute_shares(rt, ids).values()) == {"share_sent"}
    # Then each has its first look 5 seconds after its own post, and no publish row
    for share_id in ids:
        sent_at = datetime.fromisoformat(view(shares, share_id)["sent_at"])
        assert schedule_due(pool, "check_replies", share_id) == sent_at + timedelta(seconds=5)
        assert schedule_due(pool, "publish", share_id) is None
