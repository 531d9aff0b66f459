"""Link cards fetched from pages the test serves on loopback (``tests/support/link_pages.py``).

The previews admit the test's own server as a page host and otherwise only what production
admits (public addresses on ports 80 and 443), so every redirect inward is refused as it
would be in production. The Bluesky publisher writes to the fake PDS
(``tests/support/fake_bluesky.py``): whatever fails, the share is published, without a card.
"""

from __future__ import annotations

import gzip
import ipaddress
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from structlog.testing import capture_logs

from tests.support.fake_bluesky import APP_PASSWORD, HANDLE, FakeBluesky
from tests.support.link_pages import LinkPages, Route, certificate, link_pages, noise_png, og_page, png
from tests.support.servers import now
from workers.channels import Post
from workers.channels.bluesky import BlueskyPublisher
from workers.channels.link_cards import THUMB_BYTES, CardRefused, IPAddress, Limits, LinkPreviews

SHORT = Limits(seconds=1.0)  # the slow pages' budget: they would take far longer


@pytest.fixture
def pages() -> Iterator[LinkPages]:
    with link_pages() as served:
        yield served


def refusal(previews: LinkPreviews, url: str) -> CardRefused:
    with pytest.raises(CardRefused) as refused:
        previews.preview(url)
    return refused.value


# --- the page ----------------------------------------------------------------------------


def test_a_page_and_its_image_make_a_preview_and_a_thumb(pages: LinkPages) -> None:
    pages.page("/post", og_page("Launch notes", "What we shipped", "/og.png"))
    pages.image("/og.png", png(120, 63))
    previews = pages.previews()
    preview = previews.preview(pages.url("/post"))
    assert (preview.title, preview.description, preview.image) == ("Launch notes", "What we shipped",
                                                                  pages.url("/og.png"))
    thumb = previews.thumb(pages.url("/og.png"))
    assert (thumb.mime, thumb.width, thumb.height) == ("image/png", 120, 63)


def test_a_redirect_to_the_same_server_is_followed_and_relative_images_resolve_against_the_last_page(
    pages: LinkPages,
) -> None:
    pages.redirect("/short", "/articles/launch", status=301)
    pages.page("/articles/launch", og_page(image="img/og.png"))
    preview = pages.previews().preview(pages.url("/short"))
    assert preview.url == pages.url("/articles/launch")
    assert preview.image == pages.url("/articles/img/og.png")


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "address_refused"),
        ("http://10.0.0.1/admin", "address_refused"),
        ("http://[::ffff:169.254.169.254]/latest/meta-data/", "address_refused"),
        ("http://[fd00::1]/", "address_refused"),
        ("http://localhost/", "address_refused"),  # loopback, on a port the test's server is not on
        ("http://[::ffff:127.0.0.1]:{port}/post", "address_refused"),  # this server, spelled as mapped IPv6
        ("http://127.0.0.1:6379/", "port_refused"),
        ("file:///etc/passwd", "url_refused"),
        ("gopher://127.0.0.1:{port}/_GET", "url_refused"),
        ("ftp://example.com/", "url_refused"),
    ],
)
def test_a_redirect_to_a_refused_destination_gives_no_card(pages: LinkPages, location: str, reason: str) -> None:
    pages.page("/post", og_page())
    url = pages.redirect("/moved", location.format(port=pages.port))
    refused = refusal(pages.previews(), url)
    assert refused.reason == reason
    assert pages.paths == ["/moved"]  # nothing else asked of anyone


def test_a_chain_of_redirects_longer_than_the_limit_gives_no_card(pages: LinkPages) -> None:
    for hop in range(3):
        pages.redirect(f"/hop{hop}", f"/hop{hop + 1}")
    pages.page("/hop3", og_page())
    assert pages.previews(Limits(redirects=3)).preview(pages.url("/hop0")).title == "Launch notes"
    assert refusal(pages.previews(Limits(redirects=2)), pages.url("/hop0")).reason == "too_many_redirects"


def test_the_connection_goes_to_the_address_that_was_checked_with_the_name_in_host(pages: LinkPages) -> None:
    # Given a name only the fetch's own resolver knows (the system's resolver does not): were
    # the name resolved again at connect time (where DNS rebinding strikes), this would fail.
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[IPAddress]:
        calls.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    pages.page("/post", og_page())
    previews = LinkPreviews(pages.policy(), resolver=resolver)
    preview = previews.preview(f"http://cards.invalid:{pages.port}/post")
    assert preview.title == "Launch notes"
    assert calls == ["cards.invalid"]
    assert pages.hosts == [f"cards.invalid:{pages.port}"]


