"""Politeness per host: at most N requests in flight to one host, a minimum gap between the starts
of two requests to it (longer where the host's robots.txt asks for a Crawl-delay), a process-wide cap on requests in flight, and a "do not call before"
time per host (set from Retry-After on 429/503).

State is per process; the "do not call before" time is also written to the database for every feed
of the host (``store.defer_host``), so other replicas respect it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@functools.lru_cache(maxsize=1024)
def host_key(url: str) -> str:
    """The politeness key of ``url``: its lower-cased host name (ports share one host). Memoised
    (1,024 URLs, about 0.3 MiB): a feed claim asks it of up to ``leases.SPREAD_FACTOR`` due URLs per
    feed claimed, the next claim of mostly the same ones, the runner and the host limiter again of
    each claimed one."""
    return (urlsplit(url).hostname or "").lower()


@dataclass
class _Host:
    slots: asyncio.Semaphore
    next_start: float = 0.0
    blocked_until: float = 0.0
    gap: float = 0.0  # the host's own minimum gap (robots.txt Crawl-delay), if longer
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class HostLimiter:
    """``async with limiter.slot(url):`` waits for a free slot on the URL's host and for its minimum
    gap (``min_gap`` seconds since the previous start), under a global cap of ``global_limit``.

    Times are ``time.monotonic()`` seconds.
    """

    def __init__(self, per_host: int, min_gap: float, global_limit: int) -> None:
        self.per_host = per_host
        self.min_gap = min_gap
        self._global = asyncio.Semaphore(global_limit)
        self._hosts: dict[str, _Host] = {}

    def _host(self, key: str) -> _Host:
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host(asyncio.Semaphore(self.per_host))
        return host

    def block(self, url: str, seconds: float) -> None:
        """Make no request to ``url``'s host for ``seconds`` (from Retry-After)."""
        host = self._host(host_key(url))
        host.blocked_until = max(host.blocked_until, time.monotonic() + seconds)

    def set_gap(self, url: str, seconds: float) -> None:
        """Keep at least ``seconds`` between the starts of two requests to ``url``'s host (its
        robots.txt ``Crawl-delay``); the limiter's own ``min_gap`` applies when it is longer."""
        self._host(host_key(url)).gap = seconds

    def blocked_for(self, url: str) -> float:
        """Seconds left before ``url``'s host may be called again (0 when it may be called now)."""
        host = self._hosts.get(host_key(url))
        return max(0.0, host.blocked_until - time.monotonic()) if host else 0.0

    @contextlib.asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        host = self._host(host_key(url))
        async with self._global, host.slots:
            async with host.lock:  # serialise the gap bookkeeping, not the requests
                wait = host.next_start - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                host.next_start = time.monotonic() + max(self.min_gap, host.gap)
            yield
