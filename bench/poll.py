"""Polling benchmark: Newsloom against a bare httpx + feedparser loop and the ``reader`` library
(lemon24), side by side in one run, on the same loopback feeds.

    python bench/poll.py [--feeds 2000] [--entries 20] [--concurrency 32]

A minimal asyncio HTTP/1.1 server (its own process, 127.0.0.1 only) serves ``--feeds`` RSS
documents. Round 1: every feed answers 200 with ``--entries`` new entries. Round 2: every feed is
asked again with its validators; one in ``CHANGED_EVERY`` answers 200 with half of its entries new,
the rest ``304 Not Modified``. Each contender runs in a fresh process of its own, one after the
other, and does both rounds:

* **Newsloom**: the real poller (``Poller.poll_due_feeds``: leases, SSRF-guarded client, parsing in
  worker processes, set-based storage in SQLite, the documents finished meanwhile booked in one
  commit, ``db.Writer.run_together``); pages are not fetched.
* **bare loop**: ``httpx.AsyncClient`` GETs with ``If-None-Match`` under a semaphore, each 200 body
  parsed by ``feedparser`` in the loop, nothing stored.
* **reader**: ``make_reader`` on a SQLite file, ``add_feed`` for each URL, ``update_feeds(workers=…)``
  (threads; requests + feedparser; its own storage).

Only successful work counts: a contender whose round has any failed feed, or fewer stored or parsed
entries than served, stops the run with the reason. Peak memory is the largest sum of resident set
sizes over the contender's process tree (the process and its worker processes), sampled every
50 ms by the parent with psutil. CPU per feed is the CPU time (user + system) the contender's
process tree used in the round over the feeds: on a machine shared with other work it moves far
less than feeds/s, which follow the load of the moment; "of it the main process" is the share of
the contender's own process (its threads included, its worker processes not: for Newsloom the part
that one core must carry). Prints Markdown for ``docs/benchmarks.md`` ("Polling").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHANGED_EVERY = 20


def _feed(i: int, round_: int, entries: int) -> bytes:
    first = entries // 2 if round_ == 2 and i % CHANGED_EVERY == 0 else 0
    items = "".join(
        f"<item><title>Item {i}-{k} of a feed</title><link>https://h{i % 7}.example.org/{i}/{k}</link><guid>t{i}-{k}</guid>"
        f"<description>Summary of item {k} of feed {i}, a sentence or two long, as feeds give.</description>"
        f"<pubDate>Mon, 06 May 2024 {k % 24:02d}:00:00 +0000</pubDate></item>" for k in range(first, first + entries))
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {i}</title>'
            f"<link>https://h{i % 7}.example.org/</link>{items}</channel></rss>").encode()


def _serve(sock: socket.socket, entries: int, round_value) -> None:
    """Serve /f/<i>.xml: the ETag names the round in which the document last changed."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                i = int(lines[0].split(" ")[1].rsplit("/", 1)[-1].split(".")[0])
                version = 2 if round_value.value == 2 and i % CHANGED_EVERY == 0 else 1
                etag = f'"e{i}-{version}"'
                if headers.get("if-none-match") == etag:
                    writer.write(f"HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nContent-Length: 0\r\n\r\n".encode())
                else:
                    body = _feed(i, version, entries)
                    writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nETag: {etag}\r\n"
                                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, sock=sock, backlog=4096)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- the contenders, each in its own process: ``--run NAME``; one JSON line per round on stdout,
# -- and round 2 starts when the parent writes a line on stdin (after switching the server).


