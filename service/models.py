"""Database tables (SQLModel). Alembic owns the schema: change a table here, then add a migration.

Tables are internal; the API answers with the schemas in ``service.api.schemas``. All times are
timezone-aware UTC (``UTCDateTime`` restores the zone SQLite drops).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

# Largest id the API accepts: ids are 32-bit integers on PostgreSQL (``serial``); larger values in a
# request are refused with 422 before they reach the database.
MAX_ID = 2**31 - 1


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def empty_list() -> list:
    """A new empty list: the ``default_factory`` of list columns. Pydantic inspects a factory's
    signature every time it calls it (``takes_validated_data_argument``); for the builtin ``list``
    or ``dict`` that means parsing their text signature, about 150 µs a field and model built
    (a new ``Story`` took 740 µs, 136 µs of it the model itself), for a Python function 15 µs."""
    return []


def empty_dict() -> dict:
    """A new empty dict: the ``default_factory`` of dict columns (see ``empty_list``)."""
    return {}


def table_of(model: type) -> sa.Table:
    """The ``sa.Table`` of a ``table=True`` model, for Core statements (no ORM synchronisation)."""
    return model.__table__  # type: ignore[attr-defined]  # set by SQLAlchemy; SQLModel does not declare it


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: sa.Dialect):
        """On SQLite, write the text SQLAlchemy's ``DATETIME`` writes (``2025-01-01
        10:11:12.123456``, UTC) with one call, ``_write_sqlite_utc``, instead of three
        (``process_bind_param``, SQLAlchemy's wrapper and its formatting): storing a feed document
        binds five timestamps per new article. Elsewhere ``process_bind_param``, then the driver."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _write_sqlite_utc

    def result_processor(self, dialect: sa.Dialect, coltype: object):
        """On SQLite, read the stored text (``2025-01-01 10:11:12.123456``, as SQLAlchemy writes it,
        UTC) with ``datetime.fromisoformat``, the zone appended to the text, instead of SQLAlchemy's
        regular expression and ``replace(tzinfo=…)``: 0.3 against 0.9 µs a value, and a list page
        reads several per article. asyncpg's datetime as it comes: it gives ``timestamptz`` values
        in UTC (``datetime.UTC``), whatever the session's time zone. Elsewhere the driver's
        datetime, as ``process_result_value``."""
        if dialect.driver == "asyncpg":
            return None
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        return _read_sqlite_utc


def _write_sqlite_utc(value: datetime | None) -> str | None:
    """A timezone-aware moment as SQLite stores it (UTC, no zone); raises ``ValueError`` for a
    naive one."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:-6]  # without "+00:00"


def _read_sqlite_utc(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value + "+00:00")


def _ts(*, index: bool = False, nullable: bool = True) -> sa.Column:
    return sa.Column(UTCDateTime(), index=index, nullable=nullable)


class FeedState(enum.StrEnum):
    """Lifecycle of a feed: polled while ``active`` or ``failing``; ``paused`` and ``gone`` are not polled."""

    active = "active"
    paused = "paused"
    failing = "failing"
    gone = "gone"


class ExtractionStatus(enum.StrEnum):
    """Where an article's text came from: ``pending`` (page not fetched yet), ``ok`` (the page was read:
    its text, or behind a wall the best of its teaser and the feed's text), ``failed`` (page unusable:
    the feed's own content is kept as text, reason recorded),
    ``skipped`` (no page to fetch)."""

    pending = "pending"
    ok = "ok"
    failed = "failed"
    skipped = "skipped"


class Outlet(SQLModel, table=True):
    """A publisher, keyed by registrable domain (``welt.de``)."""

    __tablename__ = "outlets"

    # Primary keys are typed ``int``, as code reads them (after the INSERT that assigns them; the
    # ``Mapped[int]`` convention of SQLAlchemy's own declarative models); None only before a flush.
    id: int = Field(default=None, primary_key=True)
    domain: str = Field(sa_column=sa.Column(sa.String(255), unique=True, nullable=False))
    name: str | None = None
    language: str | None = Field(default=None, max_length=8)
    country: str | None = Field(default=None, max_length=8)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class Feed(SQLModel, table=True):
    """A subscribed feed document and its polling bookkeeping (conditional GET validators, lease)."""

    __tablename__ = "feeds"
    # sqlite_autoincrement: SQLite never gives a deleted feed's id again (migration 0014), as for stories and subscriptions.
    __table_args__ = (sa.Index("ux_feeds_url_key", "url_key", unique=True), {"sqlite_autoincrement": True})

    id: int = Field(default=None, primary_key=True)
    url: str = Field(sa_column=sa.Column(sa.String(2048), unique=True, nullable=False))
    url_key: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(2048)),
        description="url without user:password@ (storage.feeds sets it with url): unique, so one feed is subscribed "
        "once whatever credentials a URL carries, even by two transactions at once; null only for a feed that "
        "already shared its key when migration 0012 ran",
    )
    title: str | None = None
    category: str | None = Field(default=None, description="OPML folder path, '/'-separated")
    site_url: str | None = None
    outlet_id: int | None = Field(default=None, foreign_key="outlets.id", ondelete="SET NULL")
    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = Field(default=None, description="SHA-256 of the last feed body parsed (skips unchanged 200s)")
    poll_interval: int = Field(default=900, description="seconds")
    poll_interval_override: int | None = Field(
        default=None, description="seconds between polls set by the user; replaces the adaptive interval when set"
    )
    next_poll_at: datetime = Field(default_factory=utcnow, sa_column=_ts(index=True, nullable=False))
    last_polled_at: datetime | None = Field(default=None, sa_column=_ts())
    last_status: int | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    state: FeedState = Field(default=FeedState.active, sa_column=sa.Column(sa.String(16), nullable=False))
    lease_owner: str | None = None
    lease_until: datetime | None = Field(default=None, sa_column=_ts())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))

    def next_poll(self) -> datetime | None:
        """When the feed is polled next (UTC): ``next_poll_at``, or None for a paused or gone feed,
        which is not polled until resumed."""
        return None if self.state in (FeedState.paused, FeedState.gone) else self.next_poll_at


class Article(SQLModel, table=True):
    """One article, stored once however many feeds and URLs it was seen under (see ``Entry``)."""

    __tablename__ = "articles"
    __table_args__ = (
        sa.Index("ix_articles_sort", "sort_at", "id"),
        sa.Index("ix_articles_page_queue", "extraction_status", "next_fetch_at"),
        sa.Index("ix_articles_host_queue", "extraction_status", "host", "next_fetch_at", "id"),
        sa.Index("ix_articles_language_sort", "language", "sort_at", "id"),
    )

    id: int = Field(default=None, primary_key=True)
    canonical_url: str | None = Field(default=None, sa_column=sa.Column(sa.String(2048), unique=True))
    url_key: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(2048), unique=True),
        description="dedup key of the feed link (urls.dedup_key): scheme, trailing slash and AMP variants collide; "
                    "for an entry sharing its page with others of its document, the page's key with #fragment or a "
                    "space and the entry key (articles.store_entries)",
    )
    url: str | None = Field(default=None, description="the link as first seen in a feed")
    host: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(255)),
        description="the politeness key of ``url`` (``net.hosts.host_key``), written with it: a page claim takes "
                    "the first due page of each host from the index ix_articles_host_queue (``leases.firsts_query``)",
    )
    feed_id: int | None = Field(default=None, foreign_key="feeds.id", ondelete="SET NULL", index=True)
    outlet_id: int | None = Field(default=None, foreign_key="outlets.id", ondelete="SET NULL")
    guid: str | None = None
    title: str | None = None
    summary: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    feed_content: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    text: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    text_source: str | None = Field(default=None, description="'page' or 'feed'")
    authors: list[str] = Field(default_factory=empty_list, sa_column=sa.Column(JSON, nullable=False))
    published_at: datetime | None = Field(default=None, sa_column=_ts())
    published_raw: str | None = Field(
        default=None, description="the feed's date text as written: kept when unreadable or clamped from the future"
    )
    updated_at: datetime | None = Field(default=None, sa_column=_ts())
    first_seen_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    fetched_at: datetime | None = Field(default=None, sa_column=_ts())
    sort_at: datetime = Field(
        default_factory=utcnow, sa_column=_ts(nullable=False), description="published_at, else first_seen_at"
    )
    language: str | None = Field(default=None, max_length=8)
    language_confidence: float | None = Field(
        default=None, description="language identifier's probability; None when the language was declared, not identified"
    )
    site_name: str | None = None
    image_url: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    word_count: int | None = None
    content_hash: str | None = Field(default=None, index=True)
    extraction_status: ExtractionStatus = Field(
        default=ExtractionStatus.pending, sa_column=sa.Column(sa.String(16), nullable=False)
    )
    extraction_error: str | None = None
    access: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(16)),
        description="'free', 'paywall' or 'consent' (``walls.Wall``) once the page was read; a flag, never a reason to drop text",
    )
    access_reason: str | None = Field(default=None, description="which wall signal fired")
    enclosures: list[dict] = Field(
        default_factory=empty_list, sa_column=sa.Column(JSON, nullable=False, server_default="[]"),
        description="the entry's enclosures (podcast audio, video, images): url, type, length (bytes)",
    )
    backlog: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false()),
        description="first seen on its feed's first fetch: without a date it is not news to any subscriber",
    )
    fetch_attempts: int = 0
    next_fetch_at: datetime | None = Field(default=None, sa_column=_ts())
    lease_owner: str | None = None
    lease_until: datetime | None = Field(default=None, sa_column=_ts())
    # Story linking (issue 5; migration 0004): see ``service.stories``.
    story_id: int | None = Field(default=None, foreign_key="stories.id", ondelete="SET NULL", index=True)
    duplicate_of: int | None = Field(default=None, foreign_key="articles.id", ondelete="SET NULL", index=True)
    similarity: float | None = Field(default=None, description="to duplicate_of (Jaccard) or to the story (score)")
    minhash: list[int] | None = Field(default=None, sa_column=sa.Column(JSON))
    linked_at: datetime | None = Field(default=None, sa_column=_ts(index=True))
    link_lease_until: datetime | None = Field(default=None, sa_column=_ts())


class Entry(SQLModel, table=True):
    """A feed entry as seen in one feed: its identity in that feed and the article it maps to."""

    __tablename__ = "entries"
    __table_args__ = (
        sa.UniqueConstraint("feed_id", "entry_key", name="uq_entries_feed_key"),
        sa.Index("ix_entries_feed_article", "feed_id", "article_id"),
        sa.Index("ix_entries_feed_sort", "feed_id", "sort_at", "article_id"),
    )

    id: int = Field(default=None, primary_key=True)
    feed_id: int = Field(foreign_key="feeds.id", ondelete="CASCADE")
    entry_key: str = Field(sa_column=sa.Column(sa.String(2048), nullable=False))
    guid: str | None = None
    link: str | None = None
    article_id: int = Field(foreign_key="articles.id", ondelete="CASCADE", index=True)
    first_seen_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    sort_at: datetime | None = Field(
        default=None, sa_column=_ts(),
        description="the article's sort_at, copied and kept equal by the database (migration 0010's triggers): a feed's "
        "articles newest first from the index ix_entries_feed_sort; never written by the code",
    )


class SubscriptionState(enum.StrEnum):
    """``active`` subscriptions receive deliveries; ``disabled`` ones do not (``disabled_reason`` says why)."""

    active = "active"
    disabled = "disabled"


class DeliveryStatus(enum.StrEnum):
    """``pending`` (due at ``next_attempt_at``), ``succeeded`` (a 2xx was received), ``failed``
    (every scheduled attempt failed), ``dead`` (its subscription was disabled first)."""

    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"
    dead = "dead"


class Subscription(SQLModel, table=True):
    """A webhook endpoint, the events it wants and the filter they must match."""

    __tablename__ = "subscriptions"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int = Field(default=None, primary_key=True)
    url: str = Field(sa_column=sa.Column(sa.String(2048), nullable=False))
    description: str | None = None
    secret: str = Field(description="whsec_… signing secret (Standard Webhooks)")
    previous_secret: str | None = None
    previous_secret_expires_at: datetime | None = Field(default=None, sa_column=_ts())
    event_types: list[str] = Field(default_factory=empty_list, sa_column=sa.Column(JSON, nullable=False))
    filter: dict = Field(default_factory=empty_dict, sa_column=sa.Column(JSON, nullable=False))
    state: SubscriptionState = Field(default=SubscriptionState.active, sa_column=sa.Column(sa.String(16), nullable=False))
    disabled_reason: str | None = None
    failing_since: datetime | None = Field(default=None, sa_column=_ts())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class Delivery(SQLModel, table=True):
    """The outbox: one event for one subscription, written in the transaction of the change it
    announces, and its delivery attempts."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.UniqueConstraint("subscription_id", "event_key", name="uq_deliveries_subscription_event"),
        sa.Index("ix_deliveries_queue", "status", "next_attempt_at"),
        sa.Index("ix_deliveries_subscription_queue", "status", "subscription_id", "next_attempt_at", "id"),
    )

    id: int = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="subscriptions.id", ondelete="CASCADE", index=True)
    event_id: str = Field(sa_column=sa.Column(sa.String(64), unique=True, nullable=False), description="webhook-id")
    event_key: str = Field(description="what the event is about, e.g. article.created:42; one delivery per key")
    event_type: str
    payload: str = Field(sa_column=sa.Column(sa.Text, nullable=False), description="the JSON body, signed as is")
    status: DeliveryStatus = Field(default=DeliveryStatus.pending, sa_column=sa.Column(sa.String(16), nullable=False))
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default_factory=utcnow, sa_column=_ts())
    last_attempt_at: datetime | None = Field(default=None, sa_column=_ts())
    last_response_status: int | None = None
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    delivered_at: datetime | None = Field(default=None, sa_column=_ts())
    lease_owner: str | None = None
    lease_until: datetime | None = Field(default=None, sa_column=_ts())


