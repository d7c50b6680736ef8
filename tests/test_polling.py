"""Polite polling against real misbehaving servers: redirects (BL-23), validators and 304 (BL-24),
429/503 with Retry-After and backoff (BL-25), 410, failing state, scheduling hints."""

from __future__ import annotations

from datetime import timedelta

from service.models import Article, Entry, utcnow
from tests.ingest_helpers import api_client, count, feed_api, feed_row, make_due, subscribe
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
    assert (await feed_row(sessions, moved)).url == f"https://{host}/new/feed.xml"
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
    report = await poller.poll_due_feeds()
    assert report.feeds_not_modified == 1 and report.articles_new == 0
    assert (await count(sessions, Entry), await count(sessions, Article)) == (entries, arts)
    assert (await feed_row(sessions, feed_id)).last_status == 304


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
    from service.ingest.fetcher import parse_retry_after

    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("\u00b2") is None and parse_retry_after("\u0661\u0662") is None  # ², Arabic-Indic 12
    assert parse_retry_after("soon") is None


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
