"""Story linking through the real pipeline: feeds and pages served over HTTP on 127.0.0.1, polled
and extracted by the real poller, linked by its linker, read back through the API (SQLite, and
PostgreSQL when configured)."""

from __future__ import annotations

import asyncio

import httpx
from sqlmodel import select

from service.feeds import add_feed
from service.models import Article, Story
from service.stories.linker import Linker, link_features
from tests import story_texts as st


def _serve_outlets(server, extra_globe_items: list[tuple[str, str, str]] = ()) -> list[str]:
    welt = server.add("/welt/ostbruecke.html", st.page(st.WELT_TITLE, st.WELT, "de"), Content_Type="text/html; charset=utf-8")
    bloom = server.add("/bloomberg/lindenfurt.html", st.page(st.BLOOMBERG_TITLE, st.BLOOMBERG, "en"), Content_Type="text/html; charset=utf-8")
    globe = server.add("/globe/bridge.html", st.page(st.GLOBE_TITLE, st.GLOBE, "en"), Content_Type="text/html; charset=utf-8")
    orchard = server.add("/globe/apples.html", st.page(st.ORCHARD_TITLE, st.ORCHARD, "en"), Content_Type="text/html; charset=utf-8")
    rss = "application/rss+xml"
    return [
        server.add("/feeds/welt.xml", st.feed("https://www.welt.de/", "WELT", "de",
                   [(st.WELT_TITLE, welt, "Mon, 06 May 2024 07:00:00 GMT")]), Content_Type=rss),
        server.add("/feeds/bloomberg.xml", st.feed("https://www.bloomberg.com/", "Bloomberg", "en",
                   [(st.BLOOMBERG_TITLE, bloom, "Mon, 06 May 2024 09:30:00 GMT")]), Content_Type=rss),
        server.add("/feeds/globe.xml", st.feed("https://www.dailyglobe.com/", "Daily Globe", "en",
                   [(st.GLOBE_TITLE, globe, "Mon, 06 May 2024 12:00:00 GMT"),
                    (st.ORCHARD_TITLE, orchard, "Tue, 07 May 2024 08:00:00 GMT"), *extra_globe_items]), Content_Type=rss),
    ]


async def _poll(poller, sessions, feed_urls: list[str]) -> None:
    async with sessions() as session:
        for url in feed_urls:
            await add_feed(session, url, 900)
    report = await poller.poll_due_feeds()
    assert report.feeds_failed == 0
    await poller.process_pages()


