"""Polling benchmark: Newsloom against a bare httpx + feedparser loop and the ``reader`` library
(lemon24), side by side in one run, on the same loopback feeds.

    python bench/poll.py [--feeds 2000] [--entries 20] [--concurrency 32] [--fresh 3] [--repeats 7]
                         [--baseline ../other-checkout] [--json results.json]

A minimal asyncio HTTP/1.1 server (its own process, 127.0.0.1 only) serves ``--feeds`` RSS
documents, each feed's entries dated at times of its own (hours apart, offset by the feed), so
that a document's entries go to places of their own in time-ordered indexes. Round 1, made
``--fresh`` times: every feed answers 200 with ``--entries`` new entries. Round 2, made
``--repeats`` times: every feed is asked again with its validators; one in ``CHANGED_EVERY``
answers 200 with half of its entries new (later than every entry before them), the rest ``304 Not
Modified``. Each contender runs in a process of its own, set up (database, feeds, warm workers)
before the first round and kept for the whole run:

* **Newsloom**: the real poller (``Poller.poll_due_feeds``: leases, SSRF-guarded client, parsing in
  worker processes, set-based storage in SQLite, the documents finished meanwhile booked in one
  commit, ``db.Writer.run_together``); pages are not fetched. With ``--baseline TREE``, a second
  Newsloom contender, ``baseline``, runs the code of the checkout ``TREE`` in the same way.
* **bare loop**: ``httpx.AsyncClient`` GETs with ``If-None-Match`` under a semaphore, each 200 body
  parsed by ``feedparser`` in the loop, nothing stored.
* **reader**: ``make_reader`` on a SQLite file, ``add_feed`` for each URL, ``update_feeds(workers=…)``
  (threads; requests + feedparser; its own storage).

Only one contender works at a time; the others wait between their rounds, and the server closes
every connection before each contender's round (so none starts with warm connections because its
turn came soon enough: httpx drops idle connections after 5 s, requests never). The contenders
alternate, their order turning by one from each round to the next (A B C, B C A, C A B, …), so a
slow moment of the machine is shared out instead of landing on one contender: a round 2 of 500
feeds lasts about a second, so one alone says little (the bare loop's rate moved 297–548 feeds/s
between single runs), and a contender run after another met another minute of the machine.
Ratios are computed per repetition, between contenders measured within seconds of each other, and
the median (with the range) is reported, for feeds/s and for CPU time.

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
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHANGED_EVERY = 20
EPOCH = datetime(2024, 5, 6, tzinfo=UTC)
"""The first entries' date; entry ``k`` of feed ``i`` is dated ``k`` hours and ``_offset(i)`` seconds later."""


def _offset(i: int) -> int:
    """Feed ``i``'s own second within the hour (distinct for the first 3,600 feeds)."""
    return (i * 7919) % 3600


def _version(i: int, round_: int, fresh: int) -> int:
    """The round in which feed ``i``'s document last changed, as of round ``round_``: every feed
    changes in each of the first ``fresh`` rounds (the repetitions of round 1), one feed in
    ``CHANGED_EVERY`` in each round after them (those of round 2)."""
    return round_ if round_ <= fresh or i % CHANGED_EVERY == 0 else fresh


def _feed(i: int, version: int, entries: int, fresh: int) -> bytes:
    """Feed ``i``'s document at ``version`` (``_version``): ``entries`` entries, each dated after
    every entry of the versions before; every entry new up to version ``fresh``, half of them
    after it (a round-2 document keeps the newer half of the one before)."""
    first = (version - 1) * entries if version <= fresh else (fresh - 1) * entries + (version - fresh) * (entries // 2)
    items = "".join(
        f"<item><title>Item {i}-{k} of a feed</title><link>https://h{i % 7}.example.org/{i}/{k}</link><guid>t{i}-{k}</guid>"
        f"<description>Summary of item {k} of feed {i}, a sentence or two long, as feeds give.</description>"
        f"<pubDate>{format_datetime(EPOCH + timedelta(hours=k, seconds=_offset(i)), usegmt=True)}</pubDate></item>"
        for k in range(first, first + entries))
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {i}</title>'
            f"<link>https://h{i % 7}.example.org/</link>{items}</channel></rss>").encode()


def _serve(sock: socket.socket, entries: int, fresh: int, round_value, closing, closed) -> None:
    """Serve /f/<i>.xml: the ETag names the round in which the document last changed (``_version``;
    rounds ``1…fresh`` are the repetitions of round 1). When the
    parent raises ``closing``, every open connection (idle: no contender is working) is closed and
    ``closed`` set to ``closing``: each contender starts each round without connections, whatever
    the others did meanwhile and however long its turn waited (a client's idle connections expire
    after a while, in httpx after 5 s, in requests never)."""
    connections: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                i = int(lines[0].split(" ")[1].rsplit("/", 1)[-1].split(".")[0])
                version = _version(i, round_value.value, fresh)
                etag = f'"e{i}-{version}"'
                if headers.get("if-none-match") == etag:
                    writer.write(f"HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nContent-Length: 0\r\n\r\n".encode())
                else:
                    body = _feed(i, version, entries, fresh)
                    writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nETag: {etag}\r\n"
                                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError):
            pass
        finally:
            connections.discard(writer)
            writer.close()

    async def close_when_asked() -> None:
        while True:
            await asyncio.sleep(0.005)
            if closed.value != closing.value:
                for writer in list(connections):
                    writer.close()
                closed.value = closing.value

    async def main() -> None:
        server = await asyncio.start_server(handle, sock=sock, backlog=4096)
        async with server:
            await asyncio.gather(server.serve_forever(), close_when_asked())

    asyncio.run(main())