def only_loopback(host: str, port: int) -> list[IPAddress]:
    """A resolver that knows every name as this machine (the test's names are nobody's)."""
    return [ipaddress.ip_address("127.0.0.1")]


def test_over_https_the_checked_address_is_dialled_with_the_name_in_sni_and_its_certificate_checked(
    tmp_path: Path,
) -> None:
    # Given a TLS server whose certificate names cards.test, reached by its name
    cert = certificate("cards.test", tmp_path)
    with link_pages(cert) as pages:
        pages.page("/post", og_page())
        previews = LinkPreviews(pages.policy(), resolver=only_loopback, tls=cert.client)
        # When its page is previewed
        preview = previews.preview(f"https://cards.test:{pages.port}/post")
        # Then the connection to the checked address asked for the name, and the certificate
        # for the name was accepted
        assert preview.title == "Launch notes"
        assert pages.sni == ["cards.test"]
        assert pages.hosts == [f"cards.test:{pages.port}"]


def test_over_https_a_certificate_for_another_name_at_the_same_address_gives_no_card(tmp_path: Path) -> None:
    # Given the same server and address, reached by a name its certificate does not hold
    cert = certificate("cards.test", tmp_path)
    with link_pages(cert) as pages:
        pages.page("/post", og_page())
        previews = LinkPreviews(pages.policy(), resolver=only_loopback, tls=cert.client)
        # Then the TLS check refuses it: no request is made
        refused = refusal(previews, f"https://other.test:{pages.port}/post")
        assert refused.reason == "connect_failed"
        assert pages.paths == []


def test_a_page_too_big_before_its_head_ends_gives_no_card(pages: LinkPages) -> None:
    padding = "<!-- " + "x" * (1 << 20) + " -->"
    pages.page("/huge", f"<html><head>{padding}<title>Late</title></head></html>")
    refused = refusal(pages.previews(), pages.url("/huge"))
    assert refused.reason == "too_large"


def test_a_big_page_whose_head_ends_early_is_read_no_further(pages: LinkPages) -> None:
    pages.page("/long", og_page(extra="") + "<p>" + "body text " * 300_000 + "</p>")  # 3 MB
    assert pages.previews().preview(pages.url("/long")).title == "Launch notes"


def gzipped(path: str, pages: LinkPages, body: bytes, encoding: str = "gzip") -> str:
    pages.routes[path] = Route(headers={"Content-Type": "text/html", "Content-Encoding": encoding},
                               body=gzip.compress(body, compresslevel=9))
    return pages.url(path)


def test_a_compressed_page_is_read(pages: LinkPages) -> None:
    url = gzipped("/gz", pages, og_page("Compressed").encode())
    assert pages.previews().preview(url).title == "Compressed"


def test_a_compression_bomb_is_cut_at_the_size_limit(pages: LinkPages) -> None:
    # 20 MB of one character inside the head, about 20 kB on the wire
    url = gzipped("/bomb", pages, b"<html><head><!--" + b"a" * 20_000_000)
    refused = refusal(pages.previews(), url)
    assert refused.reason == "too_large"


def test_a_page_in_an_encoding_not_asked_for_gives_no_card(pages: LinkPages) -> None:
    url = gzipped("/br", pages, og_page().encode(), encoding="br")
    assert refusal(pages.previews(), url).reason == "encoding_refused"


def test_a_page_trickling_its_body_past_the_time_limit_gives_no_card(pages: LinkPages) -> None:
    pages.routes["/slow"] = Route(headers={"Content-Type": "text/html"}, trickle=0.05)
    assert refusal(pages.previews(SHORT), pages.url("/slow")).reason == "timeout"


def test_a_page_answering_after_the_time_limit_gives_no_card(pages: LinkPages) -> None:
    pages.routes["/late"] = Route(headers={"Content-Type": "text/html"}, body=og_page().encode(), delay=30)
    assert refusal(pages.previews(SHORT), pages.url("/late")).reason == "timeout"


