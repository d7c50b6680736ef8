"""Politeness toward publishers: per-host concurrency, robots.txt for article pages, future dates
clamped with the original kept, first polls spread at start-up."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from email.utils import format_datetime

from service.models import Article, Feed, utcnow
from service.storage import feeds
from tests.ingest_helpers import api_client, articles, count, subscribe
from tests.server import Route

RSS = "application/rss+xml"


async def test_per_host_concurrency_is_capped(server, poller, sessions, settings):
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def slow(request):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.05)  # the server is slow; the client must not open a second request meanwhile
        with lock:
            state["now"] -= 1
        return Route(f'<rss version="2.0"><channel><title>t</title><item><title>x</title>'
                     f'<link>https://one.example.org{request.path}/1</link></item></channel></rss>'.encode(),
                     200, {"Content-Type": RSS})

    for i in range(6):
        server.add(f"/f{i}.xml", slow, host="one.example.org")
        await subscribe(sessions, f"https://one.example.org/f{i}.xml")
    poller.limiter.per_host = 1
    report = await poller.poll_due_feeds()
    assert report.feeds_polled == 6 and report.feeds_failed == 0
    assert state["max"] == 1


async def test_robots_txt_is_honoured_for_article_pages(server, poller, sessions, settings):
    server.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", host="site.example.org", Content_Type="text/plain")
    page = "<html><head><title>P</title></head><body><article><p>" + "Words here. " * 60 + "</p></article></body></html>"
    server.add("/private/a", page, host="site.example.org", Content_Type="text/html")
    server.add("/public/b", page, host="site.example.org", Content_Type="text/html")
    server.add("/feed.xml", '<rss version="2.0"><channel><title>t</title>'
               '<item><title>A</title><link>https://site.example.org/private/a</link><description>feed text a</description></item>'
               '<item><title>B</title><link>https://site.example.org/public/b</link><description>feed text b</description></item>'
               '</channel></rss>', host="site.example.org", Content_Type=RSS)
    await subscribe(sessions, "https://site.example.org/feed.xml")
    await poller.poll_due_feeds()
    await poller.process_pages()
    async with api_client(settings, sessions) as api:
        rows = {r["title"]: r for r in await articles(api)}
    assert rows["A"]["extraction_status"] == "failed" and "robots.txt" in rows["A"]["extraction_error"]
    assert rows["B"]["extraction_status"] == "ok"
    assert not server.hits("/private/a") and len(server.hits("/robots.txt")) == 1


async def test_future_dates_are_clamped_or_dropped_and_the_original_kept(server, poller, sessions, settings):
    tomorrow = format_datetime(utcnow() + timedelta(days=1), usegmt=True)
    server.add("/feed.xml", '<rss version="2.0"><channel><title>t</title><item><title>Soon</title>'
               f'<link>https://future.example.org/1</link><pubDate>{tomorrow}</pubDate></item>'
               '<item><title>Placeholder</title>'
               '<link>https://future.example.org/3</link><pubDate>Fri, 01 Jan 2100 00:00:00 GMT</pubDate></item>'
               '<item><title>Odd zone</title><link>https://future.example.org/2</link>'
               '<pubDate>Mon, 06 May 2024 08:00:00 XYZ</pubDate></item></channel></rss>',
               host="future.example.org", Content_Type=RSS)
    before = utcnow()
    await subscribe(sessions, "https://future.example.org/feed.xml")
    await poller.poll_due_feeds()
    async with api_client(settings, sessions) as api:
        rows = {r["title"]: r for r in await articles(api)}
    soon = rows["Soon"]  # a wrong zone, say: clamped to when it was first seen
    assert soon["published_raw"] == tomorrow
    assert before.isoformat()[:19] <= soon["published_at"] <= utcnow().isoformat()[:19] + "Z"
    placeholder = rows["Placeholder"]  # implausibly far ahead: no date (it sorts by first_seen_at)
    assert placeholder["published_at"] is None and placeholder["published_raw"] == "Fri, 01 Jan 2100 00:00:00 GMT"
    assert rows["Odd zone"]["published_at"] is None  # never a silent shift to UTC
    assert rows["Odd zone"]["published_raw"] == "Mon, 06 May 2024 08:00:00 XYZ"


async def test_overdue_feeds_are_spread_at_start_up(sessions, settings):
    async with sessions() as session:
        for i in range(20):
            session.add(Feed(url=f"https://spread.example.org/{i}.xml", next_poll_at=utcnow()))
        await session.commit()
        spread = settings.model_copy(update={"poll_spread": 600})
        moved = await feeds.spread_overdue(session, spread)
    assert moved == 20
    async with sessions() as session:
        from sqlmodel import select
        times = [f.next_poll_at for f in (await session.exec(select(Feed))).all()]
    assert min(times) > utcnow() - __import__("datetime").timedelta(seconds=1)
    assert len({t.replace(microsecond=0) for t in times}) > 10
    assert await count(sessions, Article) == 0
