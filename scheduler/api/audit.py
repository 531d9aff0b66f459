"""``GET /v1/audit``: the audit of the token's workspace (see ``scheduler.services.audit``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from scheduler.api.deps import Reader, ServicesDep
from scheduler.services import audit as audit_service

router = APIRouter(prefix="/v1", tags=["operations"])


@router.get("/audit", operation_id="get_audit")
def workspace_audit(who: Reader, svc: ServicesDep) -> dict[str, Any]:
    """Recount the workspace's shares, tasks, replies and follow-through figures from every
    event of its share streams and compare them with the read models and with the figures
    ``GET /v1/followthrough`` reports (the rate, times to respond and to answer), at the
    projection's checkpoint. ``clean`` is false when any figure differs or the log breaks
    the invariant (a stream's versions out of step included); the differences are listed."""
    with svc.pool.connection() as conn:
        found = audit_service.audit(conn, workspace_id=who.workspace_id)
    return found.as_dict()
