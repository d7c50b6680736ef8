"""The common shape every feed format is adapted to: ``ParsedFeed`` holding ``ParsedEntry`` items."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from service.ingest.urls import canonicalize


class FeedParseError(Exception):
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
    text: str = ""
    """Plain text of ``content_html``, else of ``summary_html``: the article text when the page
    cannot be used."""


@dataclass
class ParsedFeed:
    """A parsed feed document. ``warning`` is set when the parser had to recover from an error."""

    title: str | None
    site_url: str | None
    language: str | None
    entries: list[ParsedEntry]
    format: str
    warning: str | None = None


def entry_key(link: str | None, guid: str | None, title: str | None, published: datetime | None, summary: str | None) -> str:
    """The identity of an entry within its feed: its canonical link; else ``guid:<GUID>``; else
    ``sha256:<hash of title, date and summary>``, stable across polls of an unchanged entry.

    Canonical links drop the fragment, except when the GUID is the same URL with the same fragment:
    then the fragment names the post (microblogs such as Scripting News put many posts on one page,
    ``…/26.html#a080605``) and stays part of the identity."""
    if link:
        canonical = canonicalize(link)
        fragment = urlsplit(link).fragment
        if fragment and guid and urlsplit(guid).fragment == fragment and canonicalize(guid) == canonical:
            return f"{canonical}#{fragment}"
        return canonical
    if guid:
        return f"guid:{guid}"
    digest = hashlib.sha256(f"{title}|{published}|{summary or ''}".encode()).hexdigest()
    return f"sha256:{digest}"


def language_code(code: str | None) -> str | None:
    """``en-US``/``de_DE``/``DE`` → ISO 639-1 ``en``/``de``; None for empty input."""
    if not code:
        return None
    return code.strip().split("-")[0].split("_")[0].lower()[:8] or None


def parse_date(value: str | None) -> datetime | None:
    """An RFC 3339 or RFC 822 date string as UTC; a value without a zone is taken as UTC. None if
    the value is missing or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
