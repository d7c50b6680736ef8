"""ASGI middleware around every request: the request id (``X-Request-ID``, echoed or generated,
and set for the request's log lines), request size limits (body: 413, query string: 414, as
problem details, or as pages on the story browser's paths; a NUL character in the query string:
422), HEAD answered as GET without the body
(RFC 9110 §9.3.2; FastAPI routes declare GET only) and the request-duration histogram by route
template. The URL and header limits of ``newsloom serve``, before a request reaches the application,
are ``http11``'s."""

from __future__ import annotations

import time

from fastapi import HTTPException, Request

from service import logs, metrics
from service.api.problems import MEDIA_TYPE, PageErrors, problem_bytes

# Longest query string accepted (bytes); longer ones get 414 URI Too Long.
MAX_QUERY_BYTES = 4096


class RequestContext:
    """Wraps the application: ``max_body_bytes`` is the largest request body accepted, checked on
    ``Content-Length`` and again while the body streams in (chunked uploads); a request refused
    here on one of ``pages`` is answered with its error page."""

    def __init__(self, app, max_body_bytes: int, pages: PageErrors | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.pages = pages

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = logs.request_id_from(headers.get(b"x-request-id", b"").decode("latin-1"))
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        status = 500
        response_started = False

        head = scope.get("method") == "HEAD"
        inner = {**scope, "method": "GET"} if head else scope  # the routing writes scope["route"] here

        async def send_with_id(message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}  # the GET headers (Content-Length too), no body
            await send(message)

        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(413, f"the request body exceeds {self.max_body_bytes} bytes")
            return message

        try:
            declared = headers.get(b"content-length")
            if len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
                await self._refuse(scope, receive, send_with_id, 414, f"the query string exceeds {MAX_QUERY_BYTES} bytes")
            elif b"%00" in scope.get("query_string", b""):  # PostgreSQL text cannot hold NUL; never meaningful
                await self._refuse(scope, receive, send_with_id, 422, "the query string contains a NUL character (%00)")
            elif declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
                await self._refuse(scope, receive, send_with_id, 413, f"the request body exceeds {self.max_body_bytes} bytes")
            else:
                try:
                    await self.app(inner, limited_receive, send_with_id)
                except HTTPException as exc:  # raised by limited_receive outside a route's handlers
                    if response_started:
                        raise
                    await self._refuse(scope, receive, send_with_id, exc.status_code, str(exc.detail))
        finally:
            route = inner.get("route")
            template = getattr(route, "path", None) or "unmatched"
            metrics.HTTP_DURATION.labels(scope.get("method", ""), template, str(status)).observe(
                time.perf_counter() - started
            )
            logs.request_id.reset(token)

    async def _refuse(self, scope, receive, send, status: int, detail: str) -> None:
        if self.pages is not None and self.pages.cover(scope.get("path", "")):
            await self.pages.render(Request(scope, receive), status, detail, {"Connection": "close"})(scope, receive, send)
            return
        body = problem_bytes(status, detail, scope.get("path", ""))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
