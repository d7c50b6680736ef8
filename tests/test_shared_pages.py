"""Entries of one feed document that share a page are distinct articles (``articles.store_entries``):
a weblog's day page with one anchor per post (Scripting News), a linked list whose posts link one
external article (Daring Fireball). Each keeps its own text from the feed and the shared page is
not fetched; the same document polled again stores nothing, GUIDs that change on every poll still
do not duplicate, and two feeds listing one page still share one article."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import select

from service.ingest.feeds.parser import parse_feed
from service.models import Article, Entry
from tests.corpus_feeds import rss
from tests.ingest_helpers import count, make_due, subscribe

RSS = "application/rss+xml"


async def _feed_articles(sessions, feed_id: int) -> list[Article]:
    async with sessions() as session:
        query = select(Article).where(Article.id.in_(select(Entry.article_id).where(Entry.feed_id == feed_id)))
        return list((await session.exec(query.order_by(Article.id))).all())


def _distinct_entries(path: Path) -> dict[tuple, object]:
    """(entry key, title, text, date) → the first such entry in the document: what storing keeps
    (one key on entries that differ is two posts, ``articles._distinct_entries``)."""
    out: dict[tuple, object] = {}
    for entry in parse_feed(path.read_bytes(), "https://feeds.example.org/feed").entries:
        out.setdefault((entry.key, entry.title, entry.text, entry.published_at), entry)
    return out


async def test_posts_anchored_on_one_day_page_are_each_an_article_with_its_own_text(corpus, server, poller, sessions):
    """Scripting News (RSS and JSON Feed): one page a day, one ``#anchor`` per post, each with its
    own GUID and text. Every post of a day with several posts is an article under its anchor with
    the feed's text, its day page not to be fetched (before: 7 articles of 50 entries, one per day
    page); the JSON Feed of the same posts meets the same articles."""
    path = corpus / "feeds" / "netnewswire" / "scriptingNews.rss"
    expected = _distinct_entries(path)
    rss_id = await subscribe(sessions, server.url("/corpus/feeds/netnewswire/scriptingNews.rss"))
    await poller.poll_due_feeds()
    stored = await _feed_articles(sessions, rss_id)
    assert len(stored) == len(expected) > 40
    by_url = {(article.url, article.text or ""): article for article in stored}
    posts_of_day = Counter(entry.link.partition("#")[0] for entry in expected.values())
    posts_of_anchor = Counter(entry.link for entry in expected.values())
    assert max(posts_of_anchor.values()) == 2  # two posts under one GUID and link, both kept
    for entry in expected.values():
        article = by_url[entry.link, entry.text]
        assert (article.text or "") == entry.text and article.text_source == ("feed" if entry.text else None)
        if posts_of_day[entry.link.partition("#")[0]] > 1:
            assert article.canonical_url == (entry.link if posts_of_anchor[entry.link] == 1 else None)
            assert article.extraction_status == "skipped" and "shared by" in article.extraction_error
        else:  # alone on its page in this document: the page is its article, as for any link
            assert article.canonical_url == entry.link.partition("#")[0] and article.extraction_status == "pending"
    assert sum(n > 1 for n in posts_of_day.values()) >= 5
    json_id = await subscribe(sessions, server.url("/corpus/feeds/netnewswire/ScriptingNews.json"))
    await poller.poll_due_feeds()
    assert {a.id for a in await _feed_articles(sessions, json_id)} == {a.id for a in stored}
    assert await count(sessions, Article) == len(expected)


async def test_linked_posts_sharing_one_link_are_two_articles_and_a_second_poll_adds_nothing(corpus, server, poller, sessions):
    """Daring Fireball: a linked-list post and a sponsor message link the same site (distinct ids,
    distinct texts). Both are stored (before: 47 of 48), each with its own text and no canonical
    URL of its own; polling the same document again stores no entry and no article."""
    path = corpus / "feeds" / "netnewswire" / "DaringFireball.atom"
    expected = _distinct_entries(path)
    feed_id = await subscribe(sessions, server.url("/corpus/feeds/netnewswire/DaringFireball.atom"))
    await poller.poll_due_feeds()
    stored = await _feed_articles(sessions, feed_id)
    assert len(stored) == len(expected) == 48
    shared = [a for a in stored if a.url == "http://mnml.af/"]
    assert len(shared) == 2 and {a.guid for a in shared} == {e.guid for e in expected.values() if e.link == "http://mnml.af/"}
    for article in shared:
        entry = next(e for e in expected.values() if e.guid == article.guid)
        assert article.text == entry.text and article.title == entry.title
        assert article.canonical_url is None and article.extraction_status == "skipped"
    entries_before, articles_before = await count(sessions, Entry), await count(sessions, Article)
    await make_due(sessions, feed_id)
    report = await poller.poll_due_feeds()
    assert report.feeds_polled == 1
    assert (await count(sessions, Entry), await count(sessions, Article)) == (entries_before, articles_before)


async def test_a_page_shared_in_one_document_written_adversarially(server, poller, sessions):
    """One document: three anchors of a day page (one with a tracking parameter, one in upper-case
    host), the day page itself, two posts linking one article under different GUIDs, and the AMP
    and slash spellings of another page (one article listed twice, BL-18). Each post is its own
    article with its own text; the day page alone is fetched."""
    day = "https://blog.example.org/2024/05/01.html"
    items = [
        {"title": "Morning", "link": f"{day}#a0800", "guid": f"{day}#a0800", "description": "Good morning."},
        {"title": "Lunch", "link": "https://BLOG.example.org/2024/05/01.html?utm_source=rss#a1200",
         "guid": f"{day}#a1200", "description": "Soup again."},
        {"title": "Evening", "link": f"{day}#a1900", "guid": "urn:post:1900", "description": "Good night."},
        {"title": "The whole day", "link": day, "guid": "urn:day", "description": "Everything."},
        {"title": "Linked", "link": "https://news.example.org/story", "guid": "urn:linked:1", "description": "My comment."},
        {"title": "[Sponsor] Story", "link": "https://news.example.org/story", "guid": "urn:sponsor:1",
         "description": "Paid words."},
        {"title": "Storm", "link": "https://www.example.org/amp/storm/", "guid": "urn:storm:amp", "description": "Wind."},
        {"title": "Storm", "link": "https://www.example.org/storm", "guid": "urn:storm", "description": "Wind."},
    ]
    server.add("/2024/05/01.html", "<html><body><article><p>All posts of the day.</p></article></body></html>",
               host="blog.example.org", Content_Type="text/html")
    feed_id = await subscribe(sessions, server.add("/feed.xml", rss(items), host="blog.example.org", Content_Type=RSS))
    await poller.poll_due_feeds()
    stored = await _feed_articles(sessions, feed_id)
    texts = {a.text: a for a in stored}
    assert sorted(texts) == ["Everything.", "Good morning.", "Good night.", "My comment.", "Paid words.", "Soup again.", "Wind."]
    assert texts["Soup again."].canonical_url == f"{day}#a1200"
    assert texts["Good night."].canonical_url == f"{day}#a1900"
    assert texts["Everything."].canonical_url == day and texts["Everything."].extraction_status == "pending"
    assert {texts[t].extraction_status for t in ("Good morning.", "My comment.", "Paid words.")} == {"skipped"}
    assert len(stored) == 7 and texts["Wind."].canonical_url.rstrip("/") == "https://www.example.org/storm"
    await poller.process_pages()
    assert len(server.hits("/2024/05/01.html", "blog.example.org")) == 1 and not server.hits("/story")


async def test_across_polls_a_new_guid_on_a_listed_link_is_a_new_article_and_changing_guids_do_not_duplicate(server, poller, sessions):
    """Poll 1: one post links an article. Poll 2: a second post (new GUID) links it too, while the
    first is still listed: a new article (before, it was merged into the first). Polls 3 and 4:
    both GUIDs change on every poll (the old ones leave the document): still two articles, each
    keeping its text, its title and its entry."""
    link = "https://news.example.org/report"
    first = {"title": "Comment", "link": link, "guid": "urn:comment:v1", "description": "First words."}
    second = {"title": "Sponsor", "link": link, "guid": "urn:sponsor:v1", "description": "Second words."}
    url = server.add("/feed.xml", rss([first]), host="list.example.org", Content_Type=RSS)
    feed_id = await subscribe(sessions, url)
    await poller.poll_due_feeds()
    for version in (1, 2, 3):
        if version > 1:
            first["guid"], second["guid"] = f"urn:comment:v{version}", f"urn:sponsor:v{version}"
        server.add("/feed.xml", rss([second, first]), host="list.example.org", Content_Type=RSS)
        await make_due(sessions, feed_id)
        await poller.poll_due_feeds()
        stored = await _feed_articles(sessions, feed_id)
        assert sorted((a.title, a.text) for a in stored) == [("Comment", "First words."), ("Sponsor", "Second words.")]
        async with sessions() as session:
            keys = (await session.exec(select(Entry.entry_key).where(Entry.feed_id == feed_id))).all()
        assert sorted(keys) == sorted(f"guid:{g} link://news.example.org/report" for g in (first["guid"], second["guid"]))


async def test_a_day_page_stored_whole_before_is_taken_over_by_its_first_post(server, poller, sessions):
    """An entry stored under the day page (its key without the anchor, as before fragments counted)
    that leaves the document is taken over by the first new post of that page, not left beside a
    duplicate; the other posts are new articles."""
    day = "https://diary.example.org/2024/05/02.html"
    url = server.add("/feed.xml", rss([{"title": "Day", "link": day, "guid": day, "description": "Post one."}]),
                     host="diary.example.org", Content_Type=RSS)
    feed_id = await subscribe(sessions, url)
    await poller.poll_due_feeds()
    [before] = await _feed_articles(sessions, feed_id)
    posts = [{"title": "Day", "link": f"{day}#a1", "guid": f"{day}#a1", "description": "Post one."},
             {"title": "Later", "link": f"{day}#a2", "guid": f"{day}#a2", "description": "Post two."}]
    server.add("/feed.xml", rss(posts), host="diary.example.org", Content_Type=RSS)
    await make_due(sessions, feed_id)
    await poller.poll_due_feeds()
    stored = await _feed_articles(sessions, feed_id)
    assert [a.text for a in stored] == ["Post one.", "Post two."] and stored[0].id == before.id
    async with sessions() as session:
        assert (await session.exec(select(sa.func.count()).select_from(Entry).where(Entry.feed_id == feed_id))).one() == 2


async def test_two_feeds_listing_one_page_still_share_one_article(server, poller, sessions):
    """Cross-feed dedup is unchanged: an outlet's feed and an aggregator listing one page (the
    aggregator with a tracking fragment) share one article; a post of a shared day page listed
    alone by another feed meets the post's article, not the day page."""
    day = "https://weblog.example.org/2024/05/03.html"
    outlet = server.add("/outlet.xml", rss([{"title": "Budget", "link": "https://paper.example.org/budget"}]),
                        host="paper.example.org", Content_Type=RSS)
    wire = server.add("/wire.xml", rss([{"title": "Budget", "link": "https://paper.example.org/budget#xtor=RSS-3208",
                                         "guid": "urn:wire:1"}]), host="wire.example.org", Content_Type=RSS)
    weblog = server.add("/weblog.xml", rss([{"title": "One", "link": f"{day}#a1", "description": "Post one."},
                                            {"title": "Two", "link": f"{day}#a2", "description": "Post two."}]),
                        host="weblog.example.org", Content_Type=RSS)
    planet = server.add("/planet.xml", rss([{"title": "Two", "link": f"{day}#a2", "guid": "urn:planet:2"}]),
                        host="planet.example.org", Content_Type=RSS)
    ids = [await subscribe(sessions, url) for url in (outlet, wire, weblog)]
    await poller.poll_due_feeds()
    ids.append(await subscribe(sessions, planet))
    await poller.poll_due_feeds()
    outlet_articles, wire_articles = await _feed_articles(sessions, ids[0]), await _feed_articles(sessions, ids[1])
    assert len(outlet_articles) == 1 and [a.id for a in wire_articles] == [outlet_articles[0].id]
    [planet_article] = await _feed_articles(sessions, ids[3])
    assert planet_article.text == "Post two." and planet_article.canonical_url == f"{day}#a2"
    assert await count(sessions, Article) == 3


