"""Channel limits on a post's text, counted the way each network counts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    # What a URL counts for in "characters" (Mastodon: 23); None counts it in full.
    url_weight: int | None = MASTODON_URL_WEIGHT

    def measure(self, text: str) -> int:
        if self.unit == "graphemes":
            return len(regex.findall(r"\X", text))
        if self.url_weight is None:
            return len(text)
        return len(_URL.sub("x" * self.url_weight, text))


DEFAULT_LIMITS: Mapping[str, TextLimit] = {
    "console": TextLimit(5000, "characters"),
    "mastodon": TextLimit(500, "characters"),
    "bluesky": TextLimit(300, "graphemes", max_bytes=3000),
}

CHANNELS = tuple(DEFAULT_LIMITS)


# What a server says of itself: (max_characters, characters a URL counts for, or None:
# in full). Read by the caller (I/O); Mastodon servers may raise or lower the default.
InstanceLimit = tuple[int, int | None]
# How a service asks for it: (channel, account config) -> what the server says, or None.
InstanceLimits = Callable[[str, Mapping[str, Any]], InstanceLimit | None]


def no_instance_limit(_channel: str, _config: Mapping[str, Any]) -> InstanceLimit | None:
    """No server asked: the account's own limit or the channel's default applies."""
    return None


def limit_for(channel: str, config: Mapping[str, Any], instance: InstanceLimit | None = None) -> TextLimit:
    """The limit for an account: the account's own ``max_characters`` if set, else what
    its server says of itself (``instance``), else the channel's default."""
    base = DEFAULT_LIMITS[channel]
    if base.unit != "characters":
        return base
    custom = config.get("max_characters")
    if isinstance(custom, int) and not isinstance(custom, bool) and custom > 0:
        return TextLimit(custom, base.unit, url_weight=instance[1] if instance else base.url_weight)
    if instance is not None:
        return TextLimit(instance[0], base.unit, url_weight=instance[1])
    return base


def check_text(channel: str, config: Mapping[str, Any], text: str, instance: InstanceLimit | None = None, *,
               field: str = "text", with_warning: bool = False) -> None:
    """``text`` within the account's limit; a refusal names ``field`` (``with_warning``: the
    text counted is the post's with its content warning, and the message says so)."""
    if not text.strip():
        raise InvalidInputError(field, "must not be empty")
    limit = limit_for(channel, config, instance)
    length = limit.measure(text)
    counted = " with its content warning" if with_warning else ""
    if length > limit.maximum:
        raise InvalidInputError(
            field,
            f"is {length} {limit.unit} long{counted}; {channel} allows at most {limit.maximum}",
        )
    if limit.max_bytes is not None and (size := len(text.encode())) > limit.max_bytes:
        raise InvalidInputError(
            field, f"is {size} bytes in UTF-8{counted}; {channel} allows at most {limit.max_bytes}"
        )
