"""What article extraction yields: ``ExtractedArticle``, ``ExtractionError`` and ``content_hash``.

Kept apart from ``service.ingest.pages.extractor`` (trafilatura, lxml, htmldate) so that the service's
main process, which stores extraction results and receives them from the worker processes (their
classes are imported there when they are unpickled), does not load the extraction stack.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime

from service.errors import DocumentError


class ExtractionError(DocumentError):
    """The page yielded no article text (empty page, not HTML, no main content found)."""


@dataclass
class ExtractedArticle:
    """What one page yields. ``text`` has paragraphs separated by blank lines; times are UTC;
    ``language`` is ISO 639-1 with ``language_confidence`` the identifier's probability (None when
    the language was taken from the page's ``lang`` declaration); ``published_guessed`` is True when
    ``published_at`` comes from htmldate's search, not the page's markup. ``access`` is ``free``,
    ``paywall`` or ``consent`` with ``access_reason`` the signal that fired (``walls.detect_wall``);
    behind a wall ``text`` is the page's teaser without the wall's wording (may be empty).
    ``feed_text``/``feed_text_complete`` are set by ``extract_page`` behind a wall."""

    text: str
    title: str | None = None
    authors: list[str] = field(default_factory=list)
    published_at: datetime | None = None
    published_guessed: bool = False
    updated_at: datetime | None = None
    language: str | None = None
    language_confidence: float | None = None
    canonical_url: str | None = None
    site_name: str | None = None
    image: str | None = None
    description: str | None = None
    word_count: int = 0
    content_hash: str = ""
    access: str = "free"
    access_reason: str | None = None
    feed_text: str | None = None
    feed_text_complete: bool = False

    def as_json(self) -> dict:
        """A JSON-ready dict with the API's article field names: ``text``, ``title``, ``authors``
        (list), ``published_at``/``updated_at`` (ISO 8601 UTC with ``Z``), ``language``,
        ``language_confidence``, ``canonical_url``, ``site_name``, ``image_url``, ``word_count``,
        ``extraction_status`` (``ok``: a page without text raises instead), ``access`` and
        ``access_reason``, plus ``description`` and ``content_hash``."""
        data = asdict(self)
        for name in ("published_at", "updated_at"):
            value = getattr(self, name)
            data[name] = value.isoformat().replace("+00:00", "Z") if value else None
        data["image_url"] = data.pop("image")
        data.pop("published_guessed")
        data.pop("feed_text")
        data.pop("feed_text_complete")
        data["extraction_status"] = "ok"
        return data


def content_hash(text: str) -> str:
    """SHA-256 (hex) of ``text`` lower-cased with whitespace collapsed: equal for syndicated copies
    that differ only in spacing or case."""
    return hashlib.sha256(" ".join(text.lower().split()).encode()).hexdigest()
