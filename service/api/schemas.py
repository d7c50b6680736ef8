"""Request and response schemas of the API; tables never leave the service (``service.models``)."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from service.models import MAX_ID, DeliveryStatus  # noqa: F401  (the routes take MAX_ID from here with the schemas)
from service.net.urls import redact_password
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
    pages_pending: int = Field(description="Articles of this feed whose page is still to be fetched and extracted "
                               "(one host's pages are fetched NEWSLOOM_HOST_MIN_GAP seconds apart; 0 when all are in).")


class FeedUpdate(BaseModel):
    """Body of ``PATCH /v1/feeds/{id}``: only the members given change; ``null`` clears a value (a
    blank ``title`` or ``category`` is a 422)."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["active", "paused"] | None = Field(
        default=None, description="'paused' stops polling; 'active' resumes it (a gone or failing feed is polled again now)."
    )
    title: str | None = Field(default=None, max_length=500, pattern=NO_NUL, description="The feed's name; null: the feed's own (from its next poll or refresh).")
    category: str | None = Field(default=None, max_length=500, pattern=NO_NUL, description="Folder path, '/'-separated.")
    poll_interval: int | None = Field(
        default=None, ge=60, le=604_800,
        description="Seconds between polls (60 s to 7 days), replacing the adaptive interval; null: adaptive again.",
    )

    @field_validator("title", "category")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        """A blank name or folder is refused (422): ``null`` is how a user clears either."""
        if value is not None and not value.strip():
            raise ValueError("must not be blank: send null to clear it")
        return value


class ImportedOutline(BaseModel):
    """What ``POST /v1/feeds/import`` did with one outline of the OPML document."""

    url: str = Field(description="The outline's xmlUrl.")
    status: Literal["added", "existing", "refused"] = Field(description="Subscribed now, already subscribed, or refused.")
    feed_id: int | None = Field(description="The subscription (added or existing); null when refused.")
    reason: str | None = Field(description="Why it was refused; null otherwise.")
    credentials_updated: bool = Field(default=False, description=(
        "An existing feed whose URL in the document carries another password (user:password@): the feed is fetched "
        "with the document's from now on. A URL without a password, or with the *** of a read key's export, changes nothing."))


class ImportReport(BaseModel):
    """Outcome of ``POST /v1/feeds/import`` when at least one feed is subscribed (added or existing);
    when none is, the answer is a 422 problem with the same ``refused`` and ``outlines`` members."""

    added: int = Field(description="New subscriptions.")
    existing: int = Field(description="Feeds already subscribed.")
    refused: list[str] = Field(description="URLs not subscribed, each with the reason.")
    outlines: list[ImportedOutline] = Field(description="Each outline with a feed URL, in document order, with its outcome.")


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
        return cls.model_validate({**data, "state": str(subscription.state), "filter": SubscriptionFilter.stored(subscription.filter)})


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
