"""A link's preview for a card: the page's Open Graph title, description and image, fetched
with server-side request forgery protection (the link is whatever a share's author wrote).

What is refused, before any byte is sent:

- a scheme other than http or https, a URL with user info, a port the policy does not admit
  (by default only 80 and 443);
- a host any of whose addresses the policy does not admit. By default only public addresses
  pass: no loopback, private (RFC 1918, fc00::/7), shared (100.64/10), link-local (169.254/16
  with cloud metadata at 169.254.169.254, fe80::/10), multicast, reserved, unspecified or
  documentation ranges, and IPv6 addresses carrying an IPv4 one (mapped ``::ffff:a.b.c.d``,
  NAT64 ``64:ff9b::/96``, 6to4, Teredo) are judged by that IPv4 address.

The name is resolved once, and the connection made to the very address that was checked
(the request goes to the IP, with the name in ``Host`` and in TLS SNI, and the certificate
checked against the name): a DNS answer that changes between the check and the connection
(rebinding) cannot move the request. Proxies from the environment are ignored (a proxy
would resolve the name again). Redirects are followed here, at most ``Limits.redirects``,
each new location checked the same way. Each fetch (a page with its redirects, or an image
with its) has a time budget (5 s, plus at most one read's wait of 2 s under way at its end);
a body is streamed and cut at its size limit, counted after decompression (the page's head
must end within 1 MiB: reading stops there; an image at most 5 MB); content types are
checked (HTML for a page, JPEG/PNG/WebP/GIF for an image, whose bytes are then decoded by
Pillow: the type comes from the content, and more than 50 million pixels is refused).

Every refusal or failure is a ``CardRefused`` with a short ``reason``: the caller makes
no card, and the share is published without one.
"""

from __future__ import annotations

import codecs
import functools
import ipaddress
import re
import socket
import ssl
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from io import BytesIO
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import httpx
from PIL import Image, UnidentifiedImageError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

PAGE_TYPES = frozenset({"text/html", "application/xhtml+xml"})
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
THUMB_BYTES = 1_000_000  # Bluesky's limit for an external embed's thumb blob
_THUMB_SIDE = 2000  # a re-encoded thumb's longest side at most (a card shows it small)
_MAX_PIXELS = 50_000_000  # larger images are refused before decoding (decompression bombs)
_INFLATE_STEP = 1 << 16  # bytes a compressed body expands to per step
_READ_WAIT = 2.0  # seconds one read of an answer may wait (the first byte, or the next chunk)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TITLE_CHARS = 300
_DESCRIPTION_CHARS = 1000
_USER_AGENT = "followthrough-link-card/1 (+https://github.com/followthrough)"
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.IGNORECASE)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class CardRefused(Exception):
    """No card for this link; ``reason`` says why in a word or two (logged)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True, slots=True)
class Limits:
    page_bytes: int = 1 << 20  # HTML read at most (decompressed); a head not closed by then: no card
    image_bytes: int = 5_000_000
    seconds: float = 5.0  # one fetch with its redirects (the page; then the image)
    redirects: int = 5


class AddressPolicy(Protocol):
    """Which destinations a card's fetch may connect to (tests admit their own loopback server)."""

    def admits_port(self, scheme: str, port: int) -> bool: ...

    def admits(self, address: IPAddress, port: int) -> bool: ...


class PublicAddresses:
    """Public addresses on the scheme's default port only."""

    def admits_port(self, scheme: str, port: int) -> bool:
        return port == {"http": 80, "https": 443}.get(scheme)

    def admits(self, address: IPAddress, port: int) -> bool:
        return is_public(address)


# IANA's special-purpose ranges, named here as well as by ``ipaddress``'s flags: what those
# flags cover has changed between Python releases (192.0.0.0/24 among others).
_NOT_PUBLIC = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7", "fe80::/10", "fec0::/10",
    "ff00::/8",
))