async def test_three_outlets_two_languages_one_story_with_attribution(server, poller, sessions, api):
    await _poll(poller, sessions, _serve_outlets(server))

    stories = httpx.get(f"{api}/v1/stories").json()["items"]
    assert len(stories) == 2, stories
    bridge = next(s for s in stories if s["article_count"] == 3)
    apples = next(s for s in stories if s["article_count"] == 1)
    assert bridge["languages"] == ["de", "en"]
    assert bridge["outlets"] == ["bloomberg.com", "dailyglobe.com", "welt.de"]
    assert bridge["outlet_count"] == 3
    assert apples["title"] == st.ORCHARD_TITLE

    story = httpx.get(f"{api}/v1/stories/{bridge['id']}").json()
    by_outlet = {a["outlet"]: a for a in story["articles"]}
    assert [a["outlet"] for a in story["articles"]] == ["welt.de", "bloomberg.com", "dailyglobe.com"]
    assert story["first_reported"]["outlet"] == "welt.de"
    assert story["title"] == st.WELT_TITLE
    assert story["first_seen_at"].startswith("2024-05-06T07:00:00")
    edges = {(e["outlet"], e["cited_outlet"], e["cited_article_id"]) for e in story["citations"]}
    assert edges == {
        ("dailyglobe.com", "welt.de", by_outlet["welt.de"]["id"]),
        ("dailyglobe.com", "bloomberg.com", by_outlet["bloomberg.com"]["id"]),
    }

    globe = httpx.get(f"{api}/v1/articles/{by_outlet['dailyglobe.com']['id']}").json()
    assert globe["story_id"] == bridge["id"] and globe["duplicate_of"] is None
    assert [(c["name"], c["outlet"]) for c in globe["cites"]] == [("Welt", "welt.de"), ("Bloomberg", "bloomberg.com")]
    listed = httpx.get(f"{api}/v1/articles", params={"story_id": bridge["id"]}).json()["items"]
    assert {a["id"] for a in listed} == {a["id"] for a in story["articles"]}
    joined = [a["similarity"] for a in listed if a["id"] != story["first_reported"]["id"]]
    # The score it joined with, in 0..1; null for an article that started a strand merged in later
    # (with two links in flight, a retelling can start its own story before the report it joins is linked).
    assert len(joined) == 2 and any(value is not None for value in joined), joined
    assert all(value is None or 0.0 < value <= 1.0 for value in joined), joined

    # Filters.
    def ids(**params) -> list[int]:
        return [s["id"] for s in httpx.get(f"{api}/v1/stories", params=params).json()["items"]]

    assert ids(min_languages=2) == [bridge["id"]]
    assert ids(min_outlets=3) == [bridge["id"]]
    assert ids(lang="de") == [bridge["id"]]
    assert ids(lang="DE-ch") == [bridge["id"]]  # as /v1/articles: the region dropped, any case
    assert ids(outlet="welt.de") == [bridge["id"]]
    assert ids(outlet="WWW.welt.de") == ids(outlet="https://www.welt.de/politik/x") == [bridge["id"]]  # as users name it
    assert ids(outlet="dailyglobe.com") == [s["id"] for s in stories]
    assert ids(q="apple harvest") == [apples["id"]]
    # Full-text search over the stories' articles, in the syntax of /v1/articles?q.
    assert ids(q="Stadtverwaltung") == [bridge["id"]]  # a word only the German article has
    assert ids(q='"cold storage"') == [apples["id"]]
    assert ids(q="commuters -apples") == [bridge["id"]]
    assert set(ids(q="Kessler OR Braeburn")) == {bridge["id"], apples["id"]}
    searched = httpx.get(f"{api}/v1/stories", params={"q": "Kessler OR Braeburn", "limit": 1}).json()
    rest = httpx.get(f"{api}/v1/stories", params={"q": "Kessler OR Braeburn", "limit": 1, "cursor": searched["next_cursor"]}).json()
    assert {searched["items"][0]["id"], rest["items"][0]["id"]} == {bridge["id"], apples["id"]} and rest["next_cursor"] is None
    assert httpx.get(f"{api}/v1/stories", params={"q": "-bridge"}).status_code == 422
    assert httpx.get(f"{api}/v1/stories", params={"q": "bridge", "cursor": first_page_cursor(api)}).status_code == 422  # a cursor issued under other filters (no q)
    assert ids(since="2999-01-01T00:00:00Z") == []
    first = httpx.get(f"{api}/v1/stories", params={"limit": 1}).json()
    second = httpx.get(f"{api}/v1/stories", params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert [first["items"][0]["id"], second["items"][0]["id"]] == [s["id"] for s in stories]
    assert second["next_cursor"] is None
    missing = httpx.get(f"{api}/v1/stories/999999")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def first_page_cursor(api: str) -> str:
    """A cursor of the unsearched story list (refused by a search)."""
    return httpx.get(f"{api}/v1/stories", params={"limit": 1}).json()["next_cursor"]


async def test_syndicated_and_lightly_edited_copies_are_duplicates(server, poller, sessions, api):
    edited = st.BLOOMBERG.replace("on Monday", "on Monday, officials said,").replace("About 12,000", "Roughly 12,000")
    wire = server.add("/wire/copy.html", st.page(st.BLOOMBERG_TITLE, st.BLOOMBERG, "en"), Content_Type="text/html")
    copy = server.add("/regional/edited.html", st.page("Lindenfurt closes bridge", edited, "en"), Content_Type="text/html")
    feeds = [
        *_serve_outlets(server),
        server.add("/feeds/wire.xml", st.feed("https://www.wirecopies.net/", "Wire", "en",
                   [(st.BLOOMBERG_TITLE, wire, "Mon, 06 May 2024 10:00:00 GMT")]), Content_Type="application/rss+xml"),
        server.add("/feeds/regional.xml", st.feed("https://www.regional-herald.org/", "Herald", "en",
                   [("Lindenfurt closes bridge", copy, "Mon, 06 May 2024 10:30:00 GMT")]), Content_Type="application/rss+xml"),
    ]
    await _poll(poller, sessions, feeds)

    articles = httpx.get(f"{api}/v1/articles").json()["items"]
    by_outlet = {a["outlet"]: a for a in articles if a["title"] != st.ORCHARD_TITLE}
    original = by_outlet["bloomberg.com"]
    assert original["duplicate_of"] is None
    assert by_outlet["wirecopies.net"]["duplicate_of"] == original["id"]
    assert by_outlet["wirecopies.net"]["similarity"] == 1.0
    near = by_outlet["regional-herald.org"]
    assert near["duplicate_of"] == original["id"]
    assert 0.7 <= near["similarity"] < 1.0
    assert by_outlet["dailyglobe.com"]["duplicate_of"] is None  # a retelling, not a copy
    assert by_outlet["welt.de"]["duplicate_of"] is None
    assert len({a["story_id"] for a in by_outlet.values()}) == 1


async def test_two_reports_at_the_same_moment_in_two_workers_end_in_one_story(server, poller, sessions, settings, workers):
    # Store and extract the two reports without linking them, then link them in two linkers at once.
    feeds = _serve_outlets(server)[:2]
    async with sessions() as session:
        for url in feeds:
            await add_feed(session, url, 900)
    quiet = settings.model_copy(update={"stories_enabled": False})
    poller.settings = quiet
    poller.linker.settings = quiet
    await poller.poll_due_feeds()
    await poller.process_pages()
    async with sessions() as session:
        rows = (await session.exec(select(Article))).all()
        assert len(rows) == 2 and all(a.story_id is None and a.linked_at is None for a in rows)

    first, second = Linker(settings, sessions, workers), Linker(settings, sessions, workers)
    claimed = [await first.claim(1), await second.claim(1)]
    assert [len(c) for c in claimed] == [1, 1] and claimed[0][0].id != claimed[1][0].id
    features = await asyncio.gather(
        *(workers.run(link_features, a.title, a.text, a.language, a.sort_at) for a in (c[0] for c in claimed))
    )
    outcomes = await asyncio.gather(first.assign(claimed[0][0].id, features[0]), second.assign(claimed[1][0].id, features[1]))

    assert sorted(o.new_story for o in outcomes) == [False, True]
    async with sessions() as session:
        stories = (await session.exec(select(Story))).all()
        assert len(stories) == 1 and stories[0].article_count == 2 and stories[0].languages == ["de", "en"]
        assert {a.story_id for a in (await session.exec(select(Article))).all()} == {stories[0].id}



async def _merge_all_stories_of_three(sessions, settings, workers, last_language: str, threshold: float | None = None) -> tuple[list[int], dict]:
    """Six apple articles stored, then linked in an interleaved order by a linker that offers every
    story of three or more articles for a merge, whatever the centroids (this tests the database
    side of a merge and its evidence rule, not the threshold, tested in memory): the report of
    Welt, Bloomberg and the Globe and three orchard reports, the last in ``last_language`` (``en``,
    or ``sk``: the orchard report in Slovak), joined from ``threshold`` (default the linker's).
    Returns the articles' ids in that order and the linker's outcome per index."""
    from datetime import UTC, datetime, timedelta

    from service.models import ExtractionStatus
    from service.stories.clustering import Params

    linker = Linker(settings, sessions, workers)
    linker.params = Params(merge_threshold=-1.0, merge_min=3, **({} if threshold is None else {"threshold": threshold}))
    start = datetime(2024, 5, 6, 7, tzinfo=UTC)
    texts = [(st.WELT_TITLE, st.WELT, "de"), (st.BLOOMBERG_TITLE, st.BLOOMBERG, "en"), (st.GLOBE_TITLE, st.GLOBE, "en"),
             (st.ORCHARD_TITLE, st.ORCHARD, "en"), ("Kent apple growers rent cooled containers", st.ORCHARD, "en"),
             {"en": ("Apple surplus goes to cider makers", st.ORCHARD.replace("Kent", "Kent county"), "en"),
              "sk": (st.ORCHARD_SK_TITLE, st.ORCHARD_SK, "sk")}[last_language]]
    ids = []
    async with sessions() as session:
        for i, (title, text, lang) in enumerate(texts):
            moment = start + timedelta(hours=i)
            article = Article(title=title, text=text, language=lang, sort_at=moment, first_seen_at=moment,
                              extraction_status=ExtractionStatus.ok, authors=[])
            session.add(article)
            await session.flush()
            ids.append(article.id)
        await session.commit()
    outcomes = {}
    for index in [0, 3, 1, 4, 2, 5]:  # interleaved: the bridge story reaches 3 articles first
        title, text, lang = texts[index]
        feats = await workers.run(link_features, title, text, lang, start + timedelta(hours=index))
        outcomes[index] = await linker.assign(ids[index], feats)
    return ids, outcomes


async def test_stories_that_converge_merge_into_the_oldest(sessions, settings, workers, api):
    ids, outcomes = await _merge_all_stories_of_three(sessions, settings, workers, last_language="en")
    assert outcomes[0].story_id != outcomes[3].story_id  # two stories at first
    async with sessions() as session:
        stories = (await session.exec(select(Story))).all()
        assert [(s.id, s.article_count) for s in stories] == [(outcomes[0].story_id, 6)]
        assert stories[0].languages == ["de", "en"] and stories[0].title == st.WELT_TITLE
        assert {a.story_id for a in (await session.exec(select(Article))).all()} == {stories[0].id}
    assert httpx.get(f"{api}/v1/stories/{outcomes[3].story_id}").status_code == 404
    merged = httpx.get(f"{api}/v1/stories/{outcomes[0].story_id}").json()
    assert [a["id"] for a in merged["articles"]] == ids



async def test_stories_in_a_language_the_title_encoder_does_not_read_merge_only_on_shared_names(sessions, settings, workers):
    """As above, every story of three articles offered for a merge, but one apple report is in
    Slovak (not one of the title encoder's languages, ``headlines.COVERED``): the centroids' cosine
    is then no evidence, and the two stories, which share no name, stay apart
    (``clustering.merge_supported``, asked by the linker with the stories' stored states). The
    Slovak retelling joins the orchard story from a similarity of 0.5 (the midpoint of the SemEval
    scale, as for a cited report): the combined score gives it 0.59, under the default 0.70 for
    text; what is tested here is the merge, not the join."""
    _, outcomes = await _merge_all_stories_of_three(sessions, settings, workers, last_language="sk", threshold=0.5)
    async with sessions() as session:
        stories = {s.id: s for s in (await session.exec(select(Story))).all()}
    assert sorted((s.article_count, s.languages) for s in stories.values()) == [(3, ["de", "en"]), (3, ["en", "sk"])]
    assert outcomes[5].story_id == outcomes[3].story_id != outcomes[0].story_id


async def test_bl18_url_variants_of_one_story_end_in_one_story(server, poller, sessions, bug_cases, api):
    """BL-18: a trailing-slash link, a no-slash link and an /amp/ link of one article from two feeds
    (hosts rewritten to the test server). However ingestion resolves their URLs (one article, or
    one row per variant), they end in one story, copies marked ``duplicate_of`` the first; the
    homepage item stays apart."""
    def load(name: str) -> str:
        return (bug_cases / name).read_text().replace("https://www.example.org", server.base)

    canonical, amp = load("BL-18.canonical.html"), load("BL-18.amp.html")
    for path, body in (("/world/2024/05/06/storm-hits-coast/", canonical), ("/world/2024/05/06/storm-hits-coast", canonical),
                       ("/amp/world/2024/05/06/storm-hits-coast/", amp), ("/", "<html><body><nav><a href='/a'>A</a></nav></body></html>")):
        server.add(path, body, Content_Type="text/html; charset=utf-8")
    feeds = [server.add(f"/feeds/{name}", load(name), Content_Type="application/rss+xml") for name in ("BL-18.outlet.xml", "BL-18.aggregator.xml")]
    await _poll(poller, sessions, feeds)

    articles = httpx.get(f"{api}/v1/articles").json()["items"]
    storm = sorted((a for a in articles if a["title"].startswith("Storm hits the coast")), key=lambda a: (a["published_at"], a["id"]))
    home = [a for a in articles if a["title"] == "Homepage"]
    assert storm and len(home) == 1 and all(a["story_id"] is not None for a in storm)
    # (the homepage item, one word and no text, is linked without a story: MIN_STORY_WORDS)
    assert {a["story_id"] for a in storm} == {storm[0]["story_id"]} != {home[0]["story_id"]}
    assert storm[0]["duplicate_of"] is None
    assert all(a["duplicate_of"] == storm[0]["id"] and a["similarity"] == 1.0 for a in storm[1:])
    assert home[0]["url"] == server.base + "/"


async def test_an_article_without_a_page_or_declared_language_gets_one_from_its_feed_text(server, poller, sessions, api):
    """No link to extract, no <language> in the feed: the linker identifies the language from the
    feed's text, so the article and its story can be found by language."""
    feed_url = server.add("/nolang.xml", (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title><link>https://wire.example/</link>'
        f"<item><title>{st.ORCHARD_TITLE}</title><guid isPermaLink=\"false\">orchard-1</guid>"
        f"<description>{st.ORCHARD}</description></item></channel></rss>"), Content_Type="application/rss+xml")
    await _poll(poller, sessions, [feed_url])
    articles = httpx.get(f"{api}/v1/articles", params={"lang": "en"}).json()["items"]
    assert [a["title"] for a in articles] == [st.ORCHARD_TITLE]
    assert articles[0]["story_id"] is not None
    story = httpx.get(f"{api}/v1/stories/{articles[0]['story_id']}").json()
    assert story["languages"] == ["en"]


async def test_items_with_too_few_words_are_linked_without_a_story(server, poller, sessions, api):
    """Items with no title and no text, or a lone word, look alike to the encoders: they are linked
    (and announced) without a story instead of forming a story of unrelated junk; a real report
    beside them still gets its story."""
    items = "".join(f'<item><title>{title}</title><guid isPermaLink="false">g{i}</guid></item>'
                    for i, title in enumerate(["js", "file", "priv"]))
    items += '<item><guid isPermaLink="false">empty-1</guid></item><item><guid isPermaLink="false">empty-2</guid></item>'
    items += (f'<item><title>{st.ORCHARD_TITLE}</title><guid isPermaLink="false">orchard-1</guid>'
              f"<description>{st.ORCHARD}</description></item>")
    feed_url = server.add("/junk.xml", '<?xml version="1.0"?><rss version="2.0"><channel><title>Junk</title>'
                          f"<link>https://junk.example/</link>{items}</channel></rss>", Content_Type="application/rss+xml")
    await _poll(poller, sessions, [feed_url])
    async with sessions() as session:
        rows = (await session.exec(select(Article))).all()
    assert len(rows) == 6 and all(r.linked_at is not None for r in rows)
    by_title = {r.title: r for r in rows}
    assert [r.story_id for r in rows if r.title != st.ORCHARD_TITLE] == [None] * 5
    assert by_title[st.ORCHARD_TITLE].story_id is not None


async def test_a_placeholder_publication_date_falls_through_and_the_article_gets_its_story(server, poller, sessions, api):
    """USA Today network pages carry ``"datePublished": "0001-01-01T00:00:00Z"`` in their JSON-LD;
    the feed's date is used instead, and the linker (which overflowed on year 1) links the article."""
    ld = ('<script type="application/ld+json">{"@context": "https://schema.org", "@type": "NewsArticle", '
          f'"headline": "{st.ORCHARD_TITLE}", "datePublished": "0001-01-01T00:00:00Z", '
          '"dateModified": "0001-01-01T00:00:00Z"}</script></head>')
    page = server.add("/usat/orchard.html", st.page(st.ORCHARD_TITLE, st.ORCHARD, "en").replace("</head>", ld),
                      Content_Type="text/html; charset=utf-8")
    feed_url = server.add("/usat.xml", st.feed("https://eu.usatoday.example/", "USA", "en",
                          [(st.ORCHARD_TITLE, page, "Tue, 07 May 2024 08:00:00 GMT")]), Content_Type="application/rss+xml")
    await _poll(poller, sessions, [feed_url])
    [article] = httpx.get(f"{api}/v1/articles").json()["items"]
    assert article["published_at"] == "2024-05-07T08:00:00Z"
    assert article["updated_at"] is None
    assert article["story_id"] is not None


async def test_an_article_the_linker_fails_on_the_same_way_is_given_up_and_shown(server, poller, sessions, api):
    """An article on which linking raises the same error on every attempt is retried only until
    ``failures.GIVE_UP_AFTER``; then it is booked as linked without a story, the API shows why and
    /metrics counts it; the other articles are linked."""
    import sqlalchemy as sa

    from service.storage import failures

    await _poll(poller, sessions, _serve_outlets(server)[2:])  # two Globe articles
    async with sessions() as session:
        poison = (await session.exec(select(Article).where(Article.title == st.ORCHARD_TITLE))).one()
        await session.exec(sa.update(Article).values(linked_at=None, story_id=None, link_lease_until=None))
        await session.commit()
    assign = poller.linker.assign

    async def assign_or_overflow(article_id, feats, *more):
        if article_id == poison.id:
            raise OverflowError("date value out of range")
        return await assign(article_id, feats, *more)

    poller.linker.assign = assign_or_overflow
    for attempt in range(1, failures.GIVE_UP_AFTER + 1):
        async with sessions() as session:  # the lease of the last attempt lapses
            await session.exec(sa.update(Article).values(link_lease_until=None))
            await session.commit()
        await poller.linker.link_pending()
        detail = httpx.get(f"{api}/v1/articles/{poison.id}").json()
        [failure] = detail["failures"]
        assert failure["stage"] == "link" and failure["count"] == attempt
        assert failure["error"] == "OverflowError: date value out of range"
        assert (failure["given_up_at"] is None) == (attempt < failures.GIVE_UP_AFTER)
    async with sessions() as session:
        rows = {a.title: a for a in (await session.exec(select(Article))).all()}
    assert rows[st.ORCHARD_TITLE].linked_at is not None and rows[st.ORCHARD_TITLE].story_id is None
    assert rows[st.GLOBE_TITLE].story_id is not None
    metrics = httpx.get(f"{api}/metrics").text
    assert 'newsloom_items_given_up_total{stage="link"}' in metrics


async def test_the_story_window_is_read_on_its_index_and_in_id_order(sessions, settings):
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa

    from service.storage import stories as stored

    moment = datetime(2024, 5, 6, 12, tzinfo=UTC)
    async with sessions() as session:
        # Later ids published earlier: the index on last_published_at yields them against id order.
        for i in range(6):
            last = moment + timedelta(hours=100 - 40 * i)
            session.add(Story(title=f"story {i}", first_published_at=last - timedelta(hours=6), last_published_at=last,
                              article_count=i + 1, vector=bytes(1024)))
        await session.commit()
        ids = [s.id for s in (await session.exec(select(Story).order_by(Story.id))).all()]
        statements = []

        def seen(conn, cursor, statement, parameters, context, executemany):
            statements.append((statement, parameters))

        sa.event.listen(session.bind.sync_engine, "before_cursor_execute", seen)
        try:
            rows = await session.run_sync(stored.window, moment, 72)
        finally:
            sa.event.remove(session.bind.sync_engine, "before_cursor_execute", seen)
        # Published 100, 60, 20, -20, -60, -100 hours from the moment: the middle four are within 72 h.
        assert [row.id for row in rows] == ids[1:5]
        assert [row.article_count for row in rows] == [2, 3, 4, 5]
        if settings.database_url.startswith("sqlite"):
            ((statement, parameters),) = statements
            plan = [row[-1] for row in (await (await session.connection()).exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)).all()]
            assert any("USING INDEX ix_stories_last_published_at" in step for step in plan), plan
            assert not any(step.startswith("SCAN stories") for step in plan), plan


