"""The FastAPI application. Built by the composition root with this process's services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool

from scheduler.api import audit, problems
from scheduler.api.deps import Services
from scheduler.api.metrics import ReadModelCollector
from scheduler.api.routes import router


def create_app(services: Services) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        services.start()
        try:
            yield
        finally:
            services.stop()

    app = FastAPI(
        title="Followthrough",
        version="0.1.0",
        summary="Schedule posts and follow through on the replies.",
        lifespan=lifespan,
    )
    app.state.services = services
    problems.install(app)
    app.include_router(router)
    app.include_router(audit.router)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReadModelCollector(services.pool))

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        checks: dict[str, Any] = {}
        probes: dict[str, Callable[[], None]] = {
            "database": lambda: _check_database(services),
            "broker": services.check_broker,
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

    return app


def _check_database(services: Services) -> None:
    with services.pool.connection(timeout=2) as conn:
        conn.execute("SELECT 1 FROM events LIMIT 1")
