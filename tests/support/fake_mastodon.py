"""A hostile fake Mastodon, served on loopback, that behaves like the worst real servers.

By default it behaves like Mastodon itself where the publisher depends on it: it dedupes
``POST /api/v1/statuses`` by ``Idempotency-Key``, renders ``content`` as HTML (links with
hidden spans, remote mentions shortened to ``@user``), pages an account's statuses newest
first, takes media uploads (``/api/v2/media``: 202, then 206 on ``GET /api/v1/media/:id``
while processing, with the ``media_processing_polls`` knob) and attaches them with
``media_ids``, answers threads (``/context``), shows a status with its counts (replies, boosts,
favourites; quotes with the ``quotes_count`` knob: ``engage`` or ``POST /_fake/engage``
adds them), deletes, and describes its instance (v2 and v1).
Its ``knobs`` (changeable while it runs, also through ``POST /_fake/knobs``) make it worse:
answers that come late after the post was made, ignored idempotency keys, hidden
followers-only posts, connections dropped after the write, rate limits and bad gateways,
plain-text errors, instance endpoints that fail. ``GET /_fake/stats`` reports what it
counted, so a test in another process can check for duplicates.

In a thread: ``with serve(fake.build()) as url``. As its own process (end-to-end fault
tests that run the real workers)::

    python -m tests.support.fake_mastodon --port 8125 --latency 3 --ignore-idempotency-key --hide-non-public
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import html
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from tests.support.servers import FakeNetwork, iso, now

TOKEN = "mastodon-token-5ecret-0f-the-team"
ACCOUNT_ID = "42"
ACCT = "team"
HIDDEN = frozenset({"private", "direct"})
FIRST_ID = 110_000_000_000_000_000

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class Knobs:
    """How badly the fake behaves. Change any of them while it runs."""

    latency: float = 0.0  # seconds between making a post (POST /api/v1/statuses) and answering
    latency_by_path: dict[str, float] = field(default_factory=dict)  # more seconds before answering a path
    honour_idempotency_key: bool = True  # False: a repeat makes a second post, as several servers do
    hide_non_public: bool = False  # private/direct posts missing from the account's statuses listing
    drop_after_write_every: int = 0  # every n-th new post is made, then its connection dropped unanswered
    fault_rate: float = 0.0  # share of POST /api/v1/statuses answered 429 (before) or 502 (after the write)
    seed: int = 0  # of the random faults, so a run can be replayed
    retry_after: int = 1  # seconds, sent with a random 429
    clock_offset: float = 0.0  # seconds the server's clock is ahead of ours (behind, when negative)
    plain_text_errors: bool = False  # a refused token gets a text/plain answer, not JSON
    auth_error_status: int = 401  # the status that answers a refused token
    max_characters: int = 500
    characters_reserved_per_url: int = 23
    max_media_attachments: int = 4
    description_limit: int | None = None  # None: not said (as before Mastodon 4.4)
    instance_v2: bool = True  # False: /api/v2/instance is unknown (404 HTML page), as on older servers
    instance_v1: bool = True  # False: /api/v1/instance fails too (500 HTML page)
    context_page_size: int = 0  # > 0: a status' context pages its descendants (Link: rel="next")
    quotes_count: bool = False  # statuses carry quotes_count (Mastodon 4.4 on); older servers leave it out
    # n > 0: a media upload is answered 202, and processed at its n-th GET /api/v1/media/:id (200;
    # 206 before); 0: processed at once (200); -1: never processed.
    media_processing_polls: int = 0


DROP = "fake.drop"  # set in a request's scope by its handler: leave it without any HTTP answer


class FakeMastodon(FakeNetwork):
    def __init__(self, knobs: Knobs | None = None, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.initial = knobs or Knobs()
        self.reset()

    def reset(self) -> None:
        self.faults, self.requests, self.hang_next, self.echo_credentials = [], [], 0.0, False
        self.client_ports = []
        self.knobs = Knobs(**asdict(self.initial))
        self.rng = random.Random(self.knobs.seed)
        self.statuses: list[dict[str, Any]] = []  # oldest first, every account's
        self.by_key: dict[str, dict[str, Any]] = {}
        self.creations = 0  # posts made through the API
        self.deletions = 0
        self.texts: Counter[str] = Counter()  # posts made through the API, by their text
        self.made: list[dict[str, Any]] = []  # posts made through the API: id, text, created_at
        self.drops_pending = 0
        self.next_id = FIRST_ID
        self.accounts: dict[str, str] = {ACCT: ACCOUNT_ID}
        # Who favourited, reblogged, quoted each status (by status id): its counts.
        self.engaged: dict[str, dict[str, set[str]]] = {}
        # Uploaded media by id: description, focus, mime, size, sha256, polls left, attached to.
        self.media: dict[str, dict[str, Any]] = {}
        self.media_answers: list[tuple[str, int]] = []  # (media id, status answered), in order

    # --- what tests arrange and read ---------------------------------------------------

    def forget_idempotency_keys(self) -> None:
        """An hour has passed: Mastodon no longer knows the keys."""
        self.by_key.clear()

    def drop_next_after_write(self, times: int = 1) -> None:
        """The next ``times`` new posts are made, then their connections dropped unanswered."""
        self.drops_pending += times

    def counts_by_text(self) -> dict[str, int]:
        """How many posts the API made with each text (deleted ones included)."""
        return dict(self.texts)

    def stats(self) -> dict[str, Any]:
        ours = [s for s in self.statuses if s["account"]["id"] == ACCOUNT_ID]
        return {"posts": self.creations, "deletes": self.deletions, "live": len(ours), "by_text": dict(self.texts),
                "made": list(self.made), "uploads": len(self.media)}

    def attachment(self, media_id: str) -> dict[str, Any]:
        """A media attachment as Mastodon shows it (on a status, or from GET /api/v1/media/:id)."""
        item = self.media[media_id]
        processed = item["polls_left"] == 0
        focus = item["focus"]
        meta: dict[str, Any] = {}
        if focus is not None:
            meta["focus"] = {"x": focus[0], "y": focus[1]}
        return {"id": media_id, "type": "image", "url": f"{self.base_url}/media/{media_id}" if processed else None,
                "description": item["description"], "meta": meta}

    def seed(
        self,
        text: str,
        created_at: datetime,
        *,
        visibility: str = "public",
        in_reply_to_id: str | None = None,
        author: str = ACCT,
        display_name: str = "",
    ) -> dict[str, Any]:
        """A status as if made earlier (not counted as made through the API)."""
        self.next_id += 1
        account_id = self.accounts.setdefault(author, str(len(self.accounts) + 1000))
        username = author.split("@", maxsplit=1)[0]
        parent = self.status(in_reply_to_id) if in_reply_to_id else None
        status = {
            "id": str(self.next_id),
            "created_at": iso(created_at),
            "content": render(text),
            "url": f"{self.base_url}/@{username}/{self.next_id}",
            "uri": f"{self.base_url}/users/{username}/statuses/{self.next_id}",
            "visibility": visibility,
            "in_reply_to_id": in_reply_to_id,
            "in_reply_to_account_id": parent["account"]["id"] if parent else None,
            "account": {"id": account_id, "username": username, "acct": author, "display_name": display_name},
        }
        self.statuses.append(status)
        return status

    def add_reply(self, parent_id: str, text: str, *, author: str = "ana@example.social",
                  display_name: str = "") -> dict[str, Any]:
        """A reply under ``parent_id``, by someone else or (``author=ACCT``) by the account itself
        (``display_name``: the name the author shows; Mastodon gives "" for none)."""
        return self.seed(text, now(), in_reply_to_id=parent_id, author=author, display_name=display_name)

    def status(self, status_id: str) -> dict[str, Any] | None:
        return next((s for s in self.statuses if s["id"] == status_id), None)

    def engage(self, status_id: str, kind: str, by: str = "ana@example.social", *, undo: bool = False) -> None:
        """Someone favourites (``favourite``), boosts (``reblog``) or quotes (``quote``) a
        status, or takes it back (``undo``): its counts follow."""
        if kind not in ("favourite", "reblog", "quote"):
            raise ValueError(f"unknown engagement {kind!r}")
        who = self.engaged.setdefault(status_id, {}).setdefault(kind, set())
        if undo:
            who.discard(by)
        else:
            who.add(by)

    def with_counts(self, status: dict[str, Any]) -> dict[str, Any]:
        """A status as Mastodon shows it: with its counts (``quotes_count`` where the server has it)."""
        engaged = self.engaged.get(status["id"], {})
        counts = {"replies_count": sum(1 for s in self.statuses if s["in_reply_to_id"] == status["id"]),
                  "reblogs_count": len(engaged.get("reblog", ())),
                  "favourites_count": len(engaged.get("favourite", ()))}
        if self.knobs.quotes_count:
            counts["quotes_count"] = len(engaged.get("quote", ()))
        return {**status, **counts}

    # --- the server ----------------------------------------------------------------------

    def build(self) -> Any:
        """The ASGI app: a FastAPI app inside a layer that can drop connections and answer late."""
        app = self.app()

        def refused(request: Request) -> Response | None:
            given = request.headers.get("authorization", "")
            if given == f"Bearer {self.token}":
                return None
            status = self.knobs.auth_error_status
            if self.knobs.plain_text_errors:
                return PlainTextResponse("Invalid Bearer token", status_code=status)
            error = "The access token is invalid" + (f" ({given})" if self.echo_credentials else "")
            return JSONResponse({"error": error}, status_code=status)

        def not_found() -> JSONResponse:
            return JSONResponse({"error": "Record not found"}, status_code=404)

        @app.post("/api/v1/statuses")
        async def create(request: Request) -> Any:
            if (no := refused(request)) is not None:
                return no
            body = await request.json()
            text = str(body.get("status", "")).strip()
            spoiler = str(body.get("spoiler_text") or "")
            limit = self.knobs.max_characters
            counted = spoiler + re.sub(r"https?://\S+", "x" * self.knobs.characters_reserved_per_url, text)
            if not text or len(counted) > limit:  # Mastodon counts the spoiler text with the status
                return JSONResponse({"error": f"Validation failed: Text character limit of {limit} exceeded"}, 422)
            media_ids = [str(m) for m in body.get("media_ids") or []]
            for media_id in media_ids:
                item = self.media.get(media_id)
                if item is None or item["polls_left"] != 0:
                    return JSONResponse({"error": "Cannot attach files that have not finished processing. "
                                                  "Try again in a moment!"} if item else
                                        {"error": "Record not found"}, status_code=422 if item else 404)
            fault = self.rng.choice((429, 502)) if self.rng.random() < self.knobs.fault_rate else None
            if fault == 429:
                headers = {"Retry-After": str(self.knobs.retry_after)}
                return JSONResponse({"error": "Too many requests"}, status_code=429, headers=headers)
            key = request.headers.get("idempotency-key") if self.knobs.honour_idempotency_key else None
            status = self.by_key.get(key) if key else None
            if status is None and any(self.media[m]["status_id"] is not None for m in media_ids):
                return JSONResponse({"error": "Validation failed: media already attached"}, status_code=422)
            if status is None:
                status = self.seed(
                    text,
                    now() + timedelta(seconds=self.knobs.clock_offset),
                    visibility=str(body.get("visibility", "public")),
                    in_reply_to_id=body.get("in_reply_to_id"),
                )
                status.update(spoiler_text=spoiler, sensitive=bool(body.get("sensitive")),
                              language=body.get("language"))
                for media_id in media_ids:
                    self.media[media_id]["status_id"] = status["id"]
                status["media_attachments"] = [self.attachment(m) for m in media_ids]
                self.creations += 1
                self.texts[text] += 1
                self.made.append({"id": status["id"], "text": text, "created_at": status["created_at"],
                                  "in_reply_to_id": status["in_reply_to_id"], "spoiler_text": spoiler,
                                  "sensitive": status["sensitive"], "language": status["language"],
                                  "media": [{"id": m, "description": self.media[m]["description"],
                                             "focus": self.media[m]["focus"], "sha256": self.media[m]["sha256"]}
                                            for m in media_ids]})
                if key:
                    self.by_key[key] = status
                every = self.knobs.drop_after_write_every
                if self.drops_pending or (every and self.creations % every == 0):
                    self.drops_pending = max(self.drops_pending - 1, 0)
                    request.scope[DROP] = True
                    return status
            if fault == 502:  # a gateway that gave up while the server made the post
                return HTMLResponse(BAD_GATEWAY, status_code=502)
            await asyncio.sleep(self.knobs.latency)
            await self.answer_late()
            return status

        @app.post("/api/v2/media")
        async def upload(request: Request) -> Any:
            if (no := refused(request)) is not None:
                return no
            async with request.form() as form:
                file = form.get("file")
                if file is None or isinstance(file, str):
                    return JSONResponse({"error": "Validation failed: File can't be blank"}, status_code=422)
                data = await file.read()
                mime = file.content_type
                description = str(form.get("description") or "")
                raw = form.get("focus")
            focus = None
            if isinstance(raw, str) and raw:
                x, y = (float(v) for v in raw.split(","))
                focus = (x, y)
            self.next_id += 1
            media_id = str(self.next_id)
            polls = self.knobs.media_processing_polls
            self.media[media_id] = {"description": description, "focus": focus, "mime": mime, "bytes": len(data),
                                    "sha256": hashlib.sha256(data).hexdigest(),
                                    "polls_left": polls, "status_id": None}
            self.media_answers.append((media_id, 202 if polls else 200))
            return JSONResponse(self.attachment(media_id), status_code=202 if polls else 200)

        @app.get("/api/v1/media/{media_id}")
        async def media(request: Request, media_id: str) -> Any:
            if (no := refused(request)) is not None:
                return no
            item = self.media.get(media_id)
            if item is None:
                return not_found()
            if item["polls_left"] > 0:
                item["polls_left"] -= 1
            answer = 206 if item["polls_left"] != 0 else 200
            self.media_answers.append((media_id, answer))
            return JSONResponse(self.attachment(media_id), status_code=answer)

        @app.get("/api/v1/statuses/{status_id}")
        async def show(request: Request, status_id: str) -> Any:
            if (no := refused(request)) is not None:
                return no
            status = self.status(status_id)
            return not_found() if status is None else self.with_counts(status)

        @app.delete("/api/v1/statuses/{status_id}")
        async def delete(request: Request, status_id: str) -> Any:
            if (no := refused(request)) is not None:
                return no
            status = self.status(status_id)
            if status is None:
                return not_found()
            if status["account"]["id"] != ACCOUNT_ID:
                return JSONResponse({"error": "This action is not allowed"}, status_code=403)
            self.statuses.remove(status)
            self.by_key = {k: s for k, s in self.by_key.items() if s is not status}
            self.deletions += 1
            return {**status, "text": visible(status)}

        @app.get("/api/v1/statuses/{status_id}/context")
        async def context(request: Request, status_id: str, page: int = 0) -> Any:
            if (no := refused(request)) is not None:
                return no
            status = self.status(status_id)
            if status is None:
                return not_found()
            ancestors: list[dict[str, Any]] = []
            parent = self.status(status["in_reply_to_id"]) if status["in_reply_to_id"] else None
            while parent is not None:
                ancestors.insert(0, parent)
                parent = self.status(parent["in_reply_to_id"]) if parent["in_reply_to_id"] else None
            below, size = self._below(status_id), self.knobs.context_page_size
            if not size:
                return {"ancestors": ancestors, "descendants": below}
            headers = {}
            if (page + 1) * size < len(below):
                headers["Link"] = f'<{self.base_url}/api/v1/statuses/{status_id}/context?page={page + 1}>; rel="next"'
            body = {"ancestors": ancestors if page == 0 else [], "descendants": below[page * size:(page + 1) * size]}
            return JSONResponse(body, headers=headers)

        @app.get("/api/v1/accounts/verify_credentials")
        async def me(request: Request) -> Any:
            return refused(request) or {"id": ACCOUNT_ID, "username": ACCT, "acct": ACCT}

        @app.get("/api/v1/accounts/{account_id}/statuses")
        async def statuses(request: Request, account_id: str, limit: int = 20, max_id: str | None = None) -> Any:
            if (no := refused(request)) is not None:
                return no
            if account_id not in self.accounts.values():
                return not_found()
            listed = [
                s
                for s in reversed(self.statuses)
                if s["account"]["id"] == account_id
                and (max_id is None or int(s["id"]) < int(max_id))
                and not (self.knobs.hide_non_public and s["visibility"] in HIDDEN)
            ]
            return listed[: min(limit, 40)]

        @app.get("/api/v2/instance")
        async def instance_v2() -> Any:
            if not self.knobs.instance_v2:
                return HTMLResponse(PAGE_NOT_FOUND, status_code=404)
            statuses = {
                "max_characters": self.knobs.max_characters,
                "max_media_attachments": self.knobs.max_media_attachments,
                "characters_reserved_per_url": self.knobs.characters_reserved_per_url,
            }
            configuration: dict[str, Any] = {"statuses": statuses}
            if self.knobs.description_limit is not None:
                configuration["media_attachments"] = {"description_limit": self.knobs.description_limit}
            return {"domain": "127.0.0.1", "version": "4.3.0", "configuration": configuration}

        @app.get("/api/v1/instance")
        async def instance_v1() -> Any:
            if not (self.knobs.instance_v1 or self.knobs.instance_v2):
                return HTMLResponse(SERVER_ERROR, status_code=500)
            # A server without v2 (Pleroma, Akkoma, old Mastodon) says only how long a post may be.
            return {"uri": "127.0.0.1", "version": "2.7.2 (compatible; Pleroma 2.6.0)",
                    "max_toot_chars": self.knobs.max_characters}

        @app.get("/_fake/stats")
        async def stats() -> Any:
            return self.stats()

        @app.post("/_fake/reply")
        async def reply(request: Request) -> Any:
            """A reply written by someone on the server (tests in another process arrange threads)."""
            body = await request.json()
            return self.add_reply(str(body["parent_id"]), str(body["text"]),
                                  author=str(body.get("author", "ana@example.social")))

        @app.post("/_fake/engage")
        async def engage(request: Request) -> Any:
            """Someone favourites, boosts or quotes a status (tests in another process)."""
            body = await request.json()
            self.engage(str(body["status_id"]), str(body["kind"]), str(body.get("by", "ana@example.social")),
                        undo=bool(body.get("undo", False)))
            status = self.status(str(body["status_id"]))
            return not_found() if status is None else self.with_counts(status)

        @app.get("/_fake/replies_to/{status_id}")
        async def replies_to(status_id: str) -> Any:
            """The statuses answering ``status_id`` (every account's), oldest first."""
            return [{**s, "text": visible(s)} for s in self.statuses if s["in_reply_to_id"] == status_id]

        @app.post("/_fake/knobs")
        async def change(request: Request) -> Any:
            known = {f.name for f in fields(Knobs)}
            for name, value in (await request.json()).items():
                if name in known:
                    setattr(self.knobs, name, value)
            return asdict(self.knobs)

        return _Hostile(app, self)

    def _below(self, status_id: str) -> list[dict[str, Any]]:
        """The thread under a status, depth first, each branch oldest first (as Mastodon orders it)."""
        found = []
        for child in (s for s in self.statuses if s["in_reply_to_id"] == status_id):
            found += [child, *self._below(child["id"])]
        return found


class _Hostile:
    """The outermost ASGI layer: answers late (``latency_by_path``, ``latency`` on a post), and
    drops the connection of a request whose handler marked it (``DROP``), after its work is done."""

    def __init__(self, app: FastAPI, fake: FakeMastodon) -> None:
        self.app, self.fake = app, fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # uvicorn's send is a method of the request's cycle, which holds the connection.
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        delay = self.fake.knobs.latency_by_path.get(scope["path"], 0.0)

        async def answer(message: Message) -> None:
            starts = message["type"] == "http.response.start"
            if not scope.get(DROP):
                if starts and delay:
                    await asyncio.sleep(delay)
                await send(message)
            elif starts:
                if transport is None:
                    raise RuntimeError("this server cannot drop a connection: serve the fake with uvicorn")
                transport.abort()
                # Let the connection notice it is gone, so uvicorn does not answer 500 in our place.
                for _ in range(3):
                    await asyncio.sleep(0)

        await self.app(scope, receive, answer)


def visible(status: dict[str, Any]) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", status["content"]))


def render(text: str) -> str:
    """Mastodon's HTML for a status: paragraphs, <br />, links with hidden parts, mentions, tags."""

    def word(token: str) -> str:
        if link := re.fullmatch(r"(https?://)(\S+)", token):
            scheme, rest = link.groups()
            return (
                f'<a href="{html.escape(token)}" rel="nofollow noopener" target="_blank">'
                f'<span class="invisible">{scheme}</span><span class="ellipsis">{html.escape(rest[:12])}</span>'
                f'<span class="invisible">{html.escape(rest[12:])}</span></a>'
            )
        if mention := re.fullmatch(r"@(\w+)@([\w.-]+\w)", token):
            user, host = mention.groups()
            anchor = f'<a href="https://{host}/@{user}" class="u-url mention">@<span>{user}</span></a>'
            return f'<span class="h-card">{anchor}</span>'
        if tag := re.fullmatch(r"#(\w+)", token):
            return f'<a href="/tags/{tag[1]}" class="mention hashtag" rel="tag">#<span>{tag[1]}</span></a>'
        return html.escape(token)

    def line(text: str) -> str:
        return "".join(word(t) if t.strip() else t for t in re.split(r"(\s+)", text))

    paragraphs = re.split(r"\n{2,}", text.strip())
    return "".join("<p>" + "<br />".join(line(x) for x in p.split("\n")) + "</p>" for p in paragraphs)


PAGE_NOT_FOUND = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>The page you were looking for doesn't exist (404)</title>
<style>body { font-family: sans-serif; }</style></head>
<body><div class="dialog"><h1>The page you were looking for doesn't exist.</h1>
<p>You may have mistyped the address or the page may have moved.</p></div></body></html>
"""
SERVER_ERROR = """<!DOCTYPE html>
<html><head><title>We're sorry, but something went wrong (500)</title></head>
<body><h1>We're sorry, but something went wrong.</h1></body></html>
"""
BAD_GATEWAY = """<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx</center>
</body>
</html>
"""


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="A hostile fake Mastodon on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default=TOKEN, help="the access token it accepts")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds between making a post and answering")
    parser.add_argument("--ignore-idempotency-key", action="store_true")
    parser.add_argument("--hide-non-public", action="store_true")
    parser.add_argument("--drop-after-write-every", type=int, default=0, metavar="N")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of posts answered 429 or 502")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plain-text-errors", action="store_true")
    parser.add_argument("--max-characters", type=int, default=500)
    parser.add_argument("--media-processing-polls", type=int, default=0,
                        help="media uploads answered 202, processed (200) at the N-th look (206 before)")
    parser.add_argument("--clock-offset", type=float, default=0.0, help="seconds the server's clock is ahead")
    args = parser.parse_args(argv)
    knobs = Knobs(
        latency=args.latency,
        honour_idempotency_key=not args.ignore_idempotency_key,
        hide_non_public=args.hide_non_public,
        drop_after_write_every=args.drop_after_write_every,
        fault_rate=args.fault_rate,
        seed=args.seed,
        plain_text_errors=args.plain_text_errors,
        max_characters=args.max_characters,
        clock_offset=args.clock_offset,
        media_processing_polls=args.media_processing_polls,
    )
    fake = FakeMastodon(knobs, token=args.token)
    fake.base_url = f"http://127.0.0.1:{args.port}"
    uvicorn.run(fake.build(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
