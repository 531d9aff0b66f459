"""Link cards on Bluesky: the first link of a post without an embed of its own (media)
becomes an ``app.bsky.embed.external`` from the page's preview (``link_cards.py``), its
image uploaded as the card's thumb (``com.atproto.repo.uploadBlob``).

The card is made before the post is written, and making it again on a later attempt is
harmless: the page is only read, and a blob no record references is never shown (the PDS
drops it). A card is never worth a failed share: whatever goes wrong gives a post without
a card (``link_card_skipped``) or a card without a thumb (``link_card_thumb_skipped``),
each logged with its reason.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import structlog

from workers.channels import ChannelError
from workers.channels.bluesky_sessions import Account, BlueskySessions
from workers.channels.http import ChannelHttp
from workers.channels.link_cards import CardRefused, LinkPreviews, Preview

EXTERNAL = "app.bsky.embed.external"
_LINK_FACET = "app.bsky.richtext.facet#link"

log = structlog.get_logger("workers.channels.bluesky")


class BlueskyCards:
    def __init__(self, sessions: BlueskySessions, previews: LinkPreviews) -> None:
        self.sessions = sessions
        self.previews = previews

    def embed(self, account: Account, http: ChannelHttp, record: dict[str, Any]) -> dict[str, Any]:
        """``{"embed": card}`` for a record whose facets hold a link, or ``{}``."""
        if "embed" in record:
            return {}  # media (or a quote) takes the embed: no card
        url = first_link(record)
        if url is None:
            return {}
        try:
            preview = self.previews.preview(url)
        except CardRefused as refused:
            log.info("link_card_skipped", host=urlsplit(url).hostname, reason=refused.reason, detail=refused.detail)
            return {}
        except Exception as exc:
            log.warning("link_card_skipped", host=urlsplit(url).hostname, reason="error", detail=type(exc).__name__,
                        exc_info=True)
            return {}
        external: dict[str, Any] = {"uri": url, "title": preview.title, "description": preview.description}
        thumb = self._thumb(account, http, preview)
        if thumb is not None:
            external["thumb"] = thumb
        log.info("link_card_made", host=urlsplit(url).hostname, thumb=thumb is not None)
        return {"embed": {"$type": EXTERNAL, "external": external}}

    def _thumb(self, account: Account, http: ChannelHttp, preview: Preview) -> dict[str, Any] | None:
        if preview.image is None:
            return None
        host = urlsplit(preview.image).hostname
        try:
            image = self.previews.thumb(preview.image)
        except CardRefused as refused:
            log.info("link_card_thumb_skipped", host=host, reason=refused.reason, detail=refused.detail)
            return None
        except Exception as exc:
            log.warning("link_card_thumb_skipped", host=host, reason="error", detail=type(exc).__name__, exc_info=True)
            return None
        try:
            body = http.answer(self.sessions.authed(account, http, "POST", "com.atproto.repo.uploadBlob",
                                                    content=image.data, headers={"Content-Type": image.mime}))
        except ChannelError as exc:
            log.info("link_card_thumb_skipped", host=host, reason="upload_failed", detail=exc.reason)
            return None
        blob = body.get("blob") if isinstance(body, dict) else None
        if not isinstance(blob, dict) or "ref" not in blob:
            log.info("link_card_thumb_skipped", host=host, reason="upload_failed", detail="no blob in the answer")
            return None
        return blob


def first_link(record: dict[str, Any]) -> str | None:
    """The URI of the record's first link facet (by position in the text)."""
    facets = sorted(record.get("facets", []), key=lambda facet: int(facet["index"]["byteStart"]))
    for facet in facets:
        for feature in facet.get("features", []):
            if feature.get("$type") == _LINK_FACET and isinstance(feature.get("uri"), str):
                return str(feature["uri"])
    return None
