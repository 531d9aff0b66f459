"""A share's content beyond its text: a thread's parts, content warnings and the language,
checked against each channel's limits part by part, and shaped the way each network takes them.

Per network (also in the docs):

- Mastodon: the warning is the status' ``spoiler_text`` with ``sensitive: true`` (the label
  is not sent: Mastodon has none); the server counts the warning with the text, so the
  limit is checked on both together. The language goes as ``language``, its primary subtag
  (Mastodon knows ISO 639 codes, not regions: ``pt-BR`` is sent as ``pt``).
- Bluesky: the label is a self-label (``labels``, ``com.atproto.label.defs#selfLabels``)
  that readers' apps act on; Bluesky has no warning text, so the text is a first line of
  the post, ``CW: <text>``, counted in the post's 300 graphemes. The language goes as
  ``langs``, the whole tag.
- Console: every field as given, in the post's line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from events.catalogue import ContentWarning, SharedMedia, SharePart, SharePlanned

from scheduler.domain.limits import InstanceLimit, check_text

# BCP 47's language tag as far as a post needs it (RFC 5646 well-formedness without the
# grandfathered and private-use-only forms): language, extlang, script, region, variants.
_LANGUAGE_TAG = re.compile(
    r"^(?P<language>[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4,8})"
    r"(?:-[a-z]{4})?"
    r"(?:-(?:[a-z]{2}|[0-9]{3}))?"
    r"(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*$",
    re.IGNORECASE,
)
LABELS = ("sexual", "nudity", "porn", "graphic-media")
# Bluesky has no field for a warning's words: they open the post.
BLUESKY_WARNING = "CW: {text}\n\n"


def language_problem(tag: str) -> str | None:
    """Why ``tag`` is no BCP 47 language tag, or None."""
    if _LANGUAGE_TAG.match(tag) is None:
        return "must be a BCP 47 language tag, e.g. en, de-CH or pt-BR"
    return None


def normal_language(tag: str) -> str:
    """The tag in BCP 47's usual case: language lower, script title, region upper."""
    out = []
    for i, sub in enumerate(tag.split("-")):
        if i > 0 and len(sub) == 4 and sub.isalpha():
            out.append(sub.title())
        elif i > 0 and len(sub) == 2:
            out.append(sub.upper())
        else:
            out.append(sub.lower())
    return "-".join(out)


def primary_language(tag: str) -> str:
    """The language subtag alone (what Mastodon takes)."""
    return tag.split("-", 1)[0].lower()


def parts_of(planned: SharePlanned) -> tuple[SharePart, ...]:
    """The posts a share makes, in order: a thread's parts, or its one text."""
    return planned.parts or (SharePart(text=planned.text),)


def media_of(planned: SharePlanned, index: int) -> tuple[SharedMedia, ...]:
    """Part ``index``'s attachments: its own; the first part's also the share's ``media``
    (planning allows only one of the two)."""
    parts = parts_of(planned)
    own = parts[index].media if index < len(parts) else ()
    return (*planned.media, *own) if index == 0 else own


def all_media(planned: SharePlanned) -> tuple[SharedMedia, ...]:
    """Every attachment of the share, part by part: the library items it holds while planned."""
    return tuple(m for index in range(len(parts_of(planned))) for m in media_of(planned, index))


def is_thread(planned: SharePlanned) -> bool:
    return len(planned.parts) > 1


def warning_of(planned: SharePlanned, index: int) -> ContentWarning | None:
    """Part ``index``'s content warning: its own, else the share's."""
    if not planned.parts:  # one post: no part of its own to ask (and no part built to ask it)
        return planned.content_warning
    own = planned.parts[index].content_warning if index < len(planned.parts) else None
    return own or planned.content_warning


def bluesky_text(text: str, warning: ContentWarning | None) -> str:
    """The text of a Bluesky post: the warning's words, when there are any, first."""
    return BLUESKY_WARNING.format(text=warning.text) + text if warning is not None else text


def counted_text(channel: str, text: str, warning: ContentWarning | None) -> str:
    """What a network counts against its limit for a post with ``warning``."""
    if warning is None:
        return text
    if channel == "mastodon":
        return warning.text + text  # Mastodon counts spoiler_text with the status
    if channel == "bluesky":
        return bluesky_text(text, warning)
    return text


def check_parts(
    channel: str,
    config: Mapping[str, Any],
    parts: tuple[SharePart, ...],
    warning: ContentWarning | None,
    instance: InstanceLimit | None = None,
) -> None:
    """Each part's text (with its warning) within the channel's limit; a refusal names the
    part's field (``parts.2.text``), or ``text`` for a single post."""
    for index, part in enumerate(parts):
        field = f"parts.{index}.text" if len(parts) > 1 else "text"
        if not part.text.strip():
            check_text(channel, config, part.text, instance, field=field)
        check_text(channel, config, counted_text(channel, part.text, part.content_warning or warning), instance,
                   field=field, with_warning=(part.content_warning or warning) is not None)
