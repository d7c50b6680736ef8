"""JSON Feed 1.0/1.1 (https://www.jsonfeed.org/version/1.1/) and RSS-in-JSON
(http://scripting.com/rss.json shape) adapted to ``ParsedFeed``. feedparser 6 reads neither."""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import urljoin

from service.ingest.feeds.entries import (
    FeedParseError,
    ParsedEntry,
    ParsedFeed,
    enclosures,
    entry_key,
    language_code,
    parse_date,
)
from service.ingest.feeds.sanitize import plain_title
from service.ingest.text import storable


def _str(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _title(value: str | None) -> str | None:
    """A title as plain text (``sanitize.plain_title``). JSON Feed titles are plain text, yet
    publishers (WordPress's JSON feeds) write HTML in them: character references
    (``&#8216;Jokes&#8217;``, ``&amp;``) decoded, tags dropped."""
    return plain_title(value)


def _text_html(value: Any) -> str | None:
    """JSON Feed ``content_text`` (plain text) as HTML: escaped, so ``a < b`` stays text."""
    text = _str(value)
    return html.escape(text, quote=False) if text else None


def _names(value: Any) -> list[str]:
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return []
    return [n for n in (_str(a.get("name")) for a in value if isinstance(a, dict)) if n]


def _links(item: dict, base: str) -> tuple[str | None, str | None]:
    """``(permalink, article link)`` of a JSON Feed item, resolved against ``base``. JSON Feed 1.1
    (§items): ``url`` is the item's permalink, ``external_url`` "the thing you're talking about"
    (a link blog's linked article). The article is the linked page when there is one, as Atom's
    ``rel="alternate"`` of the same post (Daring Fireball publishes both formats), so one post read
    from both formats is one article; the entry key stays the permalink's (the item's identity,
    unchanged for items stored before external_url was read)."""
    permalink, external = _str(item.get("url")), _str(item.get("external_url"))
    permalink = urljoin(base, permalink) if permalink else None
    external = urljoin(base, external) if external else None
    return permalink or external, external or permalink


def _json_feed(doc: dict, base: str) -> ParsedFeed:
    language = language_code(_str(doc.get("language")))
    feed_authors = _names(doc.get("authors") or doc.get("author"))
    entries = []
    for item in doc.get("items") or []:
        if not isinstance(item, dict):
            continue
        permalink, link = _links(item, base)
        guid = _str(str(item["id"])) if item.get("id") is not None else None
        title = _str(item.get("title"))
        published = parse_date(_str(item.get("date_published")))
        summary = _str(item.get("summary"))
        content = _str(item.get("content_html")) or _text_html(item.get("content_text"))
        entries.append(ParsedEntry(
            key=entry_key(permalink, guid, title, published, summary or content),
            link=link, guid=guid, title=_title(title), summary_html=summary, content_html=content,
            authors=_names(item.get("authors") or item.get("author")) or feed_authors,
            published_at=published, updated_at=parse_date(_str(item.get("date_modified"))),
            language=language_code(_str(item.get("language"))) or language,
            enclosures=enclosures([(a.get("url"), a.get("mime_type"), a.get("size_in_bytes"))
                                   for a in item.get("attachments") or [] if isinstance(a, dict)], base),
        ))
    return ParsedFeed(title=_title(_str(doc.get("title"))), site_url=_str(doc.get("home_page_url")), language=language,
                      entries=entries, format="json" + str(doc.get("version", "")).rsplit("/", 1)[-1])


def _rss_in_json(doc: dict, base: str) -> ParsedFeed:
    channel = doc["rss"].get("channel") or {}
    language = language_code(_str(channel.get("language")))
    items = channel.get("item") or []
    entries = []
    for item in items if isinstance(items, list) else [items]:
        if not isinstance(item, dict):
            continue
        link = _str(item.get("link"))
        link = urljoin(base, link) if link else None
        guid_value = item.get("guid")
        guid = _str(guid_value.get("#value") or guid_value.get("value")) if isinstance(guid_value, dict) else _str(guid_value)
        title = _str(item.get("title"))
        published = parse_date(_str(item.get("pubDate")))
        description = _str(item.get("description"))
        entries.append(ParsedEntry(
            key=entry_key(link, guid, title, published, description),
            link=link, guid=guid, title=_title(title), summary_html=description, content_html=None,
            published_at=published, language=language,
            enclosures=enclosures([(e.get("url"), e.get("type"), e.get("length"))
                                   for e in ([item["enclosure"]] if isinstance(item.get("enclosure"), dict) else [])], base),
        ))
    return ParsedFeed(title=_title(_str(channel.get("title"))), site_url=_str(channel.get("link")), language=language,
                      entries=entries, format="rss-in-json")


def parse_json_feed(body: bytes, url: str) -> ParsedFeed:
    """Parse a JSON Feed or RSS-in-JSON document fetched from ``url``.

    Relative item URLs are resolved against ``url``. Raises ``FeedParseError`` for invalid JSON
    (for example a truncated download) or JSON that is neither format.
    """
    try:
        doc = _storable(json.loads(body.decode("utf-8-sig")))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedParseError(f"invalid JSON feed: {exc}") from exc
    if isinstance(doc, dict) and isinstance(doc.get("rss"), dict):
        return _rss_in_json(doc, url)
    if isinstance(doc, dict) and _is_json_feed(doc):
        return _json_feed(doc, url)
    raise FeedParseError("JSON document is not a JSON Feed (no items list with a JSON Feed version or JSON Feed items)")


_ITEM_FIELDS = ("id", "url", "content_html", "content_text", "title")


def _is_json_feed(doc: dict) -> bool:
    """A JSON Feed (https://jsonfeed.org/version/1.1) has an ``items`` list and a ``version`` URL.
    Real feeds sometimes leave the version out, so without it the items must look like JSON Feed
    items (objects with an id, url, title or content)."""
    items = doc.get("items")
    if not isinstance(items, list):
        return False
    if "jsonfeed.org" in str(doc.get("version", "")):
        return True
    return any(isinstance(item, dict) and any(name in item for name in _ITEM_FIELDS) for item in items)


def _storable(value: Any) -> Any:
    """``value`` (decoded JSON) with every string through ``text.storable``: a ``"\\ud800"``
    escape decodes to a lone surrogate, which cannot be UTF-8 encoded (keys, storage)."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): _storable(item) for key, item in value.items()}
    return value
