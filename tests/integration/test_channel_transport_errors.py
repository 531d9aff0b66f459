"""What a channel error says when the connection itself fails, against real sockets on
loopback: a server that resets the connection after reading a post, one that closes it
without answering, and a port nobody listens on. The operator reads which it was."""

from __future__ import annotations

import http.server
import random
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager

import httpx
import pytest

from followthrough.bootstrap import channel_client
from followthrough.settings import Settings
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


@contextmanager
def server_answering_posts_within(seconds: float) -> Iterator[str]:
    """A threaded HTTP/1.1 server that reads each post and answers it after up to ``seconds``,
    keeping its connections open: many requests at once, as a busy network takes them."""

    class Answer(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            time.sleep(random.random() * seconds)
            body = b'{"id": "1"}'
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        request_queue_size = 512

    with Server(("127.0.0.1", 0), Answer) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()


def test_the_worker_client_shared_by_every_call_thread_never_closes_a_connection_under_a_request() -> None:
    # httpcore 1.0.9 could close a connection it counted as surplus keep-alive after handing it
    # to a waiting request (encode/httpcore#1110): with the worker's former limits (20 kept
    # alive, its 58 threads) 1-6 of about 10,000 posts in 20 s failed with "read error: bad
    # file descriptor", their outcome unknown. The worker's own client, its threads at once.
    settings = Settings(worker_call_threads=50, worker_threads=8)
    errors: list[str] = []
    sent = [0]
    counting = threading.Lock()
    with server_answering_posts_within(0.05) as url, channel_client(settings) as client:
        channel = ChannelHttp(client, "mastodon", (SECRET,), "access_token_env")
        # Enough posts for the race (about 12 s on an idle machine); a busy one takes longer.
        stop = time.monotonic() + 90

        def post_until_stopped() -> None:
            while time.monotonic() < stop and sent[0] < 6000:
                try:
                    channel.send("POST", f"{url}/api/v1/statuses", may_publish=True, json={"status": "hello"})
                    with counting:
                        sent[0] += 1
                except TransientChannelError as exc:
                    errors.append(exc.reason)
                time.sleep(random.random() * 0.02)

        threads = [threading.Thread(target=post_until_stopped)
                   for _ in range(settings.worker_call_threads + settings.worker_threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sent[0] > 2000  # the load the race needs actually ran
    assert errors == []
