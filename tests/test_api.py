"""The HTTP API over real loopback HTTP: feeds, articles, pagination, filters and problem details."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import select

from service.models import Article, Entry, ExtractionStatus, Feed, utcnow

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_healthz(api):
    assert httpx.get(f"{api}/healthz").json() == {"status": "ok"}


def test_head_is_answered_like_get_without_a_body(api):
    """Uptime checkers and caches send HEAD (RFC 9110 §9.3.2): GET's status and headers, no body."""
    for path in ("/healthz", "/v1/feeds", "/v1/articles?limit=5", "/v1/feeds/export"):
        get, head = httpx.get(api + path), httpx.head(api + path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"" and get.content, path
        assert head.headers["content-type"] == get.headers["content-type"], path
        assert head.headers["content-length"] == str(len(get.content)), path
    assert httpx.head(api + "/v1/feeds/999").status_code == 404
    assert httpx.head(api + "/v1/articles?limit=0").status_code == 422


def test_feed_lifecycle_and_duplicates(api, server):
    from tests.corpus_feeds import rss

    feed_url = server.add("/feed.xml", rss([{"title": "One", "link": server.url("/one.html")}]), Content_Type="application/rss+xml")
    created = httpx.post(f"{api}/v1/feeds", json={"url": feed_url + "?utm_source=x"}, timeout=60)
    assert created.status_code == 201, created.text
    feed = created.json()
    assert feed["url"] == feed_url  # tracking parameters removed
    assert feed["state"] == "active" and feed["outlet"] == "127.0.0.1"
    assert feed["article_count"] == 1 and feed["last_status"] == 200  # subscribing is the first poll
    assert created.headers["location"] == f"/v1/feeds/{feed['id']}"

    duplicate = httpx.post(f"{api}/v1/feeds", json={"url": feed_url}, timeout=60)
    body = assert_problem(duplicate, 409)
    assert body["feed"]["id"] == feed["id"]

    assert [f["id"] for f in httpx.get(f"{api}/v1/feeds").json()["items"]] == [feed["id"]]
    assert httpx.get(f"{api}/v1/feeds/{feed['id']}").json()["url"] == feed["url"]
    assert httpx.delete(f"{api}/v1/feeds/{feed['id']}").status_code == 204
    assert_problem(httpx.get(f"{api}/v1/feeds/{feed['id']}"), 404)
    assert_problem(httpx.delete(f"{api}/v1/feeds/{feed['id']}"), 404)


def test_a_feed_that_moved_permanently_is_subscribed_at_its_new_address(api, server):
    """A 301/308 moves the subscription, as a poll would: subscribing through the old address of a
    feed already subscribed at the new one is a 409, not a second subscription polling through the
    redirect for ever; a 302 is temporary and keeps the given URL."""
    from tests.corpus_feeds import rss

    feed_url = server.add("/feed.xml", rss([{"title": "One", "link": server.url("/one.html")}]), Content_Type="application/rss+xml")
    moved = server.add("/old.xml", b"", 301, Location=feed_url)
    moved_308 = server.add("/older.xml", b"", 308, Location=moved)
    temporary = server.add("/mirror.xml", b"", 302, Location=feed_url)

    created = httpx.post(f"{api}/v1/feeds", json={"url": moved}, timeout=60)
    assert created.status_code == 201, created.text
    assert created.json()["url"] == feed_url
    again = assert_problem(httpx.post(f"{api}/v1/feeds", json={"url": moved_308}, timeout=60), 409)
    assert again["feed"]["id"] == created.json()["id"]
    assert_problem(httpx.post(f"{api}/v1/feeds", json={"url": feed_url}, timeout=60), 409)

    kept = httpx.post(f"{api}/v1/feeds", json={"url": temporary}, timeout=60)
    assert kept.status_code == 201, kept.text
    assert kept.json()["url"] == temporary
    assert len(httpx.get(f"{api}/v1/feeds").json()["items"]) == 2


@pytest.mark.parametrize(
    "body",
    [{}, {"url": "ftp://example.org/feed"}, {"url": "not a url"}, {"url": "https://example.org/f", "extra": 1}, [1, 2]],
)
def test_bad_feed_bodies_are_422_problems(api, body):
    problem = assert_problem(httpx.post(f"{api}/v1/feeds", json=body), 422)
    assert problem["errors"]


def test_feeds_carrying_control_characters_and_lone_surrogates_are_stored_without_them(api, server):
    """PostgreSQL text cannot hold U+0000, no driver can encode a lone surrogate (a JSON "\\ud800"
    escape) and XML cannot carry C0 controls: such characters are dropped or replaced, never a 500,
    a lost poll or an OPML export that does not parse."""
    import json as jsonlib

    from service.ingest.feeds.opml import parse_opml

    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "Odd\ud800 \u0001feed\u000c", "items": [
        {"id": "x\ud800", "url": server.url("/one.html"), "title": "Bad\ud800 title\u0000\u001f", "content_text": "Text \ud800 here."}]}
    json_url = server.add("/odd.json", jsonlib.dumps(doc), Content_Type="application/feed+json")
    rss_url = server.add("/nul.xml", "<?xml version='1.0'?><rss version='2.0'><channel><title>nul\x00title</title><item>"
                         "<title>it\x00em</title><guid>g\x00</guid><description>d\x00d</description></item></channel></rss>",
                         Content_Type="application/rss+xml")
    titles = []
    for url in (json_url, rss_url):
        created = httpx.post(f"{api}/v1/feeds", json={"url": url}, timeout=60)
        assert created.status_code == 201, created.text
        assert created.json()["article_count"] == 1  # (a NUL makes the XML ill-formed: a recovery warning)
        titles.append(created.json()["title"])
    assert titles == ["Odd\ufffd feed", "nultitle"]
    articles = httpx.get(f"{api}/v1/articles", timeout=60).json()["items"]
    assert sorted(a["title"] for a in articles) == ["Bad\ufffd title", "item"]
    exported = httpx.get(f"{api}/v1/feeds/export", timeout=60)
    assert exported.status_code == 200 and "\x00" not in exported.text
    assert sorted(f.title for f in parse_opml(exported.content)) == ["Odd\ufffd feed", "nultitle"]


