"""A post's id on its network, read from the post's url: what a share marked sent with
its url alone records as the post's id, the id every later look at its replies asks for.

- Mastodon (and servers with its API): ``https://HOST/@user/ID`` (``@user@remote`` too),
  ``https://HOST/users/NAME/statuses/ID``, ``https://HOST/…/statuses/ID``; ``ID`` is the
  status id on ``HOST``, which must be the account's own server (another server numbers
  its copy of the post differently).
- Bluesky: ``at://AUTHORITY/app.bsky.feed.post/RKEY`` and
  ``https://bsky.app/profile/AUTHORITY/post/RKEY`` (any AppView with that path); the id is
  the post's at-uri, ``at://DID/app.bsky.feed.post/RKEY``. An authority that is a handle
  must be resolved to its DID (``HandleResolver``: the account's service asked, at the edge).
- Console: the url's fragment, the share's id (``file:///…/account.jsonl#ID``).

A url that says no id on the account's channel is refused, naming the field. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

from scheduler.errors import InvalidInputError

FIELD = "url"
BLUESKY_COLLECTION = "app.bsky.feed.post"
# (account config, handle) -> the handle's DID as the account's service resolves it; None: no such handle.
HandleResolver = Callable[[Mapping[str, Any], str], str | None]

_STATUS_ID = r"(?P<id>[A-Za-z0-9]{1,64})"
_MASTODON_PATHS = (
    re.compile(rf"^/@[^/@]+(?:@[^/]+)?/{_STATUS_ID}/?$"),
    re.compile(rf"^/users/[^/]+/statuses/{_STATUS_ID}/?$"),
    re.compile(rf"^(?:/[^/]+)*/statuses/{_STATUS_ID}/?$"),
)
_DID = re.compile(r"^did:[a-z]+:[A-Za-z0-9._:%-]{1,2048}$")
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_HANDLE = re.compile(rf"^(?:{_LABEL}\.)+[a-zA-Z](?:[a-zA-Z0-9-]{{0,61}}[a-zA-Z0-9])?$")
_RKEY = re.compile(r"^[A-Za-z0-9._:~-]{1,512}$")
_AT_URI = re.compile(r"^at://(?P<authority>[^/]+)/(?P<collection>[^/]+)/(?P<rkey>[^/]+)$")
_APPVIEW_PATH = re.compile(r"^/profile/(?P<authority>[^/]+)/post/(?P<rkey>[^/]+)/?$")


@dataclass(frozen=True, slots=True)
class PostRef:
    """What a url says of a post: its id, or (Bluesky) a handle to resolve and a record key."""

    external_id: str | None = None
    handle: str | None = None
    rkey: str | None = None

    def resolved(self, did: str) -> str:
        """The at-uri once the handle's DID is known."""
        assert self.rkey is not None
        return at_uri(did, self.rkey)


def at_uri(did: str, rkey: str) -> str:
    return f"at://{did}/{BLUESKY_COLLECTION}/{rkey}"


def post_ref(channel: str, url: str, config: Mapping[str, Any]) -> PostRef:
    """What ``url`` says of a post on ``channel`` (an account with ``config``)."""
    if channel == "mastodon":
        return PostRef(mastodon_status_id(url, config.get("base_url")))
    if channel == "bluesky":
        return bluesky_post(url)
    if channel == "console":
        return PostRef(console_post_id(url))
    raise InvalidInputError(FIELD, f"a {channel} post's id cannot be read from its url: give external_id too")


def mastodon_status_id(url: str, base_url: object = None) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInputError(FIELD, "must be the post's https:// address, e.g. https://mastodon.social/@team/1134")
    if isinstance(base_url, str) and base_url:
        ours = urlsplit(base_url)
        if (ours.hostname, ours.port) != (parts.hostname, parts.port):
            raise InvalidInputError(FIELD, f"is on {parts.netloc}, not on the account's server {ours.netloc}: "
                                           "give the post's address on its own server")
    path = unquote(parts.path)
    for pattern in _MASTODON_PATHS:
        found = pattern.match(path)
        if found:
            return found.group("id")
    raise InvalidInputError(FIELD, "is not a Mastodon post's address (…/@user/ID, …/users/NAME/statuses/ID "
                                   "or …/statuses/ID)")


def bluesky_post(url: str) -> PostRef:
    text = url.strip()
    found = _AT_URI.match(text)
    if found:
        if found.group("collection") != BLUESKY_COLLECTION:
            raise InvalidInputError(FIELD, f"is an at-uri of {found.group('collection')}, not of a post "
                                           f"({BLUESKY_COLLECTION})")
        authority, rkey = found.group("authority"), found.group("rkey")
    else:
        parts = urlsplit(text)
        path = _APPVIEW_PATH.match(unquote(parts.path)) if parts.scheme in ("https", "http") else None
        if path is None:
            raise InvalidInputError(FIELD, "is not a Bluesky post's address (at://…/app.bsky.feed.post/RKEY or "
                                           "https://bsky.app/profile/HANDLE/post/RKEY)")
        authority, rkey = path.group("authority"), path.group("rkey")
    if not _RKEY.match(rkey) or rkey in (".", ".."):
        raise InvalidInputError(FIELD, f"{rkey!r} is not a record key")
    if _DID.match(authority):
        return PostRef(at_uri(authority, rkey))
    handle = authority.removeprefix("@").lower()
    if not _HANDLE.match(handle):
        raise InvalidInputError(FIELD, f"{authority!r} is neither a DID nor a handle")
    return PostRef(handle=handle, rkey=rkey)


def console_post_id(url: str) -> str:
    fragment = urlsplit(url.strip()).fragment
    try:
        return str(UUID(fragment))
    except ValueError:
        raise InvalidInputError(FIELD, "is not a console post's address (…/ACCOUNT.jsonl#SHARE_ID)") from None


def post_id(channel: str, url: str, config: Mapping[str, Any], resolve: HandleResolver | None) -> str:
    """The post's id from its url, a handle resolved through ``resolve``; refused (``url``) otherwise."""
    ref = post_ref(channel, url, config)
    if ref.external_id is not None:
        return ref.external_id
    assert ref.handle is not None
    did = resolve(config, ref.handle) if resolve is not None else None
    if did is None or not _DID.match(did):
        raise InvalidInputError(FIELD, f"the handle {ref.handle!r} does not resolve to an account: "
                                       "give the post's at:// uri with its DID")
    return ref.resolved(did)
