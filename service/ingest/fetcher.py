"""HTTP fetching for feeds and article pages: one shared ``httpx.AsyncClient``, conditional GET,
redirects followed up to a cap, timeouts, and a cap on the body size counted after decompression.

Errors are ``FetchError`` subclasses that carry the URL and what went wrong, so the caller can
record a one-line reason on the feed or the article.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx

from service.config import Settings


class FetchError(Exception):
    """A fetch that produced no usable body. ``reason`` is a short, human-readable cause."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{reason} ({url})")
        self.url = url
        self.reason = reason
        self.status = status


class FetchTimeout(FetchError):
    """Connect, read or total timeout exceeded."""


class ResponseTooLarge(FetchError):
    """The decompressed body passed the configured cap; reading stopped there."""


class HTTPStatusError(FetchError):
    """The server answered with a status other than 2xx or 304."""


@dataclass(frozen=True)
class FetchResult:
    """A completed response. ``url`` is the final URL after redirects; ``body`` is decompressed bytes
    (empty for 304 Not Modified)."""

    url: str
    status: int
    headers: httpx.Headers
    body: bytes = b""
    redirects: list[tuple[int, str]] = field(default_factory=list)

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def create_client(settings: Settings) -> httpx.AsyncClient:
    """The process-wide HTTP client: Newsloom User-Agent, timeouts and redirect cap from ``settings``."""
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=settings.read_timeout,
        pool=settings.total_timeout,
    )
    return httpx.AsyncClient(
        headers={"User-Agent": settings.user_agent},
        timeout=timeout,
        follow_redirects=True,
        max_redirects=settings.max_redirects,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        trust_env=False,
    )


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    total_timeout: float,
    etag: str | None = None,
    last_modified: str | None = None,
    accept: str | None = None,
) -> FetchResult:
    """GET ``url`` and return its body, at most ``max_bytes`` bytes after decompression.

    Sends ``If-None-Match``/``If-Modified-Since`` when ``etag``/``last_modified`` are given (RFC 9110
    §13.1) and returns a 304 result with an empty body when the server says nothing changed.
    The whole exchange, body included, is bounded by ``total_timeout`` seconds.

    Raises ``FetchTimeout``, ``ResponseTooLarge``, ``HTTPStatusError`` (non-2xx other than 304) or
    ``FetchError`` (connection refused, DNS failure, too many redirects, protocol errors).
    """
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    if accept:
        headers["Accept"] = accept
    try:
        async with asyncio.timeout(total_timeout):
            async with client.stream("GET", url, headers=headers) as response:
                redirects = [(r.status_code, str(r.url)) for r in response.history]
                if response.status_code == 304:
                    return FetchResult(str(response.url), 304, response.headers, b"", redirects)
                if not 200 <= response.status_code < 300:
                    raise HTTPStatusError(
                        str(response.url), f"HTTP {response.status_code}", status=response.status_code
                    )
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and "content-encoding" not in response.headers and int(declared) > max_bytes:
                    raise ResponseTooLarge(url, f"body of {declared} bytes exceeds the {max_bytes}-byte cap")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise ResponseTooLarge(url, f"body exceeds the {max_bytes}-byte cap")
                    chunks.append(chunk)
                return FetchResult(str(response.url), response.status_code, response.headers, b"".join(chunks), redirects)
    except TimeoutError as exc:
        raise FetchTimeout(url, f"no complete response within {total_timeout:g} s") from exc
    except httpx.TimeoutException as exc:
        raise FetchTimeout(url, f"timed out ({type(exc).__name__})") from exc
    except httpx.TooManyRedirects as exc:
        raise FetchError(url, "too many redirects") from exc
    except httpx.DecodingError as exc:
        raise FetchError(url, f"undecodable response body: {exc}") from exc
    except httpx.HTTPError as exc:
        raise FetchError(url, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc
