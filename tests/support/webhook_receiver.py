"""A webhook receiver on loopback: verifies every request with the Standard Webhooks
library (as a receiver in production would), can fail on purpose, and keeps what it got."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.servers import serve


@dataclass
class Received:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    payload: dict[str, Any] | None  # None: the signature did not verify
    answered: int
    client_port: int | None = None  # the sender's port: which connection the request came on


@dataclass
class Receiver:
    """Set ``secret`` after registering (the API shows it once); until then nothing verifies."""

    secret: str | None = None
    fail_next: int = 0  # answer 500 to this many requests before answering 204
    fail_always: bool = False
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""

    @property
    def url(self) -> str:
        return f"{self.base_url}/hooks"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks")
        async def hook(request: Request) -> Response:
            body = await request.body()
            headers = dict(request.headers)
            payload = self._verify(body, headers)
            with self.lock:
                failing = self.fail_always or self.fail_next > 0
                if self.fail_next > 0:
                    self.fail_next -= 1
                status = 500 if failing or payload is None else 204
                self.requests.append(Received(headers.get("webhook-id", ""), headers, body, payload, status,
                                              request.client.port if request.client else None))
            if status == 204:
                return Response(status_code=204)
            return JSONResponse({"error": "injected failure" if payload is not None else "bad signature"},
                                status_code=status)

        return app

    def _verify(self, body: bytes, headers: dict[str, str]) -> dict[str, Any] | None:
        if self.secret is None:
            return None
        try:
            payload: dict[str, Any] = Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            return None
        return payload

    def accepted(self) -> list[Received]:
        """Requests answered 2xx, in arrival order."""
        with self.lock:
            return [r for r in self.requests if r.answered == 204]

    def types(self) -> list[str]:
        return [r.payload["type"] for r in self.accepted() if r.payload is not None]


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    with serve(receiver.app()) as base_url:
        receiver.base_url = base_url
        yield receiver
