"""The Bluesky channel: ``app.bsky.feed.post`` records written to the account's repository.

Account config: ``{"service": "https://bsky.social", "handle": "team.bsky.social",
"app_password_env": "BLUESKY_APP_PASSWORD"}``. The app password is read from the named
environment variable; a session (``createSession``) is kept per account and replaced once
when the server refuses it (expired access token), never more per call.

Idempotency: the record key is chosen before the call, from values the attempt already
recorded, so every attempt of a share writes the same key: a TID (the key type the post
lexicon asks for) whose time is the scheduled second and whose other 30 bits come from a
hash of the idempotency key. ``scheduled_at`` cannot change once an attempt has started
(only planned or held shares are rescheduled), so the key is stable across retries.
A second write to the key fails (the reference PDS answers 500 today, others 409 or 400),
so after any refused write the publisher reads the key back: a record there holding the
share's text is the post an earlier attempt made, and is returned as published. The same
read is ``find``, which always works (``can_find``): the key names the record.

Images (``bluesky_media.py``): uploaded as blobs of at most 2,000,000 bytes (re-encoded and
scaled down when larger) and written as an ``app.bsky.embed.images`` embed with alt and
``aspectRatio``; a retried attempt uploads them again, harmlessly.

Rich text: URLs become link facets, and ``@handle`` mentions become mention facets once
the account's service resolves the handle to a DID (``resolveHandle``, cached per process);
a handle that does not resolve stays plain text. Positions count UTF-8 bytes.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx
import structlog

from scheduler.domain.content import bluesky_text
from workers.channels import (
    ChannelError,
    PermanentChannelError,
    Post,
    Published,
    ThreadLook,
    TransientChannelError,
    bluesky_media,
)
from workers.channels.bluesky_cards import BlueskyCards
from workers.channels.bluesky_sessions import (
    CHANNEL,
    CREDENTIAL_CONFIG,
    DEFAULT_SERVICE,
    Account,
    BlueskySessions,
    Session,
    session_refused,
)
from workers.channels.bluesky_threads import BlueskyThreads
from workers.channels.http import ChannelHttp, base_url_of, error_fields, parse_time, still_unknown
from workers.channels.link_cards import LinkPreviews

if TYPE_CHECKING:
    from scheduler.domain.share import ThreadPost
    from workers.channels import Answer, SharePost

COLLECTION = "app.bsky.feed.post"
_BASE32_SORTABLE = "234567abcdefghijklmnopqrstuvwxyz"
_LINK = re.compile(r"https?://[^\s<>\"]+")
_LINK_TAIL = ".,;:!?'\")]"  # punctuation after a link belongs to the sentence, not the link
# A handle (atproto's syntax: domain labels, the last one starting with a letter) after "@",
# at the start or after whitespace or "(" (so never inside an e-mail address or a URL), and
# not running on into more of a name ("@a.b.c-" is no mention; a sentence's full stop may follow).
_MENTION = re.compile(
    r"(?<![^\s(])@"
    r"((?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)"
    r"(?!\.?[a-zA-Z0-9-])"
)
_MAX_HANDLE = 253
_AT_URI = re.compile(r"^at://([^/]+)/([^/]+)/([^/]+)$")

log = structlog.get_logger("workers.channels.bluesky")


class BlueskyPublisher:
    channel = CHANNEL

    def __init__(
        self,
        client: httpx.Client,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        link_previews: LinkPreviews | None = None,
    ) -> None:
        self.client = client
        self.env = os.environ if env is None else env
        self.clock = clock
        self.sessions = BlueskySessions(client, self.env)
        self._dids: dict[tuple[str, str], str] = {}  # (service, handle) -> DID, for mentions
        self._dids_lock = threading.Lock()
        self.threads = BlueskyThreads(self)
        # Link cards where the worker builds the publisher with previews (bootstrap), none otherwise.
        self.cards = None if link_previews is None else BlueskyCards(self.sessions, link_previews)

    # --- the thread under a post (bluesky_threads.py) -----------------------------

    def read_thread(self, post: SharePost) -> list[ThreadPost]:
        return self.threads.read_thread(post)

    def read_look(self, post: SharePost) -> ThreadLook:
        return self.threads.read_look(post)

    def answer(self, answer: Answer) -> Published:
        return self.threads.answer(answer)

    def find_answer(self, answer: Answer) -> Published | None:
        return self.threads.find_answer(answer)

    def publish(self, post: Post) -> Published:
        return self.create(post)

    def create(self, post: Post, extra: Mapping[str, Any] | None = None) -> Published:
        """Write ``post`` at its record key (``extra``: more fields of the record, e.g. ``reply``)."""
        account, http = self.sessions.account(post)
        rkey = record_key(post)
        session = self.sessions.session(account, http)
        created_at = _iso(self._created_at(post))
        text = bluesky_text(post.text, post.content_warning)
        record: dict[str, Any] = {"$type": COLLECTION, "text": text, "createdAt": created_at,
                                  **content_fields(post), **(extra or {})}
        # Bluesky shows a URL as a link, and a handle as a mention, only when a facet says so.
        facets = link_facets(text) + self._mention_facets(account, http, text)
        if facets:
            record["facets"] = sorted(facets, key=lambda facet: int(facet["index"]["byteStart"]))
        # The share's images, uploaded before the post is written (they take the embed: no card).
        record.update(bluesky_media.embed(self.sessions, account, http, post))
        if self.cards is not None:  # the first link's card, fetched before the post is written
            record.update(self.cards.embed(account, http, record))
        response = self.sessions.authed(
            account,
            http,
            "POST",
            "com.atproto.repo.createRecord",
            may_publish=True,
            json={"repo": session.did, "collection": COLLECTION, "rkey": rkey, "record": record},
        )
        if response.is_success:
            answer = http.answer(response, may_publish=True)
            uri, cid = answer.get("uri"), answer.get("cid")
            if not isinstance(uri, str):
                raise http.malformed("no 'uri' in the answer", may_publish=True)
            return Published(external_id=uri, url=post_url(session.handle, rkey), created_at=parse_time(created_at),
                             cid=cid if isinstance(cid, str) else None)
        error = http.failure(response, may_publish=True)
        if response.status_code in (403, 429) or session_refused(response):
            raise error  # refused before writing anything
        try:
            existing = self._read(account, http, session, rkey)
        except ChannelError:
            raise error from None  # the read-back told us nothing: report the write's failure
        if existing is None:
            raise error
        return _ours(existing, post, session, rkey)

    def _created_at(self, post: Post) -> datetime:
        """Now, and for a thread's part at least 1 ms after the part it answers (apps order
        a thread's posts by it)."""
        now = self.clock()
        if post.reply_to is None:
            return now
        return max(now, post.reply_to.parent.created_at + timedelta(milliseconds=1))

    def find(self, post: Post) -> Published | None:
        account, http = self.sessions.account(post)
        rkey = record_key(post)
        try:
            session = self.sessions.session(account, http)
            existing = self._read(account, http, session, rkey)
        except TransientChannelError as exc:
            raise still_unknown(exc) from exc
        return None if existing is None else _ours(existing, post, session, rkey)

    def can_find(self, post: Post) -> bool:
        """Always: the record key is chosen before the call, and a record is read by its key."""
        return True

    def delete(self, post: Post, external_id: str) -> None:
        """``deleteRecord`` of the post ``external_id`` (its at-uri, or its record key); a
        record already gone is no error (the PDS answers success)."""
        account, http = self.sessions.account(post)
        session = self.sessions.session(account, http)
        found = _AT_URI.match(external_id)
        repo, collection, rkey = found.groups() if found else (session.did, COLLECTION, external_id)
        if collection != COLLECTION or repo not in (session.did, session.handle) or not rkey or "/" in rkey:
            raise PermanentChannelError(f"bluesky: {external_id!r} is not a post of account {post.account_name!r}")
        http.answer(
            self.sessions.authed(
                account,
                http,
                "POST",
                "com.atproto.repo.deleteRecord",
                json={"repo": session.did, "collection": COLLECTION, "rkey": rkey},
            )
        )

    def _mention_facets(self, account: Account, http: ChannelHttp, text: str) -> list[dict[str, Any]]:
        facets = []
        for mention in mentions(text):
            did = self._did(account, http, mention.handle)
            if did is None:
                log.warning("bluesky_mention_unresolved", handle=mention.handle)
                continue
            facets.append(
                {
                    "$type": "app.bsky.richtext.facet",
                    "index": {"byteStart": mention.byte_start, "byteEnd": mention.byte_end},
                    "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}],
                }
            )
        return facets

    def did_of(self, config: Mapping[str, Any], handle: str) -> str | None:
        """The DID of ``handle`` as the service of an account with ``config`` resolves it
        (``resolveHandle`` needs no session: no app password is read); None when it says
        there is none. A post's url may name its author by handle (``mark-sent``)."""
        service = base_url_of(config.get("service", DEFAULT_SERVICE), CHANNEL, "service", example=DEFAULT_SERVICE)
        account = Account(service=service, handle=handle, password="")
        return self._did(account, ChannelHttp(self.client, CHANNEL, (), CREDENTIAL_CONFIG), handle)

    def _did(self, account: Account, http: ChannelHttp, handle: str) -> str | None:
        """The DID of ``handle`` as the account's service resolves it; None when it says there is none.

        Only resolved handles are kept: a handle may be registered later. A failure of the
        service itself is raised (transient: nothing was posted yet)."""
        key = (account.service, handle.lower())
        with self._dids_lock:
            if (cached := self._dids.get(key)) is not None:
                return cached
        response = http.send(
            "GET", f"{account.service}/xrpc/com.atproto.identity.resolveHandle", params={"handle": handle}
        )
        if 400 <= response.status_code < 500 and response.status_code not in (401, 408, 429):
            return None  # an unknown handle: 400 InvalidRequest "Unable to resolve handle"
        body = http.answer(response)
        did = body.get("did") if isinstance(body, dict) else None
        if not isinstance(did, str) or not did.startswith("did:"):
            raise http.malformed("no 'did' in the answer to resolveHandle")
        with self._dids_lock:
            self._dids[key] = did
        return did

    def _read(self, account: Account, http: ChannelHttp, session: Session, rkey: str) -> dict[str, Any] | None:
        """The record at ``rkey`` (``uri`` and ``value``), or None when there is none."""
        response = self.sessions.authed(
            account,
            http,
            "GET",
            "com.atproto.repo.getRecord",
            params={"repo": session.did, "collection": COLLECTION, "rkey": rkey},
        )
        if _not_found(response):
            return None
        body = http.answer(response)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("value"), dict)
            or not isinstance(body.get("uri"), str)
        ):
            raise http.malformed("no record in the answer")
        return body

