"""Request and response schemas of the API; tables never leave the service (``service.models``)."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

T = TypeVar("T")


class FeedCreate(BaseModel):
    """Body of ``POST /v1/feeds``."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(
        description="Absolute http(s) URL of an RSS, Atom, RDF or JSON Feed document, or of a page that links "
        'one with <link rel="alternate">.'
    )


class FeedPublic(BaseModel):
    """A subscribed feed and how its polling goes. Times are UTC (ISO 8601)."""

    id: int
    url: str
    title: str | None
    site_url: str | None
    category: str | None = Field(default=None, description="Folder path from OPML import, '/'-separated.")
    outlet: str | None = Field(description="Registrable domain of the publisher, e.g. welt.de.")
    state: str = Field(description="active, paused, failing or gone.")
    last_status: int | None = Field(description="HTTP status of the last poll.")
    last_error: str | None = Field(description="Why the last poll failed, or the parser's recovery warning.")
    consecutive_failures: int
    poll_interval: int = Field(description="Seconds between polls.")
    last_polled_at: datetime | None
    next_poll_at: datetime
    created_at: datetime
    article_count: int = Field(description="Articles seen in this feed.")


class ImportReport(BaseModel):
    """Outcome of ``POST /v1/feeds/import``."""

    added: int = Field(description="New subscriptions.")
    existing: int = Field(description="Feeds already subscribed.")
    refused: list[str] = Field(description="URLs not subscribed, each with the reason.")


class ArticleSummary(BaseModel):
    """An article as listed: everything but the full text. Times are UTC (ISO 8601)."""

    id: int
    url: str | None = Field(description="The link as first seen in a feed.")
    canonical_url: str | None = Field(description="The URL the article is stored under (rel=canonical, tracking removed).")
    feed_id: int | None = Field(description="The feed the article was first seen in.")
    outlet: str | None
    title: str | None
    summary: str | None = Field(description="The feed's summary (sanitised HTML).")
    authors: list[str]
    published_at: datetime | None = Field(
        description="UTC; a date in the future is clamped to the time it was first seen (see published_raw)."
    )
    published_raw: str | None = Field(
        default=None,
        description="The date as the feed wrote it. Set while published_at is null means the date was "
        "unreadable (unknown zone or month name) and the article sorts by first_seen_at.",
    )
    updated_at: datetime | None
    first_seen_at: datetime
    fetched_at: datetime | None = Field(description="When the page was fetched and extracted.")
    language: str | None = Field(description="ISO 639-1 code.")
    word_count: int | None
    text_source: str | None = Field(description="'page' (extracted) or 'feed' (the feed's own content).")
    extraction_status: str = Field(description="pending, ok, failed or skipped.")
    extraction_error: str | None


class ArticlePublic(ArticleSummary):
    """One article with its full text (paragraphs separated by a blank line)."""

    text: str | None


class Page(BaseModel, Generic[T]):
    """A page of a keyset-paginated list: pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None
