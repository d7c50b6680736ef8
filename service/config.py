"""Service settings, read once from the environment (prefix ``NEWSLOOM_``) with pydantic-settings.

Every setting has a default that works on one machine; ``README.md`` lists them all. Durations are
seconds, sizes are bytes.
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Newsloom configuration. Each field ``x`` is set by the variable ``NEWSLOOM_X``."""

    model_config = SettingsConfigDict(env_prefix="NEWSLOOM_", extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./newsloom.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB.",
    )
    log_level: str = Field(default="INFO", description="Logging level: DEBUG, INFO, WARNING or ERROR.")
    host: str = Field(default="127.0.0.1", description="Address `newsloom serve` binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `newsloom serve` binds.")

    poller_enabled: bool = Field(default=True, description="Run the pollers inside `newsloom serve`.")
    poll_interval: int = Field(default=900, ge=10, description="Seconds between two polls of one feed.")
    poll_tick: float = Field(
        default=2.0, gt=0, description="Seconds the poller waits between looking for due feeds and pages."
    )
    lease_seconds: int = Field(
        default=300, ge=10, description="How long a claimed feed or page stays claimed before others may take it."
    )
    feed_batch: int = Field(default=20, ge=1, description="Feeds claimed per poller round.")
    page_concurrency: int = Field(default=8, ge=1, description="Article pages fetched at once.")
    page_max_attempts: int = Field(default=3, ge=1, description="Fetch attempts per article page before giving up.")

    user_agent: str = Field(
        default="Newsloom/0.1 (+https://github.com/newsloom/newsloom; news ingestion)",
        description="User-Agent sent with every request.",
    )
    connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to open a connection.")
    read_timeout: float = Field(default=20.0, gt=0, description="Seconds to wait for each chunk of a response.")
    total_timeout: float = Field(default=60.0, gt=0, description="Seconds for a whole request, body included.")
    max_redirects: int = Field(default=5, ge=0, description="Redirect hops followed per request.")
    max_feed_bytes: int = Field(default=10_000_000, ge=1024, description="Cap on a feed body after decompression.")
    max_page_bytes: int = Field(default=5_000_000, ge=1024, description="Cap on a page body after decompression.")

    extract_workers: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) - 1),
        ge=1,
        description="Worker processes running trafilatura (default: CPU count - 1, at least 1).",
    )
    extract_timeout: float = Field(
        default=30.0, gt=0, description="Seconds one page may spend in extraction before its worker is killed."
    )

    stories_enabled: bool = Field(default=True, description="Link articles into stories after extraction.")
    story_window_hours: float = Field(
        default=72.0, gt=0, description="Hours around an article's publication time in which stories are candidates."
    )
    story_threshold: float = Field(
        default=0.44, description="Similarity (see service.stories.clustering) from which an article with text joins a story."
    )
    story_threshold_title: float = Field(
        default=0.30, description="Similarity from which a headline-only article (no body text) joins a story."
    )
    near_duplicate_threshold: float = Field(
        default=0.7, gt=0, le=1, description="Estimated Jaccard similarity of word 3-shingles from which a text is a near-duplicate."
    )


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read from the environment on first use."""
    return Settings()
