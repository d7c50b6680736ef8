"""``service.net.fetcher``'s connection pool, against a real server on loopback: a connection the
server closed while idle is not reused, and requests beyond the pool's size wait for a connection
and get one as others finish."""

from __future__ import annotations

import asyncio

from service.config import Settings
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
