"""Request and response schemas of the API; tables never leave the service (``service.models``)."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

T = TypeVar("T")


class FeedCreate(BaseModel):
    """Body of ``POST /v1/feeds``."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="Absolute http(s) URL of an RSS, Atom, RDF or JSON Feed document.")


class FeedPublic(BaseModel):
    """A subscribed feed and how its polling goes. Times are UTC (ISO 8601)."""

    id: int
    url: str
    title: str | None
    site_url: str | None
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


class ArticleSummary(BaseModel):
    """An article as listed: everything but the full text. Times are UTC (ISO 8601)."""

    id: int
    url: str | None = Field(description="The link as first seen in a feed.")
    canonical_url: str | None = Field(description="The URL the article is stored under (rel=canonical, tracking removed).")
    feed_id: int | None = Field(description="The feed the article was first seen in.")
    outlet: str | None
    title: str | None = Field(description="Headline: the feed's, else the page's (site name removed).")
    summary: str | None = Field(description="The feed's summary (sanitised HTML).")
    authors: list[str] = Field(description="Author names in byline order: the feed's, else the page's (JSON-LD, meta tags).")
    published_at: datetime | None = Field(
        description="Publication time, UTC: the page's declared time, else the feed's, else a date found in the page text."
    )
    updated_at: datetime | None = Field(description="Last modification time, UTC: the page's, else the feed's.")
    first_seen_at: datetime
    fetched_at: datetime | None = Field(description="When the page was fetched and extracted.")
    language: str | None = Field(
        description="ISO 639-1 code: identified from the text (py3langid), else the page's lang attribute, else the feed's."
    )
    language_confidence: float | None = Field(
        description="Probability (0-1) of the identified language; null when the language was declared, not identified."
    )
    site_name: str | None = Field(description="The publication's name as the page gives it (og:site_name, JSON-LD publisher).")
    image_url: str | None = Field(description="The article's lead image (og:image, JSON-LD image).")
    word_count: int | None = Field(description="Words in text.")
    text_source: str | None = Field(description="'page' (extracted) or 'feed' (the feed's own content).")
    extraction_status: str = Field(description="pending, ok, failed or skipped.")
    extraction_error: str | None = Field(
        description="Why the page's text was not used: fetch or extraction failure, or a wall "
        "('paywall: …', 'consent: …', 'script-shell: …')."
    )


class ArticlePublic(ArticleSummary):
    """One article with its full text (paragraphs separated by a blank line)."""

    text: str | None


class Page(BaseModel, Generic[T]):
    """A page of a keyset-paginated list: pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None