@pytest.mark.parametrize("content_type", ["application/json", "image/png", "text/plain", ""])
def test_a_page_that_is_not_html_gives_no_card(pages: LinkPages, content_type: str) -> None:
    pages.page("/data", og_page(), content_type=content_type)
    refused = refusal(pages.previews(), pages.url("/data"))
    assert refused.reason == "not_html"


def test_a_page_answering_an_error_gives_no_card(pages: LinkPages) -> None:
    refused = refusal(pages.previews(), pages.url("/missing"))
    assert (refused.reason, refused.detail) == ("http_status", "404")


def test_a_page_in_another_charset_is_decoded_by_its_meta_element(pages: LinkPages) -> None:
    html = og_page("Caf\u00e9 cr\u00e8me").replace('charset="utf-8"', 'charset="iso-8859-1"')
    pages.page("/latin", html.encode("iso-8859-1"), content_type="text/html")
    assert pages.previews().preview(pages.url("/latin")).title == "Caf\u00e9 cr\u00e8me"


# --- the image ---------------------------------------------------------------------------


def test_an_image_too_big_to_fetch_gives_no_thumb(pages: LinkPages) -> None:
    url = pages.image("/big.png", noise_png(1400, 1000))  # about 4.2 MB
    with pytest.raises(CardRefused) as refused:
        pages.previews(Limits(image_bytes=1_000_000)).thumb(url)
    assert refused.value.reason == "too_large"


def test_a_broken_or_mistyped_image_gives_no_thumb(pages: LinkPages) -> None:
    previews = pages.previews()
    with pytest.raises(CardRefused) as broken:
        previews.thumb(pages.image("/broken.png", png()[:80]))
    assert broken.value.reason == "bad_image"
    with pytest.raises(CardRefused) as mistyped:
        previews.thumb(pages.image("/page.png", b"<html></html>", content_type="text/html"))
    assert mistyped.value.reason == "not_an_image"


# --- on Bluesky: the card in the record, or a post without one ---------------------------------


def bluesky_post(fake: FakeBluesky, text: str) -> Post:
    share_id = uuid4()
    return Post(share_id=share_id, workspace_id="default", account_name="team",
                account_config={"service": fake.base_url, "handle": HANDLE, "app_password_env": "PASSWORD"},
                text=text, scheduled_at=now() - timedelta(seconds=1), idempotency_key=f"followthrough-{share_id}",
                attempt=1)


def published_record(fake: FakeBluesky, previews: LinkPreviews, text: str) -> dict[str, Any]:
    with httpx.Client(timeout=5.0) as client:
        publisher = BlueskyPublisher(client, env={"PASSWORD": APP_PASSWORD}, link_previews=previews)
        published = publisher.publish(bluesky_post(fake, text))
    [record] = [r for r in fake.records.values() if r["uri"] == published.external_id]
    value: dict[str, Any] = record["value"]
    assert value["text"] == text
    return value


def test_the_first_link_becomes_a_card_with_its_image_uploaded_as_the_thumb(
    bluesky: FakeBluesky, pages: LinkPages
) -> None:
    first = pages.page("/first", og_page("First page", "Its description", "/og.png"))
    pages.image("/og.png", png(120, 63))
    second = pages.page("/second", og_page("Second page"))
    record = published_record(bluesky, pages.previews(), f"Read {first} and then {second}")
    assert record["embed"]["$type"] == "app.bsky.embed.external"
    external = record["embed"]["external"]
    assert (external["uri"], external["title"], external["description"]) == (first, "First page", "Its description")
    cid = external["thumb"]["ref"]["$link"]
    assert bluesky.blobs[cid] == ("image/png", png(120, 63))
    assert external["thumb"]["mimeType"] == "image/png"
    assert "/second" not in pages.paths  # only the first link is fetched


def test_a_big_image_is_uploaded_scaled_down_within_the_thumb_limit(bluesky: FakeBluesky, pages: LinkPages) -> None:
    url = pages.page("/post", og_page(image="/big.png"))
    pages.image("/big.png", noise_png(1400, 1000))
    record = published_record(bluesky, pages.previews(), f"See {url}")
    mime, data = bluesky.blobs[record["embed"]["external"]["thumb"]["ref"]["$link"]]
    assert mime == "image/jpeg"
    assert len(data) <= THUMB_BYTES


