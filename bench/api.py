"""API and storage benchmark on PostgreSQL and SQLite.

1. Load N synthetic articles (default 100,000: titles and ~120-word texts drawn from a Zipf-like
   vocabulary, languages en/de/fr, 200 feeds, one entry row each) with bulk INSERTs; the database
   maintains the search index (PostgreSQL generated tsvector + GIN; SQLite FTS5 triggers).
2. Serve them with ``newsloom serve`` (pollers and webhooks off) and drive it from a separate
   process (``--drive``) at fixed concurrency for a bounded time per endpoint: ``/healthz`` (the
   trivial endpoint of the same app), the first page of ``/v1/articles``, a deep cursor page
   (90 % down), ``lang``- and ``feed_id``-filtered lists, two searches (``q``), and
   ``/v1/articles/{id}`` at random ids, each after one successful answer and one unmeasured second;
   ``/healthz`` again last. Auth is off (no API key, so no per-key rate limit) and stories are off.
   Only 2xx answers count; any other status or a transport error stops the run with the failing
   request (a figure made of 429s is not a figure). Reports 2xx/s, p50/p99 latency, the server
   process's CPU time per answer (user + system, ``/proc``: steadier than rates on a busy machine;
   on PostgreSQL the database's own work is not in it) and each endpoint's throughput as a ratio to
   the mean of the two ``/healthz`` runs.
3. ``EXPLAIN ANALYZE`` of every list query, built by the API's own ``storage.articles.list_query``,
   with the database's planning and execution time.
4. Store M/10 articles through the store path (``articles.store_entries`` per feed of 100 entries,
   one commit per feed, as the poller does) into the loaded database of N articles, then ingest M
   articles the same way into an empty database; articles/s, each tenth's rate, database size, and
   the rate at N articles over the first tenth's into the empty database (flat: about 1).

   On PostgreSQL on this machine, also the storing connections' backends' CPU per article stored
   (``/proc``; autovacuum's work is not in it) and, in the same window, autovacuum's runs on
   ``articles`` (``pg_stat_user_tables``) and its workers' CPU (``/proc``, sampled every 0.1 s).
   ``--ingest-loaded M2`` stores M2 articles into the loaded database instead of M/10 (with
   ``--skip-api`` too: the N articles are then loaded without serving them).

Run: ``python bench/api.py [--articles 100000] [--duration 10] [--concurrency 16] [--ingest 100000] [--ingest-loaded M2]
[--pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench | --pg-cluster stock]``. The
PostgreSQL database must exist; its public schema is dropped and recreated. ``--pg-cluster stock``
runs PostgreSQL on a throwaway cluster with every setting at its default (autovacuum on, unlike a
test server that turns it off): ``initdb`` into a temporary directory (as the ``postgres`` user
when run as root), started on a free port of 127.0.0.1, stopped and deleted at the end; the
binaries are found with ``pg_config --bindir`` or ``--pg-bindir``. Prints Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy import event  # noqa: E402

from service.api.pagination import encode_cursor, query_digest  # noqa: E402
from service.db import create_engine, migrate_async, session_factory  # noqa: E402
from service.models import Article, Entry, Feed, Outlet  # noqa: E402
from service.search import parse  # noqa: E402
from service.storage.articles import list_query  # noqa: E402

LANGS = ["en", "en", "en", "de", "fr"]
FEEDS = 200
BASE = datetime(2025, 1, 1, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def vocabulary(rng: random.Random, size: int = 20_000) -> list[str]:
    consonants, vowels = "bcdfghklmnprstvwz", "aeiou"
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class Corpus:
    """Deterministic synthetic text: word i is drawn with probability ~ 1/(i+1) (Zipf, s=1)."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.words = vocabulary(self.rng)
        weights = [1 / (i + 1) for i in range(len(self.words))]
        total = sum(weights)
        self.cum = []
        acc = 0.0
        for w in weights:
            acc += w / total
            self.cum.append(acc)

    def text(self, n: int) -> str:
        return " ".join(self.words[min(i, len(self.words) - 1)] for i in
                        (self._index(self.rng.random()) for _ in range(n)))

    def _index(self, x: float) -> int:
        import bisect

        return bisect.bisect_left(self.cum, x)


