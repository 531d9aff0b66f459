"""A body over the limit is answered 413 even while the client is still sending it: a plain
``urllib`` client (which reads nothing until it has sent everything) gets the problem, not a
connection reset, with and without a token, with a Content-Length and chunked."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from followthrough import bootstrap
from followthrough.settings import Settings
from tests.support.api import bearer, stored
from tests.support.servers import serve

EIGHT_MB = 8 * 1024 * 1024


@pytest.fixture
def base_url(settings: Settings) -> Iterator[str]:
    with serve(bootstrap.build_api(settings), **bootstrap.API_SERVER_OPTIONS) as url:
        yield url


def send(url: str, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, orjson.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as refused:
        return refused.code, orjson.loads(refused.read()), dict(refused.headers)


def chunks(total: int) -> Iterator[bytes]:
    piece = b"x" * 65536
    for _ in range(total // len(piece)):
        yield piece


@pytest.mark.parametrize("with_token", [True, False], ids=["with a token", "without a token"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_client_still_sending_a_body_over_the_limit_reads_the_413(
    base_url: str, database_url: str, with_token: bool, framing: str
) -> None:
    # Given a client that sends 8 MB (the limit is 64 KB) and reads only once all is sent
    headers = bearer(database_url) if with_token else {}
    body: Any = b"x" * EIGHT_MB if framing == "content-length" else chunks(EIGHT_MB)
    before = stored(database_url)
    # When it posts a share
    status, problem, _ = send(f"{base_url}/v1/shares", body, headers)
    # Then it reads the 413 problem naming the body (not "connection reset"), and nothing is written
    assert status == 413
    assert problem["status"] == 413
    assert "body" in [e["field"] for e in problem.get("errors", [])] + [problem.get("field")]
    assert stored(database_url) == before


def test_the_connection_serves_the_next_request_after_a_drained_413(base_url: str) -> None:
    # Given a refused body that was read to its end
    status, _, _ = send(f"{base_url}/v1/shares", b"x" * (1024 * 1024), {})
    assert status == 413
    # When the same server is asked again
    with urllib.request.urlopen(f"{base_url}/healthz", timeout=10) as response:
        # Then it answers
        assert response.status == 200


def test_a_client_that_expects_100_continue_is_refused_before_it_sends_the_body(base_url: str) -> None:
    # Given a client announcing 8 MB and waiting for "100 Continue" before sending it
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(f"POST /v1/shares HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {EIGHT_MB}\r\nExpect: 100-continue\r\n\r\n".encode())
        # When it reads the answer (having sent no byte of the body)
        answer = raw.recv(65536).decode()
    # Then it is the 413 at once, not an invitation to send, and the connection is to be closed
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "100 Continue" not in answer
    assert "connection: close" in answer.lower()