def content_fields(post: Post) -> dict[str, Any]:
    """The record's self-label (a content warning's label), language and, for a thread's
    part, the posts it answers (``reply``: the thread's first and the part before)."""
    fields: dict[str, Any] = {}
    warning = post.content_warning
    if warning is not None and warning.label is not None:
        fields["labels"] = {"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": warning.label}]}
    if post.language is not None:
        fields["langs"] = [post.language]
    if post.reply_to is not None:
        root, parent = post.reply_to.root, post.reply_to.parent
        fields["reply"] = {"root": {"uri": root.external_id, "cid": root.cid},
                           "parent": {"uri": parent.external_id, "cid": parent.cid}}
    return fields


def _ours(record: dict[str, Any], post: Post, session: Session, rkey: str) -> Published:
    # The key is ours alone; a different text there means a hash collision or a hand-made record.
    if record["value"].get("text") != bluesky_text(post.text, post.content_warning):
        raise PermanentChannelError(f"bluesky record key {rkey} already holds a different post ({record['uri']})")
    created_at = parse_time(record["value"].get("createdAt"))
    cid = record.get("cid")
    return Published(external_id=record["uri"], url=post_url(session.handle, rkey), created_at=created_at,
                     cid=cid if isinstance(cid, str) else None)


def record_key(post: Post) -> str:
    """The share's record key: a TID, 13 base32-sortable characters of a 64-bit number
    (top bit 0, 53 bits of microseconds since 1970, 10 bits of clock id)."""
    digest = int.from_bytes(hashlib.sha256(post.idempotency_key.encode()).digest()[:8], "big")
    micros = math.floor(post.scheduled_at.timestamp()) * 1_000_000 + (digest >> 10) % 1_000_000
    value = (micros << 10) | (digest & 0x3FF)
    return "".join(_BASE32_SORTABLE[(value >> shift) & 31] for shift in range(60, -1, -5))