def _article_rows(corpus: Corpus, start: int, count: int, now: datetime) -> list[dict]:
    rows = []
    for i in range(start, start + count):
        moment = BASE + timedelta(seconds=i * 300 + corpus.rng.randint(0, 299))
        rows.append(dict(
            canonical_url=f"https://news{i % 50}.example.org/a/{i}", url_key=f"news{i % 50}.example.org/a/{i}",
            url=f"https://news{i % 50}.example.org/a/{i}", feed_id=1 + i % FEEDS, outlet_id=1 + i % 50, guid=str(i),
            title=corpus.text(8).capitalize(), summary=None, feed_content=None, text=corpus.text(120), text_source="page",
            authors=[], published_at=moment, updated_at=None, first_seen_at=now, fetched_at=now, sort_at=moment,
            language=LANGS[i % len(LANGS)], word_count=120, extraction_status="ok", fetch_attempts=0,
        ))
    return rows


async def reset(url: str) -> None:
    if url.startswith("postgresql"):
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(sa.text("CREATE SCHEMA public"))
        await engine.dispose()
    else:
        path = Path(url.split("///", 1)[1])
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)  # noqa: ASYNC240 - set-up, nothing else runs yet
    await migrate_async(url)


async def db_size(engine) -> int:
    """Bytes on disk: pg_database_size, or the SQLite file with its WAL."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            return (await conn.execute(sa.text("SELECT pg_database_size(current_database())"))).scalar_one()
    path = Path(engine.url.database)
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


@contextlib.contextmanager
def stock_cluster(bindir: str | None) -> Iterator[str]:
    """A throwaway PostgreSQL cluster with default settings: yields its URL (database ``bench``,
    user ``postgres``, trust auth, 127.0.0.1 and a free port); stopped and deleted on exit.
    Raises ``SystemExit`` when ``initdb`` or ``pg_ctl`` is not found or the server does not start."""
    if bindir is None:
        found = shutil.which("pg_config")
        bindir = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=True).stdout.strip() if found else ""
    initdb, pg_ctl = Path(bindir, "initdb"), Path(bindir, "pg_ctl")
    if not (initdb.exists() and pg_ctl.exists()):
        raise SystemExit(f"--pg-cluster stock needs PostgreSQL's server binaries (initdb, pg_ctl): none in {bindir or 'pg_config --bindir'!r}; "
                         "install the server package or pass --pg-bindir")
    folder = Path(tempfile.mkdtemp(prefix="newsloom-pg-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(folder, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    try:
        subprocess.run([*as_owner, str(initdb), "-D", str(data), "-U", "postgres", "--auth=trust"], check=True, capture_output=True)
        started = subprocess.run([*as_owner, str(pg_ctl), "-D", str(data), "-l", str(folder / "log"), "-w", "-o",
                                  f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"], capture_output=True, text=True)
        if started.returncode != 0:
            raise SystemExit(f"the stock cluster did not start: {started.stderr}{(folder / 'log').read_text()[-2000:]}")
        try:
            subprocess.run([str(Path(bindir, "createdb")), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "bench"], check=True)
            yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/bench"
        finally:
            subprocess.run([*as_owner, str(pg_ctl), "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
    finally:
        shutil.rmtree(folder)


def count_backend_cpu(engine, into: list[float]) -> None:
    """Add to ``into[0]`` the CPU seconds each of ``engine``'s PostgreSQL connections cost its
    backend, read from ``/proc`` when the connection closes (a server on this machine; nothing
    for one elsewhere)."""

    @event.listens_for(engine.sync_engine, "connect")
    def started(connection, record) -> None:
        cursor = connection.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
        cursor.close()
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == "postgres":
                record.info["backend"] = (pid, cpu_seconds(pid))

    @event.listens_for(engine.sync_engine, "close")
    def closed(connection, record) -> None:
        if "backend" in record.info:
            pid, start = record.info.pop("backend")
            with contextlib.suppress(OSError):
                into[0] += cpu_seconds(pid) - start


class AutovacuumWatch:
    """The CPU seconds of the autovacuum workers of the PostgreSQL server of the backend ``backend``
    (pid, this machine; raises ``OSError`` for one elsewhere) while the watch runs: each worker's
    ``/proc`` CPU sampled every ``interval`` seconds by a thread, from its first sample to its last
    (a worker that starts or exits between samples loses up to ``interval`` of it). ``seconds`` and
    ``workers`` (how many were seen) are read after ``stop()``."""

    def __init__(self, backend: int, interval: float = 0.1) -> None:
        self.postmaster, self.interval = parent(backend), interval
        self.spans: dict[int, tuple[float, float]] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                pid = int(entry.name)
                with contextlib.suppress(OSError, IndexError, ValueError):
                    if pid in self.spans or (parent(pid) == self.postmaster
                                             and Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"postgres: autovacuum worker")):
                        now = cpu_seconds(pid)
                        self.spans[pid] = (self.spans.get(pid, (now, now))[0], now)

    def stop(self) -> None:
        self.done.set()
        self.thread.join()

    @property
    def seconds(self) -> float:
        return sum(last - first for first, last in self.spans.values())

    @property
    def workers(self) -> int:
        return len(self.spans)


async def autovacuum_counts(conn) -> dict[str, int]:
    """``pg_stat_user_tables``' counts of (auto)vacuums and (auto)analyzes of ``articles``."""
    await conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
    row = (await conn.execute(sa.text("SELECT autovacuum_count, autoanalyze_count, vacuum_count, analyze_count "
                                      "FROM pg_stat_user_tables WHERE relname = 'articles'"))).one()
    return dict(row._mapping)


