"""Web pages for link cards, served on loopback by the test (a plain threaded HTTP server:
a test controls every byte and its timing: trickled bodies, late answers, any redirect),
and the address policy that admits this server alone besides what production admits."""

from __future__ import annotations

import ipaddress
import random
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from PIL import Image

from workers.channels.link_cards import IPAddress, Limits, LinkPreviews, PublicAddresses

LOOPBACK = ipaddress.ip_address("127.0.0.1")


@dataclass
class Route:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0  # before the status line
    trickle: float | None = None  # seconds between single bytes of an endless body


@dataclass
class LinkPages:
    port: int
    scheme: str = "http"
    routes: dict[str, Route] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)  # the Host header of each request, in order
    paths: list[str] = field(default_factory=list)
    sni: list[str] = field(default_factory=list)  # over TLS: the name each connection asked for
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def page(self, path: str, html: str | bytes, content_type: str = "text/html; charset=utf-8") -> str:
        body = html.encode() if isinstance(html, str) else html
        self.routes[path] = Route(headers={"Content-Type": content_type}, body=body)
        return self.url(path)

    def image(self, path: str, data: bytes, content_type: str = "image/png") -> str:
        self.routes[path] = Route(headers={"Content-Type": content_type}, body=data)
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        self.routes[path] = Route(status=status, headers={"Location": location})
        return self.url(path)

    def policy(self) -> OnlyThisServer:
        return OnlyThisServer(self.port)

    def previews(self, limits: Limits | None = None) -> LinkPreviews:
        """Previews admitting this server (and public addresses), within ``limits``."""
        return LinkPreviews(self.policy(), limits)


class OnlyThisServer:
    """The production policy, and the test's own loopback server (its address and port) besides."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.public = PublicAddresses()

    def admits_port(self, scheme: str, port: int) -> bool:
        return port == self.port or self.public.admits_port(scheme, port)

    def admits(self, address: IPAddress, port: int) -> bool:
        return (address == LOOPBACK and port == self.port) or self.public.admits(address, port)


def og_page(title: str = "Launch notes", description: str = "What we shipped", image: str | None = "/og.png",
            *, extra: str = "") -> str:
    image_tag = f'<meta property="og:image" content="{image}">' if image else ""
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>Page title</title>'
            f'<meta property="og:title" content="{title}"><meta property="og:description" content="{description}">'
            f"{image_tag}{extra}</head><body><p>Hello</p></body></html>")


def png(width: int = 120, height: int = 63, color: tuple[int, int, int] = (200, 60, 20)) -> bytes:
    out = BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def noise_png(width: int, height: int) -> bytes:
    """A PNG that does not compress: its bytes are about 3 * width * height."""
    out = BytesIO()
    noise = random.Random(22).randbytes(width * height * 3)
    Image.frombytes("RGB", (width, height), noise).save(out, "PNG", compress_level=1)
    return out.getvalue()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return  # a client hanging up mid-body is what the size and time limits do


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for ``name``: the server's TLS context, and a client's that trusts it alone."""

    name: str
    server: ssl.SSLContext
    client: ssl.SSLContext


def certificate(name: str, folder: Path) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.now(UTC) - timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / f"{name}.crt", folder / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return Certificate(name, server, ssl.create_default_context(cafile=str(cert_file)))


@contextmanager
def link_pages(tls: Certificate | None = None) -> Iterator[LinkPages]:
    """Pages on a loopback port; over TLS with ``tls`` (SNI names each connection asked for in ``sni``)."""
    pages = LinkPages(port=0, scheme="http" if tls is None else "https")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            pages.hosts.append(self.headers.get("Host", ""))
            pages.paths.append(self.path)
            route = pages.routes.get(self.path.split("?", 1)[0])
            if route is None:
                route = Route(status=404, headers={"Content-Type": "text/plain"}, body=b"not found")
            if route.delay and pages.stop.wait(route.delay):
                return
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            if route.trickle is not None:
                self.send_header("Connection", "close")
                self.end_headers()
                self._trickle(route.trickle)
                return
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def _trickle(self, every: float) -> None:
            try:
                self.wfile.write(b"<!doctype html><html><head>")
                while not pages.stop.wait(every):
                    self.wfile.write(b" ")
                    self.wfile.flush()
            except OSError:
                return  # the client hung up: what a time limit does

        def log_message(self, format: str, *args: object) -> None:
            return

    server = _QuietServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        tls.server.sni_callback = lambda _socket, name, _context: pages.sni.append(name or "")
        server.socket = tls.server.wrap_socket(server.socket, server_side=True)
    pages.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield pages
    finally:
        pages.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
