"""The common shape every feed format is adapted to: ``ParsedFeed`` holding ``ParsedEntry`` items."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin

from babel import localedata
from babel.core import parse_locale

from service.errors import DocumentError
from service.ingest.feeds.dates import parse_date
from service.net.urls import InvalidURL, anchored_identity, check_fetchable

__all__ = ["FeedParseError", "ParsedEntry", "ParsedFeed", "enclosures", "entry_key", "language_code", "language_named", "parse_date", "repeated_key"]


class FeedParseError(DocumentError):
    """The document is not a feed Newsloom can read (HTML page, truncated beyond recovery, empty)."""


@dataclass
class ParsedEntry:
    """One feed entry. ``key`` identifies it within its feed (see ``entry_key``). HTML fields are as
    the feed gave them, sanitised; times are UTC."""

    key: str
    link: str | None
    guid: str | None
    title: str | None
    summary_html: str | None
    content_html: str | None
    authors: list[str] = field(default_factory=list)
    published_at: datetime | None = None
    updated_at: datetime | None = None
    language: str | None = None
    published_raw: str | None = None
    """The publication date exactly as the feed wrote it (kept when unreadable or in the future)."""
    text: str = ""
    """Plain text of ``content_html``, else of ``summary_html``: the article text when the page
    cannot be used."""
    link_refused: str | None = None
    """Why the entry's link was dropped (``urls.check_fetchable``'s reason), when it had one."""
    enclosures: list[dict] = field(default_factory=list)
    """Media files attached to the entry, ``{"url", "type", "length"}`` (see ``enclosures``)."""
    link_forms: tuple[str, str, tuple[str, ...]] | None = None
    """``urls.link_forms(link)``: the link's canonical form, dedup key and canonical variants, which
    storage compares; computed with the parse, in the worker process (None: not computed)."""


@dataclass
class ParsedFeed:
    """A parsed feed document. ``warning`` is set when the parser had to recover from an error."""

    title: str | None
    site_url: str | None
    language: str | None
    entries: list[ParsedEntry]
    format: str
    warning: str | None = None
    ttl: int | None = None
    """Seconds the feed says it may be cached (RSS 2.0 ``<ttl>`` minutes, or RSS 1.0 syndication
    module ``sy:updatePeriod``/``sy:updateFrequency``), if it says so."""


MAX_KEY_BYTES = 1024
"""Longest entry key stored as it is (UTF-8 bytes); longer keys are stored as their SHA-256."""


def entry_key(link: str | None, guid: str | None, title: str | None, published: datetime | None, summary: str | None) -> str:
    """The identity of an entry within its feed, stable across polls of an unchanged entry.

    ``guid:<GUID>`` when the entry has a GUID (a GUID that is a URL is compared without its scheme
    and with tracking parameters removed, its fragment kept, see ``urls.anchored_identity``),
    followed by `` link:<anchored_identity(link)>`` when the entry also has a link that is not the
    GUID itself: GUID and link together, as Miniflux hashes them, so that a feed reusing one GUID
    for every item (a common publisher bug) keeps every item. Fragments count: a weblog that
    posts ``day.html#a1`` and ``day.html#a2`` (Scripting News) has two items. Without a GUID,
    ``link:<anchored_identity(link)>``; with neither,
    ``sha256:<hash of title and date>`` (of the summary when neither exists), so an entry with
    neither GUID nor link is never duplicated by the next poll. A GUID that changes while the link
    stays is handled when storing (``store.store_entries``); a link that changes under the same
    GUID makes a new item. A key longer than ``MAX_KEY_BYTES`` in UTF-8 is replaced by
    ``sha256:<hash of the key>`` (it must fit a B-tree index entry on PostgreSQL, at most about
    2,700 bytes).
    """
    if guid:
        guid = guid.strip()
        identity = anchored_identity(guid) if guid.lower().startswith(("http://", "https://")) else guid
        key = "guid:" + identity
        linked = anchored_identity(link) if link else identity
        if linked != identity:
            key += " link:" + linked
    elif link:
        key = "link:" + anchored_identity(link)
    else:
        basis = f"{title or ''}|{published.isoformat() if published else ''}"
        if basis == "|":
            basis = summary or ""
        return "sha256:" + hashlib.sha256(basis.encode()).hexdigest()
    return key if len(key.encode()) <= MAX_KEY_BYTES else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def repeated_key(key: str, published: datetime | None, text: str) -> str:
    """The key of an entry that shares ``key`` with another entry of its document that is not the
    same item (other text or date: Scripting News lists two posts under one GUID and link, its
    anchors made of the minute they were written): ``key`` followed by `` at:<published, ISO 8601>``,
    else by `` text:<SHA-256 of its text>`` — what tells the posts apart, stable across polls. Over
    ``MAX_KEY_BYTES``, the SHA-256 of all that, as for ``entry_key``."""
    tail = f" at:{published.isoformat()}" if published else " text:" + hashlib.sha256(text.encode()).hexdigest()
    qualified = key + tail
    return qualified if len(qualified.encode()) <= MAX_KEY_BYTES else "sha256:" + hashlib.sha256(qualified.encode()).hexdigest()


MAX_ENCLOSURES = 20
"""Most enclosures kept per entry (a feed listing hundreds of images for one item is not media)."""


def enclosures(candidates: list[tuple[object, object, object]], base: str) -> list[dict]:
    """Enclosures as stored and served: ``{"url": str, "type": str | None, "length": int | None}``
    from ``(url, MIME type, length in bytes)`` triples as a feed gives them (RSS ``<enclosure>``,
    Atom ``link rel="enclosure"``, Media RSS ``media:content``, JSON Feed ``attachments``). URLs
    are resolved against ``base``; those that are not fetchable http(s) URLs
    (``urls.check_fetchable``) are dropped, as are repeats of one URL; a length that is not a
    positive whole number is None. At most ``MAX_ENCLOSURES``."""
    out: list[dict] = []
    seen: set[str] = set()
    for url, kind, length in candidates:
        if not isinstance(url, str) or not url.strip():
            continue
        url = urljoin(base, url.strip())
        try:
            check_fetchable(url)
        except InvalidURL:
            continue
        if url in seen:
            continue
        seen.add(url)
        size = str(length).strip() if isinstance(length, str | int) and not isinstance(length, bool) else ""
        out.append({"url": url, "type": kind.strip() or None if isinstance(kind, str) else None,
                    "length": int(size) if size.isdigit() and int(size) > 0 else None})
        if len(out) == MAX_ENCLOSURES:
            break
    return out


def language_code(code: str | None) -> str | None:
    """``en-US``/``de_DE``/``DE`` → ISO 639-1 ``en``/``de``; None for empty input."""
    if not code:
        return None
    return code.strip().split("-")[0].split("_")[0].lower()[:8] or None


def language_named(tag: str) -> str:
    """The language key articles carry (``language_code``: the primary language subtag, lower
    case) of a BCP 47 language tag (RFC 5646) as a user filters by it: ``en``, ``EN``, ``pt-BR``,
    ``zh-Hant-TW``, ``de-CH-1996``, or ``pt_BR`` as POSIX locales write it. Script, region and
    variant are ignored: an article carries its language only. Raises ``ValueError`` for text
    that is no language tag (``english``, ``en--US``; parsed by babel's ``parse_locale``) or whose
    language the Unicode CLDR does not know (``xx``; ``deu``, where BCP 47 uses ``de``)."""
    try:
        language = parse_locale(tag.strip().replace("_", "-"), sep="-")[0]
    except ValueError:
        raise ValueError(f"{tag!r} is not a BCP 47 language tag (e.g. en, pt-BR, zh-Hant-TW)") from None
    if not localedata.exists(language):
        raise ValueError(f"{tag!r}: {language!r} is no language the Unicode CLDR knows (an ISO 639 code as BCP 47 "
                         "writes it: en, de, pt-BR)")
    return language
