"""Where Bluesky facets point: ``@handle`` mentions and links, as UTF-8 byte offsets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from workers.channels.bluesky import Mention, link_facets, mentions

FAST = settings(max_examples=200, deadline=None, database=None)

_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_TLD = st.from_regex(r"[a-z][a-z0-9]{1,5}", fullmatch=True)
handles = st.builds(lambda labels, tld: ".".join([*labels, tld]), st.lists(_LABEL, min_size=1, max_size=3), _TLD)
# Text around a mention: anything, emoji and accents included, ending where a mention may start.
before = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12).map(lambda t: t + " ")
after = st.sampled_from(["", " ", ".", ", and more", "! 🎉", ")", "\nnext line"])


@FAST
@given(before=before, handle=handles, after=after)
def test_a_mentions_offsets_always_slice_back_to_the_handle_in_the_utf8_bytes(
    before: str, handle: str, after: str
) -> None:
    # Given a handle mentioned after any text (emoji, accents, other scripts)
    text = f"{before}@{handle}{after}"

    # When the mentions are found
    found = mentions(text)

    # Then the last one is ours, and its byte range holds exactly "@handle"
    assert found
    mention = found[-1]
    assert mention.handle == handle
    assert text.encode()[mention.byte_start : mention.byte_end] == f"@{handle}".encode()


def test_a_mention_after_an_emoji_counts_the_emojis_four_bytes() -> None:
    # Given "🚀 @alice.bsky.social" (the rocket is one character, four bytes)
    text = "🚀 @alice.bsky.social!"

    # Then the mention starts at byte 5, not character 2
    assert mentions(text) == [Mention("alice.bsky.social", 5, 23)]


def test_only_domain_like_handles_at_a_word_start_are_mentions() -> None:
    # Given texts with e-mail addresses, Mastodon addresses, URLs and names without a dot
    texts = {
        "write to ana@example.com": [],
        "follow @ana@example.social": [],
        "see https://bsky.app/profile/@bob.bsky.social": [],
        "hi @nodots": [],
        "hi @bob.123": [],  # the last label must start with a letter
        "hi @bob.bsky-": [],  # a label cannot end with a hyphen, and the name runs on
        "(@bob.bsky.social) and @carol.example.org.": ["bob.bsky.social", "carol.example.org"],
        "@first.example.com at the start": ["first.example.com"],
    }

    # Then only the handles that stand alone are mentions
    assert {text: [m.handle for m in mentions(text)] for text in texts} == texts


@FAST
@given(before=before, path=st.from_regex(r"[a-z0-9/]{0,20}", fullmatch=True), tail=st.sampled_from(["", ".", ")"]))
def test_a_links_offsets_slice_back_to_the_url_without_the_sentences_punctuation(
    before: str, path: str, tail: str
) -> None:
    # Given a URL after any text, maybe followed by punctuation
    url = f"https://example.com/{path}"
    text = f"{before}{url}{tail}"

    # When its facets are made
    facets = link_facets(text)

    # Then the last points at the URL's bytes and links to it
    index = facets[-1]["index"]
    assert text.encode()[index["byteStart"] : index["byteEnd"]] == url.encode()
    assert facets[-1]["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": url}]
