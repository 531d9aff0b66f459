"""``GET /v1/audit``: the audit of the token's workspace (see ``scheduler.services.audit``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from scheduler.api.deps import Reader, ServicesDep
from scheduler.services import audit as audit_service

router = APIRouter(prefix="/v1", tags=["operations"])


@router.get("/audit", operation_id="get_audit")
def workspace_audit(who: Reader, svc: ServicesDep) -> dict[str, Any]:
    """Recount the workspace's shares, tasks and follow-through rows from the log and
    compare them with the read models, at the projection's checkpoint. ``clean`` is false
    when any figure differs or the log breaks the invariant; the differences are listed."""
    with svc.pool.connection() as conn:
        found = audit_service.audit(conn, workspace_id=who.workspace_id)
    return found.as_dict()
