"""Serving ASGI apps on a loopback port for tests that speak real HTTP, and what every
fake network served that way shares: injected failures, late answers, a request log."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports: every socket stays bound until all are chosen
    (two ports taken one after the other can be the same one)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


@contextmanager
def serve(app: Any, **options: Any) -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 in a thread of this process; yields its base URL.
    ``options`` go to uvicorn (e.g. the API's production ones)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on",
                                           **{"log_config": None, **options}))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """A time as the networks write it: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- what every fake network shares ----------------------------------------------------


@dataclass
class Fault:
    status: int
    body: dict[str, Any] | str  # JSON, or text: an HTML page when it starts with "<", else plain text
    headers: dict[str, str]
    path: str | None


class Injected(Exception):
    def __init__(self, fault: Fault) -> None:
        self.fault = fault


@dataclass
class FakeNetwork:
    """Injected failures (answered before any work), one late answer, and a log of requests."""

    base_url: str = ""
    faults: list[Fault] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    client_ports: list[int] = field(default_factory=list)  # each request's: a new port is a new connection
    hang_next: float = 0.0
    echo_credentials: bool = False  # a misbehaving server that repeats what it was sent

    def fail_next(
        self,
        times: int,
        status: int,
        *,
        body: dict[str, Any] | str | None = None,
        headers: dict[str, str] | None = None,
        path: str | None = None,
    ) -> None:
        """The next ``times`` requests (to a path ending in ``path``, if given) answer ``status``."""
        self.faults += [Fault(status, body or {"error": f"injected {status}"}, headers or {}, path)] * times

    def app(self) -> FastAPI:
        async def intercept(request: Request) -> None:
            if request.url.path.startswith("/_fake/"):
                return  # the fake's own controls: neither logged nor failed
            self.requests.append(f"{request.method} {request.url.path}")
            self.client_ports.append(request.client.port if request.client else 0)
            for fault in self.faults:
                if fault.path is None or request.url.path.endswith(fault.path):
                    self.faults.remove(fault)
                    raise Injected(fault)

        async def injected(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, Injected)
            fault = exc.fault
            if isinstance(fault.body, str):
                kind = "text/html" if fault.body.lstrip().startswith("<") else "text/plain"
                return Response(fault.body, status_code=fault.status, headers=fault.headers, media_type=kind)
            return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)

        app = FastAPI(dependencies=[Depends(intercept)])
        app.add_exception_handler(Injected, injected)
        return app

    async def answer_late(self) -> None:
        """Wait out ``hang_next`` once (the work is done, the answer comes too late)."""
        delay, self.hang_next = self.hang_next, 0.0
        await asyncio.sleep(delay)
