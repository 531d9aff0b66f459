"""An uploaded file checked by decoding it, never by its name or declared type: what it is
(from its first bytes, then decoded by Pillow as exactly that format), its size in pixels
(a decompression bomb is refused before its pixels are), every frame decoded (a truncated
file is refused), nothing appended after the image's end (a PNG/ZIP polyglot is refused),
and location metadata (EXIF GPS, XMP) removed before anything is stored.

The stored bytes are the upload's own unless they carried location: then the image is saved
again by Pillow with its EXIF minus the GPS block (the orientation kept) and without XMP
(JPEG with its own quantisation tables, ``quality="keep"``; PNG is lossless; WebP at quality 95).
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import ExifTags, Image, ImageSequence, UnidentifiedImageError

from scheduler.domain.media import MediaKind
from scheduler.errors import ContentTooLargeError, InvalidInputError, UnsupportedMediaError
from scheduler.services.mp4 import check_mp4

FIELD = "file"
MAX_FRAMES = 1000
# A ZIP is read from its end-of-central-directory record, within the last 64 KiB + 22 bytes.
ZIP_END = b"PK\x05\x06"
ZIP_TAIL = 65_557
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True, slots=True)
class CheckLimits:
    max_image_bytes: int
    max_video_bytes: int
    max_pixels: int


@dataclass(frozen=True, slots=True)
class Checked:
    """A file as it will be stored."""

    data: bytes
    mime: str
    kind: MediaKind
    width: int
    height: int
    gps_removed: bool = False


def sniff(head: bytes) -> str | None:
    """The format the first bytes say, as a MIME type; None for anything else."""
    if head.startswith(PNG_SIGNATURE):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    return None


_PILLOW_FORMAT = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}


def check_file(data: bytes, limits: CheckLimits) -> Checked:
    if not data:
        raise InvalidInputError(FIELD, "is empty (0 bytes)")
    mime = sniff(data[:16])
    if mime is None:
        svg = data.lstrip()[:256].lower()
        what = "SVG is refused (it can carry scripts and links); " if b"<svg" in svg or svg.startswith(b"<?xml") else ""
        raise UnsupportedMediaError(FIELD, f"{what}the content is not JPEG, PNG, WebP, GIF or MP4 (the type is read "
                                           "from the bytes, not the name)")
    limit = limits.max_video_bytes if mime == "video/mp4" else limits.max_image_bytes
    if len(data) > limit:
        raise ContentTooLargeError(FIELD, f"is {len(data)} bytes; {mime} is limited to {limit} bytes")
    if mime == "video/mp4":
        video = check_mp4(data, FIELD)
        return Checked(data, mime, "video", video.width, video.height)
    _no_appended_data(data, mime)
    return _check_image(data, mime, limits.max_pixels)


def _check_image(data: bytes, mime: str, max_pixels: int) -> Checked:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[_PILLOW_FORMAT[mime]])
        with image:
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidInputError(FIELD, f"is {width}x{height} pixels; at most {max_pixels} pixels are "
                                               "decoded (a decompression bomb?)")
            frames = _decode_frames(image, max_pixels)
            kind: MediaKind = "gif" if frames > 1 else "image"
            stored, removed = _without_location(image, data, mime)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInputError(FIELD, "has too many pixels to decode (a decompression bomb?)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise InvalidInputError(FIELD, f"is not a whole, valid {mime} ({type(exc).__name__}: truncated or "
                                       "damaged)") from None
    return Checked(stored, mime, kind, width, height, gps_removed=removed)


def _decode_frames(image: Image.Image, max_pixels: int) -> int:
    """Decode every frame (a truncated file fails here); the pixels of all frames are bounded too."""
    frames = 0
    width, height = image.size
    for frame in ImageSequence.Iterator(image):
        frames += 1
        if frames > MAX_FRAMES or frames * width * height > max_pixels * 4:
            raise InvalidInputError(FIELD, f"has more frames than are decoded ({MAX_FRAMES} at most, "
                                           f"{max_pixels * 4} pixels in all)")
        frame.load()
    image.seek(0)
    return frames


def _no_appended_data(data: bytes, mime: str) -> None:
    """Refuse bytes after the image's end: a file that is an image and also something else."""
    if ZIP_END in data[-ZIP_TAIL:]:
        raise UnsupportedMediaError(FIELD, "also holds a ZIP archive (a polyglot file); upload the image alone")
    end = _image_end(data, mime)
    if end is not None and end != len(data):
        raise UnsupportedMediaError(FIELD, f"has {len(data) - end} bytes after the end of the image; upload the "
                                           "image alone")


def _image_end(data: bytes, mime: str) -> int | None:
    """Where the image's own bytes end, for the formats that say so plainly; None: not known."""
    if mime == "image/png":
        at = len(PNG_SIGNATURE)
        while at + 12 <= len(data):
            length, kind = struct.unpack(">I4s", data[at:at + 8])
            at += 12 + int(length)
            if kind == b"IEND":
                return at
        return None  # truncated: the decoder says so
    if mime == "image/webp":
        return 8 + int(struct.unpack("<I", data[4:8])[0])
    if mime == "image/jpeg" and not data.endswith(b"\xff\xd9"):
        # Decoders stop at the end-of-image marker; anything after it is another file.
        return data.rfind(b"\xff\xd9") + 2 if b"\xff\xd9" in data else None
    return None


def _without_location(image: Image.Image, data: bytes, mime: str) -> tuple[bytes, bool]:
    exif = image.getexif()
    xmp = image.info.get("xmp")
    has_gps = ExifTags.IFD.GPSInfo in exif
    xmp_gps = isinstance(xmp, bytes | str) and "GPS" in (xmp.decode("latin-1") if isinstance(xmp, bytes) else xmp)
    if not (has_gps or xmp_gps) or mime == "image/gif":
        return data, False
    if has_gps:
        del exif[ExifTags.IFD.GPSInfo]
    options: dict[str, Any] = {"exif": exif.tobytes(), "xmp": b""}
    if icc := image.info.get("icc_profile"):
        options["icc_profile"] = icc
    if mime == "image/jpeg":
        options.update(quality="keep", subsampling="keep")
    if mime == "image/webp":
        options.update(quality=95, save_all=getattr(image, "n_frames", 1) > 1)
    out = io.BytesIO()
    image.save(out, _PILLOW_FORMAT[mime], **options)
    return out.getvalue(), True
