"""The pieces of Mastodon's REST API that the publisher (``mastodon.py``) and the thread
reader (``mastodon_threads.py``) share: the account from its config, its requests'
authorization, a status read as ``Published``, and a status' visible text for comparing it
with the words we posted."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import httpx

from workers.channels import PermanentChannelError, Post, Published
from workers.channels.http import ChannelHttp, base_url_of, parse_time, secret_from_env

CHANNEL = "mastodon"
CREDENTIAL_CONFIG = "access_token_env"
VISIBILITIES = frozenset({"public", "unlisted", "private", "direct"})


@dataclass(frozen=True, slots=True)
class Account:
    base_url: str
    token: str
    visibility: str


def account_of(post: Post, env: Mapping[str, str]) -> Account:
    """The account a post goes out on, from its config; the token read from ``env`` now."""
    config = post.account_config
    base_url = base_url_of(config.get("base_url"), CHANNEL, "base_url", example="https://mastodon.social")
    token = secret_from_env(config, CREDENTIAL_CONFIG, env, network=CHANNEL, account=post.account_name,
                            what="the access token")
    visibility = config.get("visibility", "public")
    if visibility not in VISIBILITIES:
        raise PermanentChannelError(
            f"mastodon visibility must be one of {sorted(VISIBILITIES)}, not {visibility!r}"
        )
    return Account(base_url=base_url, token=token, visibility=str(visibility))


def http_for(client: httpx.Client, account: Account, post: Post | None = None) -> ChannelHttp:
    """Requests for ``account`` (its token redacted from every error), with the post's
    ``before_write`` hook when a request may publish it."""
    return ChannelHttp(client, CHANNEL, (account.token,), CREDENTIAL_CONFIG,
                       before_write=post.before_write if post else None)


def auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


def published(status: Any, http: ChannelHttp, *, may_publish: bool = False) -> Published:
    external_id = text_field(status, "id", http, may_publish=may_publish)
    url = status.get("url") or status.get("uri")
    created_at = parse_time(status.get("created_at"))
    return Published(external_id=external_id, url=url if isinstance(url, str) else None, created_at=created_at)


def text_field(body: Any, key: str, http: ChannelHttp, *, may_publish: bool = False) -> str:
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, str | int) or value == "":
        raise http.malformed(f"no {key!r} in the answer", may_publish=may_publish)
    return str(value)


# --- comparing a status with the share's text -----------------------------------------

_REMOTE_MENTION = re.compile(r"@(\w+)@[\w-]+(?:\.[\w-]+)+")


class _Text(HTMLParser):
    """Collects the text a reader sees; block ends and line breaks become spaces."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "p"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(content: Any) -> str:
    """The text of a status' HTML ``content`` (links keep their hidden ``invisible`` spans)."""
    parser = _Text()
    parser.feed(content if isinstance(content, str) else "")
    parser.close()
    return "".join(parser.parts)


def comparable(text: str) -> str:
    return " ".join(_REMOTE_MENTION.sub(r"@\1", text).split())