def is_public(address: IPAddress) -> bool:
    """A globally routable unicast address (an IPv6 one carrying IPv4 judged by its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
    if any(address in network for network in _NOT_PUBLIC):
        return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address
    return None


@dataclass(frozen=True, slots=True)
class Preview:
    """What a page says about itself; ``image`` an absolute http(s) URL or None."""

    url: str
    title: str
    description: str
    image: str | None


@dataclass(frozen=True, slots=True)
class Thumb:
    data: bytes
    mime: str
    width: int
    height: int


Resolver = Callable[[str, int], Sequence[IPAddress]]


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of ``host`` (a literal address is its own), in the system's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])  # no zone id
        if address not in found:
            found.append(address)
    return found


class LinkPreviews:
    """Previews and thumbs of links, fetched under ``policy`` within ``limits``."""

    def __init__(self, policy: AddressPolicy | None = None, limits: Limits | None = None,
                 resolver: Resolver = resolve, tls: ssl.SSLContext | None = None) -> None:
        self.policy = policy or PublicAddresses()
        self.limits = limits or Limits()
        self.resolver = resolver
        self.tls = tls  # None: the system's CAs (a test trusts its own)
        # getaddrinfo cannot be interrupted: it runs here, so that the caller can stop waiting.
        self._dns = ThreadPoolExecutor(max_workers=4, thread_name_prefix="link-card-dns")

    def preview(self, url: str) -> Preview:
        deadline = time.monotonic() + self.limits.seconds
        with self._fetch(url, deadline, accept="text/html,application/xhtml+xml") as (final_url, response):
            _check_type(response, PAGE_TYPES, "not_html")
            parser = PreviewParser()
            decoder: codecs.IncrementalDecoder | None = None
            read = 0
            pending = b""
            for chunk in _chunks(response, deadline):
                read += len(chunk)
                if read > self.limits.page_bytes:
                    raise CardRefused("too_large", f"page over {self.limits.page_bytes} bytes before its head ended")
                pending += chunk
                if decoder is None:
                    if read < 1024:
                        continue  # a <meta> charset is declared within the first 1024 bytes
                    decoder = _decoder(response, pending)
                parser.feed(decoder.decode(pending))
                pending = b""
                if parser.head_done:
                    break
            else:
                parser.feed((decoder or _decoder(response, pending)).decode(pending, final=True))
        return parser.preview(final_url)

    def thumb(self, url: str) -> Thumb:
        deadline = time.monotonic() + self.limits.seconds
        with self._fetch(url, deadline, accept="image/jpeg,image/png,image/webp,image/gif") as (_, response):
            _check_type(response, frozenset(IMAGE_TYPES.values()), "not_an_image")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.limits.image_bytes:
                raise CardRefused("too_large", f"image of {declared} bytes")
            data = bytearray()
            for chunk in _chunks(response, deadline):
                data += chunk
                if len(data) > self.limits.image_bytes:
                    raise CardRefused("too_large", f"image over {self.limits.image_bytes} bytes")
        return thumb_of(bytes(data))

    @contextmanager
    def _fetch(self, url: str, deadline: float, *, accept: str) -> Iterator[tuple[str, httpx.Response]]:
        """The answer to GET ``url`` after redirects (streamed, still open), and its final URL."""
        for _ in range(self.limits.redirects + 1):
            if _left(deadline) <= 0:
                raise CardRefused("timeout", "following redirects")
            parts = self._checked_url(url)
            host, port = parts.raw_host.decode("ascii"), _port(parts)
            addresses = self._addresses(host, port, deadline)
            with self._connected(url, parts, addresses, deadline, accept) as response:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    url = urljoin(url, response.headers["location"].strip())
                    continue
                if response.status_code != 200:
                    raise CardRefused("http_status", str(response.status_code))
                yield url, response
                return
        raise CardRefused("too_many_redirects", f"more than {self.limits.redirects}")

    def _checked_url(self, url: str) -> httpx.URL:
        try:
            parts = httpx.URL(url)
        except (httpx.InvalidURL, ValueError) as exc:
            raise CardRefused("url_refused", "not a URL") from exc
        if parts.scheme not in ("http", "https"):
            raise CardRefused("url_refused", f"scheme {parts.scheme!r}")
        if parts.userinfo:
            raise CardRefused("url_refused", "user info in the URL")
        if not parts.host:
            raise CardRefused("url_refused", "no host")
        if not self.policy.admits_port(parts.scheme, _port(parts)):
            raise CardRefused("port_refused", str(_port(parts)))
        return parts

    def _addresses(self, host: str, port: int, deadline: float) -> list[IPAddress]:
        try:
            addresses = list(self._dns.submit(self.resolver, host, port).result(timeout=_left(deadline)))
        except FutureTimeout:
            raise CardRefused("timeout", "resolving the host") from None
        except (OSError, UnicodeError, ValueError) as exc:
            raise CardRefused("unresolvable", host) from exc
        if not addresses:
            raise CardRefused("unresolvable", host)
        # One address refused refuses the host: a name that also points inward is not followed.
        refused = [str(a) for a in addresses if not self.policy.admits(a, port)]
        if refused:
            raise CardRefused("address_refused", f"{host} is {', '.join(refused)}")
        return addresses

    @contextmanager
    def _connected(self, url: str, parts: httpx.URL, addresses: list[IPAddress], deadline: float,
                   accept: str) -> Iterator[httpx.Response]:
        """The streamed answer from the first of ``addresses`` that accepts a connection."""
        name = parts.raw_host.decode("ascii")  # IDNA-encoded, as Host and SNI want it
        host_header = _bracketed(name) if parts.port is None else f"{_bracketed(name)}:{parts.port}"
        for index, address in enumerate(addresses):
            # A read under way cannot be cut at the deadline: each waits at most _READ_WAIT, so a
            # fetch ends by its budget plus one such wait, however slowly a server trickles.
            timeout = httpx.Timeout(_left(deadline), read=min(_left(deadline), _READ_WAIT))
            # A client per connection: a pooled connection must never carry another name's request.
            with httpx.Client(trust_env=False, timeout=timeout, follow_redirects=False, verify=self.tls or _tls(),
                              headers={"User-Agent": _USER_AGENT}) as client:
                request = client.build_request(
                    "GET", parts.copy_with(host=str(address)),
                    headers={"Host": host_header, "Accept": accept, "Accept-Encoding": "gzip, deflate"},
                    extensions={"sni_hostname": name} if parts.scheme == "https" else {},
                )
                try:
                    response = client.send(request, stream=True)
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    if index + 1 < len(addresses) and _left(deadline) > 0:
                        continue
                    raise CardRefused("connect_failed", type(exc).__name__) from exc
                except httpx.TimeoutException as exc:
                    raise CardRefused("timeout", type(exc).__name__) from exc
                except httpx.HTTPError as exc:
                    raise CardRefused("fetch_failed", type(exc).__name__) from exc
                try:
                    yield response
                finally:
                    response.close()
                return
        raise CardRefused("connect_failed", url)


@functools.cache
def _tls() -> ssl.SSLContext:
    """The verifying TLS context, built once (loading the CA bundle is slow): shared by the
    per-connection clients; the certificate is checked against the SNI name, not the IP."""
    return httpx.create_ssl_context(trust_env=False)


def _chunks(response: httpx.Response, deadline: float) -> Iterator[bytes]:
    """The decoded body, chunk by chunk, until the deadline (a trickling server is cut at the
    first chunk past it). A compressed body is inflated a bounded step at a time, so the size
    limits count what it expands to without ever holding more (a gzip bomb is cut early)."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        raise CardRefused("encoding_refused", encoding)
    inflate = None if encoding in ("", "identity") else zlib.decompressobj(wbits=47)  # gzip or zlib header
    try:
        for raw in response.iter_raw():
            if _left(deadline) <= 0:
                raise CardRefused("timeout", "reading the body")
            if inflate is None:
                yield raw
                continue
            pending = raw
            while pending:
                yield inflate.decompress(pending, _INFLATE_STEP)
                pending = inflate.unconsumed_tail
    except zlib.error as exc:
        raise CardRefused("fetch_failed", "a broken compressed body") from exc
    except httpx.TimeoutException as exc:
        raise CardRefused("timeout", type(exc).__name__) from exc
    except httpx.HTTPError as exc:
        raise CardRefused("fetch_failed", type(exc).__name__) from exc