# -- the contenders, each in its own process: ``--run NAME``; a round starts when the parent writes
# -- a line on stdin (after switching the server), and ends with one JSON line on stdout.


def _rounds(args) -> range:
    """The rounds a contender runs, numbered from 1: round 1 ``--fresh`` times, then round 2
    ``--repeats`` times."""
    return range(1, 1 + args.fresh + args.repeats)


def _kind(round_: int, args) -> int:
    """1 for a repetition of round 1 (every document new), 2 for one of round 2."""
    return 1 if round_ <= args.fresh else 2


def _expected(kind: int, feeds: int, entries: int) -> tuple[int, int]:
    """(feeds answering 200, new entries served) in a round of ``kind`` (``_kind``)."""
    if kind == 1:
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
    _changed, served = _expected(_kind(round_, args), args.feeds, args.entries)
    if new_entries != served:
        raise SystemExit(f"round {round_}: {new_entries} new entries stored or parsed, {served} served")
    print(json.dumps({"round": round_, "seconds": seconds, "cpu": cpu[0], "main_cpu": cpu[1], "new_entries": new_entries}),
          flush=True)


def _ready() -> None:
    """Tell the parent that the set-up is done (nothing else runs while a contender is timed)."""
    print(json.dumps({"ready": True}), flush=True)