async def test_a_post_scrolling_out_of_the_document_is_not_taken_over_by_a_new_one(server, poller, sessions):
    """A status feed whose items all link one page, and a live blog with one anchor per update, each
    listing its last three: when a new item arrives and the oldest leaves the document, the new
    one is a new article with its own text (a re-published item keeps title and summary; these
    do not), and the one that left keeps its own."""
    status = [{"title": f"Incident {n}", "link": "https://status.example.org/", "guid": f"urn:incident:{n}",
               "description": f"Incident {n} report."} for n in range(1, 5)]
    live = [{"title": f"Update {n}", "link": f"https://live.example.org/match.html#u{n}", "description": f"Minute {n * 10}."}
            for n in range(1, 5)]
    ids = {}
    for name, items in (("status", status), ("live", live)):
        ids[name] = await subscribe(sessions, server.add(f"/{name}.xml", rss(items[:1]), host="feeds.example.org", Content_Type=RSS))
    await poller.poll_due_feeds()
    for window in (slice(0, 3), slice(1, 4)):
        for name, items in (("status", status), ("live", live)):
            server.add(f"/{name}.xml", rss(items[window][::-1]), host="feeds.example.org", Content_Type=RSS)
        await make_due(sessions, *ids.values())
        await poller.poll_due_feeds()
    for name, items in (("status", status), ("live", live)):
        stored = await _feed_articles(sessions, ids[name])
        assert sorted((a.title, a.text) for a in stored) == sorted((i["title"], i["description"]) for i in items), name