def _expected(round_: int, feeds: int, entries: int) -> tuple[int, int]:
    """(feeds answering 200, new entries served) in ``round_``."""
    if round_ == 1:
        return feeds, feeds * entries
    changed = len(range(0, feeds, CHANGED_EVERY))
    return changed, changed * (entries // 2)


def tree_cpu() -> float:
    """CPU seconds (user + system) used so far by this process and its live descendants (the
    worker processes)."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def cpu_now() -> tuple[float, float]:
    """``(tree_cpu(), CPU seconds of this process alone, its threads included)``."""
    return tree_cpu(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    """CPU seconds (process tree, this process) used since ``start`` (``cpu_now()``)."""
    tree, main = cpu_now()
    return tree - start[0], main - start[1]


def _report(round_: int, seconds: float, cpu: tuple[float, float], new_entries: int, args) -> None:
    """``seconds``: the round's wall time; ``cpu``: the CPU seconds the contender's process tree and
    its main process (workers excluded) used in it (``_since``)."""
    _changed, served = _expected(round_, args.feeds, args.entries)
    if new_entries != served:
        raise SystemExit(f"round {round_}: {new_entries} new entries stored or parsed, {served} served")
    print(json.dumps({"round": round_, "seconds": seconds, "cpu": cpu[0], "main_cpu": cpu[1], "new_entries": new_entries}),
          flush=True)
    if round_ == 1:
        sys.stdin.readline()  # the parent switches the server to round 2


async def _newsloom(args, urls: list[str], folder: Path) -> None:
    import sqlalchemy as sa

    from service.config import Settings
    from service.db import create_engine, migrate_async, session_factory
    from service.ingest.poller import Poller
    from service.ingest.workers import service_pool
    from service.models import Feed, utcnow
    from service.net.fetcher import create_client

    settings = Settings(database_url=f"sqlite+aiosqlite:///{folder / 'newsloom.db'}", allow_private_networks=True,
                        feed_concurrency=args.concurrency, host_concurrency=args.concurrency, host_min_gap=0,
                        global_concurrency=args.concurrency, extract_workers=2, poll_spread=0, robots_enabled=False,
                        stories_enabled=False, max_feed_entries=max(500, args.entries))
    await migrate_async(settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    async with sessions() as session:
        now = utcnow()
        await session.exec(sa.insert(Feed), params=[
            {"url": url, "poll_interval": 900, "next_poll_at": now, "state": "active", "consecutive_failures": 0,
             "created_at": now} for url in urls])
        await session.commit()
    workers = service_pool(settings)  # warmed as the service's: no gazetteer with stories off
    # Start and warm every worker outside the timing (the pool starts them all; each call waits
    # for a worker's warm_up).
    await asyncio.gather(*(workers.run(len, b"warm up") for _ in range(settings.extract_workers)))
    async with create_client(settings) as client:
        poller = Poller(settings, sessions, client, workers)
        for round_ in (1, 2):
            if round_ == 2:
                async with sessions() as session:  # every feed due again (not timed)
                    await session.exec(sa.update(Feed).values(next_poll_at=utcnow()))
                    await session.commit()
            start, cpu = time.perf_counter(), cpu_now()
            report = await poller.poll_due_feeds()
            seconds, cpu = time.perf_counter() - start, _since(cpu)
            if report.feeds_failed or report.feeds_polled != len(urls):
                async with sessions() as session:
                    errors = (await session.exec(sa.select(Feed.last_error).where(Feed.consecutive_failures > 0).limit(3))).all()
                raise SystemExit(f"newsloom round {round_}: {report}; e.g. {errors}")
            _report(round_, seconds, cpu, report.articles_new, args)
    workers.close()
    await engine.dispose()


async def _bare(args, urls: list[str]) -> None:
    import feedparser
    import httpx

    etags: dict[str, str] = {}
    limit = asyncio.Semaphore(args.concurrency)
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def one(url: str) -> int:
            async with limit:
                response = await client.get(url, headers={"If-None-Match": etags[url]} if url in etags else {})
            if response.status_code == 304:
                return 0
            response.raise_for_status()  # a failure stops the run
            etags[url] = response.headers["etag"]
            return len(feedparser.parse(response.content).entries)

        for round_ in (1, 2):
            start, cpu = time.perf_counter(), cpu_now()
            counts = await asyncio.gather(*(one(url) for url in urls))
            seconds, cpu = time.perf_counter() - start, _since(cpu)
            # New entries: the round-2 documents repeat half of their round-1 entries.
            new = sum(counts) if round_ == 1 else sum(counts) - sum(args.entries - args.entries // 2 for c in counts if c)
            _report(round_, seconds, cpu, new, args)


def _reader(args, urls: list[str], folder: Path) -> None:
    from reader import make_reader

    reader = make_reader(str(folder / "reader.sqlite"), search_enabled=False)
    for url in urls:
        reader.add_feed(url)
    for round_ in (1, 2):
        before = reader.get_entry_counts().total
        start, cpu = time.perf_counter(), cpu_now()
        reader.update_feeds(scheduled=False, workers=args.concurrency)
        seconds, cpu = time.perf_counter() - start, _since(cpu)
        broken = list(reader.get_feeds(broken=True, limit=3))
        if broken:
            raise SystemExit(f"reader round {round_}: feeds failed, e.g. {[(f.url, str(f.last_exception)) for f in broken]}")
        _report(round_, seconds, cpu, reader.get_entry_counts().total - before, args)
    reader.close()


def run_contender(args) -> None:
    urls = [f"http://127.0.0.1:{args.port}/f/{i}.xml" for i in range(args.feeds)]
    folder = Path(tempfile.mkdtemp(prefix=f"newsloom-bench-{args.run}-"))
    if args.run == "newsloom":
        asyncio.run(_newsloom(args, urls, folder))
    elif args.run == "bare":
        asyncio.run(_bare(args, urls))
    else:
        _reader(args, urls, folder)


# -- the parent: server, contenders one after the other, memory sampling, the table ----------------


class TreeMemory:
    """Peak of the summed RSS of a process and its descendants, sampled on a thread."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.peak = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        import psutil

        while not self.done.wait(0.05):
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                total = 0
                for p in tree:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        total += p.memory_info().rss
                self.peak = max(self.peak, total)
            except psutil.NoSuchProcess:
                return

    def stop(self) -> int:
        self.done.set()
        self.thread.join()
        return self.peak


def contend(name: str, args, round_value) -> dict:
    round_value.value = 1
    command = [sys.executable, __file__, "--run", name, "--port", str(args.port), "--feeds", str(args.feeds),
               "--entries", str(args.entries), "--concurrency", str(args.concurrency)]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    memory = TreeMemory(proc.pid)
    rounds = []
    for round_ in (1, 2):
        line = proc.stdout.readline()
        if not line:
            proc.wait()
            memory.stop()
            raise SystemExit(f"{name} failed in round {round_} (exit {proc.returncode}); see its error above")
        rounds.append(json.loads(line))
        if round_ == 1:
            round_value.value = 2
            proc.stdin.write("go\n")
            proc.stdin.flush()
    proc.wait()
    peak = memory.stop()
    if proc.returncode:
        raise SystemExit(f"{name} exited with {proc.returncode}")
    return {"rounds": rounds, "peak_rss": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--entries", type=int, default=20, help="entries per feed document")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--contenders", default="newsloom,bare,reader")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_contender(args)
        return
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    args.port = sock.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    round_value = context.Value("i", 1)
    server = context.Process(target=_serve, args=(sock, args.entries, round_value), daemon=True)
    server.start()
    results = {}
    load_before = os.getloadavg()[0]
    try:
        for name in args.contenders.split(","):
            results[name] = contend(name, args, round_value)
    finally:
        server.terminate()
    changed, _ = _expected(2, args.feeds, args.entries)
    print(f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; "
          f"{args.feeds} feeds on 127.0.0.1, "
          f"{args.entries} entries each; round 2: {changed} changed, the rest 304; concurrency {args.concurrency}.\n")
    print("| contender | round 1 feeds/s | round 2 feeds/s | CPU ms per feed (1 / 2) | of it the main process "
          "| new entries (1 / 2) | peak RSS, process tree |\n|---|---|---|---|---|---|---|")
    for name, r in results.items():
        one, two = r["rounds"]
        print(f"| {name} | {args.feeds / one['seconds']:.0f} | {args.feeds / two['seconds']:.0f} | "
              f"{1000 * one['cpu'] / args.feeds:.1f} / {1000 * two['cpu'] / args.feeds:.1f} | "
              f"{1000 * one['main_cpu'] / args.feeds:.1f} / {1000 * two['main_cpu'] / args.feeds:.1f} | "
              f"{one['new_entries']} / {two['new_entries']} | {r['peak_rss'] / 2**20:.0f} MiB |")
    if "newsloom" in results:
        ours = results["newsloom"]["rounds"]
        for peer in [n for n in results if n != "newsloom"]:
            theirs = results[peer]["rounds"]
            print(f"\nNewsloom / {peer}: feeds/s round 1 **{theirs[0]['seconds'] / ours[0]['seconds']:.2f}**, "
                  f"round 2 **{theirs[1]['seconds'] / ours[1]['seconds']:.2f}**; feeds per CPU second round 1 "
                  f"{theirs[0]['cpu'] / ours[0]['cpu']:.2f}, round 2 {theirs[1]['cpu'] / ours[1]['cpu']:.2f}")


if __name__ == "__main__":
    main()