async def test_an_assignment_is_one_transaction_on_the_linkers_writer(sessions, settings, workers):
    """On a SQLite file an article's whole assignment (the story lock, dedup, story, citations and
    its webhook events) runs on the linker's writer thread, on that thread's connection: no
    statement goes through the service's aiosqlite engine (before, each of its dozen statements was
    a hand-off of its own), and the deliveries are written in the same commit."""
    from datetime import UTC, datetime

    import pytest
    import sqlalchemy as sa

    from service.models import Delivery, ExtractionStatus, Subscription, utcnow
    from service.webhooks import signing

    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the writer thread is SQLite's (elsewhere the transaction runs in an async session's run_sync)")
    moment = datetime(2024, 5, 6, 7, tzinfo=UTC)
    async with sessions() as session:
        session.add(Subscription(url="https://receiver.example/hook", secret=signing.generate_secret(),
                                 event_types=["article.created", "story.created"]))
        await session.commit()
        article = Article(title=st.WELT_TITLE, text=st.WELT, language="de", sort_at=moment, first_seen_at=utcnow(),
                          extraction_status=ExtractionStatus.ok, authors=[])  # news to the subscriber: first seen after it
        session.add(article)
        await session.commit()
        article_id = article.id
    linker = Linker(settings, sessions, workers)
    feats = await workers.run(link_features, st.WELT_TITLE, st.WELT, "de", moment)
    through_aiosqlite: list[str] = []
    on_the_writer: list[str] = []

    def aiosqlite_statement(conn, cursor, statement, *args):
        through_aiosqlite.append(statement)

    def writer_statement(conn, cursor, statement, *args):
        on_the_writer.append(statement)

    engine = sessions.kw["bind"].sync_engine
    sa.event.listen(engine, "before_cursor_execute", aiosqlite_statement)
    sa.event.listen(linker.writer._engine, "before_cursor_execute", writer_statement)
    try:
        outcome = await linker.assign(article_id, feats)
    finally:
        sa.event.remove(engine, "before_cursor_execute", aiosqlite_statement)
        sa.event.remove(linker.writer._engine, "before_cursor_execute", writer_statement)
    assert outcome is not None and outcome.new_story
    assert through_aiosqlite == []
    assert on_the_writer[0].lstrip().upper().startswith("INSERT INTO STORY_LOCKS"), on_the_writer[0]
    assert sum(s.lstrip().upper().startswith("INSERT INTO DELIVERIES") for s in on_the_writer) == 2  # article.created, story.created
    async with sessions() as session:
        types = sorted((await session.exec(select(Delivery.event_type))).all())
    assert types == ["article.created", "story.created"]


