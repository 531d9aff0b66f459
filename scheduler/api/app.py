"""The FastAPI application. Built by the composition root with this process's services;
one router per resource (accounts, shares, media, tasks, replies, calendars and owners, the
shares calendar (planner), webhooks, tokens, audit,
follow-through, metrics, operations), each in its own module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from scheduler.api import (
    accounts,
    audit,
    calendars,
    dashboard,
    docs,
    followthrough,
    media,
    metrics,
    operations,
    planner,
    posts,
    problems,
    replies,
    saved_replies,
    shares,
    tasks,
    tokens,
    webhooks,
)
from scheduler.api.deps import Services
from scheduler.api.http_metrics import HttpMetrics
from scheduler.api.middleware import Guard
from scheduler.api.ratelimits import RateLimits
from scheduler.api.webhook_metrics import WebhookCollector

RESOURCES = (accounts, shares, posts, media, tasks, replies, saved_replies, calendars, planner, webhooks, tokens,
             audit, followthrough, metrics, operations)


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
    for resource in RESOURCES:
        app.include_router(resource.router)
    dashboard.mount(app)
    docs.install(app)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics.ReadModelCollector(services.pool, at_risk=config.sla_at_risk,
                                                 reply_sla_seconds=config.reply_sla_seconds))
    registry.register(WebhookCollector(services.pool))
    app.state.metrics_registry = registry
    app.add_middleware(Guard, config=config, metrics=HttpMetrics(registry), limits=limits)
    return app