@pytest.mark.parametrize("url", ["http://a..b/feed", "http://" + "a" * 64 + ".com/feed", "http://[::1/feed", "http://example.com:99999/feed"])
def test_feed_urls_whose_host_or_port_cannot_be_used_are_422_problems(api, url):
    problem = assert_problem(httpx.post(f"{api}/v1/feeds", json={"url": url}, timeout=60), 422)
    assert "not a valid" in problem["detail"] or problem["errors"]  # ours, or pydantic's URL check
    assert httpx.get(f"{api}/v1/feeds").json()["items"] == []  # nothing half-made is left


def test_malformed_json_is_a_422_problem(api):
    response = httpx.post(f"{api}/v1/feeds", content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(response, 422)


def test_a_json_body_sent_as_another_media_type_is_a_415_problem(api):
    """``curl -d`` without ``-H 'content-type: application/json'`` sends a form's media type: the
    body is not read as JSON, and the answer says so (it was a 422 "Input should be a valid
    dictionary or object to extract fields from")."""
    body = b'{"url": "https://example.org/feed.xml"}'
    for headers in ({"content-type": "application/x-www-form-urlencoded"}, {"content-type": "text/plain"}, {}):
        problem = assert_problem(httpx.post(f"{api}/v1/feeds", content=body, headers=headers), 415)
        assert "Content-Type: application/json" in problem["detail"], problem
    hook = b'{"url": "https://example.org/hook", "event_types": ["article.created"]}'
    assert_problem(httpx.post(f"{api}/v1/subscriptions", content=hook, headers={"content-type": "text/plain"}), 415)
    assert_problem(httpx.post(f"{api}/v1/feeds", json=[1, 2]), 422)  # JSON, but not an object: still a 422
    assert httpx.get(f"{api}/v1/feeds").json()["items"] == httpx.get(f"{api}/v1/subscriptions").json()["items"] == []
    operation = httpx.get(f"{api}/openapi.json").json()["paths"]["/v1/feeds"]["post"]
    assert "415" in operation["responses"]


async def _seed(sessions, count: int) -> list[int]:
    """``count`` articles in one feed, one hour apart, alternating English and German; returns ids
    newest first."""
    base = datetime(2024, 5, 1, tzinfo=UTC)
    async with sessions() as session:
        feed = Feed(url="https://example.org/feed.xml")
        other = Feed(url="https://example.net/feed.xml")
        session.add_all([feed, other])
        await session.flush()
        ids = []
        for i in range(count):
            published = base + timedelta(hours=i)
            article = Article(
                canonical_url=f"https://example.org/a/{i}", url=f"https://example.org/a/{i}", feed_id=feed.id,
                title=f"Article {i}", text=f"Body {i}", published_at=published, sort_at=published,
                language="en" if i % 2 == 0 else "de", extraction_status=ExtractionStatus.ok, first_seen_at=utcnow(),
            )
            session.add(article)
            await session.flush()
            session.add(Entry(feed_id=(feed.id if i < count - 1 else other.id), entry_key=article.canonical_url, article_id=article.id))
            ids.append(article.id)
        await session.commit()
    return ids[::-1]


async def test_articles_keyset_pagination_and_filters(api, sessions):
    newest_first = await _seed(sessions, 7)
    async with httpx.AsyncClient(base_url=api) as client:
        seen, cursor = [], None
        while True:
            page = (await client.get("/v1/articles", params={"limit": 3} | ({"cursor": cursor} if cursor else {}))).json()
            assert len(page["items"]) <= 3
            assert "text" not in page["items"][0]
            seen += [a["id"] for a in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == newest_first

        german = (await client.get("/v1/articles", params={"lang": "de"})).json()["items"]
        assert {a["language"] for a in german} == {"de"} and len(german) == 3
        assert (await client.get("/v1/articles", params={"lang": "DE-ch"})).json()["items"] == german  # stored as "de"

        window = (await client.get("/v1/articles", params={"since": "2024-05-01T02:00:00Z", "until": "2024-05-01T05:00:00Z"})).json()
        assert [a["title"] for a in window["items"]] == ["Article 4", "Article 3", "Article 2"]

        feeds = (await client.get("/v1/feeds")).json()["items"]
        in_other = (await client.get("/v1/articles", params={"feed_id": feeds[1]["id"]})).json()["items"]
        assert [a["title"] for a in in_other] == ["Article 6"]
        in_feed, cursor = [], None
        while True:  # a feed's articles page by page: the keys of each page first, then its rows
            params = {"feed_id": feeds[0]["id"], "limit": 4} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/v1/articles", params=params)).json()
            in_feed += [a["id"] for a in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
        assert in_feed == newest_first[1:]
        assert feeds[0]["article_count"] == 6

        detail = (await client.get(f"/v1/articles/{newest_first[0]}")).json()
        assert detail["text"] == "Body 6" and detail["published_at"] == "2024-05-01T06:00:00Z"

        assert_problem(await client.get("/v1/articles", params={"cursor": "garbage!"}), 400)
        assert_problem(await client.get("/v1/articles", params={"limit": 0}), 422)
        assert_problem(await client.get("/v1/articles", params={"limit": 1000}), 422)


async def test_a_cursor_resumes_only_the_query_that_issued_it(api, sessions):
    """A cursor carries its query: under other filters (or another q) it is a 422 that says what to
    do, not a page that resumes one query at another's position; the same filters written
    otherwise (a region, another offset, www.) are the same query."""
    newest_first = await _seed(sessions, 7)
    async with httpx.AsyncClient(base_url=api) as client:
        feeds = (await client.get("/v1/feeds")).json()["items"]
        first = (await client.get("/v1/articles", params={"feed_id": feeds[0]["id"], "limit": 2})).json()
        cursor = first["next_cursor"]
        for other in ({}, {"feed_id": feeds[1]["id"]}, {"feed_id": feeds[0]["id"], "lang": "de"},
                      {"feed_id": feeds[0]["id"], "q": "Article"}, {"feed_id": feeds[0]["id"], "until": "2030-01-01T00:00:00Z"}):
            problem = assert_problem(await client.get("/v1/articles", params={**other, "cursor": cursor}), 422)
            assert "cursor" in problem["detail"] and "filters" in problem["detail"], problem
            assert problem["errors"][0]["location"] == ["query", "cursor"]
        second = (await client.get("/v1/articles", params={"feed_id": feeds[0]["id"], "limit": 5, "cursor": cursor})).json()
        assert [a["id"] for a in first["items"] + second["items"]] == newest_first[1:]  # the page size may change

        german = (await client.get("/v1/articles", params={"lang": "de", "since": "2024-05-01T00:00:00Z", "limit": 1})).json()
        again = await client.get("/v1/articles", params={"lang": "DE-ch", "since": "2024-05-01T02:00:00+02:00",
                                                         "cursor": german["next_cursor"]})
        assert again.status_code == 200, again.text
        assert {a["language"] for a in again.json()["items"]} == {"de"} and len(again.json()["items"]) == 2

        searched = (await client.get("/v1/articles", params={"q": "body", "limit": 2})).json()
        assert searched["next_cursor"]
        assert_problem(await client.get("/v1/articles", params={"q": "article", "cursor": searched["next_cursor"]}), 422)
        assert (await client.get("/v1/articles", params={"q": "BODY", "cursor": searched["next_cursor"]})).status_code == 200

        from service.api.pagination import encode_cursor, query_digest

        moment = datetime(2026, 1, 1, tzinfo=UTC)
        stories = encode_cursor("stories", query_digest(outlet="welt.de"), moment, 5)
        assert (await client.get("/v1/stories", params={"outlet": "https://WWW.welt.de/x", "cursor": stories})).status_code == 200
        for other in ({}, {"outlet": "spiegel.de"}, {"outlet": "welt.de", "min_outlets": 2}):
            assert_problem(await client.get("/v1/stories", params={**other, "cursor": stories}), 422)
        assert_problem(await client.get("/v1/articles", params={"since": "2024-05-01T02:00:00"}), 422)
        backwards = assert_problem(await client.get("/v1/articles", params={"since": "2024-05-01T05:00:00Z", "until": "2024-05-01T04:00:00+02:00"}), 422)
        assert "after until" in backwards["detail"], backwards
        assert_problem(await client.get("/v1/articles/999999"), 404)
        assert_problem(await client.get("/v1/articles/abc"), 422)


async def test_a_feeds_list_follows_its_articles_times(api, sessions):
    """The feed-filtered list is ordered by the entries' copy of ``sort_at`` (migration 0010), which
    the database keeps equal to the article's: an entry inserted without it takes its article's;
    an article that moves (its page gave another date) moves in its feeds' lists too; an article
    with two entries in one feed is listed once."""
    newest_first = await _seed(sessions, 5)  # newest_first[0] is in the other feed
    oldest = newest_first[-1]
    async with sessions() as session:
        article = await session.get(Article, oldest)
        article.sort_at = article.published_at = datetime(2030, 1, 1, tzinfo=UTC)
        session.add(Entry(feed_id=article.feed_id, entry_key="second key of the same article", article_id=oldest))
        await session.commit()
        feed_id = article.feed_id
    async with httpx.AsyncClient(base_url=api) as client:
        everything = [a["id"] for a in (await client.get("/v1/articles")).json()["items"]]
        in_feed = [a["id"] for a in (await client.get("/v1/articles", params={"feed_id": feed_id})).json()["items"]]
    assert everything[0] == oldest and in_feed == [i for i in everything if i != newest_first[0]]
    async with sessions() as session:  # an entry pointed at another article takes that one's time
        entry = (await session.exec(select(Entry).where(Entry.entry_key == "second key of the same article"))).one()
        other = await session.get(Article, newest_first[1])
        entry.article_id = other.id
        await session.commit()
        await session.refresh(entry)
        assert entry.sort_at == other.sort_at != datetime(2030, 1, 1, tzinfo=UTC)


async def test_listed_articles_are_the_shapes_the_models_give(api, sessions):
    """List items are serialised straight from the rows (no validation per item): each must be
    exactly what ``ArticleSummary`` gives for it, in its member order, with the citations of the
    articles that cite anyone and ``[]`` for the others; one article is ``ArticlePublic``."""
    from service.models import Citation, Outlet
    from service.shapes import ArticlePublic, ArticleSummary
    from service.storage.articles import LISTED

    SUMMARY_FIELDS = tuple(ArticleSummary.model_fields)  # the members as ArticleSummary serialises them
    assert (*LISTED, "cites") == SUMMARY_FIELDS
    async with sessions() as session:
        outlet = Outlet(domain="welt.de")
        session.add(outlet)
        await session.flush()
        moment = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
        cited = Article(canonical_url="https://welt.de/a", url="https://welt.de/a", title="Cited", text="t", outlet_id=outlet.id,
                        published_at=moment, sort_at=moment, first_seen_at=moment, extraction_status=ExtractionStatus.ok)
        citing = Article(canonical_url="https://example.org/b", url="https://example.org/b", title="Citing", text="Body",
                         authors=["A. Writer", "B. Writer"], language="de", language_confidence=0.93, similarity=0.5,
                         enclosures=[{"url": "https://example.org/b.mp3", "type": "audio/mpeg", "length": 12345}],
                         published_at=moment + timedelta(hours=1), sort_at=moment + timedelta(hours=1), first_seen_at=moment,
                         extraction_status=ExtractionStatus.ok, word_count=1, text_source="page")
        session.add_all([cited, citing])
        await session.flush()
        session.add_all([Citation(article_id=citing.id, name="Welt", outlet_id=outlet.id, cited_article_id=cited.id),
                         Citation(article_id=citing.id, name="Reuters")])
        await session.commit()
        citing_id, cited_id = citing.id, cited.id
    async with httpx.AsyncClient(base_url=api) as client:
        items = (await client.get("/v1/articles")).json()["items"]
        assert [item["id"] for item in items] == [citing_id, cited_id]
        for item in items:
            assert list(item) == list(SUMMARY_FIELDS)
            assert item == ArticleSummary.model_validate(item).model_dump(mode="json")
        assert items[0]["cites"] == [{"name": "Welt", "outlet": "welt.de", "article_id": cited_id},
                                     {"name": "Reuters", "outlet": None, "article_id": None}]
        assert items[1]["cites"] == [] and items[1]["outlet"] == "welt.de"
        assert items[0]["enclosures"][0]["length"] == 12345 and items[0]["authors"] == ["A. Writer", "B. Writer"]
        assert items[1]["published_at"] == "2024-05-01T12:00:00.250000Z"
        one = (await client.get(f"/v1/articles/{citing_id}")).json()
        assert one == ArticlePublic.model_validate(one).model_dump(mode="json")
        assert one["text"] == "Body" and one["cites"] == items[0]["cites"] and one["failures"] == []
        assert {k: v for k, v in one.items() if k not in ("text", "failures")} == items[0]


async def test_reader_reads_what_is_committed_and_raises_what_the_read_raises(sessions):
    """``db.Reader`` (the article list's reads): each read sees every commit made before it (its
    threads' connections keep no snapshot between reads), reads run side by side, and an error in
    the read reaches the caller."""
    import asyncio

    from service.db import Reader
    from service.storage import articles

    reader = Reader(sessions)

    async def add(title: str) -> None:
        async with sessions() as session:
            moment = utcnow()
            session.add(Article(canonical_url=f"https://example.org/{title}", title=title, sort_at=moment, first_seen_at=moment,
                                extraction_status=ExtractionStatus.ok))
            await session.commit()

    def titles(session) -> list[str]:
        return [row.title for row in articles.listed(session, limit=10)]

    assert await reader.run(titles) == []
    await add("first")
    assert await asyncio.gather(*(reader.run(titles) for _ in range(4))) == [["first"]] * 4
    await add("second")
    assert await reader.run(titles) == ["second", "first"]

    def broken(session) -> None:
        raise LookupError("in the read")

    with pytest.raises(LookupError, match="in the read"):
        await reader.run(broken)
    assert await reader.run(titles) == ["second", "first"]
    await reader.close()


async def test_a_reader_left_to_its_last_read_is_closed_by_another_thread(sessions, monkeypatch):
    """A caller cancelled while its read runs (a request whose client left, at shutdown) can leave
    that read holding the SQLite reader's last reference: the reader is then closed when the read
    returns, by a thread of its own (a reader thread cannot wait for itself to end), without an
    error reported."""
    import asyncio
    import contextlib
    import gc
    import sys
    import threading

    import sqlalchemy as sa

    from service.db import Reader

    reader = Reader(sessions)
    if not reader.threaded:
        pytest.skip("a SQLite file: the reader's own threads")
    unraisable: list = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    entered, release = threading.Event(), threading.Event()

    def held(session) -> int:
        entered.set()
        release.wait()
        return session.execute(sa.text("SELECT 1")).scalar_one()

    waiting = asyncio.ensure_future(reader.run(held))
    await asyncio.to_thread(entered.wait)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    pool, threads = reader._threads, list(reader._threads._threads)
    del reader, waiting
    gc.collect()
    release.set()
    for thread in threads:  # a reader thread ends once its pool is shut down, i.e. once the reader is closed
        await asyncio.to_thread(thread.join)
    for thread in threading.enumerate():
        if thread.name == "closing-sqlite-readers":
            await asyncio.to_thread(thread.join)
    assert pool._shutdown and unraisable == []


async def test_reader_reads_again_when_the_server_closed_its_connections(sessions):
    """On PostgreSQL ``db.Reader`` does not ping a connection before each read: a read on one the
    server closed (a restart, an administrator) is made again on a new one, and the caller gets its
    rows, not the error."""
    import sqlalchemy as sa

    from service.db import Reader, dialect_name

    async with sessions() as session:
        if dialect_name(session) != "postgresql":
            pytest.skip("PostgreSQL: the SQLite reader's connections are files")
        moment = utcnow()
        session.add(Article(canonical_url="https://example.org/kept", title="kept", sort_at=moment, first_seen_at=moment,
                            extraction_status=ExtractionStatus.ok))
        await session.commit()
    reader = Reader(sessions)

    def titles(session) -> list[str]:
        return [row.title for row in session.execute(sa.select(Article.title))]

    def backend(session) -> int:
        return session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()

    assert await reader.run(titles) == ["kept"]
    pid = await reader.run(backend)
    async with sessions() as session:
        assert (await session.exec(sa.select(sa.func.pg_terminate_backend(pid)))).one()
    assert await reader.run(titles) == ["kept"]
    assert await reader.run(backend) != pid
    await reader.close()


def test_out_of_range_times_and_cursors_are_client_errors(api):
    import base64
    import json as _json

    from service.api.pagination import query_digest

    def cursor(listing, *fields) -> str:  # a cursor of the unfiltered list
        return base64.urlsafe_b64encode(_json.dumps([listing, query_digest(), *fields]).encode()).decode().rstrip("=")

    for listing, other in (("articles", "stories"), ("stories", "articles")):
        path = f"/v1/{listing}"
        assert_problem(httpx.get(f"{api}{path}", params={"since": "0001-01-01T00:00:00+14:00"}), 422)
        for bad in (cursor(listing, "2026-01-01T00:00:00+00:00", 10**23), cursor(listing, "2026-01-01T00:00:00+00:00", -5),
                    cursor(listing, "0001-01-01T00:00:00+14:00", 1)):
            assert_problem(httpx.get(f"{api}{path}", params={"cursor": bad}), 400)
        assert httpx.get(f"{api}{path}", params={"cursor": cursor(listing, "2026-01-01T00:00:00+00:00", 5)}).status_code == 200
        # the other list's cursor is not a position in this one
        problem = assert_problem(httpx.get(f"{api}{path}", params={"cursor": cursor(other, "2026-01-01T00:00:00+00:00", 5)}), 400)
        assert "next_cursor" in problem["detail"]
    assert_problem(httpx.get(f"{api}/v1/articles", params={"until": "9999-12-31T23:59:59-14:00"}), 422)
    assert_problem(httpx.get(f"{api}/v1/stories/99999999999999999999"), 422)


def test_deeply_nested_or_huge_opml_is_refused_cleanly(api):
    deep = "<opml version='2.0'><body>" + "<outline text='a'>" * 5000 + "</outline>" * 5000 + "</body></opml>"
    problem = assert_problem(httpx.post(f"{api}/v1/feeds/import", content=deep.encode(), headers={"content-type": "text/x-opml"}), 422)
    assert "deeper than" in problem["detail"]
    many = "<opml version='2.0'><body>" + "<outline text='x'/>" * 10_001 + "</body></opml>"
    problem = assert_problem(httpx.post(f"{api}/v1/feeds/import", content=many.encode(), headers={"content-type": "text/x-opml"}), 422)
    assert "too many outlines" in problem["detail"]


def test_article_count_agrees_with_the_article_list_when_entries_share_a_page(api, server):
    """A linked post and a sponsor post of one feed, both linking one page under their own GUIDs
    (DaringFireball does this), are two articles (``store_entries``: a page shared within one
    document); one page listed twice under two spellings (trailing slash) is one article. The
    feed's article_count agrees with its article list."""
    page, other = server.url("/mnml.html"), server.url("/other")
    feed_url = server.add("/df.xml", '<?xml version="1.0"?><rss version="2.0"><channel><title>DF</title>'
                          f'<item><title>Linked post</title><link>{page}</link><guid isPermaLink="false">p1</guid></item>'
                          f'<item><title>Sponsor</title><link>{page}</link><guid isPermaLink="false">s1</guid></item>'
                          f'<item><title>Other</title><link>{other}</link><guid isPermaLink="false">o1</guid></item>'
                          f'<item><title>Other</title><link>{other}/</link><guid isPermaLink="false">o2</guid></item>'
                          "</channel></rss>", Content_Type="application/rss+xml")
    created = httpx.post(f"{api}/v1/feeds", json={"url": feed_url}, timeout=60)
    assert created.status_code == 201, created.text
    listed = httpx.get(f"{api}/v1/articles", params={"feed_id": created.json()["id"]}).json()["items"]
    assert created.json()["article_count"] == len(listed) == 3
    assert sorted(article["title"] for article in listed) == ["Linked post", "Other", "Sponsor"]


def test_documents_that_are_not_feeds_are_not_subscribed(api, server):
    """JSON that is no JSON Feed (also one with an ``items`` member but no JSON Feed version or
    items) and XML that is no RSS/Atom/RDF: a 422 saying why, no feed row."""
    not_json_feed = server.add("/data.json", '{"a": 1}', Content_Type="application/feed+json")
    not_xml_feed = server.add("/config.xml", "<config><a>1</a></config>", Content_Type="application/xml")
    loose = [server.add(f"/loose{i}.json", body, Content_Type="application/json") for i, body in enumerate((
        '{"items": []}', '{"items": [{"foo": 1}], "data": "x"}', '{"version": "https://jsonfeed.org/version/1", "items": "abc"}'))]
    for url, why in ((not_json_feed, "not a JSON Feed"), (not_xml_feed, "no feed elements"),
                     *((u, "not a JSON Feed") for u in loose)):
        problem = assert_problem(httpx.post(f"{api}/v1/feeds", json={"url": url}, timeout=60), 422)
        assert problem["detail"].startswith(f"{url} is not a feed") and why in problem["detail"], problem
    assert httpx.get(f"{api}/v1/feeds").json()["items"] == []


def test_utf16_feeds_are_subscribed(api, server):
    """UTF-16 with a BOM (little and big endian) is a feed like any other, not "neither feed nor HTML"."""
    doc = ('<?xml version="1.0" encoding="utf-16"?><rss version="2.0"><channel><title>Sechzehn</title>'
           "<item><title>Eins zwei drei</title><link>https://utf16.example.org/1</link></item></channel></rss>")
    for name, body in (("le", doc.encode("utf-16-le")), ("be", doc.encode("utf-16-be"))):
        bom = b"\xff\xfe" if name == "le" else b"\xfe\xff"
        url = server.add(f"/utf16-{name}.xml", bom + body, Content_Type="application/xml")
        created = httpx.post(f"{api}/v1/feeds", json={"url": url}, timeout=60)
        assert created.status_code == 201, created.text
        assert created.json()["title"] == "Sechzehn" and created.json()["article_count"] == 1


def test_opml_outlines_that_cannot_be_fetched_are_refused_and_the_rest_imported(api):
    """A bad host, a port out of range and an over-long URL between two good feeds: listed under
    ``refused`` with the reason, and the good feeds after them are still imported."""
    bad = ["http://a..b/feed", "http://news.example.org:99999/x", "http://news.example.org/" + "x" * 3000, "http://[::1/"]
    urls = ["http://news.example.org/one.xml", *bad, "http://news.example.org/two.xml"]
    opml = "<opml version='2.0'><body>" + "".join(f"<outline xmlUrl='{u}'/>" for u in urls) + "</body></opml>"
    imported = httpx.post(f"{api}/v1/feeds/import", content=opml.encode(), headers={"content-type": "text/x-opml"})
    assert imported.status_code == 200, imported.text
    report = imported.json()
    assert report["added"] == 2 and report["existing"] == 0
    assert [r.split(": ", 1)[0] for r in report["refused"]] == bad
    assert all(len(r) > len(u) + 2 for r, u in zip(report["refused"], bad, strict=True))  # each with a reason
    assert [(o["url"], o["status"], o["feed_id"] is None, o["reason"] is None) for o in report["outlines"]] == [
        (urls[0], "added", False, True), *[(u, "refused", True, False) for u in bad], (urls[-1], "added", False, True)]
    listed = {f["url"] for f in httpx.get(f"{api}/v1/feeds").json()["items"]}
    assert listed == {"http://news.example.org/one.xml", "http://news.example.org/two.xml"}


def test_an_opml_import_that_subscribes_to_nothing_is_a_422_listing_each_refusal(api):
    """As `newsloom feeds import` exits 1: every outline refused, or none with a feed, is a 422
    problem whose ``refused`` and ``outlines`` say which and why; one feed already subscribed among
    refusals is a 200 (something could be imported)."""
    bad = ["file:///etc/passwd", "http://a..b/feed", "gopher://news.example.org/feed"]
    opml = "<opml version='2.0'><body>" + "".join(f"<outline type='rss' xmlUrl='{u}'/>" for u in bad) + "</body></opml>"
    problem = assert_problem(httpx.post(f"{api}/v1/feeds/import", content=opml.encode(), headers={"content-type": "text/x-opml"}), 422)
    assert "no feed imported" in problem["detail"] and "3" in problem["detail"], problem
    assert [r.split(": ", 1)[0] for r in problem["refused"]] == bad
    assert [(o["url"], o["status"]) for o in problem["outlines"]] == [(u, "refused") for u in bad]
    assert all(o["reason"] for o in problem["outlines"])
    empty = b"<opml version='2.0'><body><outline text='a folder'><outline text='no feed'/></outline></body></opml>"
    problem = assert_problem(httpx.post(f"{api}/v1/feeds/import", content=empty), 422)
    assert "no outline with an xmlUrl" in problem["detail"] and problem["outlines"] == []
    assert httpx.get(f"{api}/v1/feeds").json()["items"] == []

    good = "<outline xmlUrl='http://news.example.org/one.xml'/>"
    assert httpx.post(f"{api}/v1/feeds/import", content=f"<opml><body>{good}</body></opml>".encode()).json()["added"] == 1
    again = httpx.post(f"{api}/v1/feeds/import", content=opml.replace("<body>", "<body>" + good).encode())
    assert again.status_code == 200, again.text
    assert again.json()["existing"] == 1 and len(again.json()["refused"]) == 3


def test_an_imported_loopback_feed_is_refused_with_the_setting_that_allows_it():
    """As ``POST /v1/feeds`` says it: a user importing the feeds of a local server learns which setting allows them."""
    from service.feeds import import_refusal

    reason = import_refusal("http://127.0.0.1:8080/feed.xml", allow_private=False)
    assert reason is not None and "loopback" in reason and "NEWSLOOM_ALLOW_PRIVATE_NETWORKS=true" in reason
    assert import_refusal("http://127.0.0.1:8080/feed.xml", allow_private=True) is None


def test_unknown_query_parameters_are_refused(api):
    problem = assert_problem(httpx.get(f"{api}/v1/articles", params={"lnag": "de"}), 422)
    assert problem["unknown"] == ["lnag"]
    problem = assert_problem(httpx.get(f"{api}/v1/articles?feed_id=1&feed_id=2&lang=de"), 422)
    assert problem["repeated"] == ["feed_id"] and "more than once" in problem["detail"]
    assert_problem(httpx.get(f"{api}/v1/stories?q=flood&q=zurich"), 422)
    assert_problem(httpx.get(f"{api}/v1/stories?="), 422)
    assert httpx.get(f"{api}/v1/articles", params={"lang": "de", "limit": 5}).status_code == 200


def test_docs_page_loads_every_asset_from_the_service(api):
    """/docs works offline: each script, style sheet, icon and the OpenAPI document it refers to is
    a path on this service that answers 200 (not a CDN URL)."""
    import re

    page = httpx.get(f"{api}/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert {url.rsplit(".", 1)[-1] for url in urls} >= {"js", "css", "png", "json"}, urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), f"{url}: not on this service"
        response = httpx.get(api + url)
        assert response.status_code == 200 and response.content, url
    assert httpx.get(f"{api}/redoc").status_code == 404  # FastAPI's ReDoc page loads from a CDN


def test_an_article_whose_first_feed_is_unsubscribed_belongs_to_a_feed_that_still_lists_it(api, server):
    """``feed_id`` is a subscribed feed that lists the article: deleting its first feed hands it to
    the remaining feed that listed it first; one no feed lists has none until a new feed lists it."""
    from tests.corpus_feeds import rss

    shared, only_first = server.url("/shared.html"), server.url("/only-first.html")
    first = server.add("/first.xml", rss([{"title": "Shared", "link": shared}, {"title": "Only first", "link": only_first}]),
                       Content_Type="application/rss+xml")
    second = server.add("/second.xml", rss([{"title": "Shared", "link": shared}]), Content_Type="application/rss+xml")
    third = server.add("/third.xml", rss([{"title": "Only first", "link": only_first}]), Content_Type="application/rss+xml")
    a, b = (httpx.post(f"{api}/v1/feeds", json={"url": url}, timeout=60).json()["id"] for url in (first, second))

    def feed_of() -> dict[str, int | None]:
        return {item["url"]: item["feed_id"] for item in httpx.get(f"{api}/v1/articles").json()["items"]}

    assert feed_of() == {shared: a, only_first: a}
    assert httpx.delete(f"{api}/v1/feeds/{a}").status_code == 204
    assert feed_of() == {shared: b, only_first: None}
    assert [i["url"] for i in httpx.get(f"{api}/v1/articles", params={"feed_id": b}).json()["items"]] == [shared]
    c = httpx.post(f"{api}/v1/feeds", json={"url": third}, timeout=60).json()["id"]
    assert feed_of() == {shared: b, only_first: c}


@pytest.mark.parametrize("path, name", [
    ("/v1/articles", "q"), ("/v1/articles", "lang"), ("/v1/articles", "feed_id"), ("/v1/articles", "since"),
    ("/v1/articles", "cursor"), ("/v1/stories", "outlet"), ("/v1/stories", "q"), ("/v1/stories", "lang"),
    ("/v1/stories", "min_outlets"), ("/v1/subscriptions/1/deliveries", "status"),
])
def test_an_empty_query_parameter_is_the_same_422_problem_whatever_the_parameter(api, path, name):
    for value in ("", "  "):
        problem = assert_problem(httpx.get(f"{api}{path}", params={name: value}), 422)
        assert problem["empty"] == [name] and f"'{name}'" in problem["detail"] and "empty" in problem["detail"]
        assert problem["errors"] == [{"location": ["query", name], "message": "must not be empty", "type": "empty"}]


def test_the_story_browser_still_drops_the_blank_fields_its_form_sends(api):
    answer = httpx.get(f"{api}/ui/", params={"lang": "", "q": "bridge"})
    assert answer.is_redirect and answer.headers["location"].endswith("/ui/?q=bridge"), answer.text


def test_size_limit_problems_are_written_as_every_other_problem(settings):
    """413 and 414 are answered below the application; their documents have the same members, in
    the same order, serialised the same way, as a route's problem."""
    import json

    from tests.conftest import running_app

    with running_app(settings.model_copy(update={"poller_enabled": False, "auth": False, "max_body_bytes": 4096})) as base:
        answers = {
            404: httpx.get(f"{base}/v1/feeds/12345"),
            413: httpx.post(f"{base}/v1/feeds/import", content=b"<opml>" + b" " * 5000 + b"</opml>"),
            414: httpx.get(f"{base}/v1/articles", params={"cursor": "é" * 3000}),
        }
    for status, answer in answers.items():
        body = assert_problem(answer, status)
        assert answer.headers["content-type"] == PROBLEM
        assert list(body) == ["type", "title", "status", "detail", "instance"], body
        assert answer.content == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(), answer.content


def test_a_time_whose_plus_became_a_space_says_so(api):
    """``?since=…+02:00`` typed into a URL: the query string's "+" reads as a space, so the 422
    says how to write the offset; written as %2B, the same time is accepted."""
    spaced = assert_problem(httpx.get(f"{api}/v1/articles?since=2024-05-01T00:00:00+02:00"), 422)
    (error,) = spaced["errors"]
    assert error["location"] == ["query", "since"] and "%2B02:00" in error["message"], error
    assert httpx.get(f"{api}/v1/articles?since=2024-05-01T00:00:00%2B02:00").status_code == 200
    other = assert_problem(httpx.get(f"{api}/v1/articles?since=yesterday"), 422)
    assert "%2B" not in other["errors"][0]["message"]  # only where the offset lost its "+"


def test_a_405_names_every_method_of_the_path_in_allow(api):
    """RFC 9110 §15.5.6: ``Allow`` lists the methods the resource supports, not those of the first
    route registered for its path (Starlette's)."""
    for path, allowed in [("/v1/feeds/1", "DELETE, GET, HEAD, PATCH"), ("/v1/articles/1", "GET, HEAD"),
                          ("/v1/feeds", "GET, HEAD, POST")]:
        answer = httpx.put(f"{api}{path}", json={})
        assert_problem(answer, 405)
        assert answer.headers["allow"] == allowed, path


@pytest.mark.parametrize(("name", "first", "why"), [
    ("gone", "/gone/feed.xml", "{base}/gone/feed.xml: could not fetch it: HTTP 404"),
    ("guarded", "ftp://files.example.org/feed.xml",  # refused by its scheme: loopback is allowed in these tests
     "ftp://files.example.org/feed.xml: skipped: refused 'ftp://files.example.org/feed.xml': only absolute http"),
])
def test_discovery_tries_the_next_feed_link_when_one_fails(api, server, name, first, why):
    """A page whose first advertised feed is gone (404) or refused by the SSRF guard is subscribed
    to its next one; when none of its links gives a feed, the 422 names each link and why."""
    from tests.corpus_feeds import rss

    live = server.add(f"/{name}/live.xml", rss([{"title": "One", "link": server.url(f"/{name}/one.html")}]),
                      Content_Type="application/rss+xml")
    server.add(f"/{name}/feed.xml", b"", 404)
    links = f'<link rel="alternate" type="application/rss+xml" href="{first}">'
    server.add(f"/{name}/", f'<html><head>{links}<link rel="alternate" type="application/atom+xml" href="live.xml">'
               "</head><body>Home</body></html>", Content_Type="text/html")
    server.add(f"/{name}-only/", f"<html><head>{links}</head><body>Home</body></html>", Content_Type="text/html")
    created = httpx.post(f"{api}/v1/feeds", json={"url": server.url(f"/{name}/")}, timeout=60)
    assert created.status_code == 201, created.text
    assert created.json()["url"] == live
    refused = assert_problem(httpx.post(f"{api}/v1/feeds", json={"url": server.url(f"/{name}-only/")}, timeout=60), 422)
    assert why.format(base=server.base) in refused["detail"], refused


def test_an_empty_answer_is_refused_as_empty(api, server):
    """A feed URL that answers 200 with nothing (or only white space) is refused saying so, not as
    "not a feed or an HTML page" with its Content-Type."""
    empty = server.add("/blank.xml", b" \r\n", Content_Type="application/rss+xml")
    refused = assert_problem(httpx.post(f"{api}/v1/feeds", json={"url": empty}, timeout=60), 422)
    assert refused["detail"] == f"{empty} answered HTTP 200 with an empty body: no feed there", refused
