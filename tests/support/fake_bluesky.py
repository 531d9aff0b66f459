"""A fake Bluesky PDS served on loopback, behaving like the reference PDS where the
publisher depends on it: sessions that expire (400 ExpiredToken), a second record at the
same key refused (500, as the reference PDS does today, or 409/400 as others do),
RecordNotFound for a missing key, handles resolved to DIDs (400 for unknown ones),
deleteRecord that succeeds whether or not the record is there, and blobs uploaded."""

from __future__ import annotations

import hashlib
import re
from typing import Any
from uuid import uuid4

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.support.servers import FakeNetwork, iso, now

APP_PASSWORD = "abcd-efgh-ijkl-mnop"
HANDLE = "team.example.com"
DID = "did:plc:faketeam0000000000000000"
COLLECTION = "app.bsky.feed.post"
TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


class FakeBluesky(FakeNetwork):
    def __init__(self) -> None:
        super().__init__()
        self.reset()

    def reset(self) -> None:
        self.faults, self.requests, self.hang_next, self.echo_credentials = [], [], 0.0, False
        self.client_ports = []
        self.tokens: dict[str, bool] = {}  # access token -> expired
        self.sessions_created = 0
        self.issue_expired = False  # a server that refuses every session it hands out
        self.records: dict[str, dict[str, Any]] = {}
        self.creations = 0
        self.deletions = 0
        self.conflict = "500"  # how a second write to a key is refused
        self.handles: dict[str, str] = {HANDLE: DID}  # what resolveHandle knows
        self.others: dict[str, dict[str, Any]] = {}  # posts of other accounts, by at-uri
        self.handle_of: dict[str, str] = {DID: HANDLE}
        self.name_of: dict[str, str] = {}  # display names, by DID
        self.thread_requests = 0
        self.engaged: dict[str, dict[str, set[str]]] = {}  # by at-uri: who liked, reposted, quoted it
        self.blobs: dict[str, tuple[str, bytes]] = {}  # uploaded blobs by CID: (MIME type, bytes)

    def post_view(self, record: dict[str, Any]) -> dict[str, Any]:
        """A post as the AppView shows it (``app.bsky.feed.defs#postView``), with its counts."""
        did = record["uri"].split("/")[2]
        engaged = self.engaged.get(record["uri"], {})
        replies = sum(1 for r in self.every_post()
                      if ((r["value"].get("reply") or {}).get("parent") or {}).get("uri") == record["uri"])
        return {"uri": record["uri"], "cid": record["cid"], "record": record["value"],
                "author": {"did": did, "handle": self.handle_of.get(did, did),
                           **({"displayName": self.name_of[did]} if did in self.name_of else {})},
                "indexedAt": record["value"].get("createdAt"), "replyCount": replies,
                "repostCount": len(engaged.get("repost", ())), "likeCount": len(engaged.get("like", ())),
                "quoteCount": len(engaged.get("quote", ()))}

    def engage(self, uri: str, kind: str, by: str = "ana.example.com") -> None:
        """Someone likes (``like``), reposts (``repost``) or quotes (``quote``) a post."""
        if kind not in ("like", "repost", "quote"):
            raise ValueError(f"unknown engagement {kind!r}")
        self.engaged.setdefault(uri, {}).setdefault(kind, set()).add(by)

    def every_post(self) -> list[dict[str, Any]]:
        return [*self.records.values(), *self.others.values()]

    def add_reply(self, parent_uri: str, text: str, *, handle: str = "ana.example.com",
                  display_name: str | None = None) -> dict[str, Any]:
        """A reply by another account (or, with ``handle=HANDLE``, by the team itself) under ``parent_uri``."""
        parent = next(r for r in self.every_post() if r["uri"] == parent_uri)
        root = (parent["value"].get("reply") or {}).get("root") or {"uri": parent["uri"], "cid": parent["cid"]}
        did = DID if handle == HANDLE else f"did:plc:{hashlib.sha256(handle.encode()).hexdigest()[:24]}"
        self.handle_of[did] = handle
        if display_name is not None:
            self.name_of[did] = display_name
        value = {"$type": COLLECTION, "text": text, "createdAt": iso(now()),
                 "reply": {"root": root, "parent": {"uri": parent["uri"], "cid": parent["cid"]}}}
        rkey = uuid4().hex[:13]
        cid = "bafyrei" + hashlib.sha256(repr(value).encode()).hexdigest()[:40]
        record = {"uri": f"at://{did}/{COLLECTION}/{rkey}", "cid": cid, "value": value}
        if did == DID:
            self.records[rkey] = record
        else:
            self.others[record["uri"]] = record
        return record

    def thread(self, uri: str) -> dict[str, Any]:
        """``app.bsky.feed.defs#threadViewPost`` of ``uri``, every level of replies, oldest first."""
        posts = self.every_post()
        node = next(r for r in posts if r["uri"] == uri)
        children = sorted((r for r in posts if ((r["value"].get("reply") or {}).get("parent") or {}).get("uri") == uri),
                          key=lambda r: r["value"]["createdAt"])
        return {"$type": "app.bsky.feed.defs#threadViewPost", "post": self.post_view(node),
                "replies": [self.thread(child["uri"]) for child in children]}

    def expire_sessions(self) -> None:
        self.tokens = dict.fromkeys(self.tokens, True)

    def seed(self, rkey: str, text: str) -> dict[str, Any]:
        value = {"$type": COLLECTION, "text": text, "createdAt": iso(now())}
        cid = "bafyrei" + hashlib.sha256(repr(value).encode()).hexdigest()[:40]
        self.records[rkey] = {"uri": f"at://{DID}/{COLLECTION}/{rkey}", "cid": cid, "value": value}
        return self.records[rkey]

    def build(self) -> FastAPI:
        app = self.app()

        def xrpc_error(status: int, error: str, message: str) -> JSONResponse:
            return JSONResponse({"error": error, "message": message}, status_code=status)

        def refused(request: Request) -> JSONResponse | None:
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            if token not in self.tokens:
                return xrpc_error(401, "AuthenticationRequired", "Authentication Required")
            return xrpc_error(400, "ExpiredToken", "Token has expired") if self.tokens[token] else None

        @app.post("/xrpc/com.atproto.server.createSession")
        async def create_session(request: Request) -> Any:
            body = await request.json()
            if body.get("identifier") not in (HANDLE, DID) or body.get("password") != APP_PASSWORD:
                echo = f" ({body.get('password')})" if self.echo_credentials else ""
                return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password" + echo)
            self.sessions_created += 1
            token = f"jwt-{self.sessions_created}-{uuid4().hex}"
            self.tokens[token] = self.issue_expired
            return {"accessJwt": token, "refreshJwt": "r" + token, "handle": HANDLE, "did": DID, "active": True}

        @app.get("/xrpc/com.atproto.identity.resolveHandle")
        async def resolve_handle(handle: str) -> Any:
            did = self.handles.get(handle.lower())
            return {"did": did} if did else xrpc_error(400, "InvalidRequest", "Unable to resolve handle")

        @app.post("/xrpc/com.atproto.repo.createRecord")
        async def create_record(request: Request) -> Any:
            if (no := refused(request)) is not None:
                return no
            body = await request.json()
            rkey, text = body.get("rkey", ""), body.get("record", {}).get("text", "")
            if body.get("repo") not in (DID, HANDLE):
                return xrpc_error(401, "AuthenticationRequired", "Authentication Required")
            if not TID.match(rkey):  # strict PDSes hold post keys to the lexicon's key type
                return xrpc_error(400, "InvalidRequest", f"Invalid record key: {rkey}")
            if len(text) > 300:
                return xrpc_error(
                    400,
                    "InvalidRequest",
                    "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes",
                )
            if rkey in self.records:
                return {
                    "500": xrpc_error(500, "InternalServerError", "Internal Server Error"),
                    "409": xrpc_error(409, "RecordAlreadyExists", "Record already exists"),
                    "400": xrpc_error(400, "InvalidRequest", "Record already exists"),
                }[self.conflict]
            record = self.seed(rkey, text)
            record["value"] = body["record"]
            self.creations += 1
            await self.answer_late()
            return {"uri": record["uri"], "cid": record["cid"], "validationStatus": "valid"}

        @app.get("/xrpc/com.atproto.repo.getRecord")
        async def get_record(request: Request, repo: str, collection: str, rkey: str) -> Any:
            if (no := refused(request)) is not None:
                return no
            if repo in (DID, HANDLE) and collection == COLLECTION and rkey in self.records:
                return self.records[rkey]
            return xrpc_error(400, "RecordNotFound", f"Could not locate record: at://{repo}/{collection}/{rkey}")

        @app.get("/xrpc/app.bsky.feed.getPostThread")
        async def get_post_thread(request: Request, uri: str) -> Any:
            if (no := refused(request)) is not None:
                return no
            self.thread_requests += 1
            if not any(r["uri"] == uri for r in self.every_post()):
                return xrpc_error(400, "NotFound", f"Post not found: {uri}")
            return {"thread": self.thread(uri)}

        @app.get("/xrpc/app.bsky.feed.getPosts")
        async def get_posts(request: Request) -> Any:
            if (no := refused(request)) is not None:
                return no
            wanted = request.query_params.getlist("uris")
            return {"posts": [self.post_view(r) for r in self.every_post() if r["uri"] in wanted]}

        @app.post("/xrpc/com.atproto.repo.deleteRecord")
        async def delete_record(request: Request) -> Any:
            if (no := refused(request)) is not None:
                return no
            body = await request.json()
            if body.get("repo") not in (DID, HANDLE):
                return xrpc_error(401, "AuthenticationRequired", "Authentication Required")
            if body.get("collection") == COLLECTION and self.records.pop(str(body.get("rkey")), None) is not None:
                self.deletions += 1
            return {}

        @app.post("/xrpc/com.atproto.repo.uploadBlob")
        async def upload_blob(request: Request) -> Any:
            if (no := refused(request)) is not None:
                return no
            data = await request.body()
            mime = request.headers.get("content-type", "application/octet-stream")
            cid = "bafkrei" + hashlib.sha256(data).hexdigest()[:40]
            self.blobs[cid] = (mime, data)
            return {"blob": {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(data)}}

        return app
