"""The interactive API documentation at ``/docs`` (Swagger UI), served whole by the service: its
JavaScript, CSS and favicon come from the ``swagger-ui-bundle-v2`` package at ``/docs/static``, so
the page works offline and behind a firewall. No ReDoc page (FastAPI's loads from a CDN)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_URL = "/docs"
STATIC_URL = f"{DOCS_URL}/static"


def install(app: FastAPI) -> None:
    """Serve Swagger UI for ``app.openapi_url`` at ``/docs``, its assets at ``/docs/static/``
    (create ``app`` with ``docs_url=None, redoc_url=None``)."""
    app.mount(STATIC_URL, StaticFiles(directory=swagger_ui_path), name="docs-static")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + app.openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # no spec sent to validator.swagger.io
        )
