"""An MP4 (ISO base media file) checked by walking its boxes: an ``ftyp`` first, boxes that
tile the file exactly (nothing appended), a ``moov`` with a video track, and that track's
width and height from its ``tkhd``.

Read here rather than with a library: ``mutagen`` checks MP4 containers but reports audio
properties only, not a video's dimensions; the few boxes needed are a fixed, simple format.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from scheduler.errors import InvalidInputError

# Boxes whose children are boxes, on the path to a track's header and handler.
CONTAINERS = {b"moov", b"trak", b"mdia"}
MAX_BOXES = 10_000
BRANDS = {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"dash",
          b"mmp4", b"msnv"}


@dataclass(frozen=True, slots=True)
class Video:
    width: int
    height: int


def _boxes(data: bytes, start: int, end: int, field: str) -> list[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box in ``data[start:end]``, which they must tile."""
    found: list[tuple[bytes, int, int]] = []
    at = start
    while at < end:
        if end - at < 8 or len(found) >= MAX_BOXES:
            raise InvalidInputError(field, "is not a valid MP4: a box is cut short")
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        header = 8
        if size == 1:
            if end - at < 16:
                raise InvalidInputError(field, "is not a valid MP4: a box is cut short")
            size = struct.unpack(">Q", data[at + 8:at + 16])[0]
            header = 16
        elif size == 0:
            size = end - at  # to the end of the enclosing space
        if size < header or at + size > end:
            raise InvalidInputError(field, "is not a valid MP4: a box runs past the end of the file (truncated?)")
        found.append((kind, at + header, at + size))
        at += size
    return found


def check_mp4(data: bytes, field: str = "file") -> Video:
    top = _boxes(data, 0, len(data), field)
    if not top or top[0][0] != b"ftyp":
        raise InvalidInputError(field, "is not a valid MP4: it does not start with an ftyp box")
    kind, start, _ = top[0]
    brands = {data[start:start + 4]} | {data[i:i + 4] for i in range(start + 8, top[0][2], 4)}
    if not brands & BRANDS:
        raise InvalidInputError(field, "is not an MP4 video (its brands are not MP4's)")
    moov = [box for box in top if box[0] == b"moov"]
    if len(moov) != 1:
        raise InvalidInputError(field, "is not a valid MP4: it needs exactly one moov box")
    if not any(box[0] == b"mdat" for box in top):
        raise InvalidInputError(field, "is not a valid MP4: it has no media data (mdat)")
    for trak in _children(data, moov[0], b"trak", field):
        width, height, handler = 0, 0, b""
        for kind, start, end in _boxes(data, trak[1], trak[2], field):
            if kind == b"tkhd" and end - start >= 84:
                version = data[start]
                offset = start + (88 if version == 1 else 76)
                if offset + 8 <= end:
                    width, height = (v >> 16 for v in struct.unpack(">II", data[offset:offset + 8]))
            if kind == b"mdia":
                for hkind, hstart, hend in _boxes(data, start, end, field):
                    if hkind == b"hdlr" and hend - hstart >= 12:
                        handler = data[hstart + 8:hstart + 12]
        if handler == b"vide" and width > 0 and height > 0:
            return Video(width, height)
    raise InvalidInputError(field, "is not an MP4 video: it has no video track with a size")


def _children(data: bytes, box: tuple[bytes, int, int], kind: bytes, field: str) -> list[tuple[bytes, int, int]]:
    return [child for child in _boxes(data, box[1], box[2], field) if child[0] == kind]
