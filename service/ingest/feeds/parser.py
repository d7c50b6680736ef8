"""Feed documents (RSS 0.9x/1.0/2.0, Atom 0.3/1.0, JSON Feed) to entries, via feedparser.

feedparser detects the format from the content (not the file name or Content-Type), recovers from
many well-formedness errors, resolves relative links against ``xml:base`` and the document URL, and
normalises dates to UTC. This module adapts its result to ``ParsedFeed``/``ParsedEntry`` so format
oddities stay out of the rest of the pipeline.
"""

from __future__ import annotations

import calendar
import functools
import io
import time
from dataclasses import fields
from datetime import UTC, datetime

import feedparser
import feedparser.datetimes
import feedparser.mixin
import feedparser.namespaces._base
import feedparser.urls

from service.ingest.feeds.dates import UnknownDate, parse_date_strict
from service.ingest.feeds.encoding import to_utf8_document
from service.ingest.feeds.entries import FeedParseError, ParsedEntry, ParsedFeed, enclosures, entry_key, language_code
from service.ingest.feeds.jsonfeed import parse_json_feed
from service.ingest.feeds.sanitize import clean_html, plain_title
from service.ingest.feeds.sniff import sniff
from service.ingest.text import clip_title, html_to_text, storable
from service.net.urls import InvalidURL, check_fetchable, link_forms, without_userinfo

__all__ = ["FeedParseError", "ParsedEntry", "ParsedFeed", "parse_feed"]

# feedparser re-derives the document's base URI at every start tag, joining the current base with
# the element's ``xml:base`` or, without one, with itself (``make_safe_absolute_uri(base, base)``:
# a regex and ``urljoin``, about 10 µs a tag): with the document URL given as the base, a third of
# its parse of a 20-item RSS document. The join is a pure function of its two strings, and within
# a document they are the same few pairs, so feedparser's tag handler gets it memoised; the other
# callers (link resolution, the sanitiser) keep the function as it is. Only short pairs are kept
# (``MEMO_URI_CHARS``): a hostile feed's huge ``xml:base`` values must not stay alive in the cache.
MEMO_URI_CHARS = 2048
_joined = functools.lru_cache(maxsize=256)(feedparser.urls.make_safe_absolute_uri)


def _base_join(base: str, rel: str | None = None) -> str:
    if len(base) + len(rel or "") <= MEMO_URI_CHARS:
        return _joined(base, rel)
    return feedparser.urls.make_safe_absolute_uri(base, rel)


feedparser.mixin.make_safe_absolute_uri = _base_join


# Three more of feedparser's costs per element, all in ``_FeedParserMixin.pop``:
# * each title, summary or content keeps a deep copy of the element's content settings
#   (``copy.deepcopy``: type, language, base, all strings; about 25 µs each), where a dict copy is the same;
# * it reads those settings about four times through ``FeedParserDict.get`` (alias lookups they never need);
# * its HTML is run through the relative-link resolver (an SGML parse, about 30 µs for a short
#   summary) even when it has no ``<`` or ``&``: no tag, no reference, nothing to resolve, and
#   the resolver returns such text as it was given (``tests/test_corpus_feeds.py`` compares).
class _ContentSettings(feedparser.FeedParserDict):
    """The content settings of the element being read, copied as a plain dict. Their keys (type,
    language, base, base64, mode) have no aliases in ``FeedParserDict.keymap``: read as a dict (its
    ``get``, about four a element, is a tenth of ``FeedParserDict.get``)."""

    get = dict.get

    def __deepcopy__(self, memo: dict) -> feedparser.FeedParserDict:
        return feedparser.FeedParserDict(self)


_push_content = feedparser.mixin._FeedParserMixin.push_content


def _push_content_settings(parser: feedparser.mixin._FeedParserMixin, *args) -> None:
    _push_content(parser, *args)
    parser.contentparams = _ContentSettings(parser.contentparams)


def _resolve_relative_uris(html: str, base: str, encoding: str, content_type: str) -> str:
    if "<" not in html and "&" not in html:
        return html
    return feedparser.urls.resolve_relative_uris(html, base, encoding, content_type)


feedparser.mixin._FeedParserMixin.push_content = _push_content_settings
feedparser.mixin.resolve_relative_uris = _resolve_relative_uris


def _no_date_parse(_text: str) -> None:
    """In place of feedparser's parse of each date element (about 10 µs): ``_date`` reads the text
    itself (``dates.parse_date_strict``) and asks feedparser's parser only for shapes it does not
    know, so feedparser's ``*_parsed`` fields are left None."""
    return None


feedparser.namespaces._base._parse_date = _no_date_parse


def _utc(struct: time.struct_time | None) -> datetime | None:
    if not struct:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(struct), UTC)
    except (OverflowError, ValueError):
        return None


