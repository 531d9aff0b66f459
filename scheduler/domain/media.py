"""Media attached to a post, checked at planning: which items, their alt text, how many and of
which kinds each network takes. Pure: the caller reads the library and the instance's limits.

``check_media`` is written per list of attachments, so a thread's parts each call it with
their own field (``parts.1.media``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from events.catalogue import SharedMedia

from scheduler.errors import InvalidInputError

MediaKind = Literal["image", "gif", "video"]

# Mastodon's defaults when the instance does not say (``description_limit``, ``max_media_attachments``).
MASTODON_ALT_CHARACTERS = 1500
MASTODON_ATTACHMENTS = 4
# Bluesky's lexicon sets no length on an image's alt; we choose 2,000 characters (a long
# description fits, a pasted document does not).
BLUESKY_ALT_CHARACTERS = 2000
BLUESKY_IMAGES = 4
# Bluesky publishes video (and animated GIFs, which it turns into video) through a video
# service (video.bsky.app), which a PDS alone does not provide.
BLUESKY_NO_VIDEO = ("Bluesky needs a video service (video.bsky.app) to publish {what}, which is not part of a "
                    "PDS and not supported here; attach still images instead")


@dataclass(frozen=True, slots=True)
class MediaLimit:
    """What a channel takes on one post."""

    max_attachments: int
    alt_characters: int
    # None: the channel takes video and animated GIFs (one alone); else why it does not.
    no_video: str | None = None


DEFAULT_MEDIA_LIMITS: Mapping[str, MediaLimit] = {
    "console": MediaLimit(MASTODON_ATTACHMENTS, 5000),
    "mastodon": MediaLimit(MASTODON_ATTACHMENTS, MASTODON_ALT_CHARACTERS),
    "bluesky": MediaLimit(BLUESKY_IMAGES, BLUESKY_ALT_CHARACTERS, no_video=BLUESKY_NO_VIDEO),
}

# What a server says of itself: (max_media_attachments, description_limit), each None when it
# does not say. Read by the caller (I/O), like the text limit.
InstanceMediaLimit = tuple[int | None, int | None]
InstanceMediaLimits = Callable[[str, Mapping[str, Any]], InstanceMediaLimit | None]


def no_instance_media_limit(_channel: str, _config: Mapping[str, Any]) -> InstanceMediaLimit | None:
    return None


def media_limit_for(channel: str, instance: InstanceMediaLimit | None = None) -> MediaLimit:
    base = DEFAULT_MEDIA_LIMITS.get(channel, DEFAULT_MEDIA_LIMITS["console"])
    if instance is None:
        return base
    attachments, alt = instance
    return MediaLimit(attachments or base.max_attachments, alt or base.alt_characters, base.no_video)


@dataclass(frozen=True, slots=True)
class MediaRequest:
    """One attachment as a client asks for it; ``alt`` None: the library item's alt."""

    media_id: UUID
    alt: str | None = None
    decorative: bool = False


@dataclass(frozen=True, slots=True)
class LibraryItem:
    """What the library knows of an item (read by the caller, in the workspace asked)."""

    media_id: UUID
    kind: MediaKind
    mime: str
    alt: str


def check_media(
    channel: str,
    requested: Sequence[MediaRequest],
    library: Mapping[UUID, LibraryItem],
    limit: MediaLimit,
    *,
    field: str = "media",
) -> tuple[SharedMedia, ...]:
    """The attachments as published, or the first problem naming its field (``media.0.alt``)."""
    if len(requested) > limit.max_attachments:
        raise InvalidInputError(field, f"has {len(requested)} items; {channel} allows at most {limit.max_attachments}")
    seen: set[UUID] = set()
    shared = []
    for i, want in enumerate(requested):
        where = f"{field}.{i}"
        item = library.get(want.media_id)
        if item is None:
            raise InvalidInputError(f"{where}.id", "is not a media item of this workspace (upload it with "
                                                   "POST /v1/media)")
        if want.media_id in seen:
            raise InvalidInputError(f"{where}.id", "is attached twice")
        seen.add(want.media_id)
        if item.kind != "image" and limit.no_video is not None:
            what = "video" if item.kind == "video" else "animated GIFs"
            raise InvalidInputError(f"{where}.id", limit.no_video.format(what=what))
        if item.kind != "image" and len(requested) > 1:
            what = "a video" if item.kind == "video" else "an animated GIF"
            raise InvalidInputError(field, f"{what} is posted alone on {channel}: up to {limit.max_attachments} "
                                           "images, or one video or animated GIF")
        shared.append(SharedMedia(media_id=item.media_id, kind=item.kind, mime=item.mime,
                                  alt=_alt(want, item, limit, channel, where), decorative=want.decorative))
    return tuple(shared)


def _alt(want: MediaRequest, item: LibraryItem, limit: MediaLimit, channel: str, where: str) -> str:
    if want.decorative:
        if want.alt:
            raise InvalidInputError(f"{where}.alt", 'must be "" (or left out) when decorative is true')
        return ""
    alt = item.alt if want.alt is None else want.alt
    if not alt.strip():
        raise InvalidInputError(f"{where}.alt", "is required: describe the media for people who cannot see it "
                                                '(or, for a purely decorative image, send "alt": "" with '
                                                '"decorative": true)')
    if len(alt) > limit.alt_characters:
        raise InvalidInputError(f"{where}.alt", f"is {len(alt)} characters long; {channel} allows at most "
                                                f"{limit.alt_characters}")
    return alt
