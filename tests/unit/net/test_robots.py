"""``service.net.robots``: RFC 9309 rules, fetch outcomes and the per-host cache.

Every robots.txt is fetched over real sockets from the loopback ``TestServer`` through the
service's own client (``create_client``: SSRF-guarded transport, the server's ``resolver`` mapping
``*.example.org`` to 127.0.0.1, its TLS certificate trusted); assertions read what the server logged.
One server serves the whole module (starting and stopping one costs up to a second); ``server``
clears its routes and log before each test."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from service.config import Settings
from service.net.fetcher import create_client
from service.net.hosts import HostLimiter, host_key
from service.net.robots import MAX_CRAWL_DELAY, MAX_ROBOTS_BYTES, RobotsCache, RobotsUnavailable
from tests.server import TestServer

ROBOTS = (Path(__file__).parent / "fixtures" / "robots.txt").read_bytes()
# Loopback allowed: every test host resolves to the server on 127.0.0.1.
SETTINGS = Settings(allow_private_networks=True)
USER_AGENT = SETTINGS.user_agent  # "Newsloom/0.1 (+https://…)": product token "Newsloom"
HOST = "news.example.org"


@pytest.fixture(scope="module")
def module_server() -> Iterator[TestServer]:
    with TestServer(None) as srv:
        yield srv


@pytest.fixture
def server(module_server: TestServer) -> TestServer:
    """The module's server with no routes, no extra DNS names and an empty log."""
    for kept in (module_server.routes, module_server.dns, module_server.log, module_server.requests):
        kept.clear()
    return module_server


@pytest.fixture
async def client(server: TestServer) -> AsyncIterator[httpx.AsyncClient]:
    async with create_client(SETTINGS, resolver=server.resolver, verify=server.client_ssl) as client:
        yield client


def make_cache(client: httpx.AsyncClient, user_agent: str = USER_AGENT, ttl: float = 3600) -> RobotsCache:
    return RobotsCache(client, user_agent, ttl, total_timeout=5)


def fetched(server: TestServer) -> list[tuple[str, str, str]]:
    """``(scheme, Host header, path)`` of every request the server received, in order."""
    return [(r.scheme, r.headers["Host"], r.path) for r in server.log]


def serve_rules(server: TestServer, host: str = HOST) -> None:
    server.add("/robots.txt", ROBOTS, host=host, Content_Type="text/plain")


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
async def test_rules_of_our_user_agent_group(server, client, path: str, allowed: bool) -> None:
    serve_rules(server)
    assert await make_cache(client).allowed(f"https://{HOST}{path}") is allowed
    assert fetched(server) == [("https", HOST, "/robots.txt")]
    assert server.log[0].headers["User-Agent"] == USER_AGENT


@pytest.mark.parametrize(("path", "allowed"), [
    ("/private/memo", False),
    ("/private/press/release", True),  # longest match wins
    ("/report.pdf", False),  # "$" anchors the end
    ("/report.pdf?download=1", True),
    ("/search", False),
    ("/searching", False),  # a path prefix, not a path segment
    ("/drafts/x", True),  # "Newsloom" group rules do not apply to other agents
])
async def test_rules_for_an_agent_in_the_star_group(server, client, path: str, allowed: bool) -> None:
    serve_rules(server)
    assert await make_cache(client, user_agent="SomeCrawler/2.0").allowed(f"https://{HOST}{path}") is allowed


async def test_a_named_group_may_disallow_everything(server, client) -> None:
    serve_rules(server)
    assert not await make_cache(client, user_agent="OtherBot/1.0").allowed(f"https://{HOST}/")


@pytest.mark.parametrize("status", [401, 403, 404, 410, 451])
async def test_client_errors_allow_everything(server, client, status: int) -> None:
    """RFC 9309 §2.3.1.3: 4xx ("unavailable") means the crawler may access any resource."""
    server.add("/robots.txt", "", status, host=HOST)
    cache = make_cache(client)
    assert await cache.allowed(f"https://{HOST}/drafts/x")
    assert await cache.allowed(f"https://{HOST}/other")
    assert fetched(server) == [("https", HOST, "/robots.txt")]


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_disallow_everything_and_are_cached(server, client, status: int) -> None:
    """RFC 9309 §2.3.1.4: 5xx ("unreachable") means complete disallow; retried after a while."""
    server.add("/robots.txt", "", status, host=HOST)
    cache = make_cache(client)
    for path in ("/a", "/b"):
        with pytest.raises(RobotsUnavailable, match=f"HTTP {status}"):
            await cache.allowed(f"https://{HOST}{path}")
    assert fetched(server) == [("https", HOST, "/robots.txt")]


