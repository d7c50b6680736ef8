"""Feed documents (RSS 0.9x/1.0/2.0, Atom 0.3/1.0, JSON Feed) to entries, via feedparser.

feedparser detects the format from the content (not the file name or Content-Type), recovers from
many well-formedness errors, resolves relative links against ``xml:base`` and the document URL, and
normalises dates to UTC. This module adapts its result to ``ParsedFeed``/``ParsedEntry`` so format
oddities stay out of the rest of the pipeline.
"""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime

import feedparser

from service.ingest.entries import FeedParseError, ParsedEntry, ParsedFeed, entry_key, language_code
from service.ingest.jsonfeed import parse_json_feed
from service.ingest.text import html_to_text

__all__ = ["FeedParseError", "ParsedEntry", "ParsedFeed", "parse_feed"]


def _utc(struct: time.struct_time | None) -> datetime | None:
    if not struct:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(struct), UTC)
    except (OverflowError, ValueError):
        return None


def _authors(entry: feedparser.FeedParserDict) -> list[str]:
    names = [a.get("name", "").strip() for a in entry.get("authors", []) if isinstance(a, dict)]
    names = [n for n in names if n]
    if not names and entry.get("author"):
        names = [entry["author"].strip()]
    return names


def _entry(raw: feedparser.FeedParserDict, feed_language: str | None) -> ParsedEntry:
    link = raw.get("link") or None
    guid = raw.get("id") or None
    if not link and guid and guid.startswith(("http://", "https://")):
        link = guid
    title = raw.get("title") or None
    published = _utc(raw.get("published_parsed")) or _utc(raw.get("updated_parsed"))
    content = raw.get("content") or []
    content_html = max((c.get("value", "") for c in content), key=len, default="") or None
    return ParsedEntry(
        key=entry_key(link, guid, title, published, raw.get("summary")),
        link=link,
        guid=guid,
        title=title.strip() if title else None,
        summary_html=raw.get("summary") or None,
        content_html=content_html,
        authors=_authors(raw),
        published_at=published,
        # feedparser falls back from "updated" to "published": only a distinct value is an update.
        updated_at=None if raw.get("updated_parsed") == raw.get("published_parsed") else _utc(raw.get("updated_parsed")),
        language=language_code((raw.get("summary_detail") or {}).get("language")) or feed_language,
    )


def parse_feed(body: bytes, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse a feed document fetched from ``url`` (the final URL after redirects).

    JSON documents go to ``parse_json_feed``; everything else to feedparser. ``content_type`` is the HTTP Content-Type header, whose charset feedparser weighs against the
    XML prolog. Raises ``FeedParseError`` when the body is not a feed at all, or is broken and yields no
    entries; a feed that parses with recoverable errors returns its entries
    with ``warning`` set.
    """
    parsed = _parse(body, url, content_type)
    for entry in parsed.entries:
        entry.text = html_to_text(entry.content_html or entry.summary_html or "")
    return parsed


def _parse(body: bytes, url: str, content_type: str | None) -> ParsedFeed:
    if body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return parse_json_feed(body, url)
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    result = feedparser.parse(body, response_headers=headers, sanitize_html=True, resolve_relative_uris=True)
    problem = result.get("bozo_exception")
    if isinstance(problem, feedparser.NonXMLContentType):
        problem = None  # a feed served as text/html or without a type: we sniff the body instead
    if not result.version and not result.entries:
        reason = f"{type(problem).__name__}: {problem}" if problem else "no feed elements found"
        raise FeedParseError(f"not a readable feed ({reason})")
    if problem is not None and not result.entries:
        raise FeedParseError(f"broken feed with no readable entries ({type(problem).__name__}: {problem})")
    meta = result.feed
    language = language_code(meta.get("language"))
    entries = [_entry(raw, language) for raw in result.entries]
    return ParsedFeed(
        title=(meta.get("title") or "").strip() or None,
        site_url=meta.get("link") or None,
        language=language,
        entries=entries,
        format=result.version or "unknown",
        warning=f"recovered with warnings: {type(problem).__name__}: {problem}" if problem else None,
    )
