"""The HTTP/1.1 connection protocol ``newsloom serve`` runs (uvicorn's httptools one, with limits).

uvicorn answers requests its parser refuses by itself, before the application sees them, with a
plain-text ``400 Invalid HTTP request received.``; httptools caps the URL only at 64 KiB (longer
ones fail there) and the header block not at all. ``ProblemHttpProtocol`` caps both and answers
every request refused at this level as the rest of the API does, with ``application/problem+json``
(RFC 9457):

- a request target (path and query) over ``MAX_URL_BYTES``: 414 URI Too Long;
- a request line and header block over ``MAX_HEAD_BYTES``: 431 Request Header Fields Too Large;
- anything else the parser refuses (not HTTP/1.1, a bad header line): 400 Bad Request.

The connection is closed after such an answer. Limits on what reaches the application (the query
string, the body: ``NEWSLOOM_MAX_BODY_BYTES``) are ``middleware.RequestContext``'s."""

from __future__ import annotations

from http import HTTPStatus

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.api.problems import MEDIA_TYPE, problem_bytes

MAX_URL_BYTES = 8 * 1024
"""Longest request target (path and query string, bytes) accepted."""

MAX_HEAD_BYTES = 64 * 1024
"""Largest request line and header block (bytes, as received) accepted in one request."""


class _Refused(Exception):
    """Raised from a parser callback: httptools stops parsing and uvicorn calls ``send_400_response``."""


class ProblemHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with ``MAX_URL_BYTES`` and ``MAX_HEAD_BYTES``, whose own
    refusals are problem documents. Pass it as ``uvicorn.run(..., http=ProblemHttpProtocol)``."""

    _refusal: tuple[int, str] | None = None
    _reading_head = True  # between requests and until a request's headers are complete
    _head_bytes = 0  # received since the last request ended
    _header_bytes = 0  # of the parsed header lines of this request

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)  # parses; a refusal in a callback ends in send_400_response
        if self._reading_head and self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self._refusal = self._too_large_head()  # a header block still coming in
            self.send_400_response("")

    @staticmethod
    def _too_large_head() -> tuple[int, str]:
        return 431, f"the request line and headers exceed {MAX_HEAD_BYTES} bytes"

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_URL_BYTES:
            self._refusal = (414, f"the request URL exceeds {MAX_URL_BYTES} bytes")
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4  # "name: value\r\n"
        if self._header_bytes > MAX_HEAD_BYTES:  # a header block that came in whole
            self._refusal = self._too_large_head()
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading_head, self._head_bytes = True, 0
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """Answer a request the parser refused (414, 431, else 400) as a problem document and
        close the connection (``msg``, uvicorn's plain-text reason, is not used)."""
        status, detail = self._refusal or (400, "the request is not valid HTTP/1.1")
        path = getattr(self, "url", b"").split(b"?", 1)[0][:200].decode("latin-1")
        body = problem_bytes(status, detail, path)
        head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [f"content-type: {MEDIA_TYPE}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()]
        self.transport.write(b"".join(head) + body)
        self.transport.close()
