"""/healthz and /readyz: liveness, and readiness (the database and the broker answer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from scheduler.api.deps import Services, ServicesDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", operation_id="check_health")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", operation_id="check_readiness")
async def readyz(svc: ServicesDep) -> JSONResponse:
    checks: dict[str, Any] = {}
    probes: dict[str, Callable[[], None]] = {
        "database": lambda: _check_database(svc),
        "broker": svc.check_broker,
    }
    for name, probe in probes.items():
        try:
            await run_in_threadpool(probe)
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks[name] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


def _check_database(services: Services) -> None:
    with services.pool.connection(timeout=2) as conn:
        conn.execute("SELECT 1 FROM events LIMIT 1")