async def test_a_link_post_in_atom_and_json_feed_is_one_article(corpus, server, poller, sessions):
    """Daring Fireball publishes one linked list as Atom and as JSON Feed. A link post's article is
    the page it links: Atom's ``rel="alternate"``, JSON Feed's ``external_url`` (JSON Feed 1.1:
    "the thing you're talking about"), not the post's permalink (JSON ``url``, Atom ``rel="related"``).
    Subscribing both formats stores each post once (before: 48 more articles, one per permalink);
    only the two posts that share one linked page (keyed by their entry, whose GUIDs differ by
    format) are stored again. The JSON entries keep their text on the article."""
    atom = _distinct_entries(corpus / "feeds" / "netnewswire" / "DaringFireball.atom")
    json_entries = _distinct_entries(corpus / "feeds" / "netnewswire" / "DaringFireball.json")
    assert all(e.link == atom_e.link for e, atom_e in zip(json_entries.values(), atom.values(), strict=True))
    atom_id = await subscribe(sessions, server.url("/corpus/feeds/netnewswire/DaringFireball.atom"))
    await poller.poll_due_feeds()
    json_id = await subscribe(sessions, server.url("/corpus/feeds/netnewswire/DaringFireball.json"))
    await poller.poll_due_feeds()
    from_atom, from_json = await _feed_articles(sessions, atom_id), await _feed_articles(sessions, json_id)
    assert len(from_atom) == len(from_json) == 48
    shared = {a.id for a in from_json} & {a.id for a in from_atom}
    assert len(shared) == 46 and await count(sessions, Article) == 50
    texts = {e.text for e in json_entries.values()}
    assert {a.text for a in from_json} == texts


