"""``service.ingest.feeds.jsonfeed``: JSON Feed 1 and 1.1 and RSS-in-JSON to ``ParsedFeed``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.ingest.feeds.entries import FeedParseError
from service.ingest.feeds.jsonfeed import parse_json_feed

FIXTURES = Path(__file__).parent / "fixtures"
URL = "https://news.example.org/feed.json"


def parse(name: str):
    return parse_json_feed((FIXTURES / name).read_bytes(), URL)


def test_version_1_with_author_object() -> None:
    feed = parse("feed-v1.json")
    assert (feed.title, feed.site_url, feed.language, feed.format) == (
        "Beispiel Nachrichten", "https://news.example.org/", "de", "json1")
    first, second, bad = feed.entries  # the string item is skipped
    assert first.guid == "1001"  # a numeric id becomes a string
    assert first.link == "https://news.example.org/artikel/eins"  # relative to the feed URL
    assert first.title == "Erster Artikel"
    assert first.authors == ["Redaktion"]  # the feed's 1.0 "author" object
    assert first.published_at == datetime(2021, 3, 4, 4, 6, 7, tzinfo=UTC)
    assert first.updated_at == datetime(2021, 3, 5, tzinfo=UTC)
    assert first.language == "de"
    assert second.link == "https://elsewhere.example.net/story"  # external_url when there is no url
    assert second.authors == ["Erika Muster"]
    assert second.language == "en"
    assert second.published_at is None  # placeholder 0001-01-01 is no date
    assert bad.guid == "3"


def test_content_html_wins_over_content_text_and_text_is_escaped() -> None:
    _, second, _ = parse("feed-v1.json").entries
    assert (second.content_html, second.summary_html) == ("<p>HTML wins</p>", "Kurz")
    doc = {"version": "https://jsonfeed.org/version/1.1", "items": [
        {"id": "t", "content_text": "If a <b and c > d then AT&T wins."}]}
    [entry] = parse_json_feed(json.dumps(doc).encode(), URL).entries
    assert entry.content_html == "If a &lt;b and c &gt; d then AT&amp;T wins."


def test_bad_types_are_ignored_not_fatal() -> None:
    *_, bad = parse("feed-v1.json").entries
    assert bad.link is None  # "url": 42
    assert bad.content_html is None  # "content_html": ["x"]
    assert bad.authors == ["Redaktion"]  # "authors": "nobody" → the feed's authors
    assert bad.published_at is None  # "date_published": 20210304
    assert bad.enclosures == []  # "attachments": "none"


def test_version_1_1_authors_list_and_attachments() -> None:
    feed = parse("feed-v1_1.json")
    assert feed.format == "json1.1"
    assert feed.language is None
    first, second = feed.entries
    assert first.authors == ["Ada", "Grace"]
    assert first.published_at == datetime(2024, 2, 29, 17, tzinfo=UTC)
    assert first.enclosures == [{"url": "https://news.example.org/media/a-1.mp3", "type": "audio/mpeg", "length": 12345}]
    # 1.1 "authors" wins over the deprecated "author"; nameless and blank authors are dropped
    assert second.authors == ["Desk"]
    assert second.content_html == "Plain"


def test_rss_in_json() -> None:
    feed = parse("rss-in-json.json")
    assert (feed.title, feed.site_url, feed.language, feed.format) == (
        "Scripting News", "http://scripting.example.com/", "en", "rss-in-json")
    [entry] = feed.entries  # a single item object, not a list
    assert entry.guid == "http://scripting.example.com/2024/01/02.html#a1"  # {"#value": …}
    assert entry.link == "https://news.example.org/2024/01/02.html"
    assert entry.summary_html == "<p>Hello</p>" and entry.content_html is None
    assert entry.published_at == datetime(2024, 1, 2, 15, 4, 5, tzinfo=UTC)
    assert entry.enclosures == [{"url": "http://scripting.example.com/a.mp3", "type": "audio/mpeg", "length": 99}]


def test_entry_keys_are_distinct_and_stable() -> None:
    keys = [entry.key for entry in parse("feed-v1.json").entries]
    assert len(set(keys)) == len(keys)
    assert keys == [entry.key for entry in parse("feed-v1.json").entries]


def test_feed_without_version_is_recognised_by_its_items() -> None:
    doc = {"title": "No version", "items": [{"id": "1", "url": "https://x.example.org/1"}]}
    feed = parse_json_feed(json.dumps(doc).encode(), URL)
    assert feed.format == "json" and [e.guid for e in feed.entries] == ["1"]


def test_bom_and_lone_surrogates_are_accepted() -> None:
    body = b"\xef\xbb\xbf" + json.dumps({"version": "https://jsonfeed.org/version/1.1",
                                          "items": [{"id": "x\ud800", "title": "Bad\ud800 title"}]}).encode()
    [entry] = parse_json_feed(body, URL).entries
    entry.guid.encode("utf-8")  # storable: no lone surrogate left
    entry.title.encode("utf-8")
    assert entry.title.startswith("Bad") and entry.title.endswith("title")


@pytest.mark.parametrize(("body", "message"), [
    (b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", "ti', "invalid JSON feed"),  # truncated
    (b"\xff\xfe{}", "invalid JSON feed"),
    (b"[1, 2, 3]", "not a JSON Feed"),
    (b'{"version": "https://jsonfeed.org/version/1.1", "items": {"id": "1"}}', "not a JSON Feed"),
    (b'{"data": [{"name": "x"}], "items": [{"name": "not an item"}]}', "not a JSON Feed"),
])
def test_unreadable_documents_raise_feed_parse_error(body: bytes, message: str) -> None:
    with pytest.raises(FeedParseError, match=message):
        parse_json_feed(body, URL)
