"""Polite polling against real misbehaving servers: redirects (BL-23), validators and 304 (BL-24),
429/503 with Retry-After and backoff (BL-25), 410, failing state, scheduling hints."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col

from service.models import Article, Entry, Feed, utcnow
from service.storage import articles
from tests.ingest_helpers import api_client, claim_due_feeds, count, feed_api, feed_row, make_due, subscribe
from tests.server import Route

RSS = "application/rss+xml"


def _body(bug_cases, name: str) -> bytes:
    return (bug_cases / name).read_bytes()


async def test_bl23_permanent_redirects_move_the_feed_temporary_ones_do_not(bug_cases, server, poller, sessions):
    body = _body(bug_cases, "BL-23.feed.xml")
    host = "feeds.example.org"
    server.add("/old/feed.xml", b"", 301, host=host, Location="https://feeds.example.org/new/feed.xml")
    server.add("/perm308/feed.xml", b"", 308, host=host, Location="https://feeds.example.org/new/feed.xml")
    server.add("/new/feed.xml", body, host=host, Content_Type=RSS)
    mirrors = iter(["a", "b", "a", "b"])
    server.add("/rotating/feed.xml", lambda request: Route(b"", 302, {"Location": f"https://mirror-{next(mirrors)}.example.org/feed.xml"}), host=host)
    server.add("/feed.xml", body, host="mirror-a.example.org", Content_Type=RSS)
    server.add("/feed.xml", body, host="mirror-b.example.org", Content_Type=RSS)
    server.add("/loop/a.xml", b"", 301, host=host, Location="https://feeds.example.org/loop/b.xml")
    server.add("/loop/b.xml", b"", 302, host=host, Location="https://feeds.example.org/loop/a.xml")

    moved = await subscribe(sessions, f"https://{host}/old/feed.xml")
    rotating = await subscribe(sessions, f"https://{host}/rotating/feed.xml")
    loop = await subscribe(sessions, f"https://{host}/loop/a.xml")
    await poller.poll_due_feeds()
    assert (await feed_row(sessions, moved)).url == (await feed_row(sessions, moved)).url_key == f"https://{host}/new/feed.xml"
    assert (await feed_row(sessions, rotating)).url == f"https://{host}/rotating/feed.xml"
    looped = await feed_row(sessions, loop)
    assert "redirect loop" in looped.last_error and looped.consecutive_failures == 1
    assert len(server.hits("/loop/a.xml")) + len(server.hits("/loop/b.xml")) <= 10

    # The 308 subscription moves too, onto the URL another feed already has: it keeps its own.
    perm = await subscribe(sessions, f"https://{host}/perm308/feed.xml")
    await poller.poll_due_feeds()
    assert (await feed_row(sessions, perm)).url == f"https://{host}/perm308/feed.xml"

    before_new, before_old = len(server.hits("/new/feed.xml")), len(server.hits("/old/feed.xml"))
    before_rotating = len(server.hits("/rotating/feed.xml"))
    await make_due(sessions, moved, rotating)
    await poller.poll_due_feeds()
    assert len(server.hits("/old/feed.xml")) == before_old  # the next poll asks the new URL directly
    assert len(server.hits("/new/feed.xml")) == before_new + 1
    assert len(server.hits("/rotating/feed.xml")) == before_rotating + 1
    assert await count(sessions, Article) == 1  # same identity whichever URL served it


async def test_redirect_hop_cap(server, poller, sessions):
    for i in range(8):
        server.add(f"/hop/{i}", b"", 302, host="hops.example.org", Location=f"/hop/{i + 1}")
    feed_id = await subscribe(sessions, "https://hops.example.org/hop/0")
    await poller.poll_due_feeds()
    feed = await feed_row(sessions, feed_id)
    assert feed.last_error.startswith(f"more than {poller.settings.max_redirects} redirects")
    assert len([r for r in server.log if r.path.startswith("/hop/")]) == poller.settings.max_redirects + 1


async def test_bl24_validators_from_every_response_and_no_duplicates(bug_cases, server, poller, sessions, settings):
    f1, f2 = _body(bug_cases, "BL-15.fetch1.xml"), _body(bug_cases, "BL-15.fetch2.xml")
    lm1, lm2 = "Mon, 06 May 2024 08:00:00 GMT", "Tue, 07 May 2024 08:00:00 GMT"
    script = [
        Route(f1, 200, {"ETag": '"v1"', "Last-Modified": lm1, "Content-Type": RSS}),
        Route(b"", 304, {"ETag": '"v2"'}),
        Route(f2, 200, {"ETag": '"v2"', "Last-Modified": lm2, "Content-Type": RSS}),
        Route(f2, 200, {"ETag": '"v3"', "Last-Modified": lm2, "Content-Type": RSS}),
        Route(f2, 200, {"ETag": '"v3"', "Last-Modified": lm2, "Content-Type": RSS}),
    ]
    server.add("/feed.xml", lambda request: script[len(server.hits("/feed.xml")) - 1], host="cond.example.org")
    feed_id = await subscribe(sessions, "https://cond.example.org/feed.xml")
    counts = []
    for _poll in range(5):
        await make_due(sessions, feed_id)
        await poller.poll_due_feeds()
        counts.append(await count(sessions, Article))
    sent = [(r.headers.get("If-None-Match"), r.headers.get("If-Modified-Since")) for r in server.hits("/feed.xml")]
    assert sent == [(None, None), ('"v1"', lm1), ('"v2"', lm1), ('"v2"', lm2), ('"v3"', lm2)]
    assert counts == [2, 2, 3, 3, 3]
    async with api_client(settings, sessions) as api:
        assert (await feed_api(api, feed_id))["state"] == "active"


async def test_304_costs_no_parse_and_no_writes_beyond_bookkeeping(bug_cases, server, poller, sessions):
    body = _body(bug_cases, "BL-15.fetch1.xml")
    server.add("/feed.xml", lambda r: Route(b"", 304, {}) if r.headers.get("If-None-Match") == '"x"'
               else Route(body, 200, {"ETag": '"x"', "Content-Type": RSS}), host="nm.example.org")
    feed_id = await subscribe(sessions, "https://nm.example.org/feed.xml")
    await poller.poll_due_feeds()
    entries, arts = await count(sessions, Entry), await count(sessions, Article)
    await make_due(sessions, feed_id)
    before = await feed_row(sessions, feed_id)
    async with sessions() as session:
        (feed,) = await claim_due_feeds(session, poller.owner, poller.settings.lease_seconds, 1)
    statements: list[str] = []

    def counted(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    # Every engine: the poller's own and, on SQLite, its writer's (``db.Writer``).
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", counted)
    try:
        report = await poller.poll_feed(feed)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", counted)
    assert report.feeds_not_modified == 1 and report.articles_new == 0
    # The feed as claimed is enough: one UPDATE books the poll (bookkeeping, schedule, lease).
    assert len(statements) == 1 and statements[0].startswith("UPDATE feeds"), statements
    assert (await count(sessions, Entry), await count(sessions, Article)) == (entries, arts)
    after = await feed_row(sessions, feed_id)
    assert (after.last_status, after.etag, after.lease_until, after.state) == (304, '"x"', None, "active")
    assert after.last_polled_at > before.last_polled_at and after.next_poll_at > utcnow()


async def test_unchanged_polls_of_a_moment_are_booked_together_and_the_odd_ones_alone(bug_cases, server, poller, sessions):
    body = _body(bug_cases, "BL-15.fetch1.xml")
    for i in range(4):
        server.add(f"/g{i}.xml", lambda r: Route(b"", 304, {}) if r.headers.get("If-None-Match") == '"g"'
                   else Route(body, 200, {"ETag": '"g"', "Content-Type": RSS}), host=f"g{i}.example.org")
    ids = [await subscribe(sessions, f"https://g{i}.example.org/g{i}.xml") for i in range(4)]
    await poller.poll_due_feeds()
    await make_due(sessions, *ids)
    async with sessions() as session:
        claimed = sorted(await claim_due_feeds(session, poller.owner, poller.settings.lease_seconds, 4), key=lambda f: f.id)
    fetched = [await poller.fetch_feed(f.url, f.etag, f.last_modified) for f in claimed]
    assert [r.status for r in fetched] == [304] * 4
    # After the claim, a user sets one feed's interval and deletes another: the group must not
    # book those two on the rows as claimed.
    async with sessions() as session:
        await session.exec(sa.update(Feed).where(col(Feed.id) == ids[1]).values(poll_interval_override=7200))
        await session.exec(sa.delete(Feed).where(col(Feed.id) == ids[2]))
        await session.commit()
    updates: list[int] = []

    def counted(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.startswith("UPDATE feeds"):
            updates.append(len(parameters) if executemany else 1)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", counted)
    try:
        reports = await asyncio.gather(*(poller.ingest(f, r) for f, r in zip(claimed, fetched, strict=True)))
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", counted)
    assert updates[0] == 4  # the four polls finished together: one UPDATE statement for them all
    assert [r.feeds_not_modified for r in reports] == [1, 1, 0, 1]  # the deleted feed counts nothing
    rows = {i: await feed_row(sessions, i) for i in (ids[0], ids[1], ids[3])}
    assert all(row.lease_until is None and row.last_status == 304 and row.next_poll_at > utcnow() for row in rows.values())
    assert rows[ids[1]].poll_interval == 7200  # booked alone, on its row as it is now
    assert rows[ids[0]].poll_interval != 7200 and rows[ids[3]].poll_interval != 7200
    assert await count(sessions, Feed) == 3


async def test_bl25_retry_after_holds_the_whole_host_then_backoff_with_jitter(bug_cases, server, poller, sessions, settings):
    body = _body(bug_cases, "BL-15.fetch1.xml")
    state = {"mode": "ok"}

    def answer(request):
        if state["mode"] == "429s":
            return Route(b"slow down", 429, {"Retry-After": "120"})
        if state["mode"] == "429d":
            return Route(b"slow down", 429, {"Retry-After": (utcnow() + timedelta(minutes=5)).strftime("%a, %d %b %Y %H:%M:%S GMT")})
        if state["mode"] == "503":
            return Route(b"down", 503, {})
        return Route(body, 200, {"Content-Type": RSS})

    server.add("/a.xml", answer, host="rate.example.org")
    server.add("/b.xml", answer, host="rate.example.org")
    a = await subscribe(sessions, "https://rate.example.org/a.xml")
    b = await subscribe(sessions, "https://rate.example.org/b.xml")
    await poller.poll_due_feeds()
    assert len(server.hits("/a.xml")) == 1  # one GET for the subscription's first poll

    for mode, least in (("429s", 120), ("429d", 290)):
        state["mode"] = mode
        await make_due(sessions, a)
        before = len(server.log)
        await poller.poll_due_feeds()  # a gets the 429; b is held back with the host
        await make_due(sessions, b)
        await poller.poll_due_feeds()
        assert len(server.log) == before + 1
        for feed_id in (a, b):
            row = await feed_row(sessions, feed_id)
            assert (row.next_poll_at - utcnow()).total_seconds() >= least - 5
        poller.limiter.block("https://rate.example.org/", 0)  # (time passes)
        poller.limiter._hosts.clear()

    state["mode"] = "503"
    delays = []
    for _ in range(5):
        await make_due(sessions, a)
        await poller.poll_due_feeds()
        row = await feed_row(sessions, a)
        delays.append((row.next_poll_at - row.last_polled_at).total_seconds())
    assert len(set(delays)) == 5 and delays[-1] > delays[0]
    assert row.state == "failing" and row.last_error == "HTTP 503"
    state["mode"] = "ok"
    await make_due(sessions, a)
    await poller.poll_due_feeds()
    row = await feed_row(sessions, a)
    assert row.state == "active" and row.consecutive_failures == 0


async def test_an_absurd_retry_after_holds_the_host_for_max_retry_after_only(server, poller, sessions, settings):
    """Retry-After of 10^20 seconds: the feed and the other feeds of its host wait
    ``max_retry_after`` (a day), and the other feed is put off, not failed with an internal error."""
    server.add("/a.xml", b"slow down", 429, host="absurd.example.org", Retry_After="99999999999999999999")
    server.add("/b.xml", b"<rss version='2.0'><channel><title>b</title></channel></rss>", host="absurd.example.org",
               Content_Type=RSS)
    a = await subscribe(sessions, "https://absurd.example.org/a.xml")
    await poller.poll_due_feeds()
    b = await subscribe(sessions, "https://absurd.example.org/b.xml")  # added after the 429
    await poller.poll_due_feeds()
    assert server.hits("/b.xml") == []
    for feed_id in (a, b):
        row = await feed_row(sessions, feed_id)
        wait = (row.next_poll_at - utcnow()).total_seconds()
        assert settings.max_retry_after - 60 <= wait <= settings.max_retry_after, (feed_id, wait)
    row = await feed_row(sessions, b)
    assert row.consecutive_failures == 0 and row.last_error is None and row.state == "active"


async def test_410_marks_the_feed_gone_and_stops_polling(server, poller, sessions, settings):
    server.add("/feed.xml", b"gone", 410, host="gone.example.org")
    feed_id = await subscribe(sessions, "https://gone.example.org/feed.xml")
    await poller.poll_due_feeds()
    await make_due(sessions, feed_id)
    report = await poller.poll_due_feeds()
    assert report.feeds_polled == 0 and len(server.hits("/feed.xml")) == 1
    async with api_client(settings, sessions) as api:
        feed = await feed_api(api, feed_id)
    assert feed["state"] == "gone" and feed["last_status"] == 410


async def test_schedule_honours_ttl_and_max_age_within_floor_and_ceiling(server, poller, sessions, settings):
    rss = ('<rss version="2.0"><channel><title>t</title><ttl>{ttl}</ttl>'
           '<item><title>x</title><link>https://s.example.org/1</link></item></channel></rss>')
    server.add("/ttl.xml", rss.format(ttl=120), host="s.example.org", Content_Type=RSS)
    server.add("/age.xml", rss.format(ttl=0), host="s.example.org", Content_Type=RSS, Cache_Control="public, max-age=3600")
    server.add("/huge.xml", rss.format(ttl=100000), host="s.example.org", Content_Type=RSS)
    ids = [await subscribe(sessions, f"https://s.example.org/{n}.xml") for n in ("ttl", "age", "huge")]
    await poller.poll_due_feeds()
    intervals = [(await feed_row(sessions, i)).poll_interval for i in ids]
    assert intervals == [7200, 3600, settings.poll_max_interval]


def test_retry_after_values_are_ascii_digits_or_http_dates():
    """RFC 9110 §10.2.3: delay-seconds is 1*DIGIT (ASCII). "²" passes str.isdigit but is no number."""
    from service.net.fetcher import parse_retry_after

    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("\u00b2") is None and parse_retry_after("\u0661\u0662") is None  # ², Arabic-Indic 12
    assert parse_retry_after("soon") is None


def _document(prefix: str, n: int, *, title: str = "Item", edited_guid: bool = False):
    """A parsed feed of ``n`` entries: most with a GUID and a link, one in five without a link, the
    last one repeating the first one's link under another GUID (``edited_guid``: every GUID changed)."""
    from service.ingest.feeds.entries import ParsedEntry, ParsedFeed

    entries = []
    for i in range(n):
        link = None if i % 5 == 4 else f"https://{prefix}.example.org/story/{i}"
        guid = f"{prefix}-{i}{'-v2' if edited_guid else ''}"
        entries.append(ParsedEntry(key=f"guid:{guid}", link=link, guid=guid, title=f"{title} {i}",
                                   summary_html=f"<p>summary {i}</p>", content_html=None, text=f"text {i}"))
    entries.append(ParsedEntry(key=f"guid:{prefix}-again", link=f"http://{prefix}.example.org/story/0", guid=f"{prefix}-again",
                               title="again", summary_html=None, content_html=None))
    return ParsedFeed(title=prefix, site_url=f"https://{prefix}.example.org/", language=None, entries=entries, format="rss")