def _go() -> None:
    """Wait for the parent's word to start the next round."""
    sys.stdin.readline()


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
        _ready()
        for round_ in _rounds(args):
            _go()
            if round_ >= 2:
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

        _ready()
        for round_ in _rounds(args):
            _go()
            start, cpu = time.perf_counter(), cpu_now()
            counts = await asyncio.gather(*(one(url) for url in urls))
            seconds, cpu = time.perf_counter() - start, _since(cpu)
            # New entries: a round-2 document repeats half of the entries of the one before.
            repeated = 0 if _kind(round_, args) == 1 else sum(args.entries - args.entries // 2 for c in counts if c)
            new = sum(counts) - repeated
            _report(round_, seconds, cpu, new, args)


def _reader(args, urls: list[str], folder: Path) -> None:
    from reader import make_reader

    reader = make_reader(str(folder / "reader.sqlite"), search_enabled=False)
    for url in urls:
        reader.add_feed(url)
    _ready()
    for round_ in _rounds(args):
        _go()
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
    if args.run in ("newsloom", "baseline"):
        if args.tree:  # the Newsloom code of another checkout
            sys.path.insert(0, args.tree)
        asyncio.run(_newsloom(args, urls, folder))
    elif args.run == "bare":
        asyncio.run(_bare(args, urls))
    else:
        _reader(args, urls, folder)


# -- the parent: server, contenders taking turns, memory sampling, the table ------------------------


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


class Contender:
    """A contender's process (``--run NAME``), its rounds' results and its memory peak."""

    def __init__(self, name: str, args) -> None:
        self.name = name
        command = [sys.executable, __file__, "--run", name, "--port", str(args.port), "--feeds", str(args.feeds),
                   "--entries", str(args.entries), "--concurrency", str(args.concurrency), "--fresh", str(args.fresh),
                   "--repeats", str(args.repeats)]
        if name == "baseline":
            command += ["--tree", str(Path(args.baseline).resolve())]
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.memory = TreeMemory(self.proc.pid)
        self.rounds: list[dict] = []
        self.peak_rss = 0
        assert self.proc.stdout is not None
        if not self.proc.stdout.readline():  # its set-up done
            self.kill()
            raise SystemExit(f"{name} failed to start (exit {self.proc.returncode}); see its error above")

    def round(self, round_: int, server: Server) -> None:
        """Have the contender run ``round_`` (the server already serves it), without connections
        open, and keep its result."""
        server.close_connections()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.memory.stop()
            raise SystemExit(f"{self.name} failed in round {round_} (exit {self.proc.returncode}); see its error above")
        self.rounds.append(json.loads(line))

    def finish(self) -> None:
        self.proc.wait()
        self.peak_rss = self.memory.stop()
        if self.proc.returncode:
            raise SystemExit(f"{self.name} exited with {self.proc.returncode}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.memory.stop()


class Server:
    """The feed server's process (``_serve``) and the values it shares with the parent."""

    def __init__(self, entries: int, fresh: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        context = multiprocessing.get_context("spawn")
        self.round, self.closing, self.closed = (context.Value("i", 1), context.Value("i", 0), context.Value("i", 0))
        self.process = context.Process(target=_serve, args=(self.sock, entries, fresh, self.round, self.closing,
                                                             self.closed), daemon=True)
        self.process.start()

    def close_connections(self) -> None:
        """Have the server close every open connection, and wait until it has."""
        self.closing.value += 1
        while self.closed.value != self.closing.value:
            if not self.process.is_alive():
                raise SystemExit("the feed server died")
            time.sleep(0.002)


def take_turns(contenders: list[Contender], args, server: Server) -> None:
    """Start the contenders one after the other (each set up before the next starts), then run
    each round, the contenders' order turned by one from each round to the next."""
    for name in args.contenders.split(","):
        contenders.append(Contender(name, args))
    for round_ in _rounds(args):
        server.round.value = round_
        turn = (round_ - 1) % len(contenders)
        for contender in contenders[turn:] + contenders[:turn]:
            contender.round(round_, server)
    for contender in contenders:
        contender.finish()


def _spread(values: list[float], digits: int = 2) -> str:
    """``median (min–max)`` of ``values``."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def print_tables(contenders: list[Contender], args, load: tuple[float, float]) -> None:
    changed, _ = _expected(2, args.feeds, args.entries)
    feeds = args.feeds
    print(f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load average {load[0]:.1f} before, {load[1]:.1f} after; {feeds} feeds on "
          f"127.0.0.1, {args.entries} entries each; round 1 (every document new) {args.fresh} times, round 2 "
          f"({changed} changed, the rest 304) {args.repeats} times, the contenders alternating; concurrency "
          f"{args.concurrency}. Each figure: median (min–max) over the repetitions.\n")
    print("| contender | round 1 feeds/s | round 2 feeds/s | CPU ms per feed round 1 / round 2 "
          "| of it the main process | new entries (1 / 2, each) | peak RSS, process tree |\n|---|---|---|---|---|---|---|")
    for c in contenders:
        ones, twos = c.rounds[:args.fresh], c.rounds[args.fresh:]
        print(f"| {c.name} | {_spread([feeds / r['seconds'] for r in ones], 0)} | "
              f"{_spread([feeds / r['seconds'] for r in twos], 0)} | "
              f"{_spread([1000 * r['cpu'] / feeds for r in ones], 1)} / {_spread([1000 * r['cpu'] / feeds for r in twos], 1)} | "
              f"{_spread([1000 * r['main_cpu'] / feeds for r in ones], 1)} / "
              f"{_spread([1000 * r['main_cpu'] / feeds for r in twos], 1)} | "
              f"{ones[0]['new_entries']} / {twos[0]['new_entries']} | {c.peak_rss / 2**20:.0f} MiB |")
    ours = [c for c in contenders if c.name in ("newsloom", "baseline")]
    for us in ours:
        for peer in [c for c in contenders if c is not us and not (us.name == "baseline" and c.name == "newsloom")]:
            print(f"\n{us.name} / {peer.name}, per repetition:")
            for kind, (low, high) in ((1, (0, args.fresh)), (2, (args.fresh, None))):
                pairs = list(zip(us.rounds[low:high], peer.rounds[low:high], strict=True))
                print(f"round {kind}: feeds/s **{_spread([b['seconds'] / a['seconds'] for a, b in pairs])}**, feeds per "
                      f"CPU second (process tree) {_spread([b['cpu'] / a['cpu'] for a, b in pairs])}, main process "
                      f"{_spread([b['main_cpu'] / a['main_cpu'] for a, b in pairs])}" + (";" if kind == 1 else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--entries", type=int, default=20, help="entries per feed document")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--fresh", type=int, default=3, help="repetitions of round 1, the contenders alternating")
    parser.add_argument("--repeats", type=int, default=7, help="repetitions of round 2, the contenders alternating")
    parser.add_argument("--contenders", default="newsloom,bare,reader",
                        help="comma-separated: newsloom, bare, reader, baseline (needs --baseline)")
    parser.add_argument("--baseline", help="a checkout of Newsloom to run as the contender 'baseline' (e.g. a git worktree)")
    parser.add_argument("--json", help="write every round's raw figures to this file")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_contender(args)
        return
    if args.baseline and "baseline" not in args.contenders.split(","):
        args.contenders += ",baseline"
    if "baseline" in args.contenders.split(",") and not args.baseline:
        parser.error("the contender 'baseline' needs --baseline")
    server = Server(args.entries, args.fresh)
    args.port = server.port
    contenders: list[Contender] = []
    load_before = os.getloadavg()[0]
    try:
        take_turns(contenders, args, server)
    finally:
        for contender in contenders:
            contender.kill()
        server.process.terminate()
    print_tables(contenders, args, (load_before, os.getloadavg()[0]))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "feeds": args.feeds, "entries": args.entries, "fresh": args.fresh, "repeats": args.repeats, "load": [load_before, os.getloadavg()[0]],
            "contenders": {c.name: {"rounds": c.rounds, "peak_rss": c.peak_rss} for c in contenders}}, indent=1))


if __name__ == "__main__":
    main()
