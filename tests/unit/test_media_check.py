"""Uploaded files checked by decoding them: the type from the bytes, a bound on pixels, whole
files only, nothing appended, no location kept. (The API's answers to these: test_media_api.)"""

from __future__ import annotations

import pytest
from PIL import ExifTags

from scheduler.errors import ContentTooLargeError, InvalidInputError, UnsupportedMediaError
from scheduler.services.media_check import CheckLimits, check_file
from scheduler.services.mp4 import check_mp4
from tests.support import media as files

LIMITS = CheckLimits(max_image_bytes=16 << 20, max_video_bytes=40 << 20, max_pixels=40_000_000)


def refused(data: bytes, limits: CheckLimits = LIMITS) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        check_file(data, limits)
    assert caught.value.field == "file"
    return caught.value


def test_the_type_comes_from_the_bytes() -> None:
    for data, mime, kind in [(files.png(), "image/png", "image"), (files.photo_with_location(), "image/jpeg", "image"),
                             (files.animated_gif(), "image/gif", "gif"), (files.mp4(640, 360), "video/mp4", "video")]:
        checked = check_file(data, LIMITS)
        assert (checked.mime, checked.kind) == (mime, kind)
    assert (check_file(files.mp4(640, 360), LIMITS).width, check_file(files.mp4(640, 360), LIMITS).height) == (640, 360)


@pytest.mark.parametrize("side", [7_000, 20_000], ids=["over our limit", "over Pillow's bomb limit"])
def test_a_decompression_bomb_is_refused_before_its_pixels_are_decoded(side: int) -> None:
    assert "pixels" in refused(files.png_bomb(side)).message


def test_a_truncated_image_and_an_empty_file_are_refused() -> None:
    whole = files.photo_with_location()
    assert "truncated" in refused(whole[: len(whole) // 2]).message
    noisy = files.noisy_png(64, 64)
    assert "truncated" in refused(noisy[:-40]).message
    assert "empty" in refused(b"").message


def test_svg_and_polyglots_are_refused_as_unsupported() -> None:
    assert isinstance(refused(files.SVG), UnsupportedMediaError)
    assert "SVG" in refused(files.SVG).message
    polyglot = refused(files.png() + files.zip_archive())
    assert isinstance(polyglot, UnsupportedMediaError)
    assert "ZIP" in polyglot.message
    assert isinstance(refused(files.photo_with_location() + b"trailing"), UnsupportedMediaError)
    assert isinstance(refused(files.png() + b"\x00" * 10), UnsupportedMediaError)


@pytest.mark.parametrize("kind", ["JPEG", "PNG", "WEBP"])
def test_gps_is_removed_and_the_orientation_kept(kind: str) -> None:
    data = files.photo_with_location(kind)
    assert files.exif_of(data).get_ifd(ExifTags.IFD.GPSInfo)
    checked = check_file(data, LIMITS)
    exif = files.exif_of(checked.data)
    assert checked.gps_removed
    assert ExifTags.IFD.GPSInfo not in exif
    assert exif.get(files.ORIENTATION) == 6
    assert (checked.width, checked.height) == (64, 48)


def test_a_file_without_location_is_stored_as_it_came() -> None:
    data = files.png()
    assert check_file(data, LIMITS).data == data


def test_each_kind_has_its_size_limit() -> None:
    small = CheckLimits(max_image_bytes=1000, max_video_bytes=100_000, max_pixels=40_000_000)
    assert isinstance(refused(files.noisy_png(40, 40), small), ContentTooLargeError)
    assert check_file(files.mp4(), small).kind == "video"


def test_an_mp4_cut_short_or_without_video_is_refused() -> None:
    whole = files.mp4()
    with pytest.raises(InvalidInputError, match="truncated"):
        check_mp4(whole[:-10])
    with pytest.raises(InvalidInputError):
        check_mp4(whole + b"more")
    with pytest.raises(InvalidInputError, match="video track"):
        check_mp4(whole.replace(b"vide", b"soun"))