async def load(url: str, count: int) -> dict:
    """Bulk-insert ``count`` articles (and their feeds, outlets, entries); returns timings and sizes."""
    await reset(url)
    engine = create_engine(url)
    corpus = Corpus()
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(sa.insert(Outlet.__table__), [dict(domain=f"news{i}.example.org", created_at=now) for i in range(50)])
        await conn.execute(sa.insert(Feed.__table__), [
            dict(url=f"https://news{i % 50}.example.org/feed{i}.xml", poll_interval=900, next_poll_at=now + timedelta(days=1),
                 consecutive_failures=0, state="active", created_at=now, outlet_id=1 + i % 50) for i in range(FEEDS)])
    batch = 2000
    for start in range(0, count, batch):
        rows = _article_rows(corpus, start, min(batch, count - start), now)
        async with engine.begin() as conn:
            await conn.execute(sa.insert(Article.__table__), rows)
            await conn.execute(sa.insert(Entry.__table__), [
                dict(feed_id=r["feed_id"], entry_key=f"guid:{r['guid']}", guid=r["guid"], link=r["canonical_url"],
                     article_id=int(r["guid"]) + 1, first_seen_at=now) for r in rows])
    elapsed = time.perf_counter() - t0
    async with engine.connect() as conn:
        await conn.execute(sa.text("ANALYZE"))
        await conn.commit()
    size = await db_size(engine)
    await engine.dispose()
    return {"seconds": elapsed, "rate": count / elapsed, "size": size}


async def explain(url: str, queries: dict[str, dict]) -> dict[str, str]:
    """EXPLAIN (PostgreSQL) / EXPLAIN QUERY PLAN (SQLite) of each ``list_query`` call."""
    engine = create_engine(url)
    dialect = engine.dialect.name
    plans = {}
    async with engine.connect() as conn:
        for name, kwargs in queries.items():
            statement = list_query(dialect, limit=51, **kwargs)
            compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
            prefix = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " if dialect == "postgresql" else "EXPLAIN QUERY PLAN "
            rows = (await conn.exec_driver_sql(prefix + str(compiled))).all()
            lines = [str(r[-1]) for r in rows]
            if dialect == "postgresql":  # the plan nodes and index conditions; filters and sort keys spelled out are long
                lines = [line if len(line) <= 140 else line[:137] + "..." for line in lines
                         if not line.strip().startswith(("Filter:", "Sort Key:", "Join Filter:", "Rows Removed", "Sort Method"))]
            plans[name] = "\n".join(lines)
    await engine.dispose()
    return plans


async def targets(url: str, count: int, corpus: Corpus) -> tuple[dict[str, str], dict[str, dict], list[int]]:
    """The endpoints to drive (name → path) and the list queries behind them (name → list_query kwargs)."""
    engine = create_engine(url)
    async with engine.connect() as conn:
        deep = (await conn.execute(sa.text(
            "SELECT sort_at, id FROM articles ORDER BY sort_at DESC, id DESC LIMIT 1 OFFSET :n"), {"n": int(count * 0.9)})).one()
        ids = list((await conn.execute(sa.text("SELECT id FROM articles"))).scalars())
    await engine.dispose()
    moment = deep[0] if isinstance(deep[0], datetime) else datetime.fromisoformat(deep[0])
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    cursor = encode_cursor("articles", query_digest(), moment, deep[1])  # the cursor of the unfiltered list
    common, rare = corpus.words[30], corpus.words[900]  # ~1.3 % and ~0.05 % of word draws
    paths = {
        "healthz": "/healthz",
        "first page": "/v1/articles?limit=50",
        "deep cursor page (90 %)": f"/v1/articles?limit=50&cursor={cursor}",
        "filtered lang=de": "/v1/articles?limit=50&lang=de",
        "filtered feed_id": "/v1/articles?limit=50&feed_id=17",
        f"search q={common} {rare}": f"/v1/articles?limit=50&q={common}+{rare}",
        f'search q="{common} {corpus.words[31]}" -{rare}': f'/v1/articles?limit=50&q="{common}+{corpus.words[31]}"+-{rare}',
        "article by id": "/v1/articles/{id}",
    }
    queries = {
        "first page": {},
        "deep cursor page (90 %)": {"after": (moment, deep[1])},
        "filtered lang=de": {"lang": "de"},
        "filtered feed_id": {"feed_id": 17},
        f"search q={common} {rare}": {"q": parse(f"{common} {rare}")},
        f'search q="{common} {corpus.words[31]}" -{rare}': {"q": parse(f'"{common} {corpus.words[31]}" -{rare}')},
    }
    return paths, queries, ids