# -- stories (issue 5) --------------------------------------------------------------------------
# Kept apart from the tables above so that branches adding columns there merge cleanly. The article
# columns of story linking are declared on ``Article`` through ``_story_columns`` below.


class Story(SQLModel, table=True):
    """Articles reporting one event, across outlets and languages (``articles.story_id``).

    ``first_seen_at``: earliest publication (else first-seen) time of its articles;
    ``last_updated_at``: when an article last joined; ``first_published_at``/``last_published_at``
    bound its articles' times and index the clustering window. ``state`` is the clusterer's
    ``StoryState`` record (centroid sum, exemplars, terms, entities, figures); ``vector`` the unit centroid
    as 512 little-endian float16 values (1 kB; read for every candidate in the window).
    """

    __tablename__ = "stories"
    __table_args__ = (sa.Index("ix_stories_activity", "last_updated_at", "id"), {"sqlite_autoincrement": True})

    id: int = Field(default=None, primary_key=True)
    title: str | None = None
    first_article_id: int | None = None
    first_seen_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    last_updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    first_published_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    last_published_at: datetime = Field(default_factory=utcnow, sa_column=_ts(index=True, nullable=False))
    article_count: int = 0
    outlet_count: int = 0
    language_count: int = 0
    languages: list[str] = Field(default_factory=empty_list, sa_column=sa.Column(JSON, nullable=False))
    outlet_ids: list[int] = Field(default_factory=empty_list, sa_column=sa.Column(JSON, nullable=False))
    vector: bytes = Field(default=b"", sa_column=sa.Column(sa.LargeBinary, nullable=False), description="float16 little-endian")
    state: dict = Field(default_factory=empty_dict, sa_column=sa.Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class ArticleBand(SQLModel, table=True):
    """One MinHash LSH band key of an article's text (``service.stories.fingerprints``): articles
    sharing a key are near-duplicate candidates."""

    __tablename__ = "article_bands"

    id: int = Field(default=None, primary_key=True)
    band: str = Field(sa_column=sa.Column(sa.String(40), nullable=False, index=True))
    article_id: int = Field(foreign_key="articles.id", ondelete="CASCADE", index=True)


class Citation(SQLModel, table=True):
    """An article attributing its report to another outlet ("Bloomberg reported"): the name as
    written, the outlet when known, and that outlet's article in the same story when we have it."""

    __tablename__ = "article_citations"

    id: int = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="articles.id", ondelete="CASCADE", index=True)
    name: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    outlet_id: int | None = Field(default=None, foreign_key="outlets.id", ondelete="SET NULL", index=True)
    cited_article_id: int | None = Field(default=None, foreign_key="articles.id", ondelete="SET NULL")


