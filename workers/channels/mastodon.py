"""The Mastodon channel: statuses through the REST API of the account's server.

Account config: ``{"base_url": "https://mastodon.social", "access_token_env": "MASTODON_TOKEN",
"visibility": "public"}``. The token is read from the named environment variable at each
call, so a missing one fails that share with a clear reason instead of the worker's start.
It needs the scopes ``write:statuses`` (publish) and ``read:accounts`` + ``read:statuses``
(``find``).

Idempotency: every publish sends ``Idempotency-Key``; Mastodon remembers it for an hour
and answers a repeat with the same status. Past the hour, ``find`` (reconciliation) looks
through the account's own recent statuses for one created no earlier than the scheduled
time (minus ``CLOCK_SKEW``) whose *visible text* equals the share's text. Mastodon
returns ``content`` as HTML, and the plain source (``/statuses/:id/source``) costs a
request per status, so both sides are compared after rendering the HTML to text
(paragraphs and line breaks as whitespace, links' hidden parts kept), collapsing
whitespace, and dropping the ``@host`` of remote mentions (Mastodon shows
``@user@host`` as ``@user``). An identical text posted by hand in that window would be
taken for ours: acceptable, since it is the same words on the same account.

``find`` sees only what the server lists among the account's statuses, and several servers
leave ``private`` and ``direct`` posts out of that listing: ``can_find`` is False for an
account posting with those visibilities. ``text_limit`` reads the instance's own text limit
(``/api/v2/instance``, then ``/api/v1/instance``), cached per server.

Media (``mastodon_media.py``): each item uploaded with ``POST /api/v2/media`` (alt as
``description``, ``focus``) and waited for while the server processes it, then attached with
``media_ids``; uploads are repeated by a retried attempt, harmlessly.

HTTP failures become channel errors in ``workers.channels.http``, shared with bluesky.py.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar
from urllib.parse import quote

import httpx
import structlog

from scheduler.domain.content import primary_language
from workers.channels import ChannelError, PermanentChannelError, Post, Published, ThreadLook, TransientChannelError
from workers.channels.http import ChannelHttp, base_url_of, parse_time, still_unknown
from workers.channels.mastodon_api import (
    CHANNEL,
    Account,
    account_of,
    auth,
    comparable,
    http_for,
    published,
    text_field,
    visible_text,
)
from workers.channels.mastodon_media import upload_all
from workers.channels.mastodon_threads import MastodonThreads

if TYPE_CHECKING:
    from scheduler.domain.share import ThreadPost
    from workers.channels import Answer, SharePost

UNLISTED_FOR_FIND = frozenset({"private", "direct"})  # servers may hide these from the account's listing
# Mastodon's defaults: characters per status, characters a URL counts for.
T = TypeVar("T")
DEFAULT_TEXT_LIMIT: tuple[int, int | None] = (500, 23)
TEXT_LIMIT_TTL = 3600.0  # seconds an instance's answer is kept
TEXT_LIMIT_RETRY = 60.0  # seconds the defaults stand in for an instance that did not answer
INSTANCE_TIMEOUT = httpx.Timeout(3.0)  # asked while a person plans a share: never the worker's long wait
CLOCK_SKEW = timedelta(minutes=5)  # our clock and the server's may disagree by this much
PAGE_SIZE = 40  # the most Mastodon returns per page
MAX_PAGES = 5  # find() looks through at most 200 statuses newer than the scheduled time


log = structlog.get_logger("workers.channels.mastodon")


class MastodonPublisher:
    channel = CHANNEL

    def __init__(
        self,
        client: httpx.Client,
        env: Mapping[str, str] | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.env = os.environ if env is None else env
        self.monotonic = monotonic
        self.sleep = sleep
        self._limits: dict[str, tuple[float, tuple[int, int | None]]] = {}  # base_url -> (good until, limit)
        self._limits_lock = threading.Lock()
        self._media_limits: dict[str, tuple[float, tuple[int | None, int | None]]] = {}
        self._threads = MastodonThreads(client, self.env)

    # --- the thread under a post (mastodon_threads.py) ----------------------------

    def read_thread(self, post: SharePost) -> list[ThreadPost]:
        return self._threads.read_thread(post)

    def read_look(self, post: SharePost) -> ThreadLook:
        return self._threads.read_look(post)

    def answer(self, answer: Answer) -> Published:
        return self._threads.answer(answer)

    def find_answer(self, answer: Answer) -> Published | None:
        return self._threads.find_answer(answer)

    def publish(self, post: Post) -> Published:
        account = account_of(post, self.env)
        http = http_for(self.client, account, post)
        # Uploaded (and processed) before the status: an upload never attached is never seen.
        media_ids = upload_all(http, account, post, monotonic=self.monotonic, sleep=self.sleep)
        response = http.send(
            "POST",
            f"{account.base_url}/api/v1/statuses",
            may_publish=True,
            headers={**auth(account), "Idempotency-Key": post.idempotency_key},
            json=status_body(post, account.visibility, media_ids),
        )
        return published(http.answer(response, may_publish=True), http, may_publish=True)

    def find(self, post: Post) -> Published | None:
        account = account_of(post, self.env)
        http = http_for(self.client, account, post)
        try:
            return self._find(account, post, http)
        except TransientChannelError as exc:
            raise still_unknown(exc) from exc

    def can_find(self, post: Post) -> bool:
        """False for ``private`` and ``direct`` posts: servers may leave them out of the listing ``find`` reads."""
        return post.account_config.get("visibility", "public") not in UNLISTED_FOR_FIND

    def delete(self, post: Post, external_id: str) -> None:
        """``DELETE /api/v1/statuses/:id`` (scope ``write:statuses``); a status already gone is no error."""
        account = account_of(post, self.env)
        http = http_for(self.client, account, post)
        response = http.send(
            "DELETE", f"{account.base_url}/api/v1/statuses/{quote(external_id, safe='')}", headers=auth(account)
        )
        if response.status_code != 404:
            http.answer(response)

    def text_limit(self, config: Mapping[str, Any]) -> tuple[int, int | None]:
        """``(max_characters, characters_reserved_per_url)`` of the account's server.

        Read from ``/api/v2/instance``, else ``/api/v1/instance`` (``max_toot_chars`` on
        Pleroma and Akkoma), and kept an hour per server. Never raises: a server that does not
        answer, or a config without a usable ``base_url``, gets Mastodon's defaults (500, 23),
        asked again after a minute. Safe to call from several threads (two may ask at once).
        """
        try:
            base_url = base_url_of(config.get("base_url"), CHANNEL, "base_url", example="https://mastodon.social")
        except PermanentChannelError:
            return DEFAULT_TEXT_LIMIT
        now = self.monotonic()
        with self._limits_lock:
            cached = self._limits.get(base_url)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = self._instance_limit(base_url)
        limit = found or DEFAULT_TEXT_LIMIT
        with self._limits_lock:
            self._limits[base_url] = (now + (TEXT_LIMIT_TTL if found else TEXT_LIMIT_RETRY), limit)
        return limit

    def media_limit(self, config: Mapping[str, Any]) -> tuple[int | None, int | None]:
        """``(max_media_attachments, description_limit)`` of the account's server, each None
        when it does not say (the caller's defaults apply: 4 and 1,500). Kept like the text limit."""
        try:
            base_url = base_url_of(config.get("base_url"), CHANNEL, "base_url", example="https://mastodon.social")
        except PermanentChannelError:
            return (None, None)
        now = self.monotonic()
        with self._limits_lock:
            cached = self._media_limits.get(base_url)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = self._described(base_url, instance_media_limit, "media limits")
        with self._limits_lock:
            self._media_limits[base_url] = (now + (TEXT_LIMIT_TTL if found else TEXT_LIMIT_RETRY),
                                            found or (None, None))
        return found or (None, None)

    def _instance_limit(self, base_url: str) -> tuple[int, int | None] | None:
        return self._described(base_url, instance_text_limit, "text limit")

    def _described(self, base_url: str, read: Callable[[Any], T | None], what: str) -> T | None:
        """What the instance's description says (``read`` of v2, else of v1); None when neither says."""
        http = ChannelHttp(self.client, CHANNEL, ())
        reasons = []
        for path in ("/api/v2/instance", "/api/v1/instance"):
            try:
                body = http.answer(http.send("GET", f"{base_url}{path}", timeout=INSTANCE_TIMEOUT))
            except ChannelError as exc:
                reasons.append(exc.reason)
                continue
            if (limit := read(body)) is not None:
                return limit
            reasons.append(f"no {what} in {path}")
        log.warning(f"mastodon_{what.replace(' ', '_')}_unknown", base_url=base_url, reasons=reasons)
        return None

    def _find(self, account: Account, post: Post, http: ChannelHttp) -> Published | None:
        me = http.answer(
            http.send("GET", f"{account.base_url}/api/v1/accounts/verify_credentials", headers=auth(account)),
        )
        account_id = text_field(me, "id", http)
        since = post.scheduled_at - CLOCK_SKEW
        wanted = comparable(post.text)
        parent = post.reply_to.parent.external_id if post.reply_to is not None else None
        params: dict[str, str | int] = {"limit": PAGE_SIZE, "exclude_reblogs": "true"}
        for _ in range(MAX_PAGES):
            page = http.answer(
                http.send(
                    "GET",
                    f"{account.base_url}/api/v1/accounts/{account_id}/statuses",
                    headers=auth(account),
                    params=params,
                ),
            )
            if not isinstance(page, list) or not page:
                return None
            for status in page:
                if _is_ours(status, since=since, text=wanted, parent=parent) and not _taken(status, post):
                    return published(status, http)
            oldest = parse_time(page[-1].get("created_at")) if isinstance(page[-1], dict) else None
            if oldest is None or oldest < since:
                return None  # newest first: the rest of the timeline is older still
            params["max_id"] = text_field(page[-1], "id", http)
        return None


def _taken(status: dict[str, Any], post: Post) -> bool:
    """The status is recorded as another share's (or an answer's) post: the same text, not ours."""
    status_id = status.get("id")
    return post.taken is not None and status_id is not None and post.taken(str(status_id))


def instance_text_limit(body: Any) -> tuple[int, int | None] | None:
    """The text limit an instance describes: ``configuration.statuses`` (Mastodon, v2 and v1),
    else ``max_toot_chars`` (Pleroma, Akkoma, which count a URL in full: ``None``)."""
    if not isinstance(body, dict):
        return None
    configuration = body.get("configuration")
    statuses = configuration.get("statuses") if isinstance(configuration, dict) else None
    statuses = statuses if isinstance(statuses, dict) else {}
    if "max_characters" in statuses:
        characters, per_url = statuses.get("max_characters"), statuses.get("characters_reserved_per_url", 23)
        return (characters, per_url) if _positive(characters) and _positive(per_url) else None
    characters = body.get("max_toot_chars")
    return (characters, None) if _positive(characters) else None


def instance_media_limit(body: Any) -> tuple[int | None, int | None] | None:
    """``configuration.statuses.max_media_attachments`` and
    ``configuration.media_attachments.description_limit`` (Mastodon 4.4 on); None when neither is there."""
    configuration = body.get("configuration") if isinstance(body, dict) else None
    if not isinstance(configuration, dict):
        return None
    statuses, media = configuration.get("statuses"), configuration.get("media_attachments")
    attachments = statuses.get("max_media_attachments") if isinstance(statuses, dict) else None
    described = media.get("description_limit") if isinstance(media, dict) else None
    found = (attachments if _positive(attachments) else None, described if _positive(described) else None)
    return None if found == (None, None) else found


def _positive(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def status_body(post: Post, visibility: str, media_ids: Sequence[str] = ()) -> dict[str, Any]:
    """A status: the text, its media (uploaded already), and its content warning
    (``spoiler_text``, ``sensitive``: the media hidden behind it too), language (the primary
    subtag: Mastodon knows ISO 639 codes) and the part it answers in a thread."""
    body: dict[str, Any] = {"status": post.text, "visibility": visibility}
    if media_ids:
        body["media_ids"] = list(media_ids)
    if post.content_warning is not None:
        body["spoiler_text"] = post.content_warning.text
        body["sensitive"] = True
    if post.language is not None:
        body["language"] = primary_language(post.language)
    if post.reply_to is not None:
        body["in_reply_to_id"] = post.reply_to.parent.external_id
    return body


def _is_ours(status: Any, *, since: datetime, text: str, parent: str | None) -> bool:
    """A status of the account with the share's text: a post of its own (not an answer the
    account wrote), or a thread's part under the part before."""
    if not isinstance(status, dict):
        return False
    reply_to = status.get("in_reply_to_id")
    if (reply_to is not None) if parent is None else str(reply_to) != parent:
        return False
    created = parse_time(status.get("created_at"))
    return created is not None and created >= since and comparable(visible_text(status.get("content"))) == text