async def test_storing_a_feed_document_takes_the_same_number_of_statements_whatever_its_size(sessions):
    """Set-based storage: the statements issued by ``store_entries`` (counted on the engine) do not
    grow with the number of entries, for new entries, for entries seen again with edits, and for
    entries whose GUID changed; and the rows are right."""
    import sqlalchemy as sa

    from service.models import Feed, Outlet

    async with sessions() as session:
        small_feed, big_feed = Feed(url="https://small.example.org/feed.xml"), Feed(url="https://big.example.org/feed.xml")
        session.add_all([small_feed, big_feed, Outlet(domain="example.org")])  # the outlet's first sight costs two more
        await session.commit()
        small_id, big_id = small_feed.id, big_feed.id

    async def store_counting(feed_id: int, document) -> tuple[int, list[int]]:
        statements = []
        async with sessions() as session:
            feed = await session.get(Feed, feed_id)
            engine = session.bind.sync_engine

            def counted(conn, cursor, statement, *args) -> None:
                statements.append(statement)

            sa.event.listen(engine, "before_cursor_execute", counted)
            try:
                new_ids = await session.run_sync(articles.store_entries, feed, document)
            finally:
                sa.event.remove(engine, "before_cursor_execute", counted)
            await session.commit()
        return len(statements), new_ids

    # (options, new articles in the small and the big document): the new GUIDs of entries without a link are new items.
    rounds = [({}, (5, 200)), ({"title": "Edited"}, (0, 0)), ({"title": "Edited", "edited_guid": True}, (1, 40))]
    for options, expected in rounds:
        small_count, small_new = await store_counting(small_id, _document("small", 5, **options))
        big_count, big_new = await store_counting(big_id, _document("big", 200, **options))
        assert small_count == big_count, options
        assert (len(small_new), len(big_new)) == expected, options
    async with sessions() as session:
        rows = (await session.exec(sa.select(Article.title).where(Article.feed_id == big_id))).all()
        entries = (await session.exec(sa.select(Entry.entry_key).where(Entry.feed_id == big_id))).all()
    assert len(rows) == 240 and all(title.startswith("Edited") for (title,) in rows if title != "again")
    # The 160 linked entries were re-keyed to their new GUIDs (not duplicated); those without a link are new items.
    assert sum(key.endswith("-v2") for (key,) in entries) == 160 + 40 and len(entries) == 201 + 40


async def test_a_subscribed_feed_answering_an_empty_body_is_a_clear_feed_error(server, poller, sessions, settings):
    from tests.corpus_feeds import rss

    url = server.add("/emptied.xml", rss([{"title": "First", "link": "https://emptied.example.org/1"}]),
                     host="emptied.example.org", Content_Type="application/rss+xml")
    feed_id = await subscribe(sessions, url)
    await poller.poll_due_feeds()
    server.add("/emptied.xml", b"", host="emptied.example.org", Content_Type="application/rss+xml")
    await make_due(sessions, feed_id)
    report = await poller.poll_due_feeds()
    assert report.feeds_failed == 1
    async with api_client(settings, sessions) as api:
        feed = await feed_api(api, feed_id)
    assert feed["last_error"] == "not a readable feed (the response body is empty)"
    assert feed["last_status"] == 200