class StoryLock(SQLModel, table=True):
    """A row per named lock; the story writer updates it first in its transaction, which serialises
    story assignment across processes on PostgreSQL (row lock) and SQLite (write lock)."""

    __tablename__ = "story_locks"

    name: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    counter: int = 0


class ApiKeyScope(enum.StrEnum):
    """What a key may do: ``read`` (GET requests and ``/metrics``) or ``admin`` (everything; implies read)."""

    read = "read"
    admin = "admin"


class ApiKey(SQLModel, table=True):
    """An API key. Only the SHA-256 digest of the key is stored; the key itself is shown once, at
    creation (``newsloom keys create``)."""

    __tablename__ = "api_keys"

    id: int = Field(default=None, primary_key=True)
    prefix: str = Field(sa_column=sa.Column(sa.String(16), nullable=False),
                        description="the key's first characters, shown in listings to tell keys apart")
    key_hash: str = Field(sa_column=sa.Column(sa.String(64), unique=True, nullable=False),
                          description="hex SHA-256 of the whole key")
    scope: ApiKeyScope = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    name: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    last_used_at: datetime | None = Field(default=None, sa_column=_ts())
    revoked_at: datetime | None = Field(default=None, sa_column=_ts())


class StageFailure(SQLModel, table=True):
    """How often one item (``item_id`` of the stage's table) failed in one pipeline ``stage`` the
    same way, and whether the stage gave up on it (``service.storage.failures``)."""

    __tablename__ = "stage_failures"
    __table_args__ = (sa.UniqueConstraint("stage", "item_id", name="uq_stage_failures_item"),)

    id: int = Field(default=None, primary_key=True)
    stage: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    item_id: int = Field(nullable=False)
    count: int = 0
    error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    given_up_at: datetime | None = Field(default=None, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
