"""Article extraction with trafilatura: page HTML in, clean text and metadata out.

``extract_article`` is CPU-bound and runs in worker processes (``service.ingest.workers``), never on
the event loop: lxml is not safe to drive from several threads of one process.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import trafilatura

from service.ingest.text import normalize_text


class ExtractionError(Exception):
    """The page yielded no article text (empty page, not HTML, no main content found)."""


@dataclass
class ExtractedArticle:
    """What one page yields. ``text`` has paragraphs separated by blank lines; times are UTC."""

    text: str
    title: str | None = None
    authors: list[str] = field(default_factory=list)
    published_at: datetime | None = None
    language: str | None = None
    canonical_url: str | None = None
    site_name: str | None = None
    image: str | None = None
    description: str | None = None
    word_count: int = 0
    content_hash: str = ""

    def as_json(self) -> dict:
        """A JSON-ready dict with the API's field names (``published_at`` as ISO 8601 UTC)."""
        data = asdict(self)
        data["published_at"] = self.published_at.isoformat().replace("+00:00", "Z") if self.published_at else None
        return data


def content_hash(text: str) -> str:
    """SHA-256 (hex) of ``text`` lower-cased with whitespace collapsed: equal for syndicated copies
    that differ only in spacing or case."""
    return hashlib.sha256(" ".join(text.lower().split()).encode()).hexdigest()


def _parse_day(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _split_authors(value: str | None) -> list[str]:
    if not value:
        return []
    return [name.strip() for name in value.split(";") if name.strip()]


def extract_article(html: bytes | str, url: str | None = None) -> ExtractedArticle:
    """Extract the main text and metadata of one article page.

    ``html`` is the page as served (bytes are decoded by trafilatura's charset detection); ``url``
    is where it was fetched from and resolves relative links. Raises ``ExtractionError`` when no
    main text is found.
    """
    document = trafilatura.bare_extraction(
        html, url=url, with_metadata=True, include_comments=False, include_tables=True, favor_precision=False
    )
    if document is None or not (document.text or "").strip():
        raise ExtractionError("no main text found in the page")
    text = normalize_text(document.text, paragraph_per_line=True)
    return ExtractedArticle(
        text=text,
        title=normalize_text(document.title) if document.title else None,
        authors=_split_authors(document.author),
        published_at=_parse_day(document.date),
        language=document.language,
        canonical_url=document.url if document.url and document.url != url else None,
        site_name=document.sitename,
        image=document.image,
        description=document.description,
        word_count=len(text.split()),
        content_hash=content_hash(text),
    )
