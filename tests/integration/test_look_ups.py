"""A look-up for an unknown outcome never takes another share's post for this share's.

Mastodon cannot be asked by idempotency key: the worker looks through the account's statuses
for the share's text. Two shares with the same text on one account (a recurring announcement,
a benchmark's posts) would match each other's posts; the look-up passes over a post the log
records for another share, and over the account's answers to replies. Against the fake
Mastodon served on loopback, with the real publisher and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from psycopg_pool import ConnectionPool

from events.store import EventStore
from scheduler.services import accounts
from scheduler.services.shares import ShareService
from tests.support.fake_mastodon import ACCT, TOKEN, FakeMastodon
from tests.support.shares import Clock, expire_lease, mastodon_account, plan, runtime, share_service, view
from workers.channels.mastodon import MastodonPublisher
from workers.execution import execute_share
from workers.runtime import Runtime

pytestmark = pytest.mark.integration

TEXT = "Doors open at nine"


@pytest.fixture
def mastodon_client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(5.0)) as c:
        yield c


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def rt(store: EventStore, pool: ConnectionPool[Any], mastodon_client: httpx.Client, clock: Clock) -> Runtime:
    return runtime(pool, store, MastodonPublisher(mastodon_client, env={"TEAM_MASTODON_TOKEN": TOKEN}), clock=clock)


@pytest.fixture
def shares(store: EventStore, pool: ConnectionPool[Any]) -> ShareService:
    return share_service(pool, store)


@pytest.fixture
def account(pool: ConnectionPool[Any], mastodon: FakeMastodon) -> accounts.Account:
    return mastodon_account(pool, mastodon.base_url)


def retried(rt: Runtime, pool: ConnectionPool[Any], clock: Clock, share_id: UUID) -> str:
    """The share's next delivery, once its retry is due and no lease holds it."""
    clock.offset += timedelta(hours=1)
    expire_lease(pool, share_id)
    return execute_share(rt, share_id)


def test_a_share_whose_post_was_never_made_posts_its_own_rather_than_another_shares_with_its_text(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], clock: Clock, mastodon: FakeMastodon,
    account: accounts.Account,
) -> None:
    # Given two shares with the same text on one account
    first, second = plan(shares, account, text=TEXT), plan(shares, account, text=TEXT)
    # And a gateway that fails the first one's post before the server sees it (a 502: unknown to us)
    mastodon.fail_next(1, 502, path="/statuses")
    assert execute_share(rt, first) == "share_retry_scheduled"
    assert mastodon.creations == 0
    # And the second posted meanwhile
    assert execute_share(rt, second) == "share_sent"
    # When the first is delivered again and looks for its post first
    assert retried(rt, pool, clock, first) == "share_sent"
    # Then it finds none of its own and posts: two posts, one each, not one post for both
    assert mastodon.counts_by_text() == {TEXT: 2}
    posts = {view(shares, s)["external_id"] for s in (first, second)}
    assert posts == {m["id"] for m in mastodon.made}


def test_a_share_whose_post_was_made_finds_its_own_among_the_same_texts_and_answers(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], clock: Clock, mastodon: FakeMastodon,
    account: accounts.Account,
) -> None:
    # Given a share whose post was made, then its connection dropped before any answer
    first, second = plan(shares, account, text=TEXT), plan(shares, account, text=TEXT)
    mastodon.drop_next_after_write()
    assert execute_share(rt, first) == "share_retry_scheduled"
    own = mastodon.made[0]["id"]
    # And, newer in the account's statuses, another share's post with the same text
    assert execute_share(rt, second) == "share_sent"
    # And the account's own answer to someone, with the same text again
    question = mastodon.add_reply(own, "When do doors open?")
    answer = mastodon.add_reply(question["id"], TEXT, author=ACCT)
    # When the first is delivered again and looks for its post
    assert retried(rt, pool, clock, first) == "share_sent"
    # Then it takes its own post, not the newer one of the other share: no second post of it
    assert mastodon.creations == 2
    assert view(shares, first)["external_id"] == own
    assert view(shares, second)["external_id"] not in (own, answer["id"])
