"""A post's media on Mastodon: each item uploaded with ``POST /api/v2/media`` (the file, its
``description`` = the alt text, its ``focus`` "x,y" when set) before the status is created.

Mastodon answers 200 for media it processed at once, and 202 for media still processing (large
images, video); the status may only attach it once ``GET /api/v1/media/:id`` answers 200 (206
while processing). The wait is bounded (``PROCESSING_BUDGET`` seconds, polling with backoff):
media still processing past it fails the attempt as retryable (nothing was posted), and the
next attempt uploads again.

Uploading again is harmless: an upload that no status attaches is never visible (the server
removes it after a day), so uploads need no idempotency of their own; the status keeps its
``Idempotency-Key`` and its look-up by text.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

from workers.channels import Attachment, Post, TransientChannelError
from workers.channels.http import ChannelHttp
from workers.channels.mastodon_api import Account, auth, text_field

PROCESSING_BUDGET = 30.0  # seconds an item may take to process before the attempt gives up
FIRST_POLL = 0.25  # seconds before the first look, doubled after each, at most MAX_POLL
MAX_POLL = 4.0
UPLOAD_TIMEOUT = 60.0  # seconds for one upload's request (a large file on a slow link)


def upload_all(http: ChannelHttp, account: Account, post: Post, *,
               monotonic: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """The ids of the post's media, uploaded and processed, in order."""
    return [_upload(http, account, post, item, monotonic=monotonic, sleep=sleep) for item in post.media]


def _upload(http: ChannelHttp, account: Account, post: Post, item: Attachment, *,
            monotonic: Callable[[], float], sleep: Callable[[float], None]) -> str:
    if post.before_write is not None:
        post.before_write()  # the attempt's lease covers the uploads too: they may take a while
    form = {"description": item.alt}
    if item.focus is not None:
        form["focus"] = f"{item.focus[0]:g},{item.focus[1]:g}"
    name = f"{item.sha256[:16]}.{item.mime.rsplit('/', 1)[-1]}"
    response = http.send("POST", f"{account.base_url}/api/v2/media", headers=auth(account), data=form,
                         files={"file": (name, item.data, item.mime)}, timeout=UPLOAD_TIMEOUT)
    body = http.answer(response)
    media_id = text_field(body, "id", http)
    if response.status_code != 202:
        return media_id
    return _processed(http, account, post, media_id, monotonic=monotonic, sleep=sleep)


def _processed(http: ChannelHttp, account: Account, post: Post, media_id: str, *,
               monotonic: Callable[[], float], sleep: Callable[[float], None]) -> str:
    """Wait for ``media_id`` to be processed (200), within the budget."""
    deadline = monotonic() + PROCESSING_BUDGET
    pause = FIRST_POLL
    while True:
        left = deadline - monotonic()
        if left <= 0:
            raise TransientChannelError(
                f"mastodon was still processing media {media_id} after {PROCESSING_BUDGET:g} s; "
                "the next attempt uploads it again")
        sleep(min(pause, left))
        pause = min(pause * 2, MAX_POLL)
        if post.before_write is not None:
            post.before_write()
        response = http.send("GET", f"{account.base_url}/api/v1/media/{quote(media_id, safe='')}",
                             headers=auth(account))
        if response.status_code == 206:
            continue  # still processing
        http.answer(response)  # an error raises; 200: processed
        return media_id
