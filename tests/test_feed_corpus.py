"""Every real feed document in ../shared/corpus/feeds/ through the real poller over HTTP: none may
crash the loop; readable ones yield their entries; broken ones leave a clear error on the feed."""

from __future__ import annotations

import json

import feedparser

from sqlmodel import func, select

from service.feeds import add_feed
from service.models import Entry, Feed, FeedState
from tests.server import CONTENT_TYPES

# Documents that are not feeds or are broken beyond recovery, and the error each must leave.
UNREADABLE = {
    "netnewswire/DaringFireball.html": "not a readable feed",
    "netnewswire/allthis-partial.json": "invalid JSON feed",
    "feed-rs/rss_2.0_invalid_1.xml": "broken feed with no readable entries",
    "feedparser/bozo_invalid-bytes-with-bom.xml": "broken feed with no readable entries",
    "feedparser/bozo_bogus_encoding.xml": "broken feed with no readable entries",
}


def _distinct_entries(path, record) -> int:
    """Entries a document should yield: the source's stated count, else feedparser's entries with
    distinct links (two entries linking to one URL are one article; DaringFireball has such pairs,
    Scripting News repeats posts)."""
    if record.get("expected_entries") is not None:
        return record["expected_entries"]
    if path.suffix == ".json":
        doc = json.loads(path.read_text())
        items = doc["rss"]["channel"]["item"] if "rss" in doc else doc["items"]
        return len({i.get("link") or i.get("url") or i.get("id") for i in items})
    parsed = feedparser.parse(path.read_bytes())
    return len({e.get("link") or e.get("id") or e.get("title") for e in parsed.entries})


async def test_every_corpus_feed_is_polled_without_crashing_the_loop(corpus, server, poller, sessions):
    index = json.loads((corpus / "feeds" / "index.json").read_text())["feeds"]
    async with sessions() as session:
        ids = {}
        for record in index:
            feed, created = await add_feed(session, server.url(f"/corpus/feeds/{record['file']}"), 900)
            assert created
            ids[record["file"]] = feed.id

    report = await poller.poll_due_feeds()
    assert report.feeds_polled == len(index)
    assert report.feeds_failed == len(UNREADABLE)

    async with sessions() as session:
        for record in index:
            feed = await session.get(Feed, ids[record["file"]])
            stored = (await session.exec(select(func.count()).select_from(Entry).where(Entry.feed_id == feed.id))).one()
            assert feed.lease_owner is None, record["file"]
            if record["file"] in UNREADABLE:
                assert feed.last_error and feed.last_error.startswith(UNREADABLE[record["file"]]), (record["file"], feed.last_error)
                assert feed.consecutive_failures == 1 and stored == 0
                continue
            assert feed.consecutive_failures == 0, (record["file"], feed.last_error)
            assert feed.state == FeedState.active
            assert feed.last_status == 200
            assert stored == _distinct_entries(corpus / "feeds" / record["file"], record), record["file"]


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
