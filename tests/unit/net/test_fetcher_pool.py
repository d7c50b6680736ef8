"""``service.net.fetcher``'s connection pool, against a real server on loopback: connections are
kept and reused, a connection the server closed while idle is not reused, requests beyond the
pool's size wait for a connection and get one as others finish, a full pool gives up an idle
connection to another origin, and the sweep closes the idle connections past the keep-alive cap."""

from __future__ import annotations

import asyncio

import pytest

from service.config import Settings
from service.net import fetcher
from service.net.fetcher import create_client

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_a_connection_the_server_closed_while_idle_is_not_reused():
    connections, closed = 0, asyncio.Event()

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(OK)  # keep-alive as far as the client knows; then the server hangs up
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        closed.set()

    server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/feed.xml"
    async with server, create_client(Settings(allow_private_networks=True)) as client:
        first = await client.get(url)
        await asyncio.wait_for(closed.wait(), 30)
        second = await client.get(url)
    assert (first.text, second.text, connections) == ("ok", "ok", 2)


async def test_requests_beyond_the_pool_wait_and_all_get_a_connection():
    size = 100  # ``create_client``'s pool: max(100, global_concurrency) connections
    pending, opened, full = 0, 0, asyncio.Event()

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal pending, opened
        opened += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                pending += 1
                if pending >= size:
                    full.set()  # the pool is full: every connection holds a request
                await full.wait()
                writer.write(OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(keep_alive, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/feed.xml"
    async with server, create_client(Settings(allow_private_networks=True, global_concurrency=size)) as client:
        responses = await asyncio.wait_for(asyncio.gather(*(client.get(url) for _ in range(size + 50))), 60)
    assert [r.text for r in responses] == ["ok"] * (size + 50)
    assert opened == size and pending == size + 50


class _KeepAlive:
    """A keep-alive server that answers every request with ``OK``, holding the answers until
    ``hold`` requests are open at once (then all connections are busy), and counts the connections
    it saw opened and closed by the client."""

    def __init__(self, hold: int = 0) -> None:
        self.hold, self.pending, self.opened, self.closed = hold, 0, 0, 0
        self.full, self.closing = asyncio.Event(), asyncio.Event()
        self.closed_wanted = 0
        if hold == 0:
            self.full.set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                self.pending += 1
                if self.pending >= self.hold:
                    self.full.set()
                await self.full.wait()
                writer.write(OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed += 1
            if self.closed >= self.closed_wanted:
                self.closing.set()
            writer.close()

    async def wait_closed(self, count: int) -> None:
        """Until the client has closed ``count`` connections."""
        self.closed_wanted = count
        if self.closed < count:
            self.closing.clear()
            await asyncio.wait_for(self.closing.wait(), 30)


async def test_one_connection_serves_requests_one_after_another():
    server = _KeepAlive()
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}/feed.xml"
    async with listening, create_client(Settings(allow_private_networks=True)) as client:
        texts = [(await client.get(url)).text for _ in range(5)]
    assert (texts, server.opened) == (["ok"] * 5, 1)


async def test_a_full_pool_closes_an_idle_connection_to_another_origin():
    size = 100  # ``create_client``'s pool: max(100, global_concurrency) connections, as many kept idle
    first, other = _KeepAlive(hold=size), _KeepAlive()
    a = await asyncio.start_server(first.handle, "127.0.0.1", 0)
    b = await asyncio.start_server(other.handle, "127.0.0.1", 0)
    url_a = f"http://127.0.0.1:{a.sockets[0].getsockname()[1]}/feed.xml"
    url_b = f"http://127.0.0.1:{b.sockets[0].getsockname()[1]}/feed.xml"
    async with a, b, create_client(Settings(allow_private_networks=True, global_concurrency=size)) as client:
        await asyncio.wait_for(asyncio.gather(*(client.get(url_a) for _ in range(size))), 60)
        assert (first.opened, first.closed) == (size, 0)  # all kept idle: the pool is full
        assert (await client.get(url_b)).text == "ok"
        await first.wait_closed(1)
        assert (first.closed, other.opened) == (1, 1)


async def test_the_sweep_closes_idle_connections_past_the_keepalive_cap(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(fetcher._Pool, "SWEEP_SECONDS", 0.0)  # a sweep at every pass
    kept = 20  # ``create_client`` keeps max(20, global_concurrency) idle connections
    server = _KeepAlive(hold=kept + 10)
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}/feed.xml"
    async with listening, create_client(Settings(allow_private_networks=True, global_concurrency=kept)) as client:
        await asyncio.wait_for(asyncio.gather(*(client.get(url) for _ in range(kept + 10))), 60)
        assert (server.opened, server.closed) == (kept + 10, 0)
        assert (await client.get(url)).text == "ok"  # its pass sweeps the 10 surplus idle connections
        await server.wait_closed(10)
        assert (server.opened, server.closed) == (kept + 10, 10)
