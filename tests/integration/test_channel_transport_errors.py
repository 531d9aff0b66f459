"""What a channel error says when the connection itself fails, against real sockets on
loopback: a server that resets the connection after reading a post, one that closes it
without answering, and a port nobody listens on. The operator reads which it was."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager

import httpx
import pytest

from workers.channels import TransientChannelError
from workers.channels.http import ChannelHttp

SECRET = "s3cret-token-abcdefghijklmnop"


@contextmanager
def server_that_reads_the_request_then(ending: str) -> Iterator[str]:
    """A one-connection server: reads the whole request, then ends the connection without an
    answer, with a reset (``ending="reset"``) or an orderly close (``"close"``)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            received = b""
            while b"\r\n\r\n" not in received:
                received += conn.recv(65536)
            head, _, body = received.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(body) < length:
                body += conn.recv(65536)
            if ending == "reset":  # linger 0: close sends RST, as a crashing proxy does
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        thread.join(timeout=5)
        listener.close()


def post_to(url: str) -> TransientChannelError:
    channel = ChannelHttp(httpx.Client(timeout=5), "mastodon", (SECRET,), "access_token_env")
    with pytest.raises(TransientChannelError) as caught:
        channel.send("POST", f"{url}/api/v1/statuses", may_publish=True, json={"status": "hello"},
                     headers={"Authorization": f"Bearer {SECRET}"})
    return caught.value


def test_a_reset_after_the_post_was_read_says_so_and_leaves_the_outcome_unknown() -> None:
    with server_that_reads_the_request_then("reset") as url:
        error = post_to(url)

    assert error.reason == "connection to mastodon failed (read error: connection reset by peer)"
    assert error.outcome_unknown is True


def test_a_close_without_an_answer_is_named_without_a_socket_error() -> None:
    with server_that_reads_the_request_then("close") as url:
        error = post_to(url)

    assert error.reason == "connection to mastodon failed (remote protocol error)"
    assert error.outcome_unknown is True


def test_a_port_nobody_listens_on_is_not_reachable_and_nothing_was_sent() -> None:
    with closing(socket.create_server(("127.0.0.1", 0))) as taken:
        port = taken.getsockname()[1]
    # (closed: nothing listens there now)

    error = post_to(f"http://127.0.0.1:{port}")

    assert error.reason == "mastodon not reachable (connect error: connection refused)"
    assert error.outcome_unknown is False
    assert SECRET not in error.reason
