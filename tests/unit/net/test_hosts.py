"""``service.net.hosts``: politeness keys and limits per host, on a fake monotonic clock."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from service.net import hosts
from service.net.hosts import HostLimiter, host_key


class Clock:
    """Stands in for ``time.monotonic`` and ``asyncio.sleep`` in ``hosts``: sleeping advances it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(hosts, "time", SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(hosts, "asyncio", SimpleNamespace(Semaphore=asyncio.Semaphore, sleep=fake.sleep))
    return fake


async def settle() -> None:
    """Let every ready task run until it blocks (event-loop turns, not time)."""
    for _ in range(10):
        await asyncio.sleep(0)


def holding(limiter: HostLimiter):
    """``(inside, release, request)``: ``request(url)`` takes a slot, logs ``url`` in ``inside`` and
    holds the slot until ``release`` is set."""
    release = asyncio.Event()
    inside: list[str] = []

    async def request(url: str) -> None:
        async with limiter.slot(url):
            inside.append(url)
            await release.wait()

    return inside, release, request


@pytest.mark.parametrize(("url", "key"), [
    ("https://News.Example.ORG/a", "news.example.org"),
    ("https://news.example.org:8443/a", "news.example.org"),  # ports share one host
    ("http://user:pw@news.example.org/", "news.example.org"),
    ("https://[2001:DB8::1]:443/x", "2001:db8::1"),
    ("https://www.example.org/", "www.example.org"),  # a subdomain is its own host
    ("not a url", ""),
])
def test_host_key(url: str, key: str) -> None:
    assert host_key(url) == key


async def test_per_host_limit_holds_back_only_that_host(clock: Clock) -> None:
    limiter = HostLimiter(per_host=2, min_gap=0, global_limit=10)
    inside, release, request = holding(limiter)
    tasks = [asyncio.create_task(request(url)) for url in (
        "https://a.example.org/1", "https://a.example.org:8080/2", "https://A.example.org/3", "https://b.example.org/1")]
    await settle()
    assert inside == ["https://a.example.org/1", "https://a.example.org:8080/2", "https://b.example.org/1"]
    release.set()
    await asyncio.gather(*tasks)
    assert inside[-1] == "https://A.example.org/3"


async def test_global_limit_caps_all_hosts(clock: Clock) -> None:
    limiter = HostLimiter(per_host=5, min_gap=0, global_limit=2)
    inside, release, request = holding(limiter)
    tasks = [asyncio.create_task(request(f"https://h{n}.example.org/")) for n in range(4)]
    await settle()
    assert len(inside) == 2
    release.set()
    await asyncio.gather(*tasks)
    assert len(inside) == 4


async def test_min_gap_between_starts_on_one_host(clock: Clock) -> None:
    limiter = HostLimiter(per_host=4, min_gap=2.5, global_limit=10)
    starts: list[float] = []

    async def request(url: str) -> None:
        async with limiter.slot(url):
            starts.append(clock.now)

    await asyncio.gather(*(request("https://a.example.org/") for _ in range(3)))
    assert starts == [1000.0, 1002.5, 1005.0]
    await request("https://b.example.org/")  # another host does not wait
    assert starts[-1] == 1005.0
    clock.now += 60  # long after the last start: no wait
    await request("https://a.example.org/")
    assert clock.sleeps == [2.5, 2.5]


def test_block_and_blocked_for(clock: Clock) -> None:
    limiter = HostLimiter(per_host=1, min_gap=0, global_limit=1)
    assert limiter.blocked_for("https://a.example.org/") == 0.0
    limiter.block("https://a.example.org/feed", 120)
    limiter.block("https://a.example.org/feed", 30)  # a shorter Retry-After never shortens the block
    assert limiter.blocked_for("https://A.example.org:444/other") == 120
    assert limiter.blocked_for("https://b.example.org/") == 0.0
    clock.now += 100
    assert limiter.blocked_for("https://a.example.org/") == 20
    clock.now += 30
    assert limiter.blocked_for("https://a.example.org/") == 0.0


async def test_a_host_gap_longer_than_min_gap_applies_to_that_host_only(clock: Clock) -> None:
    limiter = HostLimiter(per_host=4, min_gap=1.0, global_limit=10)
    limiter.set_gap("https://slow.example.org/robots.txt", 7.0)
    limiter.set_gap("https://quick.example.org/robots.txt", 0.25)  # shorter than min_gap: min_gap wins
    starts: dict[str, list[float]] = {}

    async def request(url: str) -> None:
        async with limiter.slot(url):
            starts.setdefault(host_key(url), []).append(clock.now)

    for host in ("slow", "quick", "other"):
        await asyncio.gather(*(request(f"https://{host}.example.org/{n}") for n in range(3)))
    assert starts["slow.example.org"] == [1000.0, 1007.0, 1014.0]
    assert starts["quick.example.org"] == [1014.0, 1015.0, 1016.0]
    assert starts["other.example.org"] == [1016.0, 1017.0, 1018.0]
