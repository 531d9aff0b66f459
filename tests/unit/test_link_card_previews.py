"""What a page's head says for its card (Open Graph, then Twitter, then ``<title>`` and the
meta description), and a card's image as Bluesky takes it (decoded, within 1,000,000 bytes)."""

from __future__ import annotations

from io import BytesIO

import pytest
from PIL import Image

from tests.support.link_pages import noise_png, og_page, png
from workers.channels.link_cards import THUMB_BYTES, CardRefused, Preview, PreviewParser, thumb_of

PAGE = "https://news.example/2026/launch/index.html"


def preview_of(html: str, url: str = PAGE, *, chunk: int = 0) -> Preview:
    parser = PreviewParser()
    for start in range(0, len(html), chunk or len(html) or 1):
        parser.feed(html[start:start + (chunk or len(html))])
    parser.close()
    return parser.preview(url)


def test_open_graph_title_description_and_image_make_the_preview() -> None:
    preview = preview_of(og_page("Launch notes", "What we shipped", "https://images.example/og.png"))
    assert preview == Preview(url=PAGE, title="Launch notes", description="What we shipped",
                              image="https://images.example/og.png")


def test_without_open_graph_the_title_and_meta_description_are_used() -> None:
    html = ('<html><head><title>  Plain\n page  </title><meta name="description" content="A page without OG">'
            "</head><body></body></html>")
    preview = preview_of(html)
    assert (preview.title, preview.description, preview.image) == ("Plain page", "A page without OG", None)


def test_twitter_card_tags_come_before_the_title_when_there_is_no_open_graph() -> None:
    html = ('<head><title>Site</title><meta name="twitter:title" content="Tweet title">'
            '<meta name="twitter:image" content="/t.jpg"></head>')
    preview = preview_of(html)
    assert preview.title == "Tweet title"
    assert preview.image == "https://news.example/t.jpg"


def test_og_tags_written_with_name_instead_of_property_count_too() -> None:
    preview = preview_of('<head><meta name="og:title" content="By name"></head>')
    assert preview.title == "By name"


def test_entities_in_attributes_and_title_are_decoded() -> None:
    html = ('<head><title>Tom &amp; Jerry &#8211; &eacute;t&eacute;</title>'
            '<meta property="og:description" content="&lt;b&gt;bold&lt;/b&gt; &quot;quoted&quot; &#x1F680;">'
            '<meta property="og:image" content="/img?a=1&amp;b=2"></head>')
    preview = preview_of(html)
    assert preview.title == "Tom & Jerry \u2013 été"
    assert preview.description == '<b>bold</b> "quoted" 🚀'
    assert preview.image == "https://news.example/img?a=1&b=2"


@pytest.mark.parametrize(
    ("reference", "absolute"),
    [
        ("og.png", "https://news.example/2026/launch/og.png"),
        ("../img/og.png", "https://news.example/2026/img/og.png"),
        ("/static/og.png", "https://news.example/static/og.png"),
        ("//images.example/og.png", "https://images.example/og.png"),
        ("http://images.example/og.png", "http://images.example/og.png"),
    ],
)
def test_a_relative_og_image_is_resolved_against_the_page(reference: str, absolute: str) -> None:
    assert preview_of(og_page(image=reference)).image == absolute


def test_a_relative_og_image_follows_the_pages_base_element() -> None:
    html = '<head><base href="https://static.example/assets/"><meta property="og:image" content="og.png"></head>'
    assert preview_of(html).image == "https://static.example/assets/og.png"


@pytest.mark.parametrize("reference", ["data:image/png;base64,AAAA", "javascript:alert(1)", "file:///etc/passwd"])
def test_an_og_image_that_is_not_http_is_dropped(reference: str) -> None:
    preview = preview_of(og_page(image=reference))
    assert preview.title == "Launch notes"
    assert preview.image is None


def test_the_first_of_repeated_tags_wins() -> None:
    html = ('<head><meta property="og:title" content="First"><meta property="og:title" content="Second">'
            "<title>One</title><title>Two</title></head>")
    assert preview_of(html).title == "First"


def test_a_page_with_no_title_description_or_image_gives_no_card() -> None:
    with pytest.raises(CardRefused) as refused:
        preview_of("<html><head><meta charset='utf-8'><meta property='og:title' content='   '></head></html>")
    assert refused.value.reason == "no_metadata"


def test_tags_after_the_head_are_not_read() -> None:
    parser = PreviewParser()
    parser.feed('<head><meta property="og:title" content="In head"></head><body>')
    assert parser.head_done
    parser.feed('<meta property="og:description" content="In body">')
    # The fetch stops feeding at head_done; what a page puts later is not its card.
    assert parser.preview(PAGE).title == "In head"


def test_a_tag_split_across_chunks_is_parsed() -> None:
    html = og_page("Split & joined", "Across chunks")
    assert preview_of(html, chunk=7).title == "Split & joined"


def test_long_titles_and_descriptions_are_clipped() -> None:
    preview = preview_of(og_page("T" * 1000, "D" * 5000))
    assert len(preview.title) == 300
    assert preview.title.endswith("…")
    assert len(preview.description) == 1000


# --- the thumb --------------------------------------------------------------------------


def test_a_small_image_is_kept_as_it_is_and_never_scaled_up() -> None:
    data = png(40, 20)
    thumb = thumb_of(data)
    assert (thumb.data, thumb.mime, thumb.width, thumb.height) == (data, "image/png", 40, 20)


def test_an_image_over_the_thumb_limit_is_scaled_down_and_re_encoded_within_it() -> None:
    data = noise_png(1400, 1000)  # about 4.2 MB, and noise: JPEG cannot squeeze it much
    assert len(data) > 4_000_000
    thumb = thumb_of(data)
    assert len(thumb.data) <= THUMB_BYTES
    assert thumb.mime == "image/jpeg"
    with Image.open(BytesIO(thumb.data)) as decoded:
        assert decoded.format == "JPEG"
        assert decoded.size == (thumb.width, thumb.height)
    assert thumb.width <= 1400
    assert thumb.height <= 1000
    assert abs(thumb.width / thumb.height - 1.4) < 0.02  # the shape kept


def test_the_type_comes_from_the_bytes_not_the_server() -> None:
    out = BytesIO()
    Image.new("RGB", (8, 8)).save(out, "WEBP")
    assert thumb_of(out.getvalue()).mime == "image/webp"


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image", png()[:60], b'<svg xmlns="http://www.w3.org/2000/svg"/>', b"GIF89a" + b"\0" * 20],
    ids=["empty", "text", "truncated PNG", "SVG", "broken GIF"],
)
def test_a_broken_image_is_refused(data: bytes) -> None:
    with pytest.raises(CardRefused) as refused:
        thumb_of(data)
    assert refused.value.reason == "bad_image"


def test_an_image_of_another_type_is_refused() -> None:
    out = BytesIO()
    Image.new("RGB", (8, 8)).save(out, "BMP")
    with pytest.raises(CardRefused) as refused:
        thumb_of(out.getvalue())
    assert refused.value.reason == "bad_image"


def test_an_image_claiming_too_many_pixels_is_refused_before_it_is_decoded() -> None:
    # A small PNG whose header says 8,000 by 8,000 (64 million pixels): a decompression bomb's shape.
    out = BytesIO()
    Image.new("1", (8000, 8000)).save(out, "PNG")
    with pytest.raises(CardRefused) as refused:
        thumb_of(out.getvalue())
    assert refused.value.reason == "bad_image"
    assert "8000x8000" in refused.value.detail
