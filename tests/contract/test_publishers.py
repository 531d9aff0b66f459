"""The contract every ``Publisher`` keeps, run against each implementation: the console
channel in a temporary folder, Mastodon and Bluesky against their fakes on loopback, and
Mastodon on a hostile server (ignoring ``Idempotency-Key``, hiding the account's private
posts) where the contract says what still holds.

A new channel joins by adding a ``Subject`` to ``SUBJECTS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from scheduler.domain.share import idempotency_key, part_key
from tests.support.fake_bluesky import APP_PASSWORD, HANDLE, FakeBluesky
from tests.support.fake_mastodon import TOKEN, FakeMastodon
from tests.support.servers import now
from workers.channels import ChannelError, Post, PostRef, Published, Publisher, ReplyTo
from workers.channels.bluesky import BlueskyPublisher
from workers.channels.console import ConsolePublisher
from workers.channels.mastodon import MastodonPublisher

SECRET_ENV = "CONTRACT_SECRET"
WRONG_SECRET = "wrong-secret-0123456789"


@dataclass
class Subject:
    """One publisher, how to make a share for it, and how its network behaves."""

    publisher: Publisher
    config: dict[str, Any]  # an account that works
    broken: tuple[Publisher, Post]  # a publisher and a share that fail (a wrong secret, a bad account)
    honours_idempotency_key: bool = True

    def share(self, text: str = "Contract: we launched https://example.com/launch") -> Post:
        return make_post(self.config, text)


def make_post(config: dict[str, Any], text: str, account: str = "team") -> Post:
    share_id = uuid4()
    return Post(
        share_id=share_id,
        workspace_id="default",
        account_name=account,
        account_config=config,
        text=text,
        scheduled_at=now() - timedelta(seconds=1),
        idempotency_key=idempotency_key(share_id),
        attempt=1,
    )


def console(tmp_path: Path, client: httpx.Client, mastodon: FakeMastodon, bluesky: FakeBluesky) -> Subject:
    publisher = ConsolePublisher(tmp_path / "console")
    # An account name that cannot name a file: the console's own refusal.
    return Subject(publisher, {}, (publisher, make_post({}, "Contract: refused", account="../escape")))


def mastodon(tmp_path: Path, client: httpx.Client, fake: FakeMastodon, bluesky: FakeBluesky) -> Subject:
    return mastodon_account(client, fake, visibility="public")


def mastodon_account(client: httpx.Client, fake: FakeMastodon, *, visibility: str) -> Subject:
    config = {"base_url": fake.base_url, "access_token_env": SECRET_ENV, "visibility": visibility}
    wrong = MastodonPublisher(client, env={SECRET_ENV: WRONG_SECRET})
    refused = make_post(config, "Contract: refused")
    return Subject(MastodonPublisher(client, env={SECRET_ENV: TOKEN}), config, (wrong, refused))


def hostile_mastodon(tmp_path: Path, client: httpx.Client, fake: FakeMastodon, bluesky: FakeBluesky) -> Subject:
    fake.knobs.honour_idempotency_key = False
    fake.knobs.hide_non_public = True
    fake.knobs.plain_text_errors = True
    subject = mastodon_account(client, fake, visibility="private")
    subject.honours_idempotency_key = False
    return subject


def bluesky(tmp_path: Path, client: httpx.Client, mastodon: FakeMastodon, fake: FakeBluesky) -> Subject:
    config = {"service": fake.base_url, "handle": HANDLE, "app_password_env": SECRET_ENV}
    wrong = BlueskyPublisher(client, env={SECRET_ENV: WRONG_SECRET})
    refused = make_post(config, "Contract: refused")
    return Subject(BlueskyPublisher(client, env={SECRET_ENV: APP_PASSWORD}), config, (wrong, refused))


SUBJECTS: dict[str, Callable[[Path, httpx.Client, FakeMastodon, FakeBluesky], Subject]] = {
    "console": console,
    "mastodon": mastodon,
    "mastodon on a hostile server": hostile_mastodon,
    "bluesky": bluesky,
}


@pytest.fixture(params=list(SUBJECTS))
def subject(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    network_client: httpx.Client,
    mastodon_server: FakeMastodon,
    bluesky_server: FakeBluesky,
) -> Subject:
    mastodon_server.reset()
    bluesky_server.reset()
    return SUBJECTS[request.param](tmp_path, network_client, mastodon_server, bluesky_server)


def test_publishing_returns_the_post_with_its_id_and_creation_time(subject: Subject) -> None:
    # When a share is published
    published = subject.publisher.publish(subject.share())

    # Then the post has an id and the network's creation time, near ours
    assert isinstance(published, Published)
    assert published.external_id
    assert published.created_at is not None
    assert published.created_at.utcoffset() == timedelta(0)
    assert abs(published.created_at - now()) < timedelta(minutes=1)


def test_publishing_twice_with_one_idempotency_key_returns_the_same_post_where_the_network_honours_keys(
    subject: Subject,
) -> None:
    # Given a share
    share = subject.share()

    # When it is published twice
    first, second = subject.publisher.publish(share), subject.publisher.publish(share)

    # Then a network that honours the key returns the same post; one that ignores it made two
    if subject.honours_idempotency_key:
        assert first == second
    else:
        assert first.external_id != second.external_id


def test_find_after_publishing_returns_the_same_post_where_the_publisher_can_find(subject: Subject) -> None:
    # Given a published share
    share = subject.share()
    published = subject.publisher.publish(share)

    # When find looks for it
    found = subject.publisher.find(share)

    # Then it returns the same post, id and creation time, wherever can_find promises to see it
    if subject.publisher.can_find(share):
        assert found == published
    else:
        assert found is None  # hidden by the server: the worker holds such a share for a person


def test_find_before_any_publish_returns_none(subject: Subject) -> None:
    # Given a share never published
    share = subject.share()

    # Then find does not see it
    assert subject.publisher.find(share) is None


def test_delete_removes_the_post_and_a_second_delete_is_no_error(subject: Subject) -> None:
    # Given a published share
    share = subject.share()
    published = subject.publisher.publish(share)

    # When its post is deleted, twice
    subject.publisher.delete(share, published.external_id)
    subject.publisher.delete(share, published.external_id)

    # Then find no longer sees it
    assert subject.publisher.find(share) is None


@pytest.mark.parametrize("call", ["publish", "find", "delete"])
def test_failures_are_channel_errors_with_a_readable_reason_that_never_shows_the_secret(
    subject: Subject, call: str
) -> None:
    # Given an account that cannot work (a wrong secret; for the console, a name that cannot be a file)
    publisher, share = subject.broken

    # When the publisher is called
    with pytest.raises(ChannelError) as caught:
        if call == "delete":
            publisher.delete(share, str(share.share_id))
        else:
            getattr(publisher, call)(share)

    # Then the reason is one readable line that says why, without the secret
    reason = caught.value.reason
    assert isinstance(reason, str)
    assert 10 < len(reason) <= 400
    assert "\n" not in reason
    assert WRONG_SECRET not in reason
    assert reason.startswith((subject.publisher.channel, "account name"))


def test_a_threads_part_is_a_post_of_its_own_under_the_part_before_and_each_is_found_again(
    subject: Subject,
) -> None:
    # Given a thread's first part, published
    first_post = subject.share("Contract: a thread begins")
    first = subject.publisher.publish(first_post)
    assert first.created_at is not None
    # When its second part is published under it, with its own key
    ref = PostRef(first.external_id, first.cid, first.created_at)
    second_post = replace(subject.share("Contract: and goes on"), share_id=first_post.share_id, part=1,
                          idempotency_key=part_key(first_post.share_id, 1), reply_to=ReplyTo(ref, ref))
    second = subject.publisher.publish(second_post)
    # Then it is another post, created after the first
    assert second.external_id != first.external_id
    assert second.created_at is not None
    assert second.created_at >= first.created_at
    # And where the network can look, each part is found as itself
    if subject.publisher.can_find(second_post):
        assert (found := subject.publisher.find(second_post)) is not None
        assert found.external_id == second.external_id
        assert (again := subject.publisher.find(first_post)) is not None
        assert again.external_id == first.external_id
