"""The public shapes of articles, stories and citations: what ``/v1/articles`` and ``/v1/stories``
answer and what webhook events carry (an event holds the article or story exactly as the API
returns it). Below both ``service.api`` and ``service.webhooks``, so neither imports the other for
them; ``service.views`` builds them from rows."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class EnclosurePublic(BaseModel):
    """A media file attached to a feed entry (RSS ``<enclosure>``, Atom ``link rel="enclosure"``,
    JSON Feed ``attachments``, Media RSS ``media:content``)."""

    url: str
    type: str | None = Field(default=None, description="MIME type as the feed declares it, e.g. 'audio/mpeg'.")
    length: int | None = Field(default=None, description="Size in bytes as the feed declares it.")


class ArticleSummary(BaseModel):
    """An article as listed: everything but the full text. Times are UTC (ISO 8601)."""

    id: int
    url: str | None = Field(description="The link as first seen in a feed.")
    canonical_url: str | None = Field(description="The URL the article is stored under (rel=canonical, tracking removed).")
    feed_id: int | None = Field(description="The feed the article was first seen in; when that feed is unsubscribed, the remaining "
                                 "feed that listed it first; null when no subscribed feed lists it.")
    outlet: str | None
    title: str | None = Field(description="Headline: the feed's, else the page's (site name removed).")
    summary: str | None = Field(description="The feed's summary (sanitised HTML).")
    authors: list[str] = Field(description="Author names in byline order: the feed's, else the page's (JSON-LD, meta tags).")
    published_at: datetime | None = Field(
        description="Publication time, UTC: the page's declared time, else the feed's, else a date found in the page "
        "text. A date in the future is clamped to the time it was first seen (see published_raw)."
    )
    published_raw: str | None = Field(
        default=None,
        description="The date as the feed wrote it. Set while published_at is null means the date was "
        "unreadable (unknown zone or month name) and the article sorts by first_seen_at.",
    )
    updated_at: datetime | None = Field(description="Last modification time, UTC: the page's, else the feed's.")
    first_seen_at: datetime
    fetched_at: datetime | None = Field(description="When the page was fetched and extracted.")
    language: str | None = Field(
        description="ISO 639-1 code: identified from the text (fastText's lid.176 model), else the page's lang attribute, else the feed's."
    )
    language_confidence: float | None = Field(
        description="Probability (0-1) of the identified language; null when the language was declared, not identified."
    )
    site_name: str | None = Field(description="The publication's name as the page gives it (og:site_name, JSON-LD publisher).")
    image_url: str | None = Field(description="The article's lead image (og:image, JSON-LD image).")
    word_count: int | None = Field(description="Words in text (each Chinese character or Japanese kana counts as one; other scripts by their spaces).")
    text_source: str | None = Field(description="'page' (extracted) or 'feed' (the feed's own content).")
    extraction_status: str = Field(description="pending, ok, failed or skipped.")
    extraction_error: str | None = Field(
        description="With extraction_status 'pending': the last attempt's error, the page to be tried again at next_fetch_at "
        "(null before a first attempt failed); 'failed': why the page gave no text, for good — a fetch or extraction failure "
        "('page: HTTP 404', 'extraction: script-shell: …') or a wall with no text anywhere ('paywall: …; no text on the page "
        "or in the feed'); 'skipped': why the page is not fetched; null when 'ok'."
    )
    fetch_failures: int = Field(default=0, description="Attempts to fetch and extract the page that failed so far; the page is "
                                "given up ('failed') after NEWSLOOM_PAGE_MAX_ATTEMPTS.")
    next_fetch_at: datetime | None = Field(
        default=None, description="While extraction_status is 'pending': when the page is (tried again) due; null otherwise."
    )
    access: str | None = Field(
        default=None,
        description="'free', 'paywall' or 'consent' once the page was read (null before): a flag, the text is kept "
        "(the page's teaser or the feed's content, see text_source).",
    )
    access_reason: str | None = Field(default=None, description="The wall signal that fired, e.g. 'schema.org "
                                      "isAccessibleForFree is false and the free text is short'.")
    enclosures: list[EnclosurePublic] = Field(
        default_factory=list, description="The feed entry's enclosures (podcast audio, video, images)."
    )
    # Story linking (service.stories).
    story_id: int | None = Field(default=None, description="The story the article belongs to (null until linked).")
    duplicate_of: int | None = Field(default=None, description="The first copy of this text (syndicated or lightly edited).")
    similarity: float | None = Field(
        default=None,
        description="Estimated Jaccard similarity (0..1) to duplicate_of, else the score (0..1) with which it joined its "
        "story; null for an article that started a story: the first report, or the first article of a story merged "
        "into this one later (``story.merged``).",
    )
    cites: list[CitationPublic] = Field(default_factory=list, description="Outlets this article attributes its report to.")


class FailurePublic(BaseModel):
    """Failures of one pipeline stage on this article (``service.storage.failures``)."""

    stage: str = Field(description="'link' (story linking).")
    count: int = Field(description="Failures in a row with this error.")
    error: str | None = Field(description="The last error: exception type and message.")
    given_up_at: datetime | None = Field(description="When the stage gave the article up (it then moves on without it).")


class ArticlePublic(ArticleSummary):
    """One article with its full text (paragraphs separated by a blank line)."""

    text: str | None
    failures: list[FailurePublic] = Field(
        default_factory=list, description="Stages that failed on this article; a given-up stage is not retried."
    )


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
