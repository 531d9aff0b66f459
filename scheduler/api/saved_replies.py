"""/v1/saved-replies: a workspace's ready answers, picked in the replies page's answer form.
``{author}`` (the reply's author: their shown name, else their handle) and ``{account}``
(the account's name) are filled when one is used; any other ``{placeholder}`` is refused."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from scheduler.api.deps import Reader, ServicesDep, Writer
from scheduler.api.schemas import Body
from scheduler.api.views import iso
from scheduler.domain.saved_replies import MAX_NAME, MAX_TEXT, PLACEHOLDERS
from scheduler.services import saved_replies
from scheduler.services.saved_replies import SavedReply

router = APIRouter(prefix="/v1", tags=["saved replies"])


class SavedReplyIn(Body):
    # Placeholders, and a name of spaces only, are checked by the service (a 422 naming the field).
    name: str = Field(min_length=1, max_length=MAX_NAME, examples=["thanks"],
                      description=f"unique in the workspace, 1-{MAX_NAME} characters")
    text: str = Field(min_length=1, max_length=MAX_TEXT, examples=["Thank you, {author}! The {account} team"],
                      description=f"1-{MAX_TEXT} characters; placeholders: "
                                  + ", ".join("{" + p + "}" for p in PLACEHOLDERS))


def saved_view(found: SavedReply) -> dict[str, Any]:
    return {"id": str(found.id), "name": found.name, "text": found.text, "created_by": found.created_by,
            "created_at": iso(found.created_at)}


@router.post("/saved-replies", status_code=201, operation_id="create_saved_reply")
def create_saved_reply(body: SavedReplyIn, who: Writer, svc: ServicesDep) -> JSONResponse:
    """Save a ready answer; 409 when the workspace has one of that name."""
    with svc.pool.connection() as conn:
        found = saved_replies.save(conn, who.workspace_id, name=body.name, text=body.text, by=who.actor)
    return JSONResponse(saved_view(found), status_code=201)


@router.get("/saved-replies", operation_id="list_saved_replies")
def list_saved_replies(who: Reader, svc: ServicesDep) -> dict[str, Any]:
    """The workspace's saved replies, by name."""
    with svc.pool.connection() as conn:
        return {"items": [saved_view(s) for s in saved_replies.list_all(conn, who.workspace_id)],
                "placeholders": list(PLACEHOLDERS)}


@router.delete("/saved-replies/{saved_reply_id}", status_code=204, operation_id="delete_saved_reply")
def delete_saved_reply(saved_reply_id: Annotated[UUID, "the saved reply's id"], who: Writer,
                       svc: ServicesDep) -> Response:
    with svc.pool.connection() as conn:
        saved_replies.delete(conn, who.workspace_id, saved_reply_id)
    return Response(status_code=204)