# -- the load generator (a separate process) -------------------------------------------------------


class EndpointFailed(RuntimeError):
    """An endpoint answered something other than 2xx: the run is void, not a figure."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process ``pid`` has used (``/proc/<pid>/stat``, Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parent(pid: int) -> int:
    """The parent process id of ``pid`` (``/proc/<pid>/stat``, Linux)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


async def drive(base: str, path: str, concurrency: int, duration: float, ids: list[int], server: int) -> dict:
    """Requests/s, latency and the CPU seconds per answer of the server process ``server`` (pid) for
    ``path`` at ``concurrency`` for ``duration`` seconds, counting only 2xx answers; raises
    ``EndpointFailed`` at the first other status or transport error, or when no request was answered
    (a rate limit, an error page or a timeout must never be counted as served work)."""
    latencies: list[float] = []
    rng = random.Random(1)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        async def worker() -> None:
            while time.perf_counter() < deadline:
                target = path.replace("{id}", str(rng.choice(ids))) if "{id}" in path else path
                t = time.perf_counter()
                response = await client.get(target)
                if not response.is_success:
                    raise EndpointFailed(f"GET {target}: HTTP {response.status_code}: {response.text[:300]}")
                if not response.content:
                    raise EndpointFailed(f"GET {target}: empty body")
                latencies.append(time.perf_counter() - t)

        start, cpu = time.perf_counter(), cpu_seconds(server)
        deadline = start + duration  # from the first request, not from the client's set-up (slow on a loaded machine)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - start, cpu_seconds(server) - cpu
    if not latencies:
        raise EndpointFailed(f"GET {path}: no answer within {duration} s")
    latencies.sort()
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "cpu_ms": cpu * 1000 / len(latencies),
            "p50": statistics.median(latencies) * 1000, "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000}


