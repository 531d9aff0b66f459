"""The replies page's pure parts: reply text as plain text with clickable links, where an
author's profile is, and the filters read from the query string."""

from __future__ import annotations

from uuid import UUID

from scheduler.api.dashboard.desk import Filters, author_link, left, linkify, parse
from scheduler.domain.limits import DEFAULT_LIMITS


def test_reply_text_is_escaped_and_only_its_http_links_become_links() -> None:
    html = str(linkify('See https://example.org/a?b=1&c=2. <img src=x onerror="alert(1)"> javascript:alert(1)'))
    assert html == ('See <a href="https://example.org/a?b=1&amp;c=2" rel="nofollow noopener noreferrer">'
                    'https://example.org/a?b=1&amp;c=2</a>. &lt;img src=x onerror=&#34;alert(1)&#34;&gt; '
                    'javascript:alert(1)')
    # a quote cannot close the attribute: it ends the link
    assert str(linkify('http://x.org/"onmouseover="x')) == (
        '<a href="http://x.org/" rel="nofollow noopener noreferrer">http://x.org/</a>&#34;onmouseover=&#34;x')
    assert str(linkify(None)) == ""


def test_an_author_links_to_their_profile_where_the_network_has_one() -> None:
    assert author_link("bluesky", "ana.bsky.social", None) == "https://bsky.app/profile/ana.bsky.social"
    assert author_link("bluesky", "did:plc:abc", None) is None
    assert author_link("mastodon", "ana@example.social", "https://example.social/@ana/1099") == (
        "https://example.social/@ana")
    assert author_link("mastodon", "ana", "https://example.social/statuses/1") is None
    assert author_link("console", "ana", "file:///tmp/x#1") is None


def test_filters_read_from_the_query_say_what_they_could_not_use() -> None:
    share = "2e0ecdb2-638a-440f-ba40-e20b11f0e662"
    chosen = parse({"state": "unanswered", "owner": " alice ", "share_id": share, "page": "2"})
    assert chosen == Filters("unanswered", "alice", None, UUID(share), 2)
    assert chosen.query(done="answered") == f"state=unanswered&owner=alice&share_id={share}&page=2&done=answered"
    bad = parse({"state": "maybe", "account_id": "nope", "page": "x"})
    assert (bad.state, bad.account_id, bad.page) == (None, None, 0)
    assert [e.split(":")[0] for e in bad.errors] == ["state", "account_id", "page"]


def test_what_is_left_is_counted_as_the_network_counts() -> None:
    # Mastodon counts a link as 23 characters; Bluesky counts graphemes
    assert left(DEFAULT_LIMITS["mastodon"], "see https://example.org/" + "x" * 100) == 500 - 4 - 23
    assert left(DEFAULT_LIMITS["bluesky"], "👍🏽ok") == 300 - 3


def test_mine_is_the_signed_in_token_owner_and_refused_for_a_token_without_one() -> None:
    mine = parse({"mine": "true"}, "dana")
    assert (mine.assignee, mine.mine, mine.errors) == ("dana", True, ())
    assert mine.query() == "assignee=dana&mine=true"
    assert parse({"assignee": " bob "}, "dana").assignee == "bob"
    nobody = parse({"mine": "true", "assignee": "bob"}, None)
    assert (nobody.assignee, nobody.mine) == ("bob", False)
    assert [e.split(":")[0] for e in nobody.errors] == ["mine"]
    both = parse({"mine": "on", "assignee": "bob"}, "dana")
    assert (both.assignee, [e.split(":")[0] for e in both.errors]) == ("dana", ["mine"])
