"""Prometheus metrics (official ``prometheus_client``), served at ``GET /metrics`` in the text
exposition format.

Names follow the Prometheus conventions (https://prometheus.io/docs/practices/naming/): a
``newsloom_`` prefix, base units (seconds, bytes), ``_total`` for counters. Counters and
histograms are incremented where the work happens; the queue gauges (feeds by state, due feeds,
pending pages and deliveries) are computed from the database when ``/metrics`` is scraped, at most
once per ``QUEUE_CACHE_SECONDS``.

Each replica is one process and is scraped on its own, so prometheus_client's multiprocess mode is
not needed (the extraction worker processes record nothing; their callers time them). Counters
count what this process did; the queue gauges describe the whole database, so with several
replicas aggregate them with ``max``, not ``sum``.

Label cardinality is bounded: ``host`` is the first ``MAX_HOSTS`` hosts this process fetched from,
later ones are counted as ``other``; ``route`` is the route template (``/v1/feeds/{feed_id}``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from service.models import FeedState, utcnow

if TYPE_CHECKING:  # the storage layer is above this module; the app hands its reader in
    from service.storage.queues import Depths

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

MAX_HOSTS = 100
QUEUE_CACHE_SECONDS = 5.0
CONTENT_TYPE = CONTENT_TYPE_LATEST

POLLS = Counter("newsloom_polls_total", "Feed polls by outcome: ok, not_modified, failed, deferred (host asked us to wait).",
                ["outcome"], registry=REGISTRY)
FETCH_RESPONSES = Counter(
    "newsloom_fetch_responses_total",
    "Feed and page fetches by kind (feed, page), host (first 100 hosts, then 'other') and HTTP status class "
    "(2xx…5xx, or 'error' when no response came).",
    ["kind", "host", "status_class"], registry=REGISTRY,
)
FETCHED_BYTES = Counter("newsloom_fetched_bytes_total", "Bytes of feed and page bodies fetched (after decompression).",
                        ["kind"], registry=REGISTRY)
EXTRACTION_SECONDS = Histogram(
    "newsloom_extraction_duration_seconds", "Seconds one page spent in extraction (in a worker process).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=REGISTRY,
)
EXTRACTIONS = Counter("newsloom_extractions_total",
                      "Article pages processed by outcome: ok (extracted), failed (feed text kept), retry (later).",
                      ["outcome"], registry=REGISTRY)
ARTICLES_CREATED = Counter("newsloom_articles_created_total", "Articles stored for the first time.", registry=REGISTRY)
ITEMS_GIVEN_UP = Counter("newsloom_items_given_up_total",
                         "Items a stage gave up on after failing the same way repeatedly (service.storage.failures), by stage.",
                         ["stage"], registry=REGISTRY)
STORIES_CREATED = Counter("newsloom_stories_created_total", "Stories started by an article.", registry=REGISTRY)
STORY_SIZE = Histogram(
    "newsloom_story_size_articles", "Articles in the story an article joins or starts, observed at each link.",
    buckets=(1, 2, 3, 5, 10, 20, 50, 100, 250), registry=REGISTRY,
)
DELIVERY_ATTEMPTS = Counter(
    "newsloom_webhook_delivery_attempts_total",
    "Webhook delivery attempts by outcome: succeeded, failed (will retry or gave up), gone (410, subscription disabled).",
    ["outcome"], registry=REGISTRY,
)
DELIVERY_LAG = Histogram(
    "newsloom_webhook_delivery_lag_seconds", "Seconds from an event's creation to its successful delivery.",
    buckets=(0.1, 0.5, 1, 5, 30, 60, 300, 1800, 7200, 36000, 100000), registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "newsloom_http_request_duration_seconds", "API request duration by method, route template and status code.",
    ["method", "route", "status"], registry=REGISTRY,
)
FEEDS = Gauge("newsloom_feeds", "Feeds by state (from the database, at scrape time).", ["state"], registry=REGISTRY)
FEEDS_DUE = Gauge("newsloom_feeds_due", "Feeds due for a poll now (active or failing).", registry=REGISTRY)
PAGES_PENDING = Gauge("newsloom_pages_pending", "Article pages waiting to be fetched and extracted (due now).",
                      registry=REGISTRY)
DELIVERIES_PENDING = Gauge("newsloom_webhook_deliveries_pending", "Webhook deliveries pending (due now or later).",
                           registry=REGISTRY)
DELIVERY_QUEUE_AGE = Gauge("newsloom_webhook_delivery_queue_age_seconds",
                           "How long the oldest due delivery has been due (0 when none is).", registry=REGISTRY)

_hosts: set[str] = set()
_hosts_lock = threading.Lock()


def host_label(url: str) -> str:
    """The ``host`` label for ``url``: its host name while fewer than ``MAX_HOSTS`` distinct hosts
    have been seen by this process, else ``other``."""
    host = (urlsplit(url).hostname or "").lower() or "unknown"
    with _hosts_lock:
        if host in _hosts:
            return host
        if len(_hosts) < MAX_HOSTS:
            _hosts.add(host)
            return host
    return "other"


def status_class(status: int | None) -> str:
    """``2xx``…``5xx`` for an HTTP status, ``error`` for None (no response: timeout, refused, DNS)."""
    return f"{status // 100}xx" if status else "error"


def record_fetch(kind: str, url: str, status: int | None, size: int = 0) -> None:
    """Count one fetch of ``kind`` (``feed`` or ``page``) from ``url`` that ended with ``status``
    (None: no response) and ``size`` body bytes."""
    FETCH_RESPONSES.labels(kind, host_label(url), status_class(status)).inc()
    if size:
        FETCHED_BYTES.labels(kind).inc(size)


class QueueGauges:
    """Refreshes the database-derived gauges, at most once per ``QUEUE_CACHE_SECONDS`` (one per app)."""

    def __init__(self, read: Callable[[AsyncSession, datetime], Awaitable[Depths]],
                 cache_seconds: float = QUEUE_CACHE_SECONDS) -> None:
        """``read``: the queue depths at a moment (``storage.queues.depths``)."""
        self.read = read
        self.cache_seconds = cache_seconds
        self._at = float("-inf")

    async def refresh(self, session: AsyncSession) -> None:
        """Query the queue depths (``read``) unless they were queried less than ``cache_seconds`` ago."""
        if time.monotonic() - self._at < self.cache_seconds:
            return
        now = utcnow()
        depths = await self.read(session, now)
        for state in FeedState:
            FEEDS.labels(str(state)).set(depths.feeds_by_state.get(str(state), 0))
        FEEDS_DUE.set(depths.feeds_due)
        PAGES_PENDING.set(depths.pages_due)
        DELIVERIES_PENDING.set(depths.deliveries_pending)
        oldest = depths.oldest_due_delivery
        DELIVERY_QUEUE_AGE.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        self._at = time.monotonic()


def exposition() -> bytes:
    """Every metric in the Prometheus text exposition format (version 0.0.4)."""
    return generate_latest(REGISTRY)
