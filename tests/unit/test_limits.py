"""Channel limits on a post's text, counted the way each network counts."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.domain.limits import DEFAULT_LIMITS, MASTODON_URL_WEIGHT, TextLimit, check_text, limit_for
from scheduler.errors import InvalidInputError

FAST = settings(max_examples=100, deadline=None, database=None)

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # man, woman, girl, boy joined by ZWJ
WAVE_DARK = "\U0001f44b\U0001f3ff"  # waving hand + skin tone modifier
FLAG_FR = "\U0001f1eb\U0001f1f7"  # two regional indicators
E_ACUTE = "e\u0301"  # e + combining acute accent
LONG_URL = "https://example.com/" + "a" * 200


def _refusal(channel: str, text: str, config: Mapping[str, object] | None = None) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        check_text(channel, config or {}, text)
    return caught.value


# --- Mastodon: characters, every URL weighs 23 ---------------------------------------------


def test_mastodon_accepts_exactly_500_characters_and_refuses_501() -> None:
    # Given texts of 500 and 501 characters
    # When checked for Mastodon
    check_text("mastodon", {}, "a" * 500)
    error = _refusal("mastodon", "a" * 501)
    # Then 500 passes and 501 is refused on field "text", saying how long it is
    assert error.field == "text"
    assert "501 characters" in error.message
    assert "500" in error.message


@pytest.mark.parametrize("url", ["http://t.co/x", LONG_URL, "https://example.com/path?q=1&r=2#frag"])
def test_mastodon_counts_any_url_as_23_characters(url: str) -> None:
    # Given a URL of any length
    # When measured for Mastodon
    # Then it weighs 23
    assert DEFAULT_LIMITS["mastodon"].measure(url) == MASTODON_URL_WEIGHT
    assert DEFAULT_LIMITS["mastodon"].measure(f"Read {url} now") == len("Read  now") + MASTODON_URL_WEIGHT


def test_a_long_url_does_not_push_a_mastodon_post_over_the_limit() -> None:
    # Given 477 characters of text and a 220-character URL (477 + 23 = 500)
    text = "a" * 476 + " " + LONG_URL
    # When checked
    # Then it is accepted, though its raw length is far above 500
    assert len(text) > 500
    check_text("mastodon", {}, text)


def test_each_url_weighs_23_on_its_own() -> None:
    # Given three URLs separated by spaces
    text = " ".join([LONG_URL, "http://a.io", "https://b.io/c"])
    # When measured
    # Then each counts 23 and the two spaces count 1 each
    assert DEFAULT_LIMITS["mastodon"].measure(text) == 3 * MASTODON_URL_WEIGHT + 2


def test_a_mastodon_instance_may_raise_its_limit() -> None:
    # Given an account on an instance allowing 1000 characters
    config = {"max_characters": 1000}
    # When a 900-character text is checked, then an 1001-character one
    check_text("mastodon", config, "a" * 900)
    error = _refusal("mastodon", "a" * 1001, config)
    # Then the instance's limit applies
    assert "at most 1000" in error.message


@pytest.mark.parametrize("custom", [0, -5, "1000", None, 2.5])
def test_a_nonsensical_instance_limit_is_ignored(custom: object) -> None:
    # Given a configured limit that is not a positive integer
    # When the limit is looked up
    # Then Mastodon's default applies
    assert limit_for("mastodon", {"max_characters": custom}) == DEFAULT_LIMITS["mastodon"]


@pytest.mark.parametrize("after", [".", ",", ")", "!"])
def test_punctuation_right_after_a_url_still_counts(after: str) -> None:
    # Given a URL followed by punctuation, as at the end of a sentence
    text = f"See {LONG_URL}{after}"
    # When measured for Mastodon
    # Then the punctuation counts as one character beside the URL's 23
    assert DEFAULT_LIMITS["mastodon"].measure(text) == len("See ") + MASTODON_URL_WEIGHT + 1


# --- Bluesky: graphemes ------------------------------------------------------------------


@pytest.mark.parametrize(
    "cluster", [FAMILY, WAVE_DARK, FLAG_FR, E_ACUTE, "a"], ids=["family ZWJ", "skin tone", "flag", "combining", "ascii"]
)
def test_bluesky_counts_a_grapheme_cluster_as_one(cluster: str) -> None:
    # Given a cluster made of several code points
    # When measured for Bluesky
    # Then it counts as one
    assert DEFAULT_LIMITS["bluesky"].measure(cluster) == 1
    assert DEFAULT_LIMITS["bluesky"].measure(cluster * 7) == 7


def test_bluesky_accepts_300_graphemes_and_refuses_301() -> None:
    # Given 300 graphemes made of 650 code points, and 301 graphemes
    # When checked for Bluesky
    check_text("bluesky", {}, "a" * 200 + FAMILY * 50 + WAVE_DARK * 25 + E_ACUTE * 25)
    error = _refusal("bluesky", "a" * 300 + FAMILY)
    # Then 300 graphemes pass and 301 are refused, counted in graphemes
    assert error.field == "text"
    assert "301 graphemes" in error.message


def test_bluesky_does_not_weigh_urls() -> None:
    # Given a long URL
    # When measured for Bluesky
    # Then every character of it counts
    assert DEFAULT_LIMITS["bluesky"].measure(LONG_URL) == len(LONG_URL)


def test_an_instance_character_limit_does_not_apply_to_bluesky() -> None:
    # Given a max_characters setting on a Bluesky account
    # When its limit is looked up
    # Then the grapheme limit stays
    assert limit_for("bluesky", {"max_characters": 1000}) == DEFAULT_LIMITS["bluesky"]


def test_bluesky_refuses_a_text_over_3000_bytes_even_within_300_graphemes() -> None:
    # Given 300 family emoji: 300 graphemes but 7500 UTF-8 bytes
    text = FAMILY * 300
    assert len(text.encode()) == 7500
    # When checked for Bluesky
    # Then it is refused at planning time, naming "text"
    assert _refusal("bluesky", text).field == "text"


# --- console and all channels -----------------------------------------------------------


def test_console_allows_5000_characters() -> None:
    # Given texts of 5000 and 5001 characters
    # When checked for the console channel
    check_text("console", {}, "a" * 5000)
    # Then 5001 is refused
    assert "at most 5000" in _refusal("console", "a" * 5001).message


@pytest.mark.parametrize("channel", sorted(DEFAULT_LIMITS))
@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_or_blank_text_is_refused_on_every_channel(channel: str, text: str) -> None:
    # Given a text with nothing to say
    # When checked
    error = _refusal(channel, text)
    # Then it is refused on field "text"
    assert (error.field, error.message) == ("text", "must not be empty")


@FAST
@given(text=st.text(min_size=1, max_size=600).filter(str.strip))
def test_a_text_passes_exactly_when_its_measure_is_within_the_limit(text: str) -> None:
    # Given any non-blank text
    for channel, limit in DEFAULT_LIMITS.items():
        # When checked on each channel
        fits = limit.measure(text) <= limit.maximum
        # Then check_text accepts it exactly when it fits
        if fits:
            check_text(channel, {}, text)
        else:
            assert _refusal(channel, text).field == "text"


@FAST
@given(text=st.text(max_size=300))
def test_graphemes_never_outnumber_code_points(text: str) -> None:
    # Given any text
    # When measured in graphemes
    # Then the count is at most its number of code points
    assert TextLimit(300, "graphemes").measure(text) <= len(text)
