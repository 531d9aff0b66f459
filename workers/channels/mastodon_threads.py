"""The thread under a Mastodon status: read through ``GET /api/v1/statuses/:id/context``
(its ``descendants``: replies of replies too, following a ``Link: rel="next"`` where a
server pages them), answered with ``POST /api/v1/statuses`` ``in_reply_to_id`` and an
``Idempotency-Key``; an answer whose outcome is unknown is looked for among the account's
own statuses under the reply, by its visible text.

Needs ``read:statuses`` (and ``read:accounts`` to know the account's own posts) besides
``write:statuses``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from events.catalogue import Engagement
from scheduler.domain.share import ThreadPost
from workers.channels import Answer, Post, Published, SharePost, ThreadLook, TransientChannelError, mastodon_api
from workers.channels.http import ChannelHttp, parse_time, still_unknown

MAX_CONTEXT_PAGES = 20


def _as_post(post: SharePost, answer: Answer | None = None) -> Post:
    return Post(share_id=post.share_id, workspace_id=post.workspace_id, account_name=post.account_name,
                account_config=post.account_config, text=answer.text if answer else "",
                scheduled_at=answer.requested_at if answer else post.sent_at,
                idempotency_key=answer.idempotency_key if answer else "", attempt=answer.attempt if answer else 0,
                before_write=answer.before_write if answer else None)


class MastodonThreads:
    def __init__(self, client: httpx.Client, env: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.env = os.environ if env is None else env
        self._me: dict[tuple[str, str], str] = {}  # (base_url, token) -> the account's id
        self._lock = threading.Lock()

    def read_thread(self, post: SharePost) -> list[ThreadPost]:
        return self.read_look(post).posts

    def read_look(self, post: SharePost) -> ThreadLook:
        """The thread (the status' context) and the status' counts (``GET /api/v1/statuses/:id``)."""
        account = mastodon_api.account_of(_as_post(post), self.env)
        http = mastodon_api.http_for(self.client, account)
        me = self._account_id(account, http)
        posts = [_thread_post(s, post.external_id, me, http) for s in self._descendants(account, http,
                                                                                        post.external_id)]
        status = http.answer(http.send("GET", f"{account.base_url}/api/v1/statuses/{quote(post.external_id, safe='')}",
                                       headers=mastodon_api.auth(account)))
        return ThreadLook(posts, _engagement(status, http))

    def answer(self, answer: Answer) -> Published:
        as_post = _as_post(answer.post, answer)
        account = mastodon_api.account_of(as_post, self.env)
        http = mastodon_api.http_for(self.client, account, as_post)
        response = http.send(
            "POST", f"{account.base_url}/api/v1/statuses", may_publish=True,
            headers={**mastodon_api.auth(account), "Idempotency-Key": answer.idempotency_key},
            json={"status": answer.text, "in_reply_to_id": answer.reply_id, "visibility": account.visibility},
        )
        return mastodon_api.published(http.answer(response, may_publish=True), http, may_publish=True)

    def find_answer(self, answer: Answer) -> Published | None:
        account = mastodon_api.account_of(_as_post(answer.post, answer), self.env)
        http = mastodon_api.http_for(self.client, account)
        try:
            me = self._account_id(account, http)
            wanted = mastodon_api.comparable(answer.text)
            for status in self._descendants(account, http, answer.reply_id):
                if (isinstance(status, dict) and str(status.get("in_reply_to_id")) == answer.reply_id
                        and _author_id(status) == me
                        and mastodon_api.comparable(mastodon_api.visible_text(status.get("content"))) == wanted):
                    return mastodon_api.published(status, http)
        except TransientChannelError as exc:
            raise still_unknown(exc) from exc
        return None

    def _account_id(self, account: mastodon_api.Account, http: ChannelHttp) -> str:
        key = (account.base_url, account.token)
        with self._lock:
            if (known := self._me.get(key)) is not None:
                return known
        me = http.answer(http.send("GET", f"{account.base_url}/api/v1/accounts/verify_credentials",
                                   headers=mastodon_api.auth(account)))
        found = mastodon_api.text_field(me, "id", http)
        with self._lock:
            self._me[key] = found
        return found

    def _descendants(self, account: mastodon_api.Account, http: ChannelHttp, status_id: str) -> list[Any]:
        url: str | None = f"{account.base_url}/api/v1/statuses/{quote(status_id, safe='')}/context"
        found: list[Any] = []
        for _ in range(MAX_CONTEXT_PAGES):
            if url is None:
                break
            response = http.send("GET", url, headers=mastodon_api.auth(account))
            body = http.answer(response)
            descendants = body.get("descendants") if isinstance(body, dict) else None
            if not isinstance(descendants, list):
                raise http.malformed("no 'descendants' in the status' context")
            found.extend(descendants)
            following = response.links.get("next", {}).get("url")
            url = following if following and following.startswith(account.base_url) else None
        return found


def _count(status: dict[str, Any], key: str, http: ChannelHttp) -> int:
    value = status.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise http.malformed(f"no count '{key}' in the status")
    return value


def _engagement(status: Any, http: ChannelHttp) -> Engagement:
    """The status' counts; ``quotes_count`` only where the server has it (Mastodon 4.4 on)."""
    if not isinstance(status, dict):
        raise http.malformed("the status is not an object")
    quotes = None if status.get("quotes_count") is None else _count(status, "quotes_count", http)
    return Engagement(replies=_count(status, "replies_count", http), reposts=_count(status, "reblogs_count", http),
                      likes=_count(status, "favourites_count", http), quotes=quotes)


def _author_id(status: dict[str, Any]) -> str | None:
    author = status.get("account")
    value = author.get("id") if isinstance(author, dict) else None
    return None if value is None else str(value)


def _thread_post(status: Any, post_id: str, me: str, http: ChannelHttp) -> ThreadPost:
    if not isinstance(status, dict):
        raise http.malformed("a descendant that is not a status")
    status_post = mastodon_api.published(status, http)
    parent = status.get("in_reply_to_id")
    found = status.get("account")
    author: dict[str, Any] = found if isinstance(found, dict) else {}
    created = status_post.created_at or parse_time(status.get("created_at"))
    if created is None:
        raise http.malformed("a reply without 'created_at'")
    return ThreadPost(
        reply_id=status_post.external_id,
        parent_id=None if parent is None or str(parent) == post_id else str(parent),
        author=str(author.get("acct") or author.get("username") or ""),
        text=" ".join(mastodon_api.visible_text(status.get("content")).split()),
        url=status_post.url,
        created_at=created,
        by_account=_author_id(status) == me,
        author_name=_display_name(author.get("display_name")),
    )


def _display_name(value: Any) -> str | None:
    """The name the account shows, or None (absent or empty: the handle stands alone)."""
    return value.strip()[:200] or None if isinstance(value, str) else None
