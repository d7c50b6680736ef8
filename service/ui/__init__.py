"""The story browser: read-only web pages over the stories API, served by ``newsloom serve`` at
``/ui/`` (``/`` leads there). Pages in ``pages.py``, their templates in ``templates/``, the CSS and
the small script in ``static/`` (served at ``/ui/static``: nothing comes from elsewhere, so the
pages work offline)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from service.api.problems import PageErrors
from service.ui.pages import STATIC, error_page, router

ERRORS = PageErrors("/ui", error_page)
"""Every error under ``/ui`` is a page: pass it to ``problems.install`` and ``RequestContext`` for
the errors answered outside the pages' routes (a NUL or an oversized query string, a method a
page does not take, a missing static file)."""


def install(app: FastAPI) -> None:
    """Serve the story browser from ``app``: its static files, then its pages."""
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.include_router(router)