# An entry's fields are read with ``dict.get`` where feedparser's ``FeedParserDict.get`` would do
# the same, about ten times slower: for every key but its aliases (``FeedParserDict.keymap``: guid,
# description, date, …) and the ones it computes (category, enclosures, license, updated).
_get = dict.get


def _authors(entry: feedparser.FeedParserDict) -> list[str]:
    names = [a.get("name", "").strip() for a in _get(entry, "authors", []) if isinstance(a, dict)]
    names = [n for n in names if n]
    if not names and _get(entry, "author"):
        names = [entry["author"].strip()]
    return names


def _date(raw: feedparser.FeedParserDict, name: str) -> tuple[datetime | None, str | None]:
    """Our reading of the entry's ``name`` date (see ``dates``), falling back to feedparser's only for
    shapes we do not know; a date we refuse to guess (unknown zone or month) stays None."""
    # dict.get: feedparser answers a missing "updated" with "published" (its issue 310 stopgap,
    # with a DeprecationWarning), which would make every entry look updated when it was published.
    text = dict.get(raw, name) or None
    try:
        parsed = parse_date_strict(text)
    except UnknownDate:
        return None, text
    if parsed is None and text:
        parsed = _utc(feedparser.datetimes._parse_date(text))
    return parsed, text


def _enclosures(raw: feedparser.FeedParserDict, base: str) -> list[dict]:
    """RSS ``<enclosure>`` and Atom ``link rel="enclosure"`` (feedparser's ``enclosures``), then
    Media RSS ``media:content`` (``media_content``)."""
    found = [(e.get("href"), e.get("type"), e.get("length")) for e in raw.get("enclosures") or [] if isinstance(e, dict)]
    found += [(m.get("url"), m.get("type"), m.get("filesize")) for m in _get(raw, "media_content") or [] if isinstance(m, dict)]
    return enclosures(found, base)


def _title(raw: feedparser.FeedParserDict) -> str | None:
    """The ``title`` of a feed or entry as plain text (``sanitize.plain_title``): feedparser hands a
    title with markup over as HTML when it says so (Atom ``type="html"`` or ``"xhtml"``) or looks
    like it (an RSS title with escaped tags), whose tags and character references are no part of
    the headline (``<b>Q</b> &amp; A`` is ``Q & A``); a title it takes for text may hold markup
    still (a CDATA ``<mark>`` or ``<br/>``)."""
    return plain_title(_get(raw, "title"), "html" in (_get(_get(raw, "title_detail") or {}, "type") or ""))


def _entry(raw: feedparser.FeedParserDict, feed_language: str | None, base: str) -> ParsedEntry:
    link = _get(raw, "link") or None
    guid = (_get(raw, "id") or "").strip() or None
    if not link and guid and guid.startswith(("http://", "https://")):
        link = guid
    title = _get(raw, "title") or None
    published, published_raw = _date(raw, "published")
    updated, updated_raw = _date(raw, "updated")
    if published is None and published_raw is None:
        published, published_raw = updated, updated_raw
    content = _get(raw, "content") or []
    content_html = max((c.get("value", "") for c in content), key=len, default="") or None
    return ParsedEntry(
        key=entry_key(link, guid, title, published, _get(raw, "summary")),
        link=link,
        guid=guid,
        title=_title(raw),
        summary_html=_get(raw, "summary") or None,
        content_html=content_html,
        authors=_authors(raw),
        published_at=published,
        updated_at=updated,
        language=language_code(_get(_get(raw, "summary_detail") or {}, "language")) or feed_language,
        published_raw=published_raw,
        enclosures=_enclosures(raw, base),
    )