def test_a_page_whose_image_is_broken_still_gets_a_card_without_a_thumb(
    bluesky: FakeBluesky, pages: LinkPages
) -> None:
    url = pages.page("/post", og_page(image="/broken.png"))
    pages.image("/broken.png", png()[:80])
    with capture_logs() as logs:
        record = published_record(bluesky, pages.previews(), f"See {url}")
    assert record["embed"]["external"]["title"] == "Launch notes"
    assert "thumb" not in record["embed"]["external"]
    assert not bluesky.blobs
    assert [(e["event"], e["reason"]) for e in logs if e["event"].startswith("link_card_thumb")] == [
        ("link_card_thumb_skipped", "bad_image")]


def test_a_thumb_the_pds_refuses_leaves_the_card_without_it(bluesky: FakeBluesky, pages: LinkPages) -> None:
    url = pages.page("/post", og_page())
    pages.image("/og.png", png())
    bluesky.fail_next(1, 400, body={"error": "InvalidRequest", "message": "blob too big"}, path="uploadBlob")
    record = published_record(bluesky, pages.previews(), f"See {url}")
    assert "thumb" not in record["embed"]["external"]


FAILING = {
    "redirect to metadata": lambda p: p.redirect("/x", "http://169.254.169.254/latest/meta-data/"),
    "redirect to private": lambda p: p.redirect("/x", "http://10.0.0.1/"),
    "redirect to file": lambda p: p.redirect("/x", "file:///etc/passwd"),
    "too big": lambda p: p.page("/x", "<html><head><!--" + "x" * (1 << 20) + "-->"),
    "slow": lambda p: p.routes.__setitem__("/x", Route(headers={"Content-Type": "text/html"}, trickle=0.05)),
    "not html": lambda p: p.page("/x", og_page(), content_type="application/pdf"),
    "no metadata": lambda p: p.page("/x", "<html><head></head><body>Nothing</body></html>"),
    "error": lambda p: p.routes.__setitem__("/x", Route(status=500)),
}


@pytest.mark.parametrize("failure", list(FAILING))
def test_a_link_whose_page_fails_is_published_without_a_card(
    bluesky: FakeBluesky, pages: LinkPages, failure: str
) -> None:
    FAILING[failure](pages)
    text = f"Read {pages.url('/x')} today"
    with capture_logs() as logs:
        record = published_record(bluesky, pages.previews(SHORT), text)
    assert "embed" not in record
    assert record["facets"][0]["features"][0]["uri"] == pages.url("/x")  # still a link
    skipped = [e for e in logs if e["event"] == "link_card_skipped"]
    assert len(skipped) == 1
    assert skipped[0]["reason"]


def test_a_post_with_an_embed_of_its_own_gets_no_card(bluesky: FakeBluesky, pages: LinkPages) -> None:
    url = pages.page("/post", og_page())
    images = {"$type": "app.bsky.embed.images", "images": []}
    with httpx.Client(timeout=5.0) as client:
        publisher = BlueskyPublisher(client, env={"PASSWORD": APP_PASSWORD}, link_previews=pages.previews())
        published = publisher.create(bluesky_post(bluesky, f"See {url}"), {"embed": images})
    [record] = [r for r in bluesky.records.values() if r["uri"] == published.external_id]
    assert record["value"]["embed"] == images
    assert pages.paths == []


def test_a_publisher_without_previews_makes_no_card_and_fetches_nothing(
    bluesky: FakeBluesky, pages: LinkPages
) -> None:
    url = pages.page("/post", og_page())
    with httpx.Client(timeout=5.0) as client:
        publisher = BlueskyPublisher(client, env={"PASSWORD": APP_PASSWORD})
        published = publisher.publish(bluesky_post(bluesky, f"See {url}"))
    [record] = [r for r in bluesky.records.values() if r["uri"] == published.external_id]
    assert "embed" not in record["value"]
    assert pages.paths == []


def test_the_worker_builds_its_bluesky_publisher_with_link_cards_under_the_public_policy() -> None:
    from followthrough.bootstrap import build_publishers
    from followthrough.settings import Settings
    from workers.channels.link_cards import PublicAddresses

    publisher = build_publishers(Settings()).for_channel("bluesky")
    assert isinstance(publisher, BlueskyPublisher)
    assert publisher.cards is not None
    assert isinstance(publisher.cards.previews.policy, PublicAddresses)
