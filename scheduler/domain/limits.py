"""Channel limits on a post's text, counted the way each network counts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import regex

from scheduler.errors import InvalidInputError

# Mastodon counts every URL as 23 characters, whatever its length; punctuation right
# after a URL (a full stop, a closing bracket) is text, not part of the link.
_URL = regex.compile(r"https?://\S+?(?=[.,;:!?)\]'\"]*(?:\s|$))")
MASTODON_URL_WEIGHT = 23


@dataclass(frozen=True, slots=True)
class TextLimit:
    maximum: int
    unit: str  # "characters" or "graphemes"
    max_bytes: int | None = None  # Bluesky also caps a post's text at 3000 UTF-8 bytes

    def measure(self, text: str) -> int:
        if self.unit == "graphemes":
            return len(regex.findall(r"\X", text))
        return len(_URL.sub("x" * MASTODON_URL_WEIGHT, text))


DEFAULT_LIMITS: Mapping[str, TextLimit] = {
    "console": TextLimit(5000, "characters"),
    "mastodon": TextLimit(500, "characters"),
    "bluesky": TextLimit(300, "graphemes", max_bytes=3000),
}

CHANNELS = tuple(DEFAULT_LIMITS)


def limit_for(channel: str, config: Mapping[str, Any]) -> TextLimit:
    """The limit for an account: the channel's default, or the instance's own
    ``max_characters`` (Mastodon servers may raise it)."""
    base = DEFAULT_LIMITS[channel]
    custom = config.get("max_characters")
    if isinstance(custom, int) and custom > 0 and base.unit == "characters":
        return TextLimit(custom, base.unit)
    return base


def check_text(channel: str, config: Mapping[str, Any], text: str) -> None:
    if not text.strip():
        raise InvalidInputError("text", "must not be empty")
    limit = limit_for(channel, config)
    length = limit.measure(text)
    if length > limit.maximum:
        raise InvalidInputError(
            "text",
            f"is {length} {limit.unit} long; {channel} allows at most {limit.maximum}",
        )
    if limit.max_bytes is not None and (size := len(text.encode())) > limit.max_bytes:
        raise InvalidInputError(
            "text", f"is {size} bytes in UTF-8; {channel} allows at most {limit.max_bytes}"
        )