def parse_feed(body: bytes, url: str, content_type: str | None = None, max_entries: int = 500) -> ParsedFeed:
    """Parse a feed document fetched from ``url`` (the final URL after redirects, the base for
    relative links, RFC 3986 §5.1.3).

    JSON documents go to ``parse_json_feed``; everything else is decoded to Unicode by
    ``encoding.to_utf8_document`` (BOM, WHATWG labels, header vs prolog) and parsed by feedparser,
    whatever ``content_type`` says (a feed served as text/html is still a feed: the body decides).
    Summary and content HTML of every format are sanitised by ``sanitize.clean_html``.
    At most ``max_entries`` entries are read; more set ``warning``. Each entry link comes with the
    forms storage compares (``ParsedEntry.link_forms``). Links and the site URL lose any
    ``user:password@`` (relative links inherit the feed URL's). Links that are not http(s)
    (``javascript:``, ``mailto:``) or longer than ``urls.MAX_URL_LENGTH`` are dropped; titles are
    cut to ``text.MAX_TITLE_LENGTH``. Entity declarations are never
    expanded and external entities never resolved (feedparser drops the DTD's entity declarations;
    ``tests/test_bug_cases.py`` BL-21 proves it). Raises ``FeedParseError`` when the body is not a feed
    at all, or is broken and yields no entries; a feed that parses with recoverable errors returns
    its entries with ``warning`` set.
    """
    parsed = _parse(body, url, content_type)
    _make_storable(parsed)
    if len(parsed.entries) > max_entries:
        extra = len(parsed.entries) - max_entries
        parsed.entries = parsed.entries[:max_entries]
        note = f"{extra} entries beyond the cap of {max_entries} ignored"
        parsed.warning = f"{parsed.warning}; {note}" if parsed.warning else note
    parsed.title = clip_title(parsed.title)
    parsed.site_url = parsed.site_url and without_userinfo(parsed.site_url)
    for entry in parsed.entries:
        entry.title = clip_title(entry.title)
        entry.summary_html, entry.content_html = clean_html(entry.summary_html), clean_html(entry.content_html)
        entry.text = html_to_text(entry.content_html or entry.summary_html or "")
        if entry.link:
            link: str | None
            link = without_userinfo(entry.link)  # a private feed's credentials stay with the feed
            try:
                check_fetchable(link)
            except InvalidURL as exc:
                # javascript:, mailto:, data: … are no page to fetch, a link too long for the URL
                # columns cannot be stored, a host with an empty label cannot be resolved: the entry
                # keeps the feed's text, and the reason.
                link, entry.link_refused = None, str(exc)
            if link != entry.link:
                entry.link = link
                entry.key = entry_key(link, entry.guid, entry.title, entry.published_at, entry.summary_html)
            if link is not None:
                canonical, key, variants = link_forms(link)
                entry.link_forms = canonical, key, tuple(variants)
    return parsed


# The fields of the parse's dataclasses, read once (``dataclasses.fields`` builds them anew per call).
_FIELD_NAMES = {kind: tuple(spec.name for spec in fields(kind)) for kind in (ParsedFeed, ParsedEntry)}


def _make_storable(parsed: ParsedFeed) -> None:
    """Every string of ``parsed`` and its entries through ``text.storable`` (in place), so that no
    NUL or lone surrogate a feed carries can fail the insert of a whole poll."""
    items: list[ParsedFeed | ParsedEntry] = [parsed, *parsed.entries]
    for item in items:
        for name in _FIELD_NAMES[type(item)]:
            value = getattr(item, name)
            if isinstance(value, str):
                setattr(item, name, storable(value))
            elif isinstance(value, list):
                setattr(item, name, [storable(v) if isinstance(v, str) else v for v in value])


def _ttl(meta: feedparser.FeedParserDict) -> int | None:
    ttl = str(meta.get("ttl") or "").strip()
    if ttl.isdigit() and int(ttl) > 0:
        return int(ttl) * 60
    period = {"hourly": 3600, "daily": 86_400, "weekly": 604_800, "monthly": 2_592_000, "yearly": 31_536_000}.get(
        str(meta.get("sy_updateperiod") or "").strip().lower()
    )
    if period:
        frequency = str(meta.get("sy_updatefrequency") or "1").strip()
        return period // max(1, int(frequency)) if frequency.isdigit() else period
    return None


def _parse(body: bytes, url: str, content_type: str | None) -> ParsedFeed:
    if not body.strip():
        raise FeedParseError("not a readable feed (the response body is empty)")
    if sniff(body) == "json":
        return parse_json_feed(body, url)
    document, _codec = to_utf8_document(body, content_type)
    headers = {"content-location": url, "content-type": "application/xml; charset=utf-8"}
    # A file-like object: feedparser would otherwise try bytes as a file name, and str as a URL.
    # HTML fields are sanitised for every format alike (``sanitize.clean_html``), not by feedparser.
    result = feedparser.parse(io.BytesIO(document), response_headers=headers, sanitize_html=False, resolve_relative_uris=True)
    problem = result.get("bozo_exception")
    if isinstance(problem, feedparser.NonXMLContentType | feedparser.CharacterEncodingOverride):
        problem = None
    if not result.get("version") and not result.entries:
        reason = f"{type(problem).__name__}: {problem}" if problem else "no feed elements found"
        kind = sniff(document)
        if kind == "html":
            reason = "an HTML page, not a feed"
        raise FeedParseError(f"not a readable feed ({reason})")
    if problem is not None and not result.entries:
        raise FeedParseError(f"broken feed with no readable entries ({type(problem).__name__}: {problem})")
    meta = result.feed
    language = language_code(meta.get("language"))
    entries = [_entry(raw, language, url) for raw in result.entries]
    return ParsedFeed(
        title=_title(meta),
        site_url=meta.get("link") or None,
        language=language,
        entries=entries,
        format=result.get("version") or "unknown",
        warning=f"recovered with warnings: {type(problem).__name__}: {problem}" if problem else None,
        ttl=_ttl(meta),
    )
