"""Recoverable failures: a failed or abandoned share retried by hand (``POST
/v1/shares/{id}/retry``) goes through the same exactly-once path, so it is posted once, also
on networks that ignore Idempotency-Key and answer late; a failed or abandoned share can be
cancelled; the failed-shares gauge drains when they are settled."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from psycopg_pool import ConnectionPool

from events.projections.runner import ProjectionRunner
from events.projections.shares import SharesProjection
from events.store import EventStore
from followthrough import bootstrap
from followthrough.settings import Settings
from scheduler.services import workspaces
from scheduler.services.audit import audit
from tests.support.fake_channel import FakeChannel
from tests.support.fake_mastodon import TOKEN, FakeMastodon
from tests.support.servers import serve
from tests.support.shares import WS, Clock, make_account, mastodon_account, plan, runtime, share_service, view
from workers.channels.mastodon import MastodonPublisher
from workers.execution import execute_share

pytestmark = pytest.mark.integration


def failed_gauge(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('followthrough_shares{status="failed"}'):
            return float(line.split()[-1])
    return 0.0


def catch_up(store: EventStore, settings: Settings) -> None:
    ProjectionRunner(store, SharesProjection(), conninfo=settings.database_url or "").catch_up_fully()


def test_a_failed_share_retried_by_hand_is_posted_once_and_the_failed_gauge_drains(
    store: EventStore, pool: ConnectionPool[Any], settings: Settings, client: httpx.Client
) -> None:
    # Given a share that failed for good (the network refused it), its tasks cancelled
    shares = share_service(pool, store)
    channel = FakeChannel(script=["permanent"], honour_key=False)
    rt = runtime(pool, store, channel, clock=Clock())
    share_id = plan(shares, make_account(pool))
    assert execute_share(rt, share_id) == "share_failed"
    assert view(shares, share_id)["status"] == "failed"
    assert {t["status"] for t in view(shares, share_id)["response_tasks"]} == {"cancelled"}
    catch_up(store, settings)
    assert failed_gauge(client) == 1.0
    # When it is retried by hand, for now
    retried = shares.retry(WS, share_id, None, actor="test")[0]
    # Then it is planned again with its response work owed again, and the next delivery posts it once
    assert retried.status == "planned"
    assert execute_share(rt, share_id) == "share_sent"
    assert channel.count_for(share_id) == 1
    shown = view(shares, share_id)
    assert shown["status"] == "sent"
    assert {t["status"] for t in shown["response_tasks"]} == {"open"}
    # And the failed gauge drains
    catch_up(store, settings)
    assert failed_gauge(client) == 0.0
    # And the audit's own recount agrees with the read models
    with pool.connection() as conn:
        assert audit(conn, workspace_id=WS).clean
    # And a share that is sent cannot be retried
    assert client.post(f"/v1/shares/{share_id}/retry", headers=_auth(pool)).status_code == 409


def test_an_abandoned_share_whose_last_attempt_may_have_posted_is_looked_up_before_any_resend(
    store: EventStore, pool: ConnectionPool[Any]
) -> None:
    # Given a network that ignores Idempotency-Key and answers too late (the post landed), and
    # a share abandoned after that attempt (one attempt allowed)
    shares = share_service(pool, store)
    channel = FakeChannel(script=["unknown"], honour_key=False, delay=0.2)
    rt = runtime(pool, store, channel, clock=Clock(), max_attempts=1)
    share_id = plan(shares, make_account(pool))
    execute_share(rt, share_id)
    assert view(shares, share_id)["status"] == "abandoned"
    assert channel.count_for(share_id) == 1
    # When it is retried by hand
    shares.retry(WS, share_id, datetime.now(UTC), actor="test")
    # Then the next delivery finds the post instead of making a second one
    assert execute_share(rt, share_id) == "share_sent"
    assert channel.count_for(share_id) == 1
    assert channel.find_calls == [share_id]
    assert view(shares, share_id)["external_id"] == channel.made[0][1].external_id


@pytest.fixture
def mastodon_client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(5.0, read=0.5)) as c:
        yield c


def test_a_retry_against_a_slow_mastodon_that_ignores_idempotency_keys_posts_once(
    store: EventStore, pool: ConnectionPool[Any], mastodon: FakeMastodon, mastodon_client: httpx.Client
) -> None:
    # Given a Mastodon that ignores Idempotency-Key and answers posts later than the worker waits
    mastodon.knobs.honour_idempotency_key = False
    mastodon.knobs.latency = 1.5
    shares = share_service(pool, store)
    rt = runtime(pool, store, MastodonPublisher(mastodon_client, env={"TEAM_MASTODON_TOKEN": TOKEN}), clock=Clock(),
                 max_attempts=1)
    account = mastodon_account(pool, mastodon.base_url)
    share_id = plan(shares, account)
    # And a share abandoned after an attempt whose answer never came (the post landed)
    execute_share(rt, share_id)
    assert view(shares, share_id)["status"] == "abandoned"
    # When it is retried by hand and delivered again (the server now answers at once)
    mastodon.knobs.latency = 0.0
    shares.retry(WS, share_id, None, actor="test")
    assert execute_share(rt, share_id) == "share_sent"
    # Then the server holds one post of it
    assert mastodon.counts_by_text() == {"hello": 1}


def test_the_retry_and_cancel_endpoints_settle_failed_and_abandoned_shares(
    store: EventStore, pool: ConnectionPool[Any], client: httpx.Client
) -> None:
    shares = share_service(pool, store)
    rt = runtime(pool, store, FakeChannel(script=["permanent", "permanent"]), clock=Clock())
    account = make_account(pool)
    failed, other = plan(shares, account), plan(shares, account)
    assert execute_share(rt, failed) == "share_failed"
    assert execute_share(rt, other) == "share_failed"
    auth = _auth(pool)
    # A time in the past is refused naming the field
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    refused = client.post(f"/v1/shares/{failed}/retry", headers=auth, json={"scheduled_at": past})
    assert refused.status_code == 422
    assert "scheduled_at" in refused.text
    # A retry for a given time plans it again for then
    later = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    done = client.post(f"/v1/shares/{failed}/retry", headers=auth, json={"scheduled_at": later.isoformat()})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "planned"
    assert datetime.fromisoformat(done.json()["scheduled_at"]) == later
    # A failed share can be cancelled
    cancelled = client.post(f"/v1/shares/{other}/cancel", headers=auth, json={"reason": "not needed"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    # And a planned one cannot be retried
    assert client.post(f"/v1/shares/{failed}/retry", headers=auth).status_code == 409


def _auth(pool: ConnectionPool[Any]) -> dict[str, str]:
    with pool.connection() as conn:
        token = workspaces.create_token(conn, WS, "write", label="test")
    return {"Authorization": f"Bearer {token}"}


def test_a_failed_share_is_retried_and_another_cancelled_from_their_pages(
    store: EventStore, pool: ConnectionPool[Any], settings: Settings
) -> None:
    # Given two shares failed for good, and a write session on the dashboard
    shares = share_service(pool, store)
    rt = runtime(pool, store, FakeChannel(script=["permanent", "permanent"]), clock=Clock())
    account = make_account(pool)
    retried, cancelled = plan(shares, account), plan(shares, account)
    for share_id in (retried, cancelled):
        assert execute_share(rt, share_id) == "share_failed"
    token = _auth(pool)["Authorization"].removeprefix("Bearer ")
    with serve(bootstrap.build_api(settings)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10, follow_redirects=False) as browser:
        assert browser.post("/dashboard/signin", data={"token": token, "next": "/dashboard"}).status_code == 303
        page = browser.get(f"/dashboard/shares/{retried}").text
        # Then the page offers both, as forms with the page's CSRF value
        assert "Retry share" in page
        assert "Cancel share" in page
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found
        csrf = found.group(1)
        # When one is retried (no time: now) and the other cancelled from their pages
        again = browser.post(f"/dashboard/shares/{retried}/settle", data={"csrf": csrf, "action": "retry"})
        gone = browser.post(f"/dashboard/shares/{cancelled}/settle",
                            data={"csrf": csrf, "action": "cancel", "reason": "wrong account"})
        # And a form without the CSRF value is refused
        forged = browser.post(f"/dashboard/shares/{cancelled}/settle", data={"action": "retry"})
    # Then each is done
    assert again.headers["location"] == f"/dashboard/shares/{retried}?done=planned+again"
    assert gone.headers["location"] == f"/dashboard/shares/{cancelled}?done=cancelled"
    assert forged.status_code == 403
    assert (view(shares, retried)["status"], view(shares, cancelled)["status"]) == ("planned", "cancelled")
