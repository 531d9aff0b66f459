"""The thread under a Bluesky post: read with ``app.bsky.feed.getPostThread`` on the
AppView (the account config's ``appview`` URL, called without credentials; by default
the account's own service, which proxies it with the session), every level of replies;
answered with a post record whose ``reply`` names the thread's root and the reply
(their ``cid`` from ``app.bsky.feed.getPosts``), at a record key fixed by the answer's
idempotency key, so a second write is refused and the answer is read back by its key.

The AppView indexes asynchronously: a reply shows up in a later look, not at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from events.catalogue import Engagement
from scheduler.domain.share import ThreadPost
from workers.channels import Answer, Post, Published, SharePost, ThreadLook, TransientChannelError
from workers.channels.bluesky_sessions import Account
from workers.channels.http import ChannelHttp, base_url_of, parse_time, still_unknown

if TYPE_CHECKING:
    from workers.channels.bluesky import BlueskyPublisher

THREAD_DEPTH = 1000  # the AppView's most


def _as_post(post: SharePost, answer: Answer | None = None) -> Post:
    return Post(share_id=post.share_id, workspace_id=post.workspace_id, account_name=post.account_name,
                account_config=post.account_config, text=answer.text if answer else "",
                scheduled_at=answer.requested_at if answer else post.sent_at,
                idempotency_key=answer.idempotency_key if answer else "", attempt=answer.attempt if answer else 0,
                before_write=answer.before_write if answer else None)


class BlueskyThreads:
    def __init__(self, publisher: BlueskyPublisher) -> None:
        self.publisher = publisher

    def read_thread(self, post: SharePost) -> list[ThreadPost]:
        return self.read_look(post).posts

    def read_look(self, post: SharePost) -> ThreadLook:
        """The thread and the post's counts (its postView's), from one ``getPostThread``."""
        account, http = self.publisher.sessions.account(_as_post(post))
        session = self.publisher.sessions.session(account, http)
        body = http.answer(self._appview(post, account, http, "app.bsky.feed.getPostThread",
                                         {"uri": post.external_id, "depth": THREAD_DEPTH, "parentHeight": 0}))
        thread = body.get("thread") if isinstance(body, dict) else None
        if not isinstance(thread, dict):
            raise http.malformed("no 'thread' in the answer to getPostThread")
        found: list[ThreadPost] = []
        _walk(thread, post.external_id, session.did, found)
        return ThreadLook(sorted(found, key=lambda p: p.created_at), _engagement(thread.get("post"), http))

    def answer(self, answer: Answer) -> Published:
        post = answer.post
        account, http = self.publisher.sessions.account(_as_post(post))
        body = http.answer(self._appview(post, account, http, "app.bsky.feed.getPosts",
                                         {"uris": [post.external_id, answer.reply_id]}))
        refs = {p.get("uri"): {"uri": p.get("uri"), "cid": p.get("cid")}
                for p in (body.get("posts", []) if isinstance(body, dict) else []) if isinstance(p, dict)}
        parent = refs.get(answer.reply_id)
        if parent is None:
            raise TransientChannelError(f"bluesky: the reply {answer.reply_id} is not on the AppView (yet)")
        root = _root_of(body, answer.reply_id) or refs.get(post.external_id) or parent
        return self.publisher.create(_as_post(post, answer), {"reply": {"root": root, "parent": parent}})

    def find_answer(self, answer: Answer) -> Published | None:
        try:
            return self.publisher.find(_as_post(answer.post, answer))
        except TransientChannelError as exc:
            raise still_unknown(exc) from exc

    def _appview(self, post: SharePost, account: Account, http: ChannelHttp, nsid: str,
                 params: dict[str, Any]) -> httpx.Response:
        configured = post.account_config.get("appview")
        if configured is None:
            return self.publisher.sessions.authed(account, http, "GET", nsid, params=params)
        appview = base_url_of(configured, "bluesky", "appview", example="https://public.api.bsky.app")
        return http.send("GET", f"{appview}/xrpc/{nsid}", params=params)


def _engagement(view: Any, http: ChannelHttp) -> Engagement:
    """The counts of the post's postView (``quoteCount`` where the AppView has it)."""
    if not isinstance(view, dict):
        raise http.malformed("no 'post' in the thread of getPostThread")
    counts: dict[str, int | None] = {}
    for key, name in (("replyCount", "replies"), ("repostCount", "reposts"), ("likeCount", "likes"),
                      ("quoteCount", "quotes")):
        value = view.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise http.malformed(f"'{key}' of the post is not a count")
        counts[name] = value
    # The AppView leaves a count out of a postView while it is 0 on some versions.
    return Engagement(replies=counts["replies"] or 0, reposts=counts["reposts"] or 0, likes=counts["likes"] or 0,
                      quotes=counts["quotes"])


def _root_of(body: Any, uri: str) -> dict[str, Any] | None:
    for p in body.get("posts", []) if isinstance(body, dict) else []:
        if isinstance(p, dict) and p.get("uri") == uri:
            reply = (p.get("record") or {}).get("reply") or {}
            root = reply.get("root")
            return root if isinstance(root, dict) and root.get("uri") and root.get("cid") else None
    return None


def _walk(node: dict[str, Any], post_uri: str, did: str, found: list[ThreadPost]) -> None:
    for child in node.get("replies") or []:
        if not isinstance(child, dict) or not isinstance(child.get("post"), dict):
            continue  # a reply not found, blocked or deleted
        item = child["post"]
        record = item.get("record") if isinstance(item.get("record"), dict) else {}
        author = item.get("author") if isinstance(item.get("author"), dict) else {}
        uri, created = item.get("uri"), parse_time(record.get("createdAt")) or parse_time(item.get("indexedAt"))
        if not isinstance(uri, str) or created is None:
            continue
        parent = ((record.get("reply") or {}).get("parent") or {}).get("uri")
        handle = _who(author)
        found.append(ThreadPost(
            reply_id=uri, parent_id=None if parent in (None, post_uri) else str(parent), author=handle,
            text=str(record.get("text", "")), url=_post_url(handle, uri), created_at=created,
            by_account=author.get("did") == did, author_name=_name(author.get("displayName")),
        ))
        _walk(child, post_uri, did, found)


# What the AppView shows for an account whose handle no longer verifies (its domain or DNS
# record gone): no name a person can use, nor a profile address that opens.
INVALID_HANDLE = "handle.invalid"


def _who(author: dict[str, Any]) -> str:
    """The author's handle, or its DID where the AppView has no valid handle for it."""
    handle, did = author.get("handle"), author.get("did")
    if handle and handle != INVALID_HANDLE:
        return str(handle)
    return str(did or handle or "")


def _name(value: Any) -> str | None:
    """A display name as the network shows it, or None (absent, empty, not text)."""
    return value.strip()[:200] or None if isinstance(value, str) else None


def _post_url(handle: str, uri: str) -> str:
    return f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}"
