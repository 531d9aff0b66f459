"""A post's id read from its url, per channel (what `mark-sent` with a url alone records),
and the urls refused, naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from scheduler.domain.post_urls import post_id, post_ref
from scheduler.errors import InvalidInputError

MASTODON = {"base_url": "https://mastodon.social"}
DID = "did:plc:abc123xyz"


def resolver(known: dict[str, str]) -> Any:
    def resolve(config: Mapping[str, Any], handle: str) -> str | None:
        return known.get(handle)

    return resolve


@pytest.mark.parametrize("url", [
    "https://mastodon.social/@team/113456789012345678",
    "https://mastodon.social/@team/113456789012345678/",
    "https://mastodon.social/@team@mastodon.social/113456789012345678",
    "https://mastodon.social/users/team/statuses/113456789012345678",
    "https://mastodon.social/web/statuses/113456789012345678",
    "https://mastodon.social/api/v1/statuses/113456789012345678",
    "https://mastodon.social/statuses/113456789012345678?x=1#top",
])
def test_every_mastodon_post_address_gives_the_status_id(url: str) -> None:
    assert post_id("mastodon", url, MASTODON, None) == "113456789012345678"


@pytest.mark.parametrize(("url", "says"), [
    ("https://mastodon.social/@team", "not a Mastodon post"),
    ("https://mastodon.social/@team/113/context", "not a Mastodon post"),
    ("https://mastodon.social/tags/launch", "not a Mastodon post"),
    ("https://other.example/@team@mastodon.social/999", "not on the account's server"),
    ("mastodon.social/@team/113", "https://"),
    ("ftp://mastodon.social/@team/113", "https://"),
])
def test_a_url_that_names_no_status_of_the_accounts_server_is_refused_naming_url(url: str, says: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        post_id("mastodon", url, MASTODON, None)
    assert refused.value.field == "url"
    assert says in refused.value.message


@pytest.mark.parametrize("url", [
    f"at://{DID}/app.bsky.feed.post/3kabc2xyz",
    f"https://bsky.app/profile/{DID}/post/3kabc2xyz",
    "https://bsky.app/profile/team.bsky.social/post/3kabc2xyz",
    "https://bsky.app/profile/Team.Bsky.Social/post/3kabc2xyz/",
    "at://team.bsky.social/app.bsky.feed.post/3kabc2xyz",
])
def test_every_bluesky_post_address_gives_its_at_uri_with_the_did(url: str) -> None:
    found = post_id("bluesky", url, {}, resolver({"team.bsky.social": DID}))
    assert found == f"at://{DID}/app.bsky.feed.post/3kabc2xyz"


def test_a_bluesky_handle_is_left_to_resolve_and_a_did_is_not() -> None:
    assert post_ref("bluesky", "https://bsky.app/profile/team.bsky.social/post/3k", {}).handle == "team.bsky.social"
    assert post_ref("bluesky", f"https://bsky.app/profile/{DID}/post/3k", {}).handle is None


@pytest.mark.parametrize(("url", "known", "says"), [
    ("https://bsky.app/profile/nobody.test/post/3k", {}, "does not resolve"),
    ("at://did:plc:x/app.bsky.feed.like/3k", {}, "not of a post"),
    ("https://bsky.app/profile/team.bsky.social", {}, "not a Bluesky post"),
    ("https://bsky.app/profile/not_a_handle!/post/3k", {}, "neither a DID nor a handle"),
    ("https://bsky.app/profile/team.bsky.social/post/..", {"team.bsky.social": DID}, "not a record key"),
])
def test_a_bluesky_url_without_a_post_or_with_an_unknown_handle_is_refused_naming_url(
    url: str, known: dict[str, str], says: str,
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        post_id("bluesky", url, {}, resolver(known))
    assert refused.value.field == "url"
    assert says in refused.value.message


def test_without_a_resolver_a_handle_is_refused_and_a_did_still_works() -> None:
    with pytest.raises(InvalidInputError, match="does not resolve"):
        post_id("bluesky", "https://bsky.app/profile/team.bsky.social/post/3k", {}, None)
    assert post_id("bluesky", f"https://bsky.app/profile/{DID}/post/3k", {}, None) == f"at://{DID}/app.bsky.feed.post/3k"


def test_a_console_post_is_the_fragment_and_another_channel_asks_for_external_id() -> None:
    share = "0f6f9f8e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    assert post_id("console", f"file:///home/x/console/acme/team.jsonl#{share}", {}, None) == share
    with pytest.raises(InvalidInputError, match="console post"):
        post_id("console", "file:///home/x/console/acme/team.jsonl", {}, None)
    with pytest.raises(InvalidInputError, match="give external_id") as refused:
        post_id("linkedin", "https://linkedin.example/post/1", {}, None)
    assert refused.value.field == "url"
