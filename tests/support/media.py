"""Files for the media library's tests, honest and hostile, made in memory; uploading one;
counting what the library stores."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any
from uuid import UUID

import httpx
from PIL import ExifTags, Image
from psycopg_pool import ConnectionPool

from scheduler.services import workspaces
from scheduler.services.media import MediaLibrary, MediaSettings
from tests.support.database import connect

ORIENTATION = 0x0112
# Somewhere in Berlin: what must never leave the machine with a photo.
GPS = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)}


def png(width: int = 64, height: int = 48, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def noisy_png(width: int, height: int, seed: int = 0) -> bytes:
    """A PNG that does not compress (random pixels): its size is about 3 bytes a pixel."""
    import random

    pixels = random.Random(seed).randbytes(width * height * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(out, "PNG", compress_level=1)
    return out.getvalue()


def photo_with_location(kind: str = "JPEG") -> bytes:
    """A photo as a phone writes it: EXIF with an orientation and a GPS position."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(GPS)
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(out, kind, exif=exif.tobytes())
    return out.getvalue()


def exif_of(data: bytes) -> Image.Exif:
    with Image.open(io.BytesIO(data)) as image:
        return image.getexif()


def animated_gif(frames: int = 3) -> bytes:
    images = [Image.new("RGB", (20, 20), (i * 60 % 256, 0, 0)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(side: int = 20_000) -> bytes:
    """A small PNG that decodes to ``side`` x ``side`` pixels (1 bit each, all black)."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def zip_archive() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return out.getvalue()


SVG = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       b"<script>alert(1)</script><rect width=\"10\" height=\"10\"/></svg>")


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4(width: int = 320, height: int = 240) -> bytes:
    """The boxes of an MP4 with one video track (no playable frames: enough for the container check)."""
    tkhd = bytes(4) + bytes(72) + struct.pack(">II", width << 16, height << 16)
    hdlr = bytes(4) + bytes(4) + b"vide" + bytes(12) + b"video\x00"
    trak = _box(b"trak", _box(b"tkhd", tkhd) + _box(b"mdia", _box(b"hdlr", hdlr)))
    return (_box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
            + _box(b"moov", trak) + _box(b"mdat", bytes(64)))


def upload(client: httpx.Client, auth: dict[str, str], data: bytes, *, name: str = "photo.png",
           content_type: str = "image/png", alt: str | None = "A red square", focus: str | None = None) -> Any:
    fields = {k: v for k, v in {"alt": alt, "focus": focus}.items() if v is not None}
    return client.post("/v1/media", headers=auth, files={"file": (name, data, content_type)}, data=fields)


def uploaded(client: httpx.Client, auth: dict[str, str], data: bytes | None = None, **kw: Any) -> dict[str, Any]:
    response = upload(client, auth, png() if data is None else data, **kw)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def media_rows(database_url: str) -> tuple[int, int]:
    """(items, blobs) the library stores, every workspace's."""
    with connect(database_url) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM media), (SELECT count(*) FROM media_blobs)").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def stored(pool: ConnectionPool[Any], data: bytes, *, alt: str, focus: tuple[float, float] | None = None,
           workspace_id: str = "acme") -> UUID:
    """An item put in the library directly (as ``POST /v1/media`` does), its workspace made
    first where there is none: its id."""
    with pool.connection() as conn:
        workspaces.ensure_workspace(conn, workspace_id)
    library = MediaLibrary(pool=pool, settings=MediaSettings(), share_status=lambda _share: None)
    return library.upload(workspace_id, data, alt=alt, focus=focus).id
