"""The contract every ``ThreadReader`` keeps, run against each implementation: the console
channel's replies file, Mastodon and Bluesky against their fakes on loopback.

A channel joins by adding a ``Thread`` to ``SUBJECTS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from scheduler.domain.share import answer_key, idempotency_key
from tests.support.fake_bluesky import APP_PASSWORD, HANDLE, FakeBluesky
from tests.support.fake_mastodon import TOKEN, FakeMastodon
from tests.support.servers import now
from workers.channels import Answer, Post, SharePost, ThreadReader
from workers.channels.bluesky import BlueskyPublisher
from workers.channels.console import ConsolePublisher
from workers.channels.console_replies import write_reply
from workers.channels.mastodon import MastodonPublisher

SECRET_ENV = "CONTRACT_SECRET"


@dataclass
class Thread:
    """A channel that reads threads, an account on it, and how someone replies there."""

    reader: Any  # a Publisher that is also a ThreadReader
    config: dict[str, Any]
    # (post, text, parent id, the author's display name or None) -> the reply's id
    reply: Callable[[SharePost, str, str | None, str | None], str]

    def posted(self) -> SharePost:
        share_id = uuid4()
        post = Post(share_id=share_id, workspace_id="default", account_name="team", account_config=self.config,
                    text=f"Contract thread {share_id.hex[:8]}", scheduled_at=now() - timedelta(seconds=1),
                    idempotency_key=idempotency_key(share_id), attempt=1)
        published = self.reader.publish(post)
        return SharePost(share_id=share_id, workspace_id="default", account_name="team", account_config=self.config,
                         external_id=published.external_id, url=published.url,
                         sent_at=published.created_at or now())


def console(tmp_path: Path, client: httpx.Client, mastodon: FakeMastodon, bluesky: FakeBluesky) -> Thread:
    folder = tmp_path / "console"

    def reply(post: SharePost, text: str, parent: str | None, name: str | None = None) -> str:
        return str(write_reply(folder, post.workspace_id, "team", share_id=str(post.share_id), text=text, author="ana",
                               parent_id=parent, author_name=name)["reply_id"])

    return Thread(ConsolePublisher(folder), {}, reply)


def mastodon(tmp_path: Path, client: httpx.Client, fake: FakeMastodon, bluesky: FakeBluesky) -> Thread:
    def reply(post: SharePost, text: str, parent: str | None, name: str | None = None) -> str:
        return str(fake.add_reply(parent or post.external_id, text, display_name=name or "")["id"])

    config = {"base_url": fake.base_url, "access_token_env": SECRET_ENV}
    return Thread(MastodonPublisher(client, env={SECRET_ENV: TOKEN}), config, reply)


def bluesky(tmp_path: Path, client: httpx.Client, mastodon: FakeMastodon, fake: FakeBluesky) -> Thread:
    def reply(post: SharePost, text: str, parent: str | None, name: str | None = None) -> str:
        handle = "ana.example.com" if name else "bo.example.com"
        return str(fake.add_reply(parent or post.external_id, text, handle=handle, display_name=name)["uri"])

    config = {"service": fake.base_url, "handle": HANDLE, "app_password_env": SECRET_ENV}
    return Thread(BlueskyPublisher(client, env={SECRET_ENV: APP_PASSWORD}), config, reply)


SUBJECTS = {"console": console, "mastodon": mastodon, "bluesky": bluesky}


@pytest.fixture(params=sorted(SUBJECTS))
def thread(request: pytest.FixtureRequest, tmp_path: Path, network_client: httpx.Client, mastodon_server: FakeMastodon,
           bluesky_server: FakeBluesky) -> Thread:
    mastodon_server.reset()
    bluesky_server.reset()
    subject = SUBJECTS[request.param](tmp_path, network_client, mastodon_server, bluesky_server)
    assert isinstance(subject.reader, ThreadReader)
    return subject


def answer_to(post: SharePost, reply_id: str, text: str) -> Answer:
    return Answer(post=post, reply_id=reply_id, text=text, idempotency_key=answer_key(post.share_id, reply_id),
                  attempt=1, requested_at=now() - timedelta(seconds=1))


def test_the_whole_thread_under_a_post_is_read_with_who_answers_whom(thread: Thread) -> None:
    # Given a post, a reply to it, and a reply to that reply
    post = thread.posted()
    first = thread.reply(post, "Does it work offline?", None, "Ana Lima")
    second = thread.reply(post, "Me too", first, None)
    # When the thread is read
    posts = {p.reply_id: p for p in thread.reader.read_thread(post)}
    # Then both replies are there, each with the reply it answers (None: the post), none by the account
    assert set(posts) == {first, second}
    assert (posts[first].parent_id, posts[second].parent_id) == (None, first)
    assert posts[first].text == "Does it work offline?"
    # And the name each author shows, where they show one
    assert (posts[first].author_name, posts[second].author_name) == ("Ana Lima", None)
    assert not any(p.by_account for p in posts.values())
    assert posts[first].created_at <= posts[second].created_at


def test_an_answer_is_made_once_per_key_found_by_its_key_and_read_as_the_account_s(thread: Thread) -> None:
    # Given a reply under a post, not answered yet
    post = thread.posted()
    reply = thread.reply(post, "Any discount?", None, None)
    answer = answer_to(post, reply, "Ten percent this week.")
    assert thread.reader.find_answer(answer) is None
    # When the answer is published twice with the same key
    once = thread.reader.answer(answer)
    twice = thread.reader.answer(answer)
    # Then it is one post, found by a look-up, and read in the thread as the account's answer to the reply
    assert once.external_id == twice.external_id
    found = thread.reader.find_answer(answer)
    assert found is not None
    assert found.external_id == once.external_id
    mine = [p for p in thread.reader.read_thread(post) if p.by_account]
    assert [(p.reply_id, p.parent_id, p.text) for p in mine] == [(once.external_id, reply, "Ten percent this week.")]
