"""The media library: upload (checked by ``media_check``), list, read, change alt and focus,
delete; and what planning and publishing need of it.

Content-addressed per workspace: a blob is stored once per workspace and SHA-256 of the
stored bytes; each upload is its own item (id, alt, focus) pointing at a blob, so the same
file uploaded twice is stored once and counted once against the quota. A blob goes with the
last item using it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
import structlog
from psycopg_pool import ConnectionPool

from events import sqlfiles
from scheduler.domain import inputs
from scheduler.domain.media import LibraryItem, MediaKind
from scheduler.errors import ConflictError, InvalidInputError, NotFoundError, QuotaExceededError
from scheduler.services.media_check import CheckLimits, check_file

log = structlog.get_logger("scheduler.services.media")

Q = sqlfiles.load("scheduler.services", "media.sql")
ALT_MAX_CHARACTERS = 10_000
# A share keeps its media until it is one of these (failed and abandoned shares may be retried).
SETTLED = ("sent", "cancelled")

# What a multipart body carries besides the file: boundaries, part headers, alt and focus.
FORM_OVERHEAD_BYTES = 64 * 1024

Focus = tuple[float, float]


@dataclass(frozen=True, slots=True)
class MediaSettings:
    max_image_bytes: int = 16 * 1024 * 1024
    max_video_bytes: int = 40 * 1024 * 1024
    max_pixels: int = 40_000_000
    quota_bytes: int = 1024 * 1024 * 1024

    @property
    def upload_body_bytes(self) -> int:
        """The upload route's body bound: the largest file of any kind and the form around it."""
        return max(self.max_image_bytes, self.max_video_bytes) + FORM_OVERHEAD_BYTES


@dataclass(frozen=True, slots=True)
class MediaItem:
    id: UUID
    kind: MediaKind
    mime: str
    bytes: int
    width: int
    height: int
    alt: str
    focus: Focus | None
    sha256: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MediaContent:
    """What a worker needs to publish an item: its bytes and how to describe them."""

    id: UUID
    kind: MediaKind
    mime: str
    data: bytes
    width: int
    height: int
    alt: str
    focus: Focus | None
    sha256: str


