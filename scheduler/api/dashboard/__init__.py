"""The dashboard: server-rendered pages over the read side, signed in with an API token.

``mount(app)`` adds the pages under ``/dashboard``, its stylesheet under
``/dashboard/static`` and the answers to "not signed in" (a redirect to sign in) and
"refused" (a 403 page). Every asset is served from this package: it works offline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from scheduler.api.dashboard import planner
from scheduler.api.dashboard.routes import HEADERS, router, templates
from scheduler.api.dashboard.session import Forbidden, NotSignedIn

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(planner.router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC), name="dashboard-static")

    async def not_signed_in(request: Request, _: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/dashboard/signin?{urlencode({'next': target})}", status_code=303)

    async def forbidden(request: Request, exc: Exception) -> Response:
        reason = exc.reason if isinstance(exc, Forbidden) else "refused"
        response: HTMLResponse = templates.TemplateResponse(
            request, "refused.html", {"session": None, "page": "refused", "reason": reason, "now": datetime.now(UTC)},
            status_code=403, headers=HEADERS,
        )
        return response

    app.add_exception_handler(NotSignedIn, not_signed_in)
    app.add_exception_handler(Forbidden, forbidden)
