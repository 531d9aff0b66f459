"""Interactive docs without a CDN, and the OpenAPI document completed.

Swagger UI and ReDoc come from the files bundled in the ``fastapi-offline`` package
(served from here, so /docs works offline); each page loads its start-up script from a
file of ours, so the docs' Content-Security-Policy allows no inline script.
The OpenAPI document gains the bearer scheme, the problem+json schema and the error
answers every operation can give (``openapi.complete``).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response

from scheduler.api import openapi
from scheduler.errors import NotFoundError

ASSETS = Path(fastapi_offline.__file__).parent / "static"
BUNDLED = {"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"}
PREFIX = "/static/docs"

SWAGGER_INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout",
  });
});
"""
REDOC_INIT = """window.addEventListener("load", function () {
  Redoc.init("/openapi.json", {}, document.getElementById("redoc"));
});
"""
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="icon" href="{prefix}/favicon.png">{head}</head>
<body><div id="{dom}"></div>{scripts}</body></html>
"""


def _page(title: str, dom: str, scripts: list[str], head: str = "") -> HTMLResponse:
    tags = "".join(f'<script src="{PREFIX}/{s}"></script>' for s in scripts)
    return HTMLResponse(PAGE.format(title=title, prefix=PREFIX, head=head, dom=dom, scripts=tags))


def install(app: FastAPI) -> None:
    app.openapi = lambda: openapi.complete(app)  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        css = f'<link rel="stylesheet" href="{PREFIX}/swagger-ui.css">'
        return _page("Followthrough API", "swagger-ui", ["swagger-ui-bundle.js", "swagger-init.js"], css)

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _page("Followthrough API", "redoc", ["redoc.standalone.js", "redoc-init.js"])

    @app.get(PREFIX + "/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name == "swagger-init.js":
            return Response(SWAGGER_INIT, media_type="text/javascript")
        if name == "redoc-init.js":
            return Response(REDOC_INIT, media_type="text/javascript")
        if name not in BUNDLED:
            raise NotFoundError("asset", name)
        return FileResponse(ASSETS / name, headers={"Cache-Control": "public, max-age=86400"})
