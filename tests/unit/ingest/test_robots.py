"""``service.ingest.robots``: RFC 9309 rules, fetch outcomes and the per-host cache.

The HTTP exchange runs over ``httpx.MockTransport`` (no sockets); ``fetch`` is the real one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from service.config import Settings
from service.ingest.robots import RobotsCache, RobotsUnavailable

ROBOTS = (Path(__file__).parent / "fixtures" / "robots.txt").read_bytes()
USER_AGENT = Settings().user_agent  # "Newsloom/0.1 (+https://…)": product token "Newsloom"


def make_cache(handler: Callable[[httpx.Request], httpx.Response], user_agent: str = USER_AGENT,
               ttl: float = 3600) -> tuple[RobotsCache, list[str]]:
    """A cache whose client answers with ``handler``; the returned list logs requested URLs."""
    requested: list[str] = []

    def logged(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return handler(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(logged))
    return RobotsCache(client, user_agent, ttl, total_timeout=5), requested


def respond(status: int, body: bytes = b"", **headers: str) -> httpx.Response:
    """A response streamed like a real transport's (``fetch`` reads it raw, chunk by chunk)."""
    return httpx.Response(status, headers={k.replace("_", "-"): v for k, v in headers.items()}, stream=httpx.ByteStream(body))


def serve_rules(request: httpx.Request) -> httpx.Response:
    return respond(200, ROBOTS, content_type="text/plain")


@pytest.mark.parametrize(("path", "allowed"), [
    ("/", True),
    ("/drafts/x", False),
    ("/drafts/public/story", True),  # longer Allow beats shorter Disallow (RFC 9309 §2.2.2)
    ("/news/1?session=abc", False),  # "*" wildcard
    ("/news/1?page=2", True),
    # Our group replaces "*" entirely (RFC 9309 §2.2.1): its rules do not apply to us
    ("/private/memo", True),
    ("/report.pdf", True),
])
async def test_rules_of_our_user_agent_group(path: str, allowed: bool) -> None:
    cache, _ = make_cache(serve_rules)
    assert await cache.allowed(f"https://news.example.org{path}") is allowed


@pytest.mark.parametrize(("path", "allowed"), [
    ("/private/memo", False),
    ("/private/press/release", True),  # longest match wins
    ("/report.pdf", False),  # "$" anchors the end
    ("/report.pdf?download=1", True),
    ("/search", False),
    ("/searching", False),  # a path prefix, not a path segment
    ("/drafts/x", True),  # "Newsloom" group rules do not apply to other agents
])
async def test_rules_for_an_agent_in_the_star_group(path: str, allowed: bool) -> None:
    cache, _ = make_cache(serve_rules, user_agent="SomeCrawler/2.0")
    assert await cache.allowed(f"https://news.example.org{path}") is allowed


async def test_a_named_group_may_disallow_everything() -> None:
    cache, _ = make_cache(serve_rules, user_agent="OtherBot/1.0")
    assert not await cache.allowed("https://news.example.org/")


@pytest.mark.parametrize("status", [401, 403, 404, 410, 451])
async def test_client_errors_allow_everything(status: int) -> None:
    """RFC 9309 §2.3.1.3: 4xx ("unavailable") means the crawler may access any resource."""
    cache, requested = make_cache(lambda request: respond(status))
    assert await cache.allowed("https://news.example.org/drafts/x")
    assert await cache.allowed("https://news.example.org/other")
    assert requested == ["https://news.example.org/robots.txt"]


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_disallow_everything_and_are_cached(status: int) -> None:
    """RFC 9309 §2.3.1.4: 5xx ("unreachable") means complete disallow; retried after a while."""
    cache, requested = make_cache(lambda request: respond(status))
    for path in ("/a", "/b"):
        with pytest.raises(RobotsUnavailable, match=f"HTTP {status}"):
            await cache.allowed(f"https://news.example.org{path}")
    assert len(requested) == 1


async def test_network_error_is_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    cache, _ = make_cache(refuse)
    with pytest.raises(RobotsUnavailable, match="ConnectError"):
        await cache.allowed("https://news.example.org/a")


async def test_redirects_are_followed() -> None:
    """RFC 9309 §2.3.1.2: follow at least five redirects."""
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "news.example.org":
            return respond(301, location="https://cdn.example.net/robots/news.txt")
        return serve_rules(request)

    cache, requested = make_cache(handler)
    assert not await cache.allowed("https://news.example.org/drafts/x")
    assert requested == ["https://news.example.org/robots.txt", "https://cdn.example.net/robots/news.txt"]


@pytest.mark.parametrize("body", [
    b"<!doctype html><html><body>Welcome! Disallow: / is not a rule here</body></html>",  # soft 404
    b"",
    b"\xff\xfe garbage \x00\x01 Disallow without colon",
])
async def test_a_body_without_rules_allows_everything(body: bytes) -> None:
    cache, _ = make_cache(lambda request: respond(200, body))
    assert await cache.allowed("https://news.example.org/drafts/x")


async def test_one_robots_txt_per_scheme_host_and_port() -> None:
    cache, requested = make_cache(serve_rules)
    await asyncio.gather(*(cache.allowed(f"https://news.example.org/{n}") for n in range(20)))
    await cache.allowed("http://news.example.org/a")
    await cache.allowed("https://news.example.org:8443/a")
    assert requested == [
        "https://news.example.org/robots.txt",
        "http://news.example.org/robots.txt",
        "https://news.example.org:8443/robots.txt",
    ]


async def test_expired_entry_is_fetched_again() -> None:
    cache, requested = make_cache(serve_rules, ttl=-1)
    await cache.allowed("https://news.example.org/a")
    await cache.allowed("https://news.example.org/b")
    assert len(requested) == 2


async def test_url_refused_by_the_ssrf_guard_is_left_to_the_page_fetch() -> None:
    """No robots.txt is fetched for a URL the guard refuses; the page fetch refuses it itself."""
    cache, requested = make_cache(serve_rules)
    assert await cache.allowed("ftp://news.example.org/drafts/x")
    assert requested == []