async def test_network_error_is_unreachable(server, client) -> None:
    """closed.example.org resolves to a port on 127.0.0.1 that is bound but not listening: the
    connection is refused."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        server.dns["closed.example.org"] = "127.0.0.1"
        with pytest.raises(RobotsUnavailable, match="ConnectError"):
            await make_cache(client).allowed(f"http://closed.example.org:{port}/a")
    assert server.log == []


async def test_an_unresolvable_host_is_reported_as_such(server, client) -> None:
    """A page whose host has no address: the reason is the DNS failure the page would meet too,
    not "robots.txt unavailable"."""
    with pytest.raises(RobotsUnavailable) as raised:
        await make_cache(client).allowed("https://gone.example.net/a")
    assert str(raised.value).startswith("ConnectError: cannot resolve gone.example.net"), raised.value
    assert "robots" not in str(raised.value)
    assert server.log == []


async def test_redirects_are_followed_across_hosts(server, client) -> None:
    """RFC 9309 §2.3.1.2: follow at least five redirects."""
    server.add("/robots.txt", "", 301, host=HOST, Location="https://cdn.example.org/robots/news.txt")
    server.add("/robots/news.txt", ROBOTS, host="cdn.example.org", Content_Type="text/plain")
    assert not await make_cache(client).allowed(f"https://{HOST}/drafts/x")
    assert fetched(server) == [("https", HOST, "/robots.txt"), ("https", "cdn.example.org", "/robots/news.txt")]


@pytest.mark.parametrize("body", [
    b"<!doctype html><html><body>Welcome! Disallow: / is not a rule here</body></html>",  # soft 404
    b"",
    b"\xff\xfe garbage \x00\x01 Disallow without colon",
])
async def test_a_body_without_rules_allows_everything(server, client, body: bytes) -> None:
    server.add("/robots.txt", body, host=HOST)
    assert await make_cache(client).allowed(f"https://{HOST}/drafts/x")
    assert fetched(server) == [("https", HOST, "/robots.txt")]


async def test_one_robots_txt_per_scheme_host_and_port(server, client) -> None:
    """20 concurrent pages of one origin share one fetch. The other port is the server's TLS port
    named explicitly (``news.example.org:<tls_port>``): the same listener, another cache key, told
    apart in the log by the Host header."""
    serve_rules(server)
    cache = make_cache(client)
    await asyncio.gather(*(cache.allowed(f"https://{HOST}/{n}") for n in range(20)))
    await cache.allowed(f"http://{HOST}/a")
    await cache.allowed(f"https://{HOST}:{server.tls_port}/a")
    await cache.allowed(f"https://{HOST}/b")
    assert fetched(server) == [
        ("https", HOST, "/robots.txt"),
        ("http", HOST, "/robots.txt"),
        ("https", f"{HOST}:{server.tls_port}", "/robots.txt"),
    ]


async def test_expired_entry_is_fetched_again(server, client) -> None:
    serve_rules(server)
    cache = make_cache(client, ttl=-1)
    await cache.allowed(f"https://{HOST}/a")
    await cache.allowed(f"https://{HOST}/b")
    assert fetched(server) == [("https", HOST, "/robots.txt")] * 2


async def test_scheme_refused_by_the_ssrf_guard_is_left_to_the_page_fetch(server, client) -> None:
    """No robots.txt is fetched for a URL the guard refuses; the page fetch refuses it itself."""
    serve_rules(server)
    assert await make_cache(client).allowed(f"ftp://{HOST}/drafts/x")
    assert server.log == []


async def test_address_refused_by_the_ssrf_guard_is_left_to_the_page_fetch(server) -> None:
    """With private networks not allowed, the guarded transport refuses news.example.org (it
    resolves to 127.0.0.1) before connecting: nothing reaches the server."""
    serve_rules(server)
    guarded = Settings(allow_private_networks=False)
    async with create_client(guarded, resolver=server.resolver, verify=server.client_ssl) as client:
        assert await make_cache(client).allowed(f"https://{HOST}/drafts/x")
    assert server.log == []


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_an_oversized_robots_txt_is_read_up_to_the_cap(server, client, declared: bool) -> None:
    """RFC 9309 §2.5: a crawler parses at least the first 500 KiB; a longer file is cut there, not
    treated as unreachable (which would disallow the whole host). A rule past the cap is not seen,
    and the line the cut falls in is dropped rather than read as a shorter rule."""
    head = b"User-agent: *\nDisallow: /private/\n"
    padding = b"# " + b"x" * 998 + b"\n"  # 1,000-byte comment lines
    body = head + padding * (MAX_ROBOTS_BYTES // len(padding) + 1)
    cut_line = b"Disallow: /" + b"a" * 200 + b"\n"  # straddles the cap: "Disallow: /" alone would block all
    body = body[: MAX_ROBOTS_BYTES - 20] + cut_line + b"Disallow: /late/\n" + padding * 100
    chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))
    server.add("/robots.txt", body if declared else chunks, host=HOST, Content_Type="text/plain")
    cache = make_cache(client)
    assert not await cache.allowed(f"https://{HOST}/private/memo")
    assert await cache.allowed(f"https://{HOST}/news/1")
    assert await cache.allowed(f"https://{HOST}/late/story")
    assert fetched(server) == [("https", HOST, "/robots.txt")]


@pytest.mark.parametrize(("rules", "gap"), [
    (b"User-agent: Newsloom\nCrawl-delay: 4\nDisallow: /x/\n\nUser-agent: *\nCrawl-delay: 1\n", 4.0),
    (b"User-agent: *\nCrawl-delay: 2.5\n", 2.5),
    (b"User-agent: *\nCrawl-delay: 86400\n", MAX_CRAWL_DELAY),  # a day between pages: cut to the cap
    (b"User-agent: *\nDisallow: /x/\n", 0.0),
    (b"User-agent: *\nCrawl-delay: soon\n", 0.0),  # not a number: ignored
])
async def test_crawl_delay_becomes_the_hosts_gap_in_the_limiter(server, client, rules: bytes, gap: float) -> None:
    server.add("/robots.txt", rules, host=HOST, Content_Type="text/plain")
    limiter = HostLimiter(per_host=2, min_gap=0.0, global_limit=8)
    cache = RobotsCache(client, USER_AGENT, 3600, total_timeout=5, limiter=limiter)
    assert await cache.allowed(f"https://{HOST}/news/1")
    assert limiter._host(host_key(f"https://{HOST}/")).gap == gap
    assert limiter._host(host_key("https://other.example.org/")).gap == 0.0