async def test_two_posts_under_one_guid_and_link_are_both_kept_across_polls(server, poller, sessions):
    """Scripting News lists two posts under one GUID and link (``…/2017/06/25.html#a080631``: "Good
    morning…" at 12:27 and the Dropbox post at 12:32), other text, other date. Both are stored with
    their own text (before: the second was dropped as "the same item twice"); a post listed alone
    later under that GUID stays its own article, not an edit of the other, and a post listed twice
    with the same text is still one article."""
    anchor = "http://scripting.com/2017/06/25.html#a"

    def item(text: str, minute: str, anchor_id: str = "080631") -> str:
        return (f"<item><description>{text}</description><pubDate>Sun, 25 Jun 2017 12:{minute} GMT</pubDate>"
                f"<link>{anchor}{anchor_id}</link><guid>{anchor}{anchor_id}</guid></item>")

    morning, dropbox = item("Good morning Internet guzzlers!", "27:31"), item("Dropbox could be the king of the one-page app.", "32:31")
    other = item("Code mode.", "53:13", "110613")

    def document(*items: str) -> str:
        return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Scripting</title>{"".join(items)}</channel></rss>'

    url = server.add("/repeat.xml", document(morning, other, dropbox, dropbox), host="scripting.example.org", Content_Type=RSS)
    feed_id = await subscribe(sessions, url)
    await poller.poll_due_feeds()
    texts = sorted(a.text for a in await _feed_articles(sessions, feed_id))
    assert texts == ["Code mode.", "Dropbox could be the king of the one-page app.", "Good morning Internet guzzlers!"]
    for items in ([dropbox, other], [morning, dropbox]):  # the morning post leaves, then both are listed again
        server.add("/repeat.xml", document(*items), host="scripting.example.org", Content_Type=RSS)
        await make_due(sessions, feed_id)
        await poller.poll_due_feeds()
        assert sorted(a.text for a in await _feed_articles(sessions, feed_id)) == texts
    assert await count(sessions, Article) == 3 and await count(sessions, Entry) == 3
