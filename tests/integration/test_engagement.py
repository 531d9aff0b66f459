"""Engagement: each look reads the post's counts, records them when they changed, and they
reach ``GET /v1/shares/{id}``, the follow-through report and the read model; against a
real PostgreSQL, the worker's code in this process, and the fake Mastodon and Bluesky
servers on loopback."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
from psycopg_pool import ConnectionPool

from events.store import EventStore
from followthrough import bootstrap
from followthrough.settings import Settings
from scheduler.domain import share as lifecycle
from scheduler.services import workspaces
from scheduler.services.audit import audit
from scheduler.services.shares import ShareService
from tests.support.fake_bluesky import APP_PASSWORD, HANDLE, FakeBluesky
from tests.support.fake_mastodon import TOKEN, FakeMastodon
from tests.support.replies import account_on, catch_up, sent_share
from tests.support.servers import serve
from tests.support.shares import WS, Clock, runtime, share_service
from workers.channels.bluesky import BlueskyPublisher
from workers.channels.mastodon import MastodonPublisher
from workers.collection import collect_one

FAST = {"replies": {"cadence": [{"until": "P1D", "every": "PT1S"}], "before_due": "PT1S"}}


def looks_recorded(store: EventStore, share_id: UUID) -> int:
    return sum(1 for r in store.read_stream(lifecycle.stream_id(share_id)) if r.type_name == "RepliesLooked")


def share_row(database_url: str, share_id: UUID) -> tuple[Any, ...]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT engagement_replies, engagement_reposts, engagement_likes, engagement_quotes, "
                           "engagement_at FROM rm_shares WHERE share_id = %s", (share_id,)).fetchone()
    assert row is not None
    return tuple(row)


def test_mastodon_counts_reach_the_share_the_report_and_the_read_model_and_unchanged_counts_record_nothing(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], mastodon: FakeMastodon,
    network_client: httpx.Client,
) -> None:
    # Given the API and a share posted on Mastodon, looked at once (no one has engaged yet)
    clock = Clock()
    shares: ShareService = share_service(pool, store, clock=clock)
    rt = runtime(pool, store, MastodonPublisher(network_client, env={"TEAM_MASTODON_TOKEN": TOKEN}), clock=clock)
    account = account_on(pool, "mastodon", {"base_url": mastodon.base_url, "access_token_env": "TEAM_MASTODON_TOKEN",
                                            **FAST})
    share_id = sent_share(rt, shares, account)
    post_id = mastodon.made[0]["id"]
    assert collect_one(rt, share_id) == "replies_collected"
    first_looks = looks_recorded(store, share_id)
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        auth = {"Authorization": f"Bearer {workspaces.create_token(conn, WS, 'read')}"}
    with serve(bootstrap.build_api(settings)) as base_url, httpx.Client(base_url=base_url, timeout=10) as api:
        shown = api.get(f"/v1/shares/{share_id}", headers=auth).json()["engagement"]
        assert {k: shown[k] for k in ("replies", "reposts", "likes", "quotes")} == {
            "replies": 0, "reposts": 0, "likes": 0, "quotes": None}
        # When two people favourite it, one boosts it and one replies, and a look is made
        mastodon.engage(post_id, "favourite", "ana@example.social")
        mastodon.engage(post_id, "favourite", "bo@example.social")
        mastodon.engage(post_id, "reblog", "bo@example.social")
        mastodon.add_reply(post_id, "Nice!", author="cy@example.social")
        clock.offset += timedelta(minutes=1)
        assert collect_one(rt, share_id) == "replies_collected"
        changed = api.get(f"/v1/shares/{share_id}", headers=auth).json()["engagement"]
        # Then GET /v1/shares/{id} shows the new counts, as of that look
        assert {k: changed[k] for k in ("replies", "reposts", "likes", "quotes")} == {
            "replies": 1, "reposts": 1, "likes": 2, "quotes": None}
        assert changed["as_of"] > shown["as_of"]
        recorded = looks_recorded(store, share_id)
        assert recorded == first_looks + 1
        # When the next look reads the same counts: no event, and the counts hold as of that look
        clock.offset += timedelta(minutes=1)
        assert collect_one(rt, share_id) == "replies_collected"
        assert looks_recorded(store, share_id) == recorded
        again = api.get(f"/v1/shares/{share_id}", headers=auth).json()["engagement"]
        assert (again["likes"], again["reposts"]) == (2, 1)
        assert again["as_of"] > changed["as_of"]
        # When a favourite is taken back and the server starts counting quotes (Mastodon 4.4)
        mastodon.engage(post_id, "favourite", "ana@example.social", undo=True)
        mastodon.knobs.quotes_count = True
        mastodon.engage(post_id, "quote", "dee@example.social")
        clock.offset += timedelta(minutes=1)
        assert collect_one(rt, share_id) == "replies_collected"
        assert looks_recorded(store, share_id) == recorded + 1
        catch_up(store, settings.database_url or "")
        # Then the read model holds the last counts, and the report totals them by account and by day
        assert share_row(settings.database_url or "", share_id)[:4] == (1, 1, 1, 1)
        by_account = api.get("/v1/followthrough", params={"by": "account"}, headers=auth).json()["rows"]
        [team] = [row for row in by_account if row["key"] == "team"]
        assert (team["engagement_replies"], team["engagement_reposts"], team["engagement_likes"],
                team["engagement_quotes"]) == (1, 1, 1, 1)
        by_day = api.get("/v1/followthrough", params={"by": "day"}, headers=auth).json()["rows"]
        assert sum(row["engagement_likes"] for row in by_day) == 1
        by_owner = api.get("/v1/followthrough", params={"by": "owner"}, headers=auth).json()["rows"]
        assert all(row["engagement_likes"] is None for row in by_owner)  # a post's counts have no owner
        # And the dashboard's overview shows the totals per account and per day
        token = auth["Authorization"].removeprefix("Bearer ")
        signed = api.post("/dashboard/signin", data={"token": token, "next": "/dashboard"})
        assert signed.status_code == 303, signed.text
        page = api.get("/dashboard").text
        account_row = page.split('<table id="by-account"', 1)[1].split('data-key="team"', 1)[1].split("</tr>", 1)[0]
        assert '<td class="num" data-col="engagement_likes">1</td>' in account_row
        assert '<td class="num" data-col="engagement_quotes">1</td>' in account_row
        day_table = page.split('<table id="engagement-by-day"', 1)[1].split("</table>", 1)[0]
        assert '<td class="num" data-col="engagement_reposts">1</td>' in day_table
        # And the share's page shows its counts
        share_page = api.get(f"/dashboard/shares/{share_id}").text
        assert "1 replies, 1 reposts, 1 likes, 1 quotes" in share_page
    # And the audit recounts the counts from the log and finds nothing amiss
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        found = audit(conn, workspace_id=None)
    assert found.clean, found.as_dict()


def test_the_audit_names_engagement_counts_the_read_model_lost(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], mastodon: FakeMastodon,
    network_client: httpx.Client,
) -> None:
    # Given a Mastodon share whose likes were read and projected
    clock = Clock()
    shares = share_service(pool, store, clock=clock)
    rt = runtime(pool, store, MastodonPublisher(network_client, env={"TEAM_MASTODON_TOKEN": TOKEN}), clock=clock)
    account = account_on(pool, "mastodon", {"base_url": mastodon.base_url, "access_token_env": "TEAM_MASTODON_TOKEN",
                                            **FAST})
    share_id = sent_share(rt, shares, account)
    mastodon.engage(mastodon.made[0]["id"], "favourite")
    collect_one(rt, share_id)
    catch_up(store, settings.database_url or "")
    # When the read model's count is altered
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        conn.execute("UPDATE rm_shares SET engagement_likes = 7 WHERE share_id = %s", (share_id,))
        found = audit(conn, workspace_id=None)
    # Then the audit is not clean and names the field
    assert not found.clean
    assert "engagement_likes" in str(found.as_dict())


def test_bluesky_counts_are_read_from_the_thread_postview(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], bluesky: FakeBluesky,
    network_client: httpx.Client,
) -> None:
    # Given a share posted on Bluesky
    clock = Clock()
    shares = share_service(pool, store, clock=clock)
    rt = runtime(pool, store, BlueskyPublisher(network_client, env={"TEAM_BSKY_PASSWORD": APP_PASSWORD}), clock=clock)
    config = {"service": bluesky.base_url, "handle": HANDLE, "app_password_env": "TEAM_BSKY_PASSWORD", **FAST}
    share_id = sent_share(rt, shares, account_on(pool, "bluesky", config))
    [post] = bluesky.records.values()
    # When it is liked twice, reposted and quoted, and a look is made (one getPostThread)
    bluesky.engage(post["uri"], "like", "ana.example.com")
    bluesky.engage(post["uri"], "like", "bo.example.com")
    bluesky.engage(post["uri"], "repost", "bo.example.com")
    bluesky.engage(post["uri"], "quote", "cy.example.com")
    before = bluesky.thread_requests
    assert collect_one(rt, share_id) == "replies_collected"
    assert bluesky.thread_requests == before + 1
    # Then the share shows the postView's counts
    state, _ = shares.load(WS, share_id)
    counts = state.thread.engagement
    assert counts is not None
    assert (counts.replies, counts.reposts, counts.likes, counts.quotes) == (0, 1, 2, 1)
