"""HTTP fetching for feeds and article pages: one shared ``httpx.AsyncClient`` whose connections
go through the SSRF guard (``ssrf.GuardedBackend``), conditional GET, redirects followed here hop by
hop (scheme checked, loops and hop count capped, each hop under the host's politeness slot), a
total timeout over the whole exchange, and a body cap counted after decompression while
decompressing (``decompress.BoundedDecoder``).

Errors are ``FetchError`` subclasses that carry the URL, the HTTP status and what went wrong, so the
caller can record a one-line reason on the feed or the article.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urljoin

import httpcore
import httpx

from service.config import Settings
from service.errors import NewsloomError
from service.net.decompress import BoundedDecoder, DecodingFailed
from service.net.hosts import HostLimiter
from service.net.ssrf import BlockedAddress, GuardedBackend, Resolver, check_scheme, system_resolver

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
NO_COOKIES = DefaultCookiePolicy(allowed_domains=[])
"""A cookie policy that accepts and returns no cookie (an empty list of allowed domains)."""
PERMANENT_REDIRECTS = (301, 308)


class FetchError(NewsloomError):
    """A fetch that produced no usable body. ``reason`` is a short, human-readable cause; ``status``
    the HTTP status if one was received; ``retry_after`` the seconds the server asked us to wait
    (429/503 with Retry-After), else None."""

    def __init__(self, url: str, reason: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(f"{reason} ({url})")
        self.url = url
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


class FetchTimeout(FetchError):
    """Connect, read or total timeout exceeded."""


class ResponseTooLarge(FetchError):
    """The decompressed body passed the configured cap; reading stopped there."""


class HTTPStatusError(FetchError):
    """The server answered with a status other than 2xx or 304."""


class RedirectError(FetchError):
    """Too many redirect hops, a redirect loop, or a redirect without a usable Location."""


class ConnectFailed(FetchError):
    """No connection to the host: its name does not resolve, or every address refused the connection."""


class BlockedURL(FetchError):
    """The SSRF guard refused a URL or an address (first request or a redirect hop); ``rule``
    names the rule."""

    def __init__(self, url: str, reason: str, rule: str) -> None:
        super().__init__(url, reason)
        self.rule = rule


@dataclass(frozen=True)
class FetchResult:
    """A completed response. ``url`` is the final URL after redirects; ``body`` is decompressed bytes
    (empty for 304 Not Modified); ``redirects`` lists each hop as ``(status, location)``."""

    url: str
    status: int
    headers: httpx.Headers
    body: bytes = b""
    redirects: list[tuple[int, str]] = field(default_factory=list)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def permanent_url(self) -> str | None:
        """Where the requested URL has permanently moved: the target of the leading run of 301/308
        hops (a later 302/303/307 does not count), or None when the first hop was not permanent."""
        moved = None
        for status, location in self.redirects:
            if status not in PERMANENT_REDIRECTS:
                break
            moved = location
        return moved


class _Pool(httpcore.AsyncConnectionPool):
    """httpcore's connection pool with a cheaper pass over its connections, making the same choices.

    httpcore 1.0 makes a pass whenever a request starts or a response is closed: drop closed
    connections, close expired ones (keep-alive over, or closed by the server: the socket of an
    idle connection polled) and surplus idle ones, then give each waiting request a connection.
    That pass counts the connections once per idle one (a list built to take its length) and polls
    every idle socket; with the 32 connections of a busy poller, some thousand checks and 25
    ``poll`` calls a request, a third of the event loop's CPU in a round of 304s. Here:

    * no pass when no request waits for a connection (a closed response frees one, and the pass
      at the next request's start finds it);
    * a waiting request gets the first idle connection to its origin that no other request holds
      and that has not expired (checked then: a connection the server closed while idle is never
      reused), else a new connection, or one in place of an idle connection to another origin when
      the pool is full (as httpcore). A connection handed to a request stays idle until that
      request's task next runs, and httpcore handed it again meanwhile: the second request found
      it busy, raised ``ConnectionNotAvailable`` and asked again (more than once a request in a
      busy poller). The client speaks HTTP/1.1 only: one request a connection;
    * the sweep over every connection (closed, expired, surplus idle) runs at most every
      ``SWEEP_SECONDS`` and whenever the pool is full, so an idle connection the server closed is
      closed within that time rather than at the next request."""

    SWEEP_SECONDS = 1.0
    _next_sweep = 0.0  # time.monotonic() of the next sweep

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        queued = [request for request in self._requests if request.is_queued()]
        if not queued:
            return []
        closing: list[httpcore.AsyncConnectionInterface] = []
        now = time.monotonic()
        held = {id(request.connection) for request in self._requests if request.connection is not None}
        if now >= self._next_sweep or len(self._connections) >= self._max_connections:
            self._next_sweep = now + self.SWEEP_SECONDS
            self._sweep(held, closing)
        for request in queued:
            origin = request.request.url.origin
            connection = self._reusable(origin, held, closing)
            if connection is None:
                if len(self._connections) >= self._max_connections:
                    idle = next((c for c in self._connections if id(c) not in held and c.is_idle()), None)
                    if idle is None:
                        continue  # waits for the next pass
                    self._connections.remove(idle)
                    closing.append(idle)
                connection = self.create_connection(origin)
                self._connections.append(connection)
            held.add(id(connection))
            request.assign_to_connection(connection)
        return closing

    def _sweep(self, held: set[int], closing: list[httpcore.AsyncConnectionInterface]) -> None:
        """Drop the closed connections; move the expired ones, and the idle ones past
        ``max_keepalive_connections``, to ``closing``, except those ``held`` (ids of the connections
        handed to requests)."""
        for connection in list(self._connections):
            if connection.is_closed():
                self._connections.remove(connection)
            elif id(connection) in held:
                continue
            elif connection.has_expired() or (
                connection.is_idle() and len(self._connections) > self._max_keepalive_connections
            ):
                self._connections.remove(connection)
                closing.append(connection)

    def _reusable(
        self, origin: httpcore.Origin, held: set[int], closing: list[httpcore.AsyncConnectionInterface]
    ) -> httpcore.AsyncConnectionInterface | None:
        """The first available connection to ``origin`` not ``held`` (ids of the connections handed
        to requests) that has not expired; expired ones met on the way move to ``closing``."""
        for connection in list(self._connections):
            if id(connection) not in held and connection.can_handle_request(origin) and connection.is_available():
                if not connection.has_expired():
                    return connection
                self._connections.remove(connection)
                closing.append(connection)
        return None


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool (``_Pool``) built on ``GuardedBackend``."""

    def __init__(self, backend: GuardedBackend, verify: ssl.SSLContext | bool, limits: httpx.Limits) -> None:
        super().__init__(verify=verify, limits=limits, trust_env=False)
        self._pool = _Pool(
            ssl_context=self._pool._ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


def create_client(
    settings: Settings, *, resolver: Resolver | None = None, verify: ssl.SSLContext | bool = True,
    trusted: Iterable[tuple[str, int]] = (), timeout: float | None = None,
) -> httpx.AsyncClient:
    """The process-wide HTTP client: Newsloom User-Agent, timeouts, SSRF-guarded connections.

    ``timeout`` (seconds) replaces the connect/read/pool timeouts from ``settings`` with one value
    (the webhook client uses ``webhook_timeout``).

    ``resolver`` replaces the system DNS resolver (``async (host, port) -> [(ip, port)]``) and
    ``verify`` the TLS trust store; tests use both to serve ``example.org`` names from 127.0.0.1.
    ``trusted`` (ip, port) pairs bypass the SSRF guard (see ``ssrf.GuardedBackend``).
    Redirects are not followed by the client: ``fetch`` follows them. Cookies are neither kept nor
    sent (``NO_COOKIES``): the client serves every feed, page and webhook subscription alike, and a
    cookie one server set would otherwise go back to it on another user's request.
    """
    timeouts = httpx.Timeout(timeout) if timeout is not None else httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=settings.read_timeout,
        pool=settings.total_timeout,
    )
    # As many idle connections kept as requests may be in flight: with fewer, a busy poller closes
    # and reopens connections (each through the SSRF guard) to the hosts it polls all the time.
    limits = httpx.Limits(max_connections=max(100, settings.global_concurrency),
                          max_keepalive_connections=max(20, settings.global_concurrency))
    backend = GuardedBackend(allow_private=settings.allow_private_networks, resolver=resolver or system_resolver, trusted=trusted)
    return httpx.AsyncClient(
        headers={"User-Agent": settings.user_agent, "Accept-Encoding": BoundedDecoder.ACCEPT_ENCODING},
        timeout=timeouts,
        follow_redirects=False,
        cookies=CookieJar(NO_COOKIES),
        transport=GuardedTransport(backend, verify, limits),
        trust_env=False,
    )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (RFC 9110 §10.2.3): delay-seconds or an
    HTTP-date (then relative to ``now``, default the current UTC time). None if absent or unreadable;
    never negative."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit alone takes "²"
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    total_timeout: float,
    max_redirects: int = 5,
    etag: str | None = None,
    last_modified: str | None = None,
    accept: str | None = None,
    limiter: HostLimiter | None = None,
    truncate: bool = False,
) -> FetchResult:
    """GET ``url`` and return its body, at most ``max_bytes`` bytes after decompression; with
    ``truncate`` a longer body is cut to its first ``max_bytes`` bytes (the rest is not read)
    instead of raising ``ResponseTooLarge``.

    Sends ``If-None-Match``/``If-Modified-Since`` when ``etag``/``last_modified`` are given (RFC 9110
    §13.1) and returns a 304 result with an empty body when the server says nothing changed.
    Follows up to ``max_redirects`` redirects (301/302/303/307/308, RFC 9110 §15.4), each Location
    resolved against the current URL (RFC 3986 §5) and checked by the SSRF guard. The whole exchange,
    every hop and the body included, is bounded by ``total_timeout`` seconds. With ``limiter`` every
    hop waits for its host's politeness slot (the wait counts towards the total timeout).

    Raises ``BlockedURL`` (SSRF rule), ``FetchTimeout``, ``ResponseTooLarge``, ``RedirectError``,
    ``HTTPStatusError`` (non-2xx other than 304, with ``retry_after`` for 429/503), ``ConnectFailed``
    (DNS failure, connection refused) or ``FetchError`` (undecodable body, protocol errors).
    """
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    if accept:
        headers["Accept"] = accept
    current = url
    redirects: list[tuple[int, str]] = []
    seen = {url}
    try:
        async with asyncio.timeout(total_timeout):
            while True:
                try:
                    check_scheme(current)
                except BlockedAddress as exc:
                    raise BlockedURL(current, str(exc), exc.rule) from exc
                if limiter is None:
                    result = await _one_hop(client, current, headers, max_bytes, truncate)
                else:
                    async with limiter.slot(current):
                        result = await _one_hop(client, current, headers, max_bytes, truncate)
                if isinstance(result, FetchResult):
                    return FetchResult(result.url, result.status, result.headers, result.body, redirects)
                status, location = result
                target = urljoin(current, location)
                redirects.append((status, target))
                if target in seen:
                    chain = " → ".join([url, *(loc for _s, loc in redirects)])
                    raise RedirectError(url, f"redirect loop after {len(redirects)} hops: {chain}", status)
                if len(redirects) > max_redirects:
                    raise RedirectError(url, f"more than {max_redirects} redirects (last to {target})", status)
                seen.add(target)
                current = target
    except TimeoutError as exc:
        raise FetchTimeout(current, f"no complete response within the {total_timeout:g} s total timeout") from exc
    except BlockedAddress as exc:
        raise BlockedURL(current, f"{exc}" + (f" (after redirect from {url})" if current != url else ""), exc.rule) from exc
    except httpx.TimeoutException as exc:
        raise FetchTimeout(current, f"timed out ({type(exc).__name__})") from exc
    except httpx.ConnectError as exc:
        raise ConnectFailed(current, f"ConnectError: {exc}" if str(exc) else "ConnectError") from exc
    except DecodingFailed as exc:
        raise FetchError(current, f"undecodable response body: {exc}") from exc
    except httpx.HTTPError as exc:
        raise FetchError(current, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc


async def _one_hop(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], max_bytes: int, truncate: bool
) -> FetchResult | tuple[int, str]:
    """One request: a ``FetchResult``, or ``(status, Location)`` for a redirect."""
    async with client.stream("GET", url, headers=headers) as response:
        status = response.status_code
        if status in REDIRECT_STATUSES:
            location = response.headers.get("location", "").strip()
            if not location:
                raise RedirectError(url, f"HTTP {status} redirect without a Location header", status)
            return status, location
        if status == 304:
            # A 304 has no body (RFC 9110 §15.4.5); reading its end lets the connection be reused
            # instead of closed with the response.
            await response.aread()
            return FetchResult(url, 304, response.headers, b"")
        if not 200 <= status < 300:
            retry_after = parse_retry_after(response.headers.get("retry-after")) if status in (429, 503) else None
            raise HTTPStatusError(url, f"HTTP {status}", status=status, retry_after=retry_after)
        declared = response.headers.get("content-length", "")
        if not truncate and declared.isdigit() and "content-encoding" not in response.headers and int(declared) > max_bytes:
            raise ResponseTooLarge(url, f"body of {declared} bytes exceeds the {max_bytes}-byte cap", status)
        encoding = response.headers.get("content-encoding")
        decoder = BoundedDecoder(encoding)
        too_large = f"body exceeds the {max_bytes}-byte cap" + (f" once decoded ({encoding})" if encoding else "")
        chunks: list[bytes] = []
        size = 0
        async for raw in response.aiter_raw():
            chunk = decoder.decode(raw, max_bytes - size)
            size += len(chunk)
            chunks.append(chunk)
            if size > max_bytes:
                break
        else:
            tail = decoder.flush(max_bytes - size)
            size += len(tail)
            chunks.append(tail)
        if size > max_bytes and not truncate:
            raise ResponseTooLarge(url, too_large, status)
        return FetchResult(url, status, response.headers, b"".join(chunks)[:max_bytes])