def parse_focus(value: str, field: str = "focus") -> Focus:
    """``"x,y"``, each in -1..1 (Mastodon's focal point: -1,-1 bottom left, 1,1 top right)."""
    parts = value.split(",")
    try:
        x, y = (float(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        x = y = None
    if x is None or y is None or not (-1 <= x <= 1 and -1 <= y <= 1):
        raise InvalidInputError(field, 'must be "x,y" with x and y between -1 and 1, e.g. "0,0.5"')
    return (x, y)


def check_alt(alt: str, field: str = "alt") -> str:
    inputs.check_text(field, alt, max_length=ALT_MAX_CHARACTERS)
    return alt


def _item(row: Sequence[Any]) -> MediaItem:
    focus = None if row[7] is None else (float(row[7]), float(row[8]))
    return MediaItem(id=row[0], kind=row[1], mime=row[2], bytes=int(row[3]), width=int(row[4]), height=int(row[5]),
                     alt=row[6], focus=focus, sha256=row[9], created_at=row[10])


@dataclass
class MediaLibrary:
    pool: ConnectionPool[Any]
    settings: MediaSettings
    # A share's status as its stream folds ("planned", "sent", ...); None: no such share.
    share_status: Callable[[UUID], str | None]

    def upload(self, workspace_id: str, data: bytes, *, alt: str = "", focus: Focus | None = None) -> MediaItem:
        check_alt(alt)
        s = self.settings
        checked = check_file(data, CheckLimits(s.max_image_bytes, s.max_video_bytes, s.max_pixels))
        sha256 = hashlib.sha256(checked.data).hexdigest()
        media_id = uuid4()
        key = {"workspace_id": workspace_id, "sha256": sha256}
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(Q["lock_workspace"], key)
            stored_already = conn.execute(Q["blob_exists"], key).fetchone() is not None
            if not stored_already:
                used = _one(conn.execute(Q["used_bytes"], key).fetchone())
                if used + len(checked.data) > s.quota_bytes:
                    raise QuotaExceededError(
                        f"file: storing {len(checked.data)} bytes would take the workspace's media past its quota "
                        f"of {s.quota_bytes} bytes ({used} used); delete media or raise "
                        "FOLLOWTHROUGH_MEDIA_QUOTA_MB", field="file")
                conn.execute(Q["insert_blob"], {**key, "mime": checked.mime, "bytes": len(checked.data),
                                                "content": checked.data})
            conn.execute(Q["insert_media"], {**key, "id": media_id, "kind": checked.kind, "width": checked.width,
                                             "height": checked.height, "alt": alt,
                                             "focus_x": focus[0] if focus else None,
                                             "focus_y": focus[1] if focus else None})
            item = _item(_row(conn.execute(Q["get"], {"workspace_id": workspace_id, "id": media_id}).fetchone()))
        log.info("media_uploaded", workspace_id=workspace_id, media_id=str(media_id), mime=checked.mime,
                 bytes=len(checked.data), deduplicated=stored_already, gps_removed=checked.gps_removed)
        return item

    def get(self, workspace_id: str, media_id: UUID) -> MediaItem:
        with self.pool.connection() as conn:
            row = conn.execute(Q["get"], {"workspace_id": workspace_id, "id": media_id}).fetchone()
        if row is None:
            raise NotFoundError("media", str(media_id))
        return _item(row)

    def list(self, workspace_id: str, *, after: tuple[datetime, UUID] | None, limit: int) -> list[MediaItem]:
        with self.pool.connection() as conn:
            rows = conn.execute(Q["list"], {"workspace_id": workspace_id, "limit": limit,
                                            "after_at": after[0] if after else None,
                                            "after_id": after[1] if after else None}).fetchall()
        return [_item(r) for r in rows]

    def content(self, workspace_id: str, media_id: UUID) -> tuple[str, str, bytes]:
        """(mime, sha256, bytes) of an item."""
        with self.pool.connection() as conn:
            row = conn.execute(Q["content"], {"workspace_id": workspace_id, "id": media_id}).fetchone()
        if row is None:
            raise NotFoundError("media", str(media_id))
        return row[0], row[1], bytes(row[2])

    def change(self, workspace_id: str, media_id: UUID, *, alt: str | None, focus: Focus | None,
               set_focus: bool) -> MediaItem:
        """A new alt and/or focus (``set_focus`` with ``focus`` None clears it). Shares planned
        already keep the alt they were planned with."""
        if alt is not None:
            check_alt(alt)
        with self.pool.connection() as conn:
            row = conn.execute(Q["update"], {"workspace_id": workspace_id, "id": media_id, "alt": alt,
                                             "set_focus": set_focus, "focus_x": focus[0] if focus else None,
                                             "focus_y": focus[1] if focus else None}).fetchone()
        if row is None:
            raise NotFoundError("media", str(media_id))
        return self.get(workspace_id, media_id)

    def delete(self, workspace_id: str, media_id: UUID) -> None:
        """Refused while a share that is not sent or cancelled uses the item; the blob goes
        with its last item."""
        key = {"workspace_id": workspace_id, "id": media_id}
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute(Q["lock_item"], key).fetchone()
            if row is None:
                raise NotFoundError("media", str(media_id))
            users = [r[0] for r in conn.execute(Q["uses"], key).fetchall()]
            waiting = [u for u in users if self.share_status(u) not in SETTLED]
            if waiting:
                raise ConflictError(f"id: share {waiting[0]} (not yet sent) uses this media; cancel the share or "
                                    "wait until it is sent", field="id")
            conn.execute(Q["delete_media"], key)
            conn.execute(Q["delete_blob_if_unused"], {"workspace_id": workspace_id, "sha256": row[0]})
        log.info("media_deleted", workspace_id=workspace_id, media_id=str(media_id))


# --- planning and publishing -----------------------------------------------------------


def library_items(conn: psycopg.Connection[Any], workspace_id: str, ids: Sequence[UUID]) -> dict[UUID, LibraryItem]:
    """The items a plan names that exist in its workspace (what ``check_media`` is given)."""
    if not ids:
        return {}
    rows = conn.execute(Q["library_items"], {"workspace_id": workspace_id, "ids": list(ids)}).fetchall()
    return {r[0]: LibraryItem(media_id=r[0], kind=r[1], mime=r[2], alt=r[3]) for r in rows}


def record_uses(conn: psycopg.Connection[Any], workspace_id: str, share_id: UUID, ids: Sequence[UUID]) -> None:
    """In the plan's transaction, after its append (a row lock before it would write first):
    which items the share holds. An item deleted since it was read refuses the plan."""
    if not ids:
        return
    found = conn.execute(Q["record_uses"], {"workspace_id": workspace_id, "share_id": share_id,
                                            "ids": list(ids)}).fetchall()
    if len(found) != len(set(ids)):
        raise InvalidInputError("media", "an item was deleted while the share was being planned")


def for_publishing(conn: psycopg.Connection[Any], workspace_id: str, media_id: UUID) -> MediaContent:
    """An item's bytes and description for a worker publishing a share that attaches it."""
    row = conn.execute(Q["for_publishing"], {"workspace_id": workspace_id, "id": media_id}).fetchone()
    if row is None:
        raise NotFoundError("media", str(media_id))
    focus = None if row[7] is None else (float(row[7]), float(row[8]))
    return MediaContent(id=row[0], kind=row[1], mime=row[2], data=bytes(row[3]), width=int(row[4]),
                        height=int(row[5]), alt=row[6], focus=focus, sha256=row[9])


def _row(row: Sequence[Any] | None) -> Sequence[Any]:
    assert row is not None
    return row


def _one(row: Sequence[Any] | None) -> int:
    return int(_row(row)[0])