def _check_type(response: httpx.Response, allowed: frozenset[str], reason: str) -> None:
    mime = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if mime not in allowed:
        raise CardRefused(reason, mime or "no content type")


def _decoder(response: httpx.Response, head: bytes) -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder(_charset(response, head))(errors="replace")


def _charset(response: httpx.Response, head: bytes) -> str:
    """The body's charset: the Content-Type's, else a ``<meta>`` one, else UTF-8."""
    for candidate in (response.charset_encoding, _meta_charset(head)):
        if candidate:
            try:
                return codecs.lookup(candidate).name
            except LookupError:
                continue
    return "utf-8"


def _meta_charset(head: bytes) -> str | None:
    found = _META_CHARSET.search(head[:1024])
    return found.group(1).decode("ascii", "replace") if found else None


def _port(parts: httpx.URL) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


class PreviewParser(HTMLParser):
    """The head's ``<meta>`` properties and ``<title>``; ``head_done`` once the head is over.

    Attribute values come unescaped (``convert_charrefs``); text is unescaped as fed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title = ""
        self.base: str | None = None
        self.head_done = False
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "") for name, value in attrs}
        if tag == "meta":
            # OG says ``property``; many pages write ``name`` (and Twitter cards use ``name``).
            key = (values.get("property") or values.get("name") or "").strip().lower()
            if key and "content" in values:
                self.meta.setdefault(key, values["content"])
        elif tag == "title":
            self._in_title = not self.title
        elif tag == "base" and self.base is None and values.get("href"):
            self.base = values["href"]
        elif tag == "body":
            self.head_done = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "head":
            self.head_done = True

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def preview(self, page_url: str) -> Preview:
        """The preview for the page at ``page_url`` (the address it was read from, after redirects)."""
        meta = self.meta
        title = _first(meta.get("og:title"), meta.get("twitter:title"), self.title)
        description = _first(meta.get("og:description"), meta.get("twitter:description"), meta.get("description"))
        image_ref = _first(meta.get("og:image:secure_url"), meta.get("og:image"), meta.get("og:image:url"),
                           meta.get("twitter:image"), meta.get("twitter:image:src"))
        image = None
        if image_ref:
            base = urljoin(page_url, self.base) if self.base else page_url
            absolute = urljoin(base, image_ref)
            image = absolute if urlsplit(absolute).scheme in ("http", "https") else None
        if not title and not description and not image:
            raise CardRefused("no_metadata", "no title, description or image")
        return Preview(url=page_url, title=_clip(title, _TITLE_CHARS),
                       description=_clip(description, _DESCRIPTION_CHARS), image=image)


def _first(*values: str | None) -> str:
    for value in values:
        cleaned = " ".join((value or "").split())
        if cleaned:
            return cleaned
    return ""


def _clip(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


def thumb_of(data: bytes) -> Thumb:
    """``data`` as a thumb: checked by decoding it, kept as it is when within ``THUMB_BYTES``,
    else scaled down (never up) and re-encoded as JPEG until it fits."""
    try:
        with Image.open(BytesIO(data)) as probe:
            kind = probe.format or ""
            width, height = probe.size
            if kind not in IMAGE_TYPES:
                raise CardRefused("bad_image", f"type {kind or 'unknown'}")
            if width * height > _MAX_PIXELS:
                raise CardRefused("bad_image", f"{width}x{height} pixels")
            probe.load()  # a truncated or corrupt image fails here
            if len(data) <= THUMB_BYTES:
                return Thumb(data, IMAGE_TYPES[kind], width, height)
            image = probe.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise CardRefused("bad_image", type(exc).__name__) from exc
    image.thumbnail((_THUMB_SIDE, _THUMB_SIDE))
    while True:
        out = BytesIO()
        image.save(out, "JPEG", quality=80, optimize=True)
        if out.tell() <= THUMB_BYTES:
            return Thumb(out.getvalue(), "image/jpeg", image.width, image.height)
        image = image.resize((max(1, image.width * 3 // 4), max(1, image.height * 3 // 4)))
