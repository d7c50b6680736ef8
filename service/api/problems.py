"""Errors as RFC 9457 problem details (``application/problem+json``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, NamedTuple

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import NewsloomError

MEDIA_TYPE = "application/problem+json"


class Problem(NewsloomError):
    """Raise from a route to answer with a problem document: ``status`` (kept as ``problem_status``), a one-line ``detail`` and
    optional extension members (RFC 9457 §3.2)."""

    detail: str = ""  # plain attributes here, set per instance (the base derives them)
    extensions: dict[str, Any] = {}  # noqa: RUF012 - replaced per instance in __init__

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None, **extensions: Any) -> None:
        super().__init__(detail)
        self.problem_status = status
        self.detail = detail
        self.headers = headers
        self.extensions = extensions


def problem_document(status: int, detail: Any, instance: str, **extensions: Any) -> dict[str, Any]:
    """A problem document's members: ``type`` about:blank, ``title`` the status phrase, ``status``,
    ``detail``, ``instance`` (the request path), then ``extensions``."""
    return {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail,
            "instance": instance, **extensions}


def problem_bytes(status: int, detail: str, instance: str) -> bytes:
    """``problem_document`` serialised byte for byte as ``problem_response`` serialises it, for
    answers written below the application (``middleware``: 413, 414; ``http11``)."""
    return bytes(JSONResponse(problem_document(status, detail, instance)).body)


def problem_response(request: Request, status: int, detail: Any, headers: dict[str, str] | None = None, **extensions: Any) -> JSONResponse:
    """A problem-details response (``problem_document``) for ``request``."""
    body = problem_document(status, detail, request.url.path, **extensions)
    return JSONResponse(jsonable_encoder(body), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def allowed_methods(request: Request) -> list[str] | None:
    """Every method the API documents for the request's path, sorted (RFC 9110 §15.5.6: a 405's
    ``Allow``): those of every path template it matches (``/v1/feeds/import`` matches
    ``/v1/feeds/{feed_id}`` too), with HEAD wherever GET is (``middleware`` answers HEAD as GET);
    None for a path the OpenAPI document does not list (the story browser's pages)."""
    segments = request.url.path.split("/")
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        parts = template.split("/")  # "/v1/feeds/{feed_id}": a "{…}" part stands for any one segment
        if len(parts) == len(segments) and all(p == s or p.startswith("{") for p, s in zip(parts, segments, strict=True)):
            methods |= {method.upper() for method in operations}
    return sorted(methods | ({"HEAD"} if "GET" in methods else set())) or None


# A time whose zone offset lost its "+": "2024-05-01T00:00:00 02:00", as a query string's unencoded
# "+" reads (application/x-www-form-urlencoded).
_SPACED_OFFSET = re.compile(r"\d \d\d(:?\d\d)?$")


def _plus_hint(error: Mapping[str, Any]) -> str:
    """What to add to a query parameter's validation message when its value is a time whose ``+``
    offset arrived as a space (``?since=…T00:00:00+02:00`` typed into a URL); else nothing."""
    value = error.get("input")
    if error.get("loc", ())[:1] == ("query",) and isinstance(value, str) and _SPACED_OFFSET.search(value):
        return ' (a "+" in a query string reads as a space: write the offset as %2B02:00, or give the time in UTC with Z)'
    return ""


class PageErrors(NamedTuple):
    """The paths whose errors are web pages, not problem documents (the story browser's): those
    under ``prefix`` (``/ui``: ``/ui`` itself and ``/ui/…``), answered by ``render(request, status,
    detail, headers)``."""

    prefix: str
    render: Callable[[Request, int, str, dict[str, str] | None], Response]

    def cover(self, path: str) -> bool:
        """Whether ``path`` is one of these pages."""
        return path == self.prefix or path.startswith(self.prefix + "/")


def install(app: FastAPI, pages: PageErrors | None = None) -> None:
    """Route every error the app raises through ``problem_response``; an error outside the routes
    (a method a path does not take, a missing static file) on one of ``pages`` is its page
    instead (the pages' routes answer their own errors with pages)."""

    @app.exception_handler(NewsloomError)
    async def _problem(request: Request, exc: NewsloomError) -> JSONResponse:
        # Problem, and every error of the tree in service.errors a route lets pass (an InputError is a 422)
        return problem_response(request, exc.problem_status, exc.detail, exc.headers, **exc.extensions)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405 and (allowed := allowed_methods(request)):  # Starlette names only its first route's
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        if pages is not None and pages.cover(request.url.path):
            return pages.render(request, exc.status_code, str(exc.detail), headers)
        return problem_response(request, exc.status_code, exc.detail, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": list(err.get("loc", ())), "message": err.get("msg", "") + _plus_hint(err), "type": err.get("type", "")}
            for err in exc.errors()
        ]
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if "json" not in media_type and any(e["location"] == ["body"] and e["type"] == "model_attributes_type" for e in errors):
            # A JSON body sent without its media type (`curl -d` sends a form's): FastAPI did not read it as JSON.
            return problem_response(request, 415, "the body must be JSON, sent with Content-Type: application/json "
                                    f"(this request's is {media_type or 'missing'})")
        return problem_response(request, 422, "the request is not valid; see errors", errors=errors)


PROBLEM_SCHEMA = {
    "title": "Problem",
    "description": "RFC 9457 problem details. Validation errors (422) add `errors`; some problems add members "
    "such as `feed` (409 on subscribe), `rule` (SSRF refusals) or `checks` (503 from /readyz).",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": True,
}

_COMMON = {
    "413": "The request body exceeds NEWSLOOM_MAX_BODY_BYTES.",
    "414": "The query string exceeds 4096 bytes.",
    "422": "The request is not valid (see `errors`), or names something that cannot be used (an unreachable "
    "feed URL, an address refused by the SSRF guard, a document that is not OPML, a cursor issued under other filters).",
}
_PROTECTED = {
    "401": "No API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`, RFC 6750).",
    "403": "The key's scope does not allow this request (`error=\"insufficient_scope\"`).",
    "429": "The key's rate limit is exceeded; retry after `Retry-After` seconds.",
}


def document_errors(app: FastAPI) -> None:
    """Make the OpenAPI document say what errors really look like: every 4xx/5xx response is
    ``application/problem+json`` with the ``Problem`` schema, every operation lists the size and
    validation errors (413, 414, 422), operations behind API keys (``/v1``, ``/metrics``) list
    401, 403 and 429, and operations on one resource (``{id}`` paths) list 404, and 400 is listed where a cursor or a body
    can be unreadable, 415 where the body is JSON (sent as another media type)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        for name in ("HTTPValidationError", "ValidationError"):
            schema["components"]["schemas"].pop(name, None)
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                extra = dict(_COMMON)
                if path.startswith(("/v1/", "/metrics")):
                    extra.update(_PROTECTED)
                if "{" in path:
                    extra["404"] = "No such resource."
                if any(p.get("name") == "cursor" for p in operation.get("parameters", [])):
                    extra["400"] = "The cursor was not issued by this API."
                if "requestBody" in operation:
                    extra["400"] = "The body cannot be parsed (not JSON, or not UTF-8)."
                    if "application/json" in operation["requestBody"].get("content", {}):
                        extra["415"] = "The body was not sent as `Content-Type: application/json`."
                for code, description in extra.items():
                    responses.setdefault(code, {"description": description})
                for code, response in responses.items():
                    if code[0] in "45":
                        response["content"] = problem
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema
