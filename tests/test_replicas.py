"""Several ``newsloom serve`` processes sharing one PostgreSQL database: migrations started at once,
300 feeds polled once per cycle by three replicas, entries stored once, deliveries sent once, and
the leases of a replica killed mid-cycle finished by the others. Real processes, real HTTP on
127.0.0.1, real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

import httpx
import pytest
import sqlalchemy as sa

from service.db import create_engine
from tests.conftest import POSTGRES_URL, ROOT, ServiceProcess, _reset_postgres
from tests.server import Request, Route, TestServer

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="NEWSLOOM_TEST_POSTGRES_URL is not set")

FEEDS = 300
SHARED = 50  # links that appear in several feeds (the same article seen by replicas at once)
PAGE = """<html><head><title>{title}</title></head><body><nav>Home | World</nav><article><h1>{title}</h1>
<p>{title}. Officials confirmed the details on Monday morning after a long night of talks in the capital.</p>
<p>The agreement covers trade, energy and the long-running dispute over fishing rights in the northern waters.</p>
<p>Critics said the deal came too late, while supporters called it the best outcome that could be reached.</p>
</article><footer>Copyright</footer></body></html>"""


@pytest.fixture
async def empty_postgres() -> str:
    """The test PostgreSQL database with an empty public schema (not migrated)."""
    await _reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


def _code_head() -> str:
    """The newest migration this code ships (what every replica must reach)."""
    from alembic.script import ScriptDirectory

    from service.db import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def _head_revision(url: str) -> list[str]:
    engine = create_engine(url)
    async with engine.connect() as conn:
        versions = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalars().all()
    await engine.dispose()
    return list(versions)


async def test_migrations_started_at_once_run_once(empty_postgres):
    """Four `newsloom migrate` processes at once on an empty database: all succeed (the advisory
    lock makes them take turns; without it they collide on CREATE TABLE) and the schema is at head."""
    env = {"NEWSLOOM_DATABASE_URL": empty_postgres, "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-m", "service.cli", "migrate"], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], "\n---\n".join(outputs)
    assert await _head_revision(empty_postgres) == [_code_head()]


def _rss(items: list[tuple[str, str, datetime]]) -> bytes:
    body = "".join(
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link><guid>{escape(link)}</guid>"
        f"<pubDate>{format_datetime(published)}</pubDate><description>About {escape(title)}.</description></item>"
        for title, link, published in items
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Feed</title>'
            f"<link>http://127.0.0.1/</link><description>d</description>{body}</channel></rss>").encode()


class FeedSite:
    """300 feeds and their pages on the test server. Cycle 1: each feed lists its own story and one
    of 50 shared stories; cycle 2 adds one new story per feed. While ``gate`` is clear, feed
    requests are held open (the replicas that sent them keep their leases)."""

    def __init__(self, server: TestServer) -> None:
        self.server = server
        self.cycle = 1
        self.gate = threading.Event()
        self.gate.set()
        self.requests: list[tuple[int, str, float]] = []  # (feed number, user agent, monotonic time)
        self.changed = threading.Condition()
        self.past = datetime(2024, 5, 1, tzinfo=UTC)
        self.future = datetime.now(UTC) + timedelta(hours=4)  # clamped to the fetch time: news for a subscriber
        self.urls = [server.add(f"/f/{i}.xml", self._handler(i)) for i in range(FEEDS)]
        for slug in [f"{i}-1" for i in range(FEEDS)] + [f"{i}-2" for i in range(FEEDS)] + [f"shared-{k}" for k in range(SHARED)]:
            server.add(f"/p/{slug}.html", PAGE.format(title=f"Story {slug}"), Content_Type="text/html; charset=utf-8")

    def _items(self, i: int) -> list[tuple[str, str, datetime]]:
        items = [(f"Story {i}-1", self.server.url(f"/p/{i}-1.html"), self.past),
                 (f"Story shared-{i % SHARED}", self.server.url(f"/p/shared-{i % SHARED}.html"), self.past)]
        if self.cycle == 2:
            items.insert(0, (f"Story {i}-2", self.server.url(f"/p/{i}-2.html"), self.future))
        return items

    def _handler(self, i: int):
        def handle(request: Request) -> Route:
            agent = next((v for k, v in request.headers.items() if k.lower() == "user-agent"), "")
            with self.changed:
                self.requests.append((i, agent, time.monotonic()))
                self.changed.notify_all()
            self.gate.wait(120)
            return Route(_rss(self._items(i)), 200, {"Content-Type": "application/rss+xml"})
        return handle

    def wait_for(self, predicate, timeout: float = 60) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self.requests), timeout), f"{len(self.requests)} feed requests"

    def opml(self) -> str:
        outlines = "".join(f'<outline type="rss" text="f{i}" xmlUrl="{escape(url)}"/>' for i, url in enumerate(self.urls))
        return f'<?xml version="1.0"?><opml version="2.0"><head><title>t</title></head><body>{outlines}</body></opml>'


async def _wait_db(engine, sql: str, predicate, timeout: float = 180, what: str = ""):
    """Query ``sql`` until ``predicate(first row)`` holds; return the row. The replicas write the
    state asynchronously, so this asks the database until it shows, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        async with engine.connect() as conn:
            row = (await conn.execute(sa.text(sql))).first()
        if predicate(row):
            return row
        assert time.monotonic() < deadline, f"{what}: still {row}"
        await asyncio.sleep(0.25)  # the interval between two looks, not a synchronisation


