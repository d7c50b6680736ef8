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
    title: str | None
    summary: str | None = Field(description="The feed's summary (sanitised HTML).")
    authors: list[str]
    published_at: datetime | None
    updated_at: datetime | None
    first_seen_at: datetime
    fetched_at: datetime | None = Field(description="When the page was fetched and extracted.")
    language: str | None = Field(description="ISO 639-1 code.")
    word_count: int | None
    text_source: str | None = Field(description="'page' (extracted) or 'feed' (the feed's own content).")
    extraction_status: str = Field(description="pending, ok, failed or skipped.")
    extraction_error: str | None
    # Story linking (service.stories).
    story_id: int | None = Field(default=None, description="The story the article belongs to (null until linked).")
    duplicate_of: int | None = Field(default=None, description="The first copy of this text (syndicated or lightly edited).")
    similarity: float | None = Field(
        default=None, description="Jaccard similarity to duplicate_of, else the score with which it joined its story."
    )
    cites: list[CitationPublic] = Field(default_factory=list, description="Outlets this article attributes its report to.")


class ArticlePublic(ArticleSummary):
    """One article with its full text (paragraphs separated by a blank line)."""

    text: str | None


class Page(BaseModel, Generic[T]):
    """A page of a keyset-paginated list: pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None


class CitationPublic(BaseModel):
    """An outlet an article attributes its report to ("Bloomberg reported …")."""

    name: str = Field(description="The name as the article writes it.")
    outlet: str | None = Field(description="The cited outlet's domain, when it is an outlet we know.")
    article_id: int | None = Field(description="The cited outlet's article in the same story, when we have it.")


class StoryArticle(BaseModel):
    """An article as part of a story."""

    id: int
    title: str | None
    url: str | None
    outlet: str | None
    language: str | None
    published_at: datetime | None
    first_seen_at: datetime
    duplicate_of: int | None
    similarity: float | None


class CitationEdge(BaseModel):
    """Attribution inside a story: ``article_id`` (of ``outlet``) says ``cited_outlet`` reported it."""

    article_id: int
    outlet: str | None
    cited_name: str
    cited_outlet: str | None
    cited_article_id: int | None


class StorySummary(BaseModel):
    """A story: articles of several outlets (and languages) reporting one event. Times are UTC."""

    id: int
    title: str | None = Field(description="The title of the first report.")
    first_seen_at: datetime = Field(description="Publication (else first-seen) time of the first report.")
    last_updated_at: datetime = Field(description="When an article last joined the story.")
    article_count: int
    outlet_count: int
    languages: list[str]
    outlets: list[str] = Field(description="Domains of the outlets reporting it.")


class StoryPublic(StorySummary):
    """One story with its articles (by publication time), who reported first and who cites whom."""

    first_reported: StoryArticle | None
    articles: list[StoryArticle]
    citations: list[CitationEdge]


ArticleSummary.model_rebuild()
ArticlePublic.model_rebuild()
