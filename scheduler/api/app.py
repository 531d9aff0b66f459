"""The FastAPI application. Built by the composition root with this process's services."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool

from scheduler.api import audit, dashboard, docs, problems, tokens
from scheduler.api.deps import Services
from scheduler.api.http_metrics import HttpMetrics
from scheduler.api.metrics import ReadModelCollector
from scheduler.api.middleware import Guard
from scheduler.api.ratelimits import RateLimits
from scheduler.api.replies import router as replies_router
from scheduler.api.routes import router
from scheduler.api.webhook_metrics import WebhookCollector
from scheduler.api.webhooks import router as webhooks_router
from scheduler.errors import NotFoundError


def create_app(services: Services) -> FastAPI:
    config = services.config
    limits = RateLimits(config.rate_limit_per_address, config.rate_limit_per_token, config.rate_limit_storage,
                        config.rate_limit_namespace)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        services.start()
        try:
            yield
        finally:
            await limits.close()
            services.stop()

    app = FastAPI(
        title="Followthrough",
        version="0.1.0",
        summary="Schedule posts and follow through on the replies.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    problems.install(app)
    app.include_router(router)
    app.include_router(tokens.router)
    app.include_router(audit.router)
    dashboard.mount(app)
    app.include_router(webhooks_router)
    app.include_router(replies_router)
    docs.install(app)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReadModelCollector(services.pool))
    registry.register(WebhookCollector(services.pool))
    app.state.metrics_registry = registry
    app.add_middleware(Guard, config=config, metrics=HttpMetrics(registry), limits=limits)

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse, include_in_schema=False)
    def metrics(request: Request) -> PlainTextResponse:
        if not _may_scrape(request, config.metrics_token):
            raise NotFoundError("page", request.url.path)
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    _operations(app, services)
    return app


def _may_scrape(request: Request, token: str | None) -> bool:
    """With a metrics token: its bearer only. Without: loopback clients only (`up` on one machine);
    elsewhere serve metrics on their own port (FOLLOWTHROUGH_METRICS_PORT)."""
    if token:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _operations(app: FastAPI, services: Services) -> None:
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


def _check_database(services: Services) -> None:
    with services.pool.connection(timeout=2) as conn:
        conn.execute("SELECT 1 FROM events LIMIT 1")
