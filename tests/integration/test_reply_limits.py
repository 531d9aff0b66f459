"""An answer is held to the same text limit as a plan: the account's server's own limit
(Mastodon's ``/api/v2/instance``), through the one ReplyService the API is built with."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from events.store import EventStore
from followthrough import bootstrap
from followthrough.settings import Settings
from scheduler.services import workspaces
from tests.support.fake_mastodon import TOKEN, FakeMastodon
from tests.support.replies import account_on, catch_up, inbox_page, sent_share
from tests.support.servers import serve
from tests.support.shares import WS, Clock, runtime, share_service
from tests.support.system import wait_until
from workers.channels.mastodon import MastodonPublisher
from workers.collection import collect_one


@pytest.fixture
def mastodon() -> Iterator[FakeMastodon]:
    fake = FakeMastodon()
    with serve(fake.build()) as url:
        fake.base_url = url
        yield fake


def test_an_answer_longer_than_the_servers_own_limit_is_refused_like_a_plan(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], mastodon: FakeMastodon,
) -> None:
    # Given a Mastodon server that allows 200 characters (its default would be 500), a share
    # sent there and a reply collected under it
    mastodon.knobs.max_characters = 200
    clock = Clock()
    with httpx.Client(timeout=5) as http:
        rt = runtime(pool, store, MastodonPublisher(http, env={"TEAM_MASTODON_TOKEN": TOKEN}), clock=clock)
        account = account_on(pool, "mastodon", {"base_url": mastodon.base_url,
                                                "access_token_env": "TEAM_MASTODON_TOKEN"})
        share_id = sent_share(rt, share_service(pool, store, clock=clock), account)
        mastodon.add_reply(mastodon.made[0]["id"], "Does it work offline?")
        assert collect_one(rt, share_id) == "replies_collected"
    # (The projection reads below the cluster's oldest running transaction: on a shared
    # server another database's writer can hold it back a moment.)
    def collected() -> list[dict[str, Any]]:
        catch_up(store, settings.database_url or "")
        return inbox_page(pool, share_id=share_id)

    [reply] = wait_until(collected, timeout=30, what="the reply in the inbox")
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        auth = {"Authorization": f"Bearer {workspaces.create_token(conn, WS, 'write')}"}
    too_long, fits = "x" * 300, "Yes, fully offline."
    with serve(bootstrap.build_api(settings)) as base_url, httpx.Client(base_url=base_url, timeout=10) as api:
        # When a plan and an answer of 300 characters are sent through the API
        plan = api.post("/v1/shares", json={"account_id": str(account.id), "text": too_long,
                                            "response_plan": [{"kind": "check_replies", "after": "PT1H",
                                                               "owner": "alice"}]}, headers=auth)
        answer = api.post(f"/v1/replies/{reply['id']}/answer", json={"text": too_long}, headers=auth)
        # Then both are refused alike, naming the text and the server's limit
        for refused in (plan, answer):
            assert refused.status_code == 422, refused.text
            assert refused.json()["errors"][0]["field"] == "text"
            assert "at most 200" in refused.json()["detail"]
        # And an answer within the limit is taken
        taken = api.post(f"/v1/replies/{reply['id']}/answer", json={"text": fits}, headers=auth)
        assert taken.status_code == 202, taken.text
        assert taken.json()["answer"]["status"] == "requested"
