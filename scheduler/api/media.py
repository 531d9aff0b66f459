"""/v1/media: the media library. Upload (multipart, streamed: the Guard bounds this route's
body at the largest file allowed, and Starlette spools the file part to a temporary file, in
memory up to 1 MiB and on disk past it), list, read, the bytes, change alt and focus, delete."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from scheduler.api.deps import Reader, Services, ServicesDep, Writer
from scheduler.api.replies import decode_cursor, encode_cursor
from scheduler.api.schemas import Body, Storable
from scheduler.domain import inputs
from scheduler.errors import InvalidInputError, UnsupportedMediaError
from scheduler.services.media import ALT_MAX_CHARACTERS, Focus, MediaItem, MediaLibrary, parse_focus

router = APIRouter(prefix="/v1", tags=["media"])

# The form's text fields (alt, focus) are small; the file part has no bound of its own here
# (the Guard's body bound covers it) and is spooled, never held whole in memory while read.
FORM_FIELD_BYTES = 64 * 1024
FORM_FIELDS = ("file", "alt", "focus")
# Stored content never changes under an id (alt and focus live beside it): caches may keep it.
CONTENT_CACHE = "private, max-age=31536000, immutable"

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "additionalProperties": False,
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": "JPEG, PNG, WebP, GIF or MP4 (the type is read from the bytes)"},
                        "alt": {"type": "string", "maxLength": ALT_MAX_CHARACTERS,
                                "description": "the description published with it (a share may give its own)"},
                        "focus": {"type": "string", "pattern": r"^-?[0-9.]+,-?[0-9.]+$", "examples": ["0,0.5"],
                                  "description": '"x,y", each in -1..1: the point to keep when the image is cropped'},
                    },
                }
            }
        },
    }
}


class MediaPatchIn(Body):
    alt: Annotated[str, Field(max_length=ALT_MAX_CHARACTERS), Storable] | None = None
    focus: Annotated[str, Field(max_length=64)] | None = Field(
        default=None, description='"x,y" in -1..1; null clears it', examples=["0,0.5"])


def media_view(item: MediaItem) -> dict[str, Any]:
    return {
        "id": str(item.id),
        "kind": item.kind,
        "mime": item.mime,
        "bytes": item.bytes,
        "width": item.width,
        "height": item.height,
        "alt": item.alt,
        "focus": None if item.focus is None else f"{item.focus[0]:g},{item.focus[1]:g}",
        "sha256": item.sha256,
        "created_at": item.created_at.isoformat(),
    }


def library(svc: Services) -> MediaLibrary:
    assert svc.media is not None, "the API was built without a media library"
    return svc.media


@router.post("/media", status_code=201, operation_id="upload_media", openapi_extra=UPLOAD_BODY)
async def upload_media(request: Request, who: Writer, svc: ServicesDep) -> JSONResponse:
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise UnsupportedMediaError("body", "must be multipart/form-data with a part named file")
    async with request.form(max_files=1, max_fields=4, max_part_size=FORM_FIELD_BYTES) as form:
        for name in form:
            if name not in FORM_FIELDS:
                field = name if inputs.text_problem(name) is None and len(name) <= 100 else "body"
                raise InvalidInputError(field, "is not a known field (file, alt, focus)")
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise InvalidInputError("file", "is required: a file part named file")
        alt = form.get("alt", "")
        focus_text = form.get("focus")
        if not isinstance(alt, str):
            raise InvalidInputError("alt", "must be text, not a file")
        if focus_text is not None and not isinstance(focus_text, str):
            raise InvalidInputError("focus", "must be text, not a file")
        focus: Focus | None = None if focus_text is None else parse_focus(focus_text)
        data = await file.read()
    item = await run_in_threadpool(library(svc).upload, who.workspace_id, data, alt=alt, focus=focus)
    return JSONResponse(media_view(item), status_code=201)


@router.get("/media", operation_id="list_media")
def list_media(
    who: Reader,
    svc: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Newest first; ``next_cursor`` pages on (null on the last page)."""
    rows = library(svc).list(who.workspace_id, after=decode_cursor(cursor) if cursor else None, limit=limit + 1)
    page = rows[:limit]
    following = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return {"items": [media_view(r) for r in page], "next_cursor": following}


@router.get("/media/{media_id}", operation_id="get_media")
def get_media(media_id: UUID, who: Reader, svc: ServicesDep) -> dict[str, Any]:
    return media_view(library(svc).get(who.workspace_id, media_id))


@router.get("/media/{media_id}/content", operation_id="get_media_content",
            responses={200: {"content": {"image/*": {}, "video/mp4": {}}, "description": "the stored bytes"},
                       304: {"description": "not modified (If-None-Match)"}})
def get_media_content(media_id: UUID, request: Request, who: Reader, svc: ServicesDep) -> Response:
    return content_response(library(svc), who.workspace_id, media_id, request)


def content_response(media: MediaLibrary, workspace_id: str, media_id: UUID, request: Request) -> Response:
    """An item's bytes, cached by its SHA-256 (304 for If-None-Match); the API's route and the
    dashboard's (a signed-in session) answer alike. NotFoundError for another workspace's id."""
    mime, sha256, data = media.content(workspace_id, media_id)
    etag = f'"{sha256}"'
    headers = {"ETag": etag, "Cache-Control": CONTENT_CACHE}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(content=data, media_type=mime, headers={**headers, "Content-Disposition": "inline"})


@router.patch("/media/{media_id}", operation_id="change_media")
def change_media(media_id: UUID, body: MediaPatchIn, who: Writer, svc: ServicesDep) -> dict[str, Any]:
    """A new ``alt`` and/or ``focus``; shares planned already keep the alt they were planned with."""
    set_focus = "focus" in body.model_fields_set
    focus = parse_focus(body.focus) if body.focus is not None else None
    return media_view(library(svc).change(who.workspace_id, media_id, alt=body.alt, focus=focus, set_focus=set_focus))


@router.delete("/media/{media_id}", status_code=204, operation_id="delete_media")
def delete_media(media_id: UUID, who: Writer, svc: ServicesDep) -> Response:
    """Refused (409) while a share that is not yet sent or cancelled attaches it."""
    library(svc).delete(who.workspace_id, media_id)
    return Response(status_code=204)
