"""Polling benchmark: N feeds on a local server (most answer 304, every 20th has new entries),
polled by the real poller (SQLite, leases, politeness, parsing in worker processes), against a bare
httpx loop sending the same conditional requests with the same concurrency, in the same run.

    python bench/poll.py [--feeds 5000] [--concurrency 50] [--hosts 50]

Prints a Markdown table row set for ``docs/benchmarks.md`` ("Polling"). The server runs in its own
process (a minimal asyncio HTTP/1.1 server), on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from service.config import Settings  # noqa: E402
from service.db import create_engine, migrate_async, session_factory  # noqa: E402
from service.ingest.fetcher import create_client  # noqa: E402
from service.ingest.poller import FEED_ACCEPT, Poller  # noqa: E402
from service.ingest.workers import WorkerPool  # noqa: E402
from service.models import Feed, utcnow  # noqa: E402

NEW_EVERY = 20


def _feed(i: int) -> bytes:
    items = "".join(f"<item><title>Item {i}-{k}</title><link>https://h{i % 7}.example.org/{i}/{k}</link>"
                    f"<pubDate>Mon, 06 May 2024 0{k}:00:00 +0000</pubDate></item>" for k in range(3))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {i}</title>{items}</channel></rss>'.encode()


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            i = int(path.rsplit("/", 1)[-1].split(".")[0])
            etag = f'"e{i}"'
            if i % NEW_EVERY != 0 and headers.get("if-none-match") == etag:
                writer.write(f"HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nContent-Length: 0\r\n\r\n".encode())
            else:
                body = _feed(i)
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nETag: {etag}\r\n"
                             f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError):
        pass
    finally:
        writer.close()


def _serve(sock: socket.socket) -> None:
    async def main() -> None:
        server = await asyncio.start_server(_handle, sock=sock, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


async def _baseline(port: int, urls: list[str], concurrency: int, resolver) -> float:
    limit = asyncio.Semaphore(concurrency)
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
    async with httpx.AsyncClient(transport=transport) as client:
        async def one(i: int, url: str) -> None:
            async with limit:
                plain = f"http://127.0.0.1:{port}/f/{i}.xml"
                response = await client.get(plain, headers={"If-None-Match": f'"e{i}"', "Accept": FEED_ACCEPT})
                response.read()

        start = time.perf_counter()
        await asyncio.gather(*(one(i, u) for i, u in enumerate(urls)))
        return time.perf_counter() - start


async def _service(port: int, urls: list[str], concurrency: int, hosts: int) -> tuple[float, int]:
    folder = Path(tempfile.mkdtemp(prefix="newsloom-bench-"))
    settings = Settings(database_url=f"sqlite+aiosqlite:///{folder / 'bench.db'}", allow_private_networks=True,
                        feed_concurrency=concurrency, host_concurrency=max(1, concurrency // hosts + 1), host_min_gap=0,
                        global_concurrency=concurrency, extract_workers=1, poll_spread=0)
    await migrate_async(settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    async with sessions() as session:
        now = utcnow()
        await session.exec(sa.insert(Feed), params=[
            {"url": url, "etag": f'"e{i}"', "poll_interval": 900, "next_poll_at": now, "state": "active",
             "consecutive_failures": 0, "created_at": now} for i, url in enumerate(urls)])
        await session.commit()

    async def resolver(host: str, _port: int) -> list[tuple[str, int]]:
        return [("127.0.0.1", port)]

    workers = WorkerPool(2, 30)
    await workers.run(len, b"warm up")
    async with create_client(settings, resolver=resolver) as client:
        poller = Poller(settings, sessions, client, workers)
        start = time.perf_counter()
        report = await poller.poll_due_feeds()
        elapsed = time.perf_counter() - start
    workers.close()
    assert report.feeds_polled == len(urls), report
    if report.feeds_failed:
        async with sessions() as session:
            errors = (await session.exec(sa.select(Feed.last_error).where(Feed.consecutive_failures > 0).limit(3))).all()
        print(f"{report.feeds_failed} feeds failed, e.g. {errors}", file=sys.stderr)
    await engine.dispose()
    return elapsed, report.articles_new


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=50)
    args = parser.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(sock,), daemon=True)
    server.start()
    urls = [f"http://f{i % args.hosts}.example.org/f/{i}.xml" for i in range(args.feeds)]
    try:
        await asyncio.sleep(0.5)  # let the server process start listening (bench only, not a test)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        service_s, new = await _service(port, urls, args.concurrency, args.hosts)
        rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        baseline_s = await _baseline(port, urls, args.concurrency, None)
    finally:
        server.terminate()
    service_rate, baseline_rate = args.feeds / service_s, args.feeds / baseline_s
    print(f"| machine | {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()} |")
    print(f"| feeds (hosts) | {args.feeds} ({args.hosts}); 1 in {NEW_EVERY} has 3 new entries, the rest answer 304 |")
    print(f"| concurrency | {args.concurrency} (service: feed batch and global limit; baseline: semaphore) |")
    print(f"| service | {service_s:.2f} s, {service_rate:.0f} feed checks/s, {new} new articles stored |")
    print(f"| bare httpx loop | {baseline_s:.2f} s, {baseline_rate:.0f} requests/s |")
    print(f"| ratio service / bare httpx | {service_rate / baseline_rate:.2f} |")
    print(f"| peak RSS of the service process | {rss_peak / 1024:.0f} MiB (before: {rss_before / 1024:.0f} MiB) |")


if __name__ == "__main__":
    asyncio.run(main())