async def test_three_replicas_share_300_feeds_and_survive_a_sigkill(empty_postgres, server, tmp_path):
    site = FeedSite(server)
    env = {
        "NEWSLOOM_POLL_SPREAD": "0", "NEWSLOOM_POLL_INTERVAL": "3600", "NEWSLOOM_POLL_MIN_INTERVAL": "3600",
        "NEWSLOOM_FEED_CONCURRENCY": "10", "NEWSLOOM_HOST_CONCURRENCY": "16", "NEWSLOOM_ROBOTS_ENABLED": "false",
        "NEWSLOOM_LEASE_SECONDS": "16", "NEWSLOOM_TOTAL_TIMEOUT": "10", "NEWSLOOM_EXTRACT_TIMEOUT": "5",
        "NEWSLOOM_WEBHOOK_TIMEOUT": "5", "NEWSLOOM_WEBHOOK_RETRY_SCHEDULE": "[1, 1, 1]",
        # Stories stay on (linking is one of the shared steps a SIGKILL must not break), without
        # the e5 text encoder: 650 articles with one body text sit near every story's threshold, so
        # the cascade would encode each of them and backfill their stories, which is about the
        # encoder's cost on 2 cores, not about replicas.
        "NEWSLOOM_STORY_TEXT_VECTORS": "false",
    }
    replicas = [ServiceProcess(empty_postgres, NEWSLOOM_USER_AGENT=f"replica-{n}", **env) for n in range(3)]
    engine = create_engine(empty_postgres)
    try:
        # All three start at once on an empty database: each migrates (one after the other, under the lock).
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_started()
        assert await _head_revision(empty_postgres) == [_code_head()]

        opml = tmp_path / "feeds.opml"
        opml.write_text(site.opml())
        imported = replicas[0].run_cli("feeds", "import", str(opml))
        assert imported.returncode == 0 and f"added: {FEEDS}," in imported.stdout, imported.stderr

        # Cycle 1: every feed polled once, its two entries stored, every page extracted.
        await _wait_db(engine, "SELECT count(*) FILTER (WHERE last_status = 200), count(*) FROM feeds",
                       lambda r: r[0] == FEEDS, what="feeds polled in cycle 1")
        await _wait_db(engine, "SELECT count(*) FILTER (WHERE extraction_status = 'pending'), count(*) FROM articles",
                       lambda r: r[0] == 0 and r[1] == FEEDS + SHARED, what="cycle 1 pages")
        cycle1 = Counter(i for i, _agent, _at in site.requests)
        assert set(cycle1) == set(range(FEEDS)) and set(cycle1.values()) == {1}, "a feed polled twice in cycle 1"
        agents = Counter(agent for _i, agent, _at in site.requests)
        assert set(agents) == {"replica-0", "replica-1", "replica-2"}, agents  # all three took work

        # Cycle 2, with a subscriber: hold the feed requests, kill replica-0 while it holds leases.
        hook = server.url("/hook")
        sub = httpx.post(f"{replicas[1].base}/v1/subscriptions", json={"url": hook, "event_types": ["article.created"]})
        assert sub.status_code == 201, sub.text
        site.cycle = 2
        site.gate.clear()
        start = len(site.requests)
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE feeds SET next_poll_at = now()"))
        site.wait_for(lambda reqs: any(agent == "replica-0" for _i, agent, _at in reqs[start:]))
        victim = replicas[0]
        async with engine.connect() as conn:
            claimed = set((await conn.execute(sa.text("SELECT id FROM feeds WHERE lease_owner LIKE :owner"),
                                              {"owner": f"%:{victim.proc.pid}:%"})).scalars())
        assert claimed, "replica-0 holds no feed lease"
        victim.proc.kill()  # SIGKILL: no shutdown, its leases stay behind until they expire
        victim.proc.wait()
        killed_at = time.monotonic()
        site.gate.set()

        # Every feed of cycle 2 is polled (the victim's once its leases expired), every new page extracted.
        await _wait_db(engine, "SELECT count(*) FILTER (WHERE lease_owner IS NULL AND next_poll_at > now() + interval '30 minutes'), "
                       "count(*) FROM feeds", lambda r: r[0] == FEEDS, what="feeds polled in cycle 2")
        await _wait_db(engine, "SELECT count(*) FILTER (WHERE extraction_status = 'pending'), count(*) FROM articles",
                       lambda r: r[0] == 0 and r[1] == 2 * FEEDS + SHARED, what="cycle 2 pages")
        posts = server.wait_for_posts(FEEDS, "/hook", timeout=180)

        # Entries and articles stored once each.
        async with engine.connect() as conn:
            entries = (await conn.execute(sa.text("SELECT count(*), count(DISTINCT (feed_id, entry_key)) FROM entries"))).one()
            articles = (await conn.execute(sa.text("SELECT count(*), count(DISTINCT canonical_url) FROM articles"))).one()
            feed_urls = dict((await conn.execute(sa.text("SELECT id, url FROM feeds"))).all())
            deliveries = (await conn.execute(sa.text("SELECT status, count(*) FROM deliveries GROUP BY status"))).all()
        assert tuple(entries) == (3 * FEEDS, 3 * FEEDS)
        assert tuple(articles) == (2 * FEEDS + SHARED, 2 * FEEDS + SHARED)

        # Cycle 2 polls: every feed answered to a surviving replica exactly once; replica-0 asked
        # only for feeds it had claimed, and each of those was polled again by another replica after the kill.
        cycle2 = site.requests[start:]
        survivors = Counter(i for i, agent, _at in cycle2 if agent != "replica-0")
        assert set(survivors) == set(range(FEEDS)) and set(survivors.values()) == {1}, survivors.most_common(3)
        claimed_numbers = {int(feed_urls[fid].rsplit("/", 1)[1].split(".")[0]) for fid in claimed}
        victim_asked = {i for i, agent, _at in cycle2 if agent == "replica-0"}
        assert victim_asked and victim_asked <= claimed_numbers
        retaken = {i for i, agent, at in cycle2 if agent != "replica-0" and at > killed_at}
        assert claimed_numbers <= retaken

        # Deliveries: one per new article, each webhook-id once, every one booked as succeeded.
        ids = [p.headers["webhook-id"] for p in posts]
        titles = sorted(json.loads(p.body)["data"]["title"] for p in posts)
        assert len(ids) == len(set(ids)) == FEEDS
        assert titles == sorted(f"Story {i}-2" for i in range(FEEDS))
        await _wait_db(engine, "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FROM deliveries",
                       lambda r: r[0] == r[1] == FEEDS, what=f"deliveries {deliveries}")
        assert len(server.posts_to("/hook")) == FEEDS  # nothing sent twice meanwhile
    finally:
        site.gate.set()
        for replica in replicas:
            if replica.proc is not None:
                replica.__exit__(None, None, None)
        await engine.dispose()
