"""A post's images on Bluesky: each uploaded as a blob (``com.atproto.repo.uploadBlob``) and
written as the record's ``app.bsky.embed.images`` embed, with its alt and ``aspectRatio``.

Bluesky takes image blobs of at most ``MAX_BLOB_BYTES``. An item over it is re-encoded as JPEG
(Pillow), first at lower qualities, then scaled down step by step until it fits; never scaled
up. Re-encoding writes no metadata (EXIF, ICC, text chunks); the library removed location data
from the stored file already. Video and animated GIFs are refused at planning (a PDS has no
video service).

Uploading again is harmless: a blob no record references is never shown (the PDS drops it),
so a retried attempt uploads again and the record key keeps the post itself once.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from workers.channels import Attachment, PermanentChannelError, Post
from workers.channels.bluesky_sessions import Account, BlueskySessions
from workers.channels.http import ChannelHttp

IMAGES = "app.bsky.embed.images"
MAX_BLOB_BYTES = 2_000_000
QUALITIES = (90, 80, 70)
SCALE_STEP = 0.8  # each step down keeps this share of the width and height
MIN_SIDE = 64  # pixels; an image that must shrink below this is refused


def embed(sessions: BlueskySessions, account: Account, http: ChannelHttp, post: Post) -> dict[str, Any]:
    """``{"embed": images}`` for a post with media, or ``{}``."""
    if not post.media:
        return {}
    images = []
    for item in post.media:
        if item.kind != "image":  # refused at planning; a share planned before that rule stops here
            raise PermanentChannelError(f"bluesky: media {item.media_id} is a {item.kind}; only still images "
                                        "are published on Bluesky")
        data, mime, (width, height) = fitted(item)
        if post.before_write is not None:
            post.before_write()  # the attempt's lease covers the uploads too
        body = http.answer(sessions.authed(account, http, "POST", "com.atproto.repo.uploadBlob",
                                           content=data, headers={"Content-Type": mime}))
        blob = body.get("blob") if isinstance(body, dict) else None
        if not isinstance(blob, dict) or "ref" not in blob:
            raise http.malformed("no blob in the answer to uploadBlob")
        images.append({"image": blob, "alt": item.alt, "aspectRatio": {"width": width, "height": height}})
    return {"embed": {"$type": IMAGES, "images": images}}


def fitted(item: Attachment) -> tuple[bytes, str, tuple[int, int]]:
    """The item's bytes, mime and size as uploaded: as stored when within the limit, else re-encoded."""
    if len(item.data) <= MAX_BLOB_BYTES:
        return item.data, item.mime, (item.width, item.height)
    with Image.open(io.BytesIO(item.data)) as opened:
        image = opened.convert("RGB")  # JPEG has no alpha: a transparent PNG gets black behind it
    width, height = image.size
    while min(width, height) >= MIN_SIDE:
        scaled = image if (width, height) == image.size else image.resize((width, height), Image.Resampling.LANCZOS)
        for quality in QUALITIES:
            out = io.BytesIO()
            scaled.save(out, "JPEG", quality=quality, optimize=True)  # no exif, icc_profile: none written
            if out.tell() <= MAX_BLOB_BYTES:
                return out.getvalue(), "image/jpeg", (width, height)
        width, height = max(1, int(width * SCALE_STEP)), max(1, int(height * SCALE_STEP))
    raise PermanentChannelError(f"bluesky: media {item.media_id} cannot be made smaller than "
                                f"{MAX_BLOB_BYTES} bytes")