def post_url(handle: str, rkey: str) -> str:
    return f"https://bsky.app/profile/{handle}/post/{rkey}"


class Mention(NamedTuple):
    """An ``@handle`` in a text: the handle, and where ``@handle`` sits in the UTF-8 bytes."""

    handle: str
    byte_start: int
    byte_end: int


def mentions(text: str) -> list[Mention]:
    """The ``@handle`` mentions in ``text``, with the byte range a mention facet covers (``@`` included)."""
    found = []
    for match in _MENTION.finditer(text):
        handle = match.group(1)
        if len(handle) <= _MAX_HANDLE:
            start, end = _byte_range(text, match.start(), match.end())
            found.append(Mention(handle, start, end))
    return found


def link_facets(text: str) -> list[dict[str, Any]]:
    """Rich-text facets for the URLs in ``text`` (their positions count UTF-8 bytes)."""
    facets = []
    for match in _LINK.finditer(text):
        url = match.group().rstrip(_LINK_TAIL)
        start, end = _byte_range(text, match.start(), match.start() + len(url))
        facets.append(
            {
                "index": {"byteStart": start, "byteEnd": end},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": url}],
            }
        )
    return facets


def _byte_range(text: str, start: int, end: int) -> tuple[int, int]:
    """Character positions ``start:end`` of ``text`` as UTF-8 byte offsets (facets count bytes)."""
    byte_start = len(text[:start].encode())
    return byte_start, byte_start + len(text[start:end].encode())


def _not_found(response: httpx.Response) -> bool:
    # The lexicon names RecordNotFound; the reference PDS has answered InvalidRequest instead.
    error, message = error_fields(response)
    return response.status_code in (400, 404) and (
        error == "RecordNotFound" or message.startswith("Could not locate record")
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
