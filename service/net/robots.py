"""robots.txt (RFC 9309) for article pages, cached per host, parsed with protego.

A ``Crawl-delay`` for our User-Agent (not in RFC 9309, but widely used) becomes the host's minimum
gap between requests in the politeness limiter, up to ``MAX_CRAWL_DELAY`` seconds.

Feeds are not checked: a subscription is an explicit request for that document. Outcomes of
fetching ``/robots.txt`` (RFC 9309 §2.3.1): 2xx → its rules; 4xx → everything allowed; 5xx or
unreachable → everything disallowed for now (the page is retried later), cached briefly.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
from protego import Protego

from service.errors import NewsloomError
from service.net.fetcher import ConnectFailed, FetchError, HTTPStatusError, fetch
from service.net.hosts import HostLimiter

# Bytes of robots.txt read; a longer file is cut there and its cut last line dropped (RFC 9309 §2.5:
# parse at least 500 KiB).
MAX_ROBOTS_BYTES = 512 * 1024
# Longest Crawl-delay honoured, in seconds: a larger one (some sites ask for hours) is cut to it.
MAX_CRAWL_DELAY = 30.0
# Seconds an unreachable robots.txt is cached before trying again.
UNREACHABLE_TTL = 600


class RobotsUnavailable(NewsloomError):
    """robots.txt could not be fetched (5xx, timeout) or its host not reached (DNS, refused
    connection; the message is then the connection's error, which the page would meet too):
    RFC 9309 says assume complete disallow."""


@dataclass
class _Entry:
    rules: Protego | None  # None: allow all
    unreachable: str | None
    expires: float


class RobotsCache:
    """``await cache.allowed(url)``: may ``user_agent`` fetch ``url``? One robots.txt per
    scheme+host+port, kept ``ttl`` seconds."""

    def __init__(self, client: httpx.AsyncClient, user_agent: str, ttl: float, *, total_timeout: float,
                 limiter: HostLimiter | None = None) -> None:
        self.client = client
        self.user_agent = user_agent
        self.ttl = ttl
        self.total_timeout = total_timeout
        self.limiter = limiter
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def allowed(self, url: str) -> bool:
        """True when robots.txt allows ``url`` for our User-Agent. Raises ``RobotsUnavailable`` when
        the host's robots.txt is unreachable (5xx, network error)."""
        parts = urlsplit(url)
        root = urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))
        async with self._locks.setdefault(root, asyncio.Lock()):  # one fetch per host, however many pages wait
            entry = self._entries.get(root)
            if entry is None or entry.expires < time.monotonic():
                entry = await self._load(root)
                self._entries[root] = entry
        if entry.unreachable:
            raise RobotsUnavailable(entry.unreachable)
        return True if entry.rules is None else entry.rules.can_fetch(url, self.user_agent)

    async def _load(self, root: str) -> _Entry:
        now = time.monotonic()
        try:
            result = await fetch(self.client, root, max_bytes=MAX_ROBOTS_BYTES, total_timeout=self.total_timeout,
                                 accept="text/plain", limiter=self.limiter, truncate=True)
        except HTTPStatusError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                return _Entry(None, None, now + self.ttl)
            return _Entry(None, f"robots.txt unavailable: {exc.reason}", now + UNREACHABLE_TTL)
        except ConnectFailed as exc:  # the host itself cannot be reached (DNS, refused): say so, not "robots.txt"
            return _Entry(None, exc.reason, now + UNREACHABLE_TTL)
        except FetchError as exc:
            if getattr(exc, "rule", None):  # refused by the SSRF guard: the page will be refused too
                return _Entry(None, None, now + self.ttl)
            return _Entry(None, f"robots.txt unavailable: {exc.reason}", now + UNREACHABLE_TTL)
        body = result.body
        if len(body) == MAX_ROBOTS_BYTES:  # maybe cut: a half line could be a different rule
            body = body[: body.rfind(b"\n") + 1]
        rules = Protego.parse(body.decode("utf-8", errors="replace"))
        delay = rules.crawl_delay(self.user_agent)
        if delay and self.limiter is not None:
            self.limiter.set_gap(root, min(float(delay), MAX_CRAWL_DELAY))
        return _Entry(rules, None, now + self.ttl)
