"""Request and response schemas of the API; tables never leave the service (``service.models``)."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from service.net.urls import redact_password
from service.models import MAX_ID, DeliveryStatus  # noqa: F401  (the routes take MAX_ID from here with the schemas)
from service.webhooks.matching import SubscriptionFilter

T = TypeVar("T")

# Free text must not contain NUL: PostgreSQL text cannot store it.
NO_NUL = r"^[^\x00]*$"


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
    poll_interval_override: int | None = Field(
        default=None, description="Seconds between polls set with PATCH; null: adapted to how often the feed publishes."
    )
    last_polled_at: datetime | None
    next_poll_at: datetime | None = Field(description="When the next poll is due; null for paused and gone feeds.")
    created_at: datetime
    article_count: int = Field(description="Articles seen in this feed.")


class FeedUpdate(BaseModel):
    """Body of ``PATCH /v1/feeds/{id}``: only the members given change; ``null`` clears a value."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["active", "paused"] | None = Field(
        default=None, description="'paused' stops polling; 'active' resumes it (a gone or failing feed is polled again now)."
    )
    title: str | None = Field(default=None, max_length=500, pattern=NO_NUL, description="The feed's name; null: the feed's own.")
    category: str | None = Field(default=None, max_length=500, pattern=NO_NUL, description="Folder path, '/'-separated.")
    poll_interval: int | None = Field(
        default=None, ge=60, le=604_800,
        description="Seconds between polls (60 s to 7 days), replacing the adaptive interval; null: adaptive again.",
    )


class ImportReport(BaseModel):
    """Outcome of ``POST /v1/feeds/import``."""

    added: int = Field(description="New subscriptions.")
    existing: int = Field(description="Feeds already subscribed.")
    refused: list[str] = Field(description="URLs not subscribed, each with the reason.")


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
    feed_id: int | None = Field(description="The feed the article was first seen in.")
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
    word_count: int | None = Field(description="Words in text.")
    text_source: str | None = Field(description="'page' (extracted) or 'feed' (the feed's own content).")
    extraction_status: str = Field(description="pending, ok, failed or skipped.")
    extraction_error: str | None = Field(
        description="Why the page gave no text: fetch or extraction failure ('page: HTTP 404', 'extraction: "
        "script-shell: …'), or a wall with no text anywhere ('paywall: …; no text on the page or in the feed')."
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

    @classmethod
    def from_row(cls, article, outlet: str | None, cites: list | None = None):
        """Build from an ``Article`` row, its outlet's domain and its citations (``CitationPublic``)."""
        data = article.model_dump(exclude={"extraction_status"})
        extra = {"extraction_status": str(article.extraction_status), "outlet": outlet, "cites": cites or []}
        return cls.model_validate({**data, **extra})


class FailurePublic(BaseModel):
    """Failures of one pipeline stage on this article (``service.failures``)."""

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


class Page(BaseModel, Generic[T]):
    """A page of a keyset-paginated list: pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None


EventType = Literal["article.created", "story.created", "story.updated", "story.merged"]


class SubscriptionCreate(BaseModel):
    """Body of ``POST /v1/subscriptions``."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="The endpoint that receives signed POSTs (https recommended).")
    event_types: list[EventType] = Field(min_length=1, description="Events to receive.")
    filter: SubscriptionFilter = Field(default_factory=SubscriptionFilter)
    description: str | None = Field(default=None, max_length=500, pattern=NO_NUL)


class SubscriptionUpdate(BaseModel):
    """Body of ``PATCH /v1/subscriptions/{id}``: only the fields given change. Setting ``state`` to
    ``active`` re-enables a disabled subscription (its dead deliveries stay dead; retry them one by one)."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl | None = None
    event_types: list[EventType] | None = Field(default=None, min_length=1)
    filter: SubscriptionFilter | None = None
    description: str | None = Field(default=None, max_length=500, pattern=NO_NUL)
    state: Literal["active", "disabled"] | None = None


class SubscriptionPublic(BaseModel):
    """A webhook subscription (the secret is shown only at creation and rotation)."""

    id: int
    url: str
    description: str | None
    event_types: list[str]
    filter: SubscriptionFilter
    state: str = Field(description="active or disabled.")
    disabled_reason: str | None
    failing_since: datetime | None = Field(description="Start of the current run of failed deliveries.")
    previous_secret_expires_at: datetime | None = Field(description="Until when the previous secret still signs.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, subscription, *, credentials: bool = True) -> SubscriptionPublic:
        """Build from a ``Subscription`` row; without ``credentials`` a password in its URL shows as ``***``."""
        data = subscription.model_dump(exclude={"state", "secret", "previous_secret"})
        if not credentials:
            data["url"] = redact_password(subscription.url)
            data["disabled_reason"] = data.get("disabled_reason") and redact_password(data["disabled_reason"])
        return cls.model_validate({**data, "state": str(subscription.state)})


class SubscriptionSecret(SubscriptionPublic):
    """A subscription with its signing secret, returned once at creation and at each rotation."""

    secret: str = Field(description="whsec_… secret: verify each delivery's webhook-signature with it.")


class DeliveryPublic(BaseModel):
    """One event for one subscription and how its delivery went."""

    id: int
    subscription_id: int
    event_id: str = Field(description="The webhook-id header, the same on every attempt.")
    event_type: str
    status: str = Field(description="pending, succeeded, failed or dead.")
    attempts: int
    next_attempt_at: datetime | None = Field(description="When the next attempt is due; null unless pending.")
    last_attempt_at: datetime | None
    last_response_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def from_row(cls, delivery) -> DeliveryPublic:
        data = delivery.model_dump(exclude={"status", "payload"})
        if delivery.status != DeliveryStatus.pending:  # dead and failed deliveries are retried only on request
            data["next_attempt_at"] = None
        return cls.model_validate({**data, "status": str(delivery.status)})


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
