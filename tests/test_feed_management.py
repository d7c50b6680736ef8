"""Feeds users can manage through the API: pause and resume, rename, file, a poll interval of
their own, and a poll on request (real HTTP on 127.0.0.1, SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa
from sqlmodel import select

from service.api.app import create_app
from service.db import Reader
from service.models import Article, utcnow
from tests.corpus_feeds import rss
from tests.ingest_helpers import feed_row, make_due, subscribe
from tests.server import Route

RSS = "application/rss+xml"


def _client(settings, sessions, poller) -> httpx.AsyncClient:
    app = create_app(settings)
    app.state.sessions, app.state.poller, app.state.ingestor = sessions, None, poller
    app.state.reader = Reader(sessions)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def test_a_paused_feed_is_not_polled_until_resumed(server, poller, sessions, settings):
    url = server.add("/paused.xml", rss([{"title": "One", "link": "https://paused.example.org/1"}]),
                     host="paused.example.org", Content_Type=RSS)
    feed_id = await subscribe(sessions, url)
    async with _client(settings, sessions, poller) as api:
        paused = (await api.patch(f"/v1/feeds/{feed_id}", json={"state": "paused"})).json()
        assert paused["state"] == "paused" and paused["next_poll_at"] is None
        assert (await poller.poll_due_feeds()).feeds_polled == 0
        assert server.hits("/paused.xml", host="paused.example.org") == []

        resumed = (await api.patch(f"/v1/feeds/{feed_id}", json={"state": "active"})).json()
        assert resumed["state"] == "active" and resumed["next_poll_at"] is not None
        assert (await poller.poll_due_feeds()).feeds_polled == 1
        assert (await api.get(f"/v1/feeds/{feed_id}")).json()["article_count"] == 1


async def test_title_category_and_poll_interval_can_be_set_and_cleared(server, poller, sessions, settings):
    url = server.add("/own.xml", rss([{"title": "One", "link": "https://own.example.org/1"}], title="Publisher's name"),
                     host="own.example.org", Content_Type=RSS)
    feed_id = await subscribe(sessions, url)
    async with _client(settings, sessions, poller) as api:
        changed = (await api.patch(f"/v1/feeds/{feed_id}", json={
            "title": "My local news", "category": "Local/City", "poll_interval": 7200})).json()
        assert (changed["title"], changed["category"], changed["poll_interval_override"]) == ("My local news", "Local/City", 7200)
        await poller.poll_due_feeds()  # the poll keeps the user's title and interval
        polled = (await api.get(f"/v1/feeds/{feed_id}")).json()
        assert polled["title"] == "My local news" and polled["poll_interval"] == 7200
        assert polled["last_status"] == 200

        cleared = (await api.patch(f"/v1/feeds/{feed_id}", json={"poll_interval": None})).json()
        assert cleared["poll_interval_override"] is None and cleared["title"] == "My local news"
        refused = await api.patch(f"/v1/feeds/{feed_id}", json={"poll_interval": 5, "colour": "red"})
        assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")
        assert (await api.patch("/v1/feeds/999999", json={"title": "x"})).status_code == 404
        for blank in ({"title": ""}, {"title": " \t"}, {"category": ""}, {"category": "  "}):  # null clears, blank is refused
            refused = await api.patch(f"/v1/feeds/{feed_id}", json=blank)
            assert refused.status_code == 422 and refused.json()["errors"][0]["location"] == ["body", *blank], refused.text
        assert (await api.get(f"/v1/feeds/{feed_id}")).json()["title"] == "My local news"

        # null gives the feed its own title again, from the next poll, although the document has not changed
        assert (await api.patch(f"/v1/feeds/{feed_id}", json={"title": None})).json()["title"] is None
        refreshed = (await api.post(f"/v1/feeds/{feed_id}/refresh")).json()
        assert refreshed["title"] == "Publisher's name" and refreshed["last_status"] == 200, refreshed


async def test_refresh_polls_now_and_a_paused_feed_stays_paused(server, poller, sessions, settings):
    items = [{"title": "One", "link": "https://refresh.example.org/1"}]
    url = server.add("/refresh.xml", rss(items), host="refresh.example.org", Content_Type=RSS)
    feed_id = await subscribe(sessions, url)
    await poller.poll_due_feeds()
    server.add("/refresh.xml", rss([{"title": "Two", "link": "https://refresh.example.org/2"}, *items]),
               host="refresh.example.org", Content_Type=RSS)
    async with _client(settings, sessions, poller) as api:
        await api.patch(f"/v1/feeds/{feed_id}", json={"state": "paused"})
        response = await api.post(f"/v1/feeds/{feed_id}/refresh")
        assert response.status_code == 200, response.text
        feed = response.json()
        assert feed["article_count"] == 2 and feed["state"] == "paused" and feed["last_status"] == 200
        assert len(server.hits("/refresh.xml", host="refresh.example.org")) == 2
        assert (await api.post("/v1/feeds/999999/refresh")).status_code == 404
    row = await feed_row(sessions, feed_id)
    assert row.lease_until is None  # the poll's lease is released


async def test_a_gone_feed_shows_no_next_poll(server, poller, sessions, settings):
    url = server.add("/gone.xml", b"", 410, host="gone.example.org")
    feed_id = await subscribe(sessions, url)
    await poller.poll_due_feeds()
    async with _client(settings, sessions, poller) as api:
        feed = (await api.get(f"/v1/feeds/{feed_id}")).json()
    assert feed["state"] == "gone" and feed["next_poll_at"] is None


async def test_credentials_do_not_make_another_feed(server, poller, sessions, settings):
    """``https://user:pw@host/feed`` and ``https://host/feed`` are one subscription whichever comes
    first (credentials are how a private feed is fetched, not which feed it is): the second is a
    409 whose ``feed`` is the first, and nothing is fetched for it; OPML import finds it too. A URL
    whose path merely contains ``@`` and the rest is another feed."""
    url = server.add("/private.xml", rss([{"title": "One", "link": "https://private.example.org/1"}]),
                     host="private.example.org", Content_Type=RSS)
    with_credentials = url.replace("://", "://Reader:S3cret@")
    async with _client(settings, sessions, poller) as api:
        for first, second in ((url, with_credentials), (with_credentials, url.replace("://", "://other:pw@"))):
            created = await api.post("/v1/feeds", json={"url": first})
            assert created.status_code == 201, created.text
            fetched = len(server.hits("/private.xml"))
            again = await api.post("/v1/feeds", json={"url": second})
            assert again.status_code == 409 and again.json()["feed"]["id"] == created.json()["id"]
            assert len(server.hits("/private.xml")) == fetched
            opml = f'<opml version="2.0"><body><outline type="rss" text="p" xmlUrl="{second}"/></body></opml>'
            imported = (await api.post("/v1/feeds/import", content=opml)).json()
            assert (imported["added"], imported["existing"]) == (0, 1)
            assert (await api.delete(f"/v1/feeds/{created.json()['id']}")).status_code == 204
        at_in_path = server.add("/x@private.example.org/private.xml", rss([]), host="other.example.org", Content_Type=RSS)
        assert (await api.post("/v1/feeds", json={"url": at_in_path})).status_code == 201
        assert (await api.post("/v1/feeds", json={"url": url})).status_code == 201


async def test_two_subscriptions_racing_past_the_look_up_store_one_feed(sessions):
    """The database holds "one feed whatever the credentials" (``ux_feeds_url_key``), not only the
    look-up before the INSERT: two transactions that both found nothing (``by_url``) and insert
    ``https://u:p@h/f`` and ``https://h/f`` store one feed; the later is answered with the first
    (before: two feeds)."""
    from service.models import Feed
    from service.storage import feeds

    async with sessions() as first, sessions() as second:
        assert await feeds.by_url(first, "https://race.example.org/f") is None
        assert await feeds.by_url(second, "https://race.example.org/f") is None
        one, created = await feeds.add(first, Feed(url="https://u:p@race.example.org/f", poll_interval=900, next_poll_at=utcnow()))
        other, created_again = await feeds.add(second, Feed(url="https://race.example.org/f", poll_interval=900, next_poll_at=utcnow()))
    assert created and not created_again and other.id == one.id
    async with sessions() as session:
        rows = (await session.exec(select(Feed.url, Feed.url_key))).all()
    assert rows == [("https://u:p@race.example.org/f", "https://race.example.org/f")]


async def test_migration_0012_keeps_feeds_that_already_share_a_url_but_for_credentials(tmp_path, database_url):
    """Feeds stored twice by the race before 0012 are both kept (the oldest takes the key, the
    other a null key), so the unique index can be made without touching a subscription."""
    import asyncio

    from alembic import command

    from service.db import alembic_config, create_engine, migrate_async
    from tests.conftest import empty_database

    (tmp_path / "at_0011").mkdir()  # not the database of the database_url fixture (at head)
    url = await empty_database("postgresql" if database_url.startswith("postgresql") else "sqlite", tmp_path / "at_0011")
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0011")
    engine = create_engine(url)
    try:
        now = datetime.now(UTC).replace(tzinfo=None) if url.startswith("sqlite") else datetime.now(UTC)
        async with engine.begin() as conn:
            for feed_url in ("https://old.example.org/f", "https://u:p@old.example.org/f", "https://other.example.org/f"):
                await conn.execute(sa.text("INSERT INTO feeds (url, poll_interval, next_poll_at, consecutive_failures, state, created_at) "
                                           "VALUES (:url, 900, :now, 0, 'active', :now)"), {"url": feed_url, "now": now})
        await migrate_async(url)
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT url, url_key FROM feeds ORDER BY id"))).all()
        assert [tuple(r) for r in rows] == [("https://old.example.org/f", "https://old.example.org/f"),
                                            ("https://u:p@old.example.org/f", None),
                                            ("https://other.example.org/f", "https://other.example.org/f")]
    finally:
        await engine.dispose()


async def test_an_opml_outline_with_a_new_password_updates_the_feeds_credentials_and_says_so(server, poller, sessions, settings):
    """An import of a feed already subscribed with another password (the password changed) says so
    per outline (``credentials_updated``) and the feed is fetched with the new one; an outline
    without a password, or with the ``***`` of a read key's export, changes nothing (before: every
    case was "existing" and the new password was dropped)."""
    url = server.add("/private.xml", rss([{"title": "One", "link": "https://private.example.org/1"}]),
                     host="private.example.org", Content_Type=RSS)
    old, new = url.replace("://", "://reader:old@"), url.replace("://", "://reader:new@")
    async with _client(settings, sessions, poller) as api:
        feed_id = (await api.post("/v1/feeds", json={"url": old})).json()["id"]
        for given, updated, stored in ((url, False, old), (url.replace("://", "://reader:***@"), False, old),
                                       (new, True, new), (new, False, new)):
            opml = f'<opml version="2.0"><body><outline type="rss" text="p" xmlUrl="{given}"/></body></opml>'
            imported = (await api.post("/v1/feeds/import", content=opml)).json()
            assert imported["existing"] == 1 and imported["outlines"][0]["feed_id"] == feed_id
            assert imported["outlines"][0]["credentials_updated"] is updated
            assert (await api.get(f"/v1/feeds/{feed_id}")).json()["url"] == stored
    await make_due(sessions, feed_id)
    await poller.poll_due_feeds()
    assert server.hits("/private.xml")[-1].headers["Authorization"] == "Basic " + base64.b64encode(b"reader:new").decode()


async def test_a_page_waiting_for_a_retry_says_so_apart_from_one_given_up(server, poller, sessions, settings):
    """An article whose page failed once and will be tried again is ``pending`` with the last
    attempt's error, ``fetch_failures`` 1 and the retry time in ``next_fetch_at`` (before: the
    error alone, read as the final word); once the page is read the error and the retry time are
    gone, in the list and in the article alike."""
    state = {"status": 503}
    page = "<html><head><title>Budget</title></head><body><article><p>" + "The council met on Tuesday to vote. " * 30 + "</p></article></body></html>"
    server.add("/later.html", lambda request: Route(page.encode(), state["status"], {"Content-Type": "text/html"}),
               host="retry.example.org")
    url = server.add("/retry.xml", rss([{"title": "Budget", "link": "https://retry.example.org/later.html"}]),
                     host="retry.example.org", Content_Type=RSS)
    feed_id = await subscribe(sessions, url)
    await poller.poll_due_feeds()
    await poller.process_pages()
    async with _client(settings, sessions, poller) as api:
        (listed,) = (await api.get("/v1/articles")).json()["items"]
        one = (await api.get(f"/v1/articles/{listed['id']}")).json()
        for article in (listed, one):
            assert (article["extraction_status"], article["extraction_error"], article["fetch_failures"]) == ("pending", "page: HTTP 503", 1)
            assert article["next_fetch_at"] is not None
        state["status"] = 200
        async with sessions() as session:
            row = await session.get(Article, listed["id"])
            row.next_fetch_at = utcnow()
            await session.commit()
        await poller.process_pages()
        (listed,) = (await api.get("/v1/articles", params={"feed_id": feed_id})).json()["items"]
        assert (listed["extraction_status"], listed["extraction_error"], listed["next_fetch_at"]) == ("ok", None, None)


async def test_a_feed_shows_how_many_of_its_pages_are_still_to_fetch(server, poller, sessions, settings):
    """The first poll stores the entries with the feed's text; their pages follow one host gap
    apart, so a new feed says how many are still pending (``pages_pending``), down to 0."""
    html = "<html><head><title>{0}</title></head><body><article><h1>{0}</h1><p>{1}</p></article></body></html>"
    items = []
    for i in range(3):
        path = f"/pending/{i}.html"
        server.add(path, html.format(f"Story {i}", "The council met on Tuesday to vote on the new budget. " * 20),
                   host="pending.example.org", Content_Type="text/html")
        items.append({"title": f"Story {i}", "link": f"https://pending.example.org{path}"})
    url = server.add("/pending.xml", rss(items), host="pending.example.org", Content_Type=RSS)
    feed_id = await subscribe(sessions, url)
    await poller.poll_due_feeds()
    async with _client(settings, sessions, poller) as api:
        polled = (await api.get(f"/v1/feeds/{feed_id}")).json()
        assert (polled["article_count"], polled["pages_pending"]) == (3, 3)
        assert [f["pages_pending"] for f in (await api.get("/v1/feeds")).json()["items"]] == [3]
        await poller.process_pages()
        done = (await api.get(f"/v1/feeds/{feed_id}")).json()
        assert (done["article_count"], done["pages_pending"]) == (3, 0)


async def test_a_feed_subscribed_after_the_newest_was_deleted_does_not_take_its_id(server, poller, sessions, settings):
    """A webhook filter keeps the id of a feed unsubscribed later and matches nothing more, so the
    id must not come back: before migration 0014 SQLite gave the next feed the deleted newest
    feed's id (largest id + 1), and the filter matched that other feed's articles."""
    urls = [server.add(f"/ids-{n}.xml", rss([{"title": f"Item {n}", "link": f"https://ids.example.org/{n}"}]), Content_Type=RSS)
            for n in range(2)]
    async with _client(settings, sessions, poller) as api:
        gone = (await api.post("/v1/feeds", json={"url": urls[0]})).json()["id"]
        hook = await api.post("/v1/subscriptions", json={"url": server.url("/hook"), "event_types": ["article.created"],
                                                          "filter": {"feeds": [gone]}})
        assert hook.status_code == 201, hook.text
        assert (await api.delete(f"/v1/feeds/{gone}")).status_code == 204
        created = await api.post("/v1/feeds", json={"url": urls[1]})
        assert created.status_code == 201, created.text
        assert created.json()["id"] != gone
        assert (await api.get(f"/v1/subscriptions/{hook.json()['id']}")).json()["filter"]["feeds"] == [gone]


async def test_migration_0014_keeps_every_row_and_reference(tmp_path, database_url):
    """0014 rebuilds feeds, stories and subscriptions on SQLite (AUTOINCREMENT): their rows, the
    entries of a feed and the articles' feed and story stay, and a deleted newest feed's id is not
    given again; on PostgreSQL it changes nothing."""
    import asyncio

    from alembic import command
    from sqlmodel.ext.asyncio.session import AsyncSession

    from service.db import alembic_config, create_engine, migrate_async
    from service.models import Entry, Feed, Story, Subscription
    from tests.conftest import empty_database

    (tmp_path / "at_0013").mkdir()  # not the database of the database_url fixture (at head)
    url = await empty_database("postgresql" if database_url.startswith("postgresql") else "sqlite", tmp_path / "at_0013")
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0013")
    engine = create_engine(url)  # feeds, stories, subscriptions and entries at 0013 have the columns of the models at head

    def feed(host: str) -> Feed:
        return Feed(url=f"https://{host}/f", url_key=f"https://{host}/f", poll_interval=900, next_poll_at=utcnow())

    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            kept, newest, story = feed("a.example.org"), feed("b.example.org"), Story(title="S")
            session.add_all([kept, newest, story, Subscription(url="https://hooks.example.org/in", secret="whsec_x",
                                                                 filter={"feeds": [1]})])
            await session.flush()
            now = utcnow() if url.startswith("postgresql") else utcnow().replace(tzinfo=None)
            article_id = (await (await session.connection()).execute(sa.text(  # articles at 0013: no host yet
                "INSERT INTO articles (canonical_url, title, feed_id, story_id, authors, first_seen_at, sort_at, "
                "extraction_status, fetch_attempts) VALUES ('https://a.example.org/1', 'One', :feed, :story, '[]', "
                ":now, :now, 'ok', 0) RETURNING id"), {"feed": kept.id, "story": story.id, "now": now})).scalar_one()
            session.add(Entry(feed_id=kept.id, entry_key="k1", article_id=article_id))
            await session.commit()
            ids = (kept.id, newest.id, story.id, article_id)
        await migrate_async(url)
        async with AsyncSession(engine, expire_on_commit=False) as session:
            counts = [len((await session.exec(select(model))).all()) for model in (Feed, Story, Subscription, Entry)]
            stored = await session.get(Article, ids[3])
            assert counts == [2, 1, 1, 1] and (stored.feed_id, stored.story_id) == (ids[0], ids[2])
            await session.delete(await session.get(Feed, ids[1]))
            await session.commit()
            again = feed("c.example.org")
            session.add(again)
            await session.commit()
            assert again.id not in ids[:2]
    finally:
        await engine.dispose()