async def test_the_state_an_assignment_writes_is_kept_as_a_read_of_its_row_would_decode_it(sessions, settings, workers):
    """The linker keeps the state of the story each assignment writes (``Linker.states``), so the
    next article's judgement does not read it back: kept under the version its row now has, and
    equal, field for field, to the state decoded from the stored row (float16 exemplars and the
    record's counts, not the state grown in memory), for a new story and for one an article joined."""
    from dataclasses import fields
    from datetime import UTC, datetime, timedelta

    import numpy as np

    from service.models import ExtractionStatus
    from service.storage import stories as stored
    from service.stories.clustering import StoryState

    start = datetime(2024, 5, 6, 7, tzinfo=UTC)
    texts = [(st.WELT_TITLE, st.WELT, "de"), (st.BLOOMBERG_TITLE, st.BLOOMBERG, "en")]
    async with sessions() as session:
        articles = [Article(title=title, text=text, language=lang, sort_at=start + timedelta(hours=i), first_seen_at=start,
                            extraction_status=ExtractionStatus.ok, authors=[]) for i, (title, text, lang) in enumerate(texts)]
        session.add_all(articles)
        await session.commit()
        ids = [a.id for a in articles]
    linker = Linker(settings, sessions, workers)
    outcomes = []
    for i, (article_id, (title, text, lang)) in enumerate(zip(ids, texts, strict=True)):
        feats = await workers.run(link_features, title, text, lang, start + timedelta(hours=i))
        outcomes.append(await linker.assign(article_id, feats))
    assert outcomes[0].new_story and not outcomes[1].new_story and outcomes[0].story_id == outcomes[1].story_id

    def same(one: StoryState, other: StoryState) -> bool:
        def equal(a, b) -> bool:
            if isinstance(a, list):
                return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
            return np.array_equal(a, b) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else a == b
        return all(equal(getattr(one, f.name), getattr(other, f.name)) for f in fields(StoryState) if f.name != "_derived")

    def check(session) -> list[tuple[bool, bool]]:
        rows = stored.window(session, start, 72)
        kept = linker.states._kept
        return [(kept[row.id].version == row.version, same(kept[row.id].state, StoryState.from_record(row.id, dict(stored.story(session, row.id).state))))
                for row in rows]

    assert await linker.writer.run(check) == [(True, True)]
