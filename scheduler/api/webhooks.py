"""The /v1/webhooks endpoints: register a receiver (its signing secret is in this answer
only), list them with their state and last delivery, delete one, enable one again, and
read an endpoint's recent deliveries with their attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from events.projections.webhooks import EVENT_TYPES
from scheduler.api.deps import Reader, ServicesDep, Writer
from scheduler.services import webhooks
from scheduler.services.webhooks import message_id

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=webhooks.MAX_URL, examples=["https://example.com/hooks/followthrough"])
    events: list[str] = Field(description=f"any of: {', '.join(EVENT_TYPES)}", examples=[["share.sent"]])
    description: str = Field(default="", max_length=500)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def endpoint_view(row: dict[str, Any]) -> dict[str, Any]:
    last = None
    if row["last_delivery_id"] is not None:
        last = {"id": message_id(row["last_delivery_id"]), "event_type": row["last_event_type"],
                "status": row["last_delivery_status"], "http_status": row["last_http_status"],
                "error": row["last_error"], "attempted_at": _iso(row["last_attempt_at"])}
    return {
        "id": str(row["id"]),
        "url": row["url"],
        "events": list(row["events"]),
        "description": row["description"],
        "state": row["state"],
        "disabled_reason": row["disabled_reason"],
        "disabled_at": _iso(row["disabled_at"]),
        "consecutive_failures": row["consecutive_failures"],
        "failing_since": _iso(row["failing_since"]),
        "paused_until": _iso(row["paused_until"]),
        "created_at": _iso(row["created_at"]),
        "last_delivery": last,
    }


def delivery_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": message_id(row["id"]),
        "event_type": row["event_type"],
        "event_id": row["event_key"],
        "status": row["status"],
        "attempts": row["attempts"],
        "next_attempt_at": _iso(row["due_at"]) if row["status"] == "pending" else None,
        "last_http_status": row["last_status"],
        "last_error": row["last_error"],
        "last_attempt_at": _iso(row["last_attempt_at"]),
        "delivered_at": _iso(row["delivered_at"]),
        "created_at": _iso(row["created_at"]),
        "payload": row["payload"],
        "attempt_log": row["attempt_list"],
    }


@router.post("", status_code=201, operation_id="register_webhook")
def register_webhook(body: WebhookIn, who: Writer, svc: ServicesDep) -> JSONResponse:
    assert svc.webhook_secrets is not None, "the composition root gives the API its webhook secret keys"
    with svc.pool.connection() as conn:
        registered = webhooks.register(conn, svc.webhook_secrets, who.workspace_id, url=body.url, events=body.events,
                                       description=body.description)
        view = endpoint_view(webhooks.endpoint(conn, who.workspace_id, registered.id))
    # The only answer that carries the secret: it is not shown again.
    return JSONResponse({**view, "secret": registered.secret}, status_code=201)


@router.get("", operation_id="list_webhooks")
def list_webhooks(who: Reader, svc: ServicesDep) -> dict[str, Any]:
    with svc.pool.connection() as conn:
        return {"webhooks": [endpoint_view(r) for r in webhooks.endpoints(conn, who.workspace_id)],
                "event_types": list(EVENT_TYPES)}


@router.get("/{endpoint_id}", operation_id="get_webhook")
def get_webhook(endpoint_id: UUID, who: Reader, svc: ServicesDep) -> dict[str, Any]:
    with svc.pool.connection() as conn:
        return endpoint_view(webhooks.endpoint(conn, who.workspace_id, endpoint_id))


@router.delete("/{endpoint_id}", status_code=204, operation_id="delete_webhook")
def delete_webhook(endpoint_id: UUID, who: Writer, svc: ServicesDep) -> Response:
    with svc.pool.connection() as conn:
        webhooks.delete(conn, who.workspace_id, endpoint_id)
    return Response(status_code=204)


@router.post("/{endpoint_id}/enable", operation_id="enable_webhook")
def enable_webhook(endpoint_id: UUID, who: Writer, svc: ServicesDep) -> dict[str, Any]:
    with svc.pool.connection() as conn:
        webhooks.enable(conn, who.workspace_id, endpoint_id)
        return endpoint_view(webhooks.endpoint(conn, who.workspace_id, endpoint_id))


@router.get("/{endpoint_id}/deliveries", operation_id="list_webhook_deliveries")
def webhook_deliveries(
    endpoint_id: UUID,
    who: Reader,
    svc: ServicesDep,
    status: Literal["pending", "delivered", "failed", "cancelled"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    with svc.pool.connection() as conn:
        rows = webhooks.deliveries(conn, who.workspace_id, endpoint_id, status=status, limit=limit)
    return {"deliveries": [delivery_view(r) for r in rows]}