async def first_answer(base: str, path: str, ids: list[int]) -> None:
    """One request to ``path``, which must answer 2xx (raises ``EndpointFailed``): the warm-up
    starts from a served request, not from the first seconds of a cold plan or cache."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        response = await client.get(path.replace("{id}", str(ids[0])))
    if not response.is_success:
        raise EndpointFailed(f"GET {path}: HTTP {response.status_code}: {response.text[:300]}")


def drive_main(args: argparse.Namespace) -> None:
    spec = json.loads(Path(args.drive).read_text())
    results = {}
    order = [*spec["paths"].items(), ("healthz (again, last)", spec["paths"]["healthz"])]
    for name, path in order:  # one answer and one unmeasured second per endpoint first (connections, caches, plans)
        asyncio.run(first_answer(spec["base"], path, spec["ids"]))
        asyncio.run(drive(spec["base"], path, spec["concurrency"], 1.0, spec["ids"], spec["server"]))
        results[name] = asyncio.run(drive(spec["base"], path, spec["concurrency"], spec["duration"], spec["ids"], spec["server"]))
    print(json.dumps(results))


# -- the service under load -------------------------------------------------------------------------


def serve(url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "NEWSLOOM_DATABASE_URL": url, "NEWSLOOM_POLLER_ENABLED": "false",
           "NEWSLOOM_WEBHOOKS_ENABLED": "false", "NEWSLOOM_LOG_LEVEL": "WARNING", "NEWSLOOM_EXTRACT_WORKERS": "1",
           "NEWSLOOM_AUTH": "off", "NEWSLOOM_STORIES_ENABLED": "false"}  # no keys, so no per-key rate limit
    proc = subprocess.Popen([sys.executable, "-m", "service", "serve", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"newsloom serve did not answer: {proc.stderr.read() if proc.stderr else ''}")


def api_bench(url: str, args: argparse.Namespace) -> dict:
    loaded = asyncio.run(load(url, args.articles))
    corpus = Corpus()
    paths, queries, ids = asyncio.run(targets(url, args.articles, corpus))
    plans = asyncio.run(explain(url, queries))
    proc, base = serve(url)
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as spec:
            json.dump({"base": base, "paths": paths, "concurrency": args.concurrency, "duration": args.duration, "ids": ids,
                       "server": proc.pid}, spec)
        out = subprocess.run([sys.executable, __file__, "--drive", spec.name], capture_output=True, text=True)
        if out.returncode != 0:  # a non-2xx answer voids the run: say which, and stop
            raise SystemExit(f"the load generator failed on {url.split('@')[-1]}:\n{out.stderr[-2000:]}")
        results = json.loads(out.stdout)
    finally:
        proc.terminate()
        proc.wait(30)
    return {"load": loaded, "results": results, "plans": plans}


# -- ingest through the store path ------------------------------------------------------------------


async def ingest(url: str, count: int, *, empty: bool = True, per_feed: int = 100) -> dict:
    """Store ``count`` articles through the store path, into an emptied database (``empty``) or
    into the one at ``url`` as it is (new feeds, new links); returns counts, rates and size, and on
    PostgreSQL on this machine the storing backends' CPU seconds (``backend_cpu``)."""
    from service.ingest.feeds.entries import ParsedEntry, ParsedFeed
    from service.storage import articles

    if empty:
        await reset(url)
    engine = create_engine(url)
    corpus = Corpus(seed=11)
    feeds = count // per_feed
    async with engine.connect() as conn:
        before = (await conn.execute(sa.text("SELECT count(*) FROM articles"))).scalar_one()
    async with session_factory(engine)() as session:
        rows = [Feed(url=f"https://news{i % 50}.example.org/in{i}.xml") for i in range(feeds)]
        session.add_all(rows)
        await session.commit()
        feed_ids = [f.id for f in rows]
    parsed = []
    for f in range(feeds):
        entries = []
        for j in range(per_feed):
            n = f * per_feed + j
            link = f"https://news{n % 50}.example.org/story/{n}"
            text = corpus.text(120)
            entries.append(ParsedEntry(key=f"guid:{n}", link=link, guid=str(n), title=corpus.text(8), summary_html=f"<p>{text[:200]}</p>",
                                       content_html=None, published_at=BASE + timedelta(minutes=n), language=LANGS[n % 5], text=text))
        parsed.append(ParsedFeed(title=f"Feed {f}", site_url=f"https://news{f % 50}.example.org/", language=None, entries=entries, format="rss"))
    storing, backend_cpu = create_engine(url), [0.0]  # its own engine: its backends do the storing only
    watch, counts = None, {}
    if storing.dialect.name == "postgresql":
        count_backend_cpu(storing, backend_cpu)
        async with engine.connect() as conn:
            counts = await autovacuum_counts(conn)
            backend = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        with contextlib.suppress(OSError):
            watch = AutovacuumWatch(backend)
    sessions = session_factory(storing)
    t0 = time.perf_counter()
    marks = [t0]  # after each tenth of the feeds: is the rate flat as the corpus grows?
    for i, (feed_id, document) in enumerate(zip(feed_ids, parsed, strict=True), 1):
        async with sessions() as session:
            feed = await session.get(Feed, feed_id)
            await session.run_sync(articles.store_entries, feed, document)
            await session.commit()
        if i % max(1, feeds // 10) == 0:
            marks.append(time.perf_counter())
    elapsed = time.perf_counter() - t0
    await storing.dispose()
    if watch:
        watch.stop()
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.text("SELECT count(*) FROM articles"))).scalar_one() - before
        if counts:
            counts = {k: v - counts[k] for k, v in (await autovacuum_counts(conn)).items()}
    size = await db_size(engine)
    await engine.dispose()
    tenth = max(1, feeds // 10) * per_feed
    deciles = [tenth / (b - a) for a, b in itertools.pairwise(marks)]
    return {"articles": stored, "before": before, "seconds": elapsed, "rate": stored / elapsed, "size": size, "deciles": deciles,
            "backend_cpu": backend_cpu[0] or None, "autovacuum": counts,
            "autovacuum_cpu": (watch.seconds, watch.workers) if watch else None}


def db_cpu(run: dict) -> str:
    """The storing backends' CPU per article stored of an ``ingest`` run, as a sentence ('' when not measured)."""
    if not (run["backend_cpu"] and run["articles"]):
        return ""
    said = f" Storing backends' CPU per article stored: {run['backend_cpu'] * 1000 / run['articles']:.2f} ms."
    if run["autovacuum"]:
        said += (" Meanwhile on `articles`: {autovacuum_count} autovacuums, {autoanalyze_count} autoanalyzes, "
                 "{vacuum_count} vacuums, {analyze_count} analyzes").format(**run["autovacuum"])
        if run["autovacuum_cpu"]:
            seconds, workers = run["autovacuum_cpu"]
            said += f"; autovacuum workers' CPU {seconds:.1f} s ({workers} workers, {seconds * 1000 / run['articles']:.2f} ms per article stored)"
        said += "."
    return said


def mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def report(name: str, bench: dict | None, ingested: dict | None, at_full: dict | None) -> None:
    print(f"\n#### {name}\n")
    if bench:
        load_ = bench["load"]
        print(f"Bulk load: {load_['rate']:.0f} articles/s ({load_['seconds']:.0f} s), database {mib(load_['size'])}.\n")
    if bench and "results" in bench:
        base = (bench["results"]["healthz"]["rps"] + bench["results"]["healthz (again, last)"]["rps"]) / 2
        print("Ratio: the endpoint's req/s over the mean req/s of the two `/healthz` runs (first and last).\n")
        print("| endpoint | 2xx/s | p50 ms | p99 ms | server CPU ms/answer | ratio to /healthz |\n|---|---|---|---|---|---|")
        for endpoint, r in bench["results"].items():
            print(f"| {endpoint} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['cpu_ms']:.2f} | {r['rps'] / base:.2f} |")
        print("\nPlans:\n")
        for endpoint, plan in bench["plans"].items():
            print(f"- {endpoint}:\n\n```\n{plan}\n```\n")
    if ingested:
        print(f"Store path (`articles.store_entries`, 100 entries per feed, one commit per feed): {ingested['articles']} articles in "
              f"{ingested['seconds']:.0f} s, **{ingested['rate']:.0f} articles/s**; database {mib(ingested['size'])}.")
        deciles = ingested["deciles"]
        print("Articles/s in each tenth of the run: " + ", ".join(f"{r:.0f}" for r in deciles)
              + f"; last tenth / first tenth: **{deciles[-1] / deciles[0]:.2f}**." + db_cpu(ingested))
        if at_full:
            print(f"\nStore path into the loaded database ({at_full['before']} articles): {at_full['articles']} articles at "
                  f"**{at_full['rate']:.0f} articles/s**, over the first tenth into the empty one: **{at_full['rate'] / deciles[0]:.2f}**."
                  + db_cpu(at_full))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--ingest", type=int, default=100_000, help="articles through the store path (0: skip)")
    parser.add_argument("--ingest-loaded", type=int,
                        help="articles through the store path into the loaded database (default: --ingest / 10, none under 100)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per endpoint")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/bench")
    parser.add_argument("--pg-cluster", choices=["stock"],
                        help="instead of --pg-url, a throwaway PostgreSQL cluster with default settings (deleted after)")
    parser.add_argument("--pg-bindir", help="PostgreSQL's server binaries for --pg-cluster (default: pg_config --bindir)")
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        drive_main(args)
        return
    folder = Path(tempfile.mkdtemp(prefix="newsloom-bench-"))
    print(f"machine: {os.uname().machine}, {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
          f"{args.articles} articles, concurrency {args.concurrency}, {args.duration:g} s per endpoint")
    for backend in args.backends.split(","):
        with contextlib.ExitStack() as stack:
            url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
            if backend == "postgresql":
                url = stack.enter_context(stock_cluster(args.pg_bindir)) if args.pg_cluster else args.pg_url
            into_loaded = args.ingest // 10 if args.ingest_loaded is None else args.ingest_loaded
            bench = None if args.skip_api else api_bench(url, args)
            if bench is None and args.ingest_loaded:
                bench = {"load": asyncio.run(load(url, args.articles))}
            at_full = asyncio.run(ingest(url, into_loaded, empty=False)) if bench and into_loaded >= 100 else None
            ingested = asyncio.run(ingest(url, args.ingest)) if args.ingest else None
        stock = backend == "postgresql" and args.pg_cluster
        report(f"{backend} (stock cluster: default settings)" if stock else backend, bench, ingested, at_full)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
