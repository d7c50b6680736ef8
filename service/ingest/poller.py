"""The pollers: claim due feeds, fetch and parse them, store new entries, then fetch and extract each
new entry's page. Every step reads its input from the database and records its outcome there, so a
crash loses nothing, and no single failure (bad feed, dead host, page that hangs the extractor) can
stop the loop.

Pipeline order for one article: ``fetcher.fetch`` (feed) → ``parser.parse_feed`` (worker process) →
``store.store_entries`` → ``fetcher.fetch`` (page) → ``extractor.extract_article`` (worker process)
→ ``store.record_extraction``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from service.config import Settings
from service.ingest import store
from service.ingest.entries import FeedParseError
from service.ingest.extractor import ExtractionError, extract_article
from service.ingest.fetcher import FetchError, HTTPStatusError, fetch
from service.ingest.parser import parse_feed
from service.ingest.workers import WorkerError, WorkerPool
from service.models import Article, Feed
from service.stories.linker import Linker

log = logging.getLogger(__name__)

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
# Seconds before the first retry of a page that failed transiently; doubled on each attempt.
PAGE_RETRY_BASE = 60


@dataclass
class PollReport:
    """What one round of polling did; counts, not ids."""

    feeds_polled: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    articles_new: int = 0
    pages_ok: int = 0
    pages_failed: int = 0
    pages_retrying: int = 0

    def add(self, other: PollReport) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _is_html(content_type: str | None) -> bool:
    if not content_type:
        return True
    kind = content_type.split(";")[0].strip().lower()
    return kind in ("text/html", "application/xhtml+xml", "text/plain", "application/octet-stream")


class Poller:
    """Runs the ingestion pipeline against one database with one shared HTTP client and one pool of
    worker processes. Safe to run in several processes at once (work is leased)."""

    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient, workers: WorkerPool
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.client = client
        self.workers = workers
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._feeds_due = asyncio.Event()
        self._pages_due = asyncio.Event()
        self._pages = asyncio.Semaphore(settings.page_concurrency)
        self.linker = Linker(settings, sessions, workers)

    def wake(self) -> None:
        """Look for due feeds now instead of at the next tick (called when a feed is added)."""
        self._feeds_due.set()

    # -- feeds ---------------------------------------------------------------------------------

    async def poll_feed(self, feed: Feed) -> PollReport:
        """Fetch, parse and store one claimed feed; record the outcome on the feed. Never raises
        for a bad feed: the reason goes to ``feed.last_error``."""
        report = PollReport(feeds_polled=1)
        s = self.settings
        try:
            result = await fetch(
                self.client, feed.url, max_bytes=s.max_feed_bytes, total_timeout=s.total_timeout,
                etag=feed.etag, last_modified=feed.last_modified, accept=FEED_ACCEPT,
            )
            parsed = None
            if not result.not_modified:
                parsed = await self.workers.run(parse_feed, result.body, result.url, result.headers.get("content-type"))
        except (FetchError, FeedParseError, WorkerError) as exc:
            status = exc.status if isinstance(exc, FetchError) else None
            reason = exc.reason if isinstance(exc, FetchError) else str(exc)
            if isinstance(exc, FeedParseError):
                status = result.status
            await self._feed_failed(feed.id, reason, status)
            log.info("feed %s failed: %s", feed.id, reason)
            report.feeds_failed = 1
            return report
        async with self.sessions() as session:
            current = await session.get(Feed, feed.id)
            if current is None:  # deleted while we were fetching
                return report
            outlet_id = None
            if parsed is not None:
                outlet_id = await store.outlet_for(session, parsed.site_url or current.url)
                new_ids = await store.store_entries(session, current, parsed)
                report.articles_new = len(new_ids)
            else:
                report.feeds_not_modified = 1
            store.record_feed_success(
                current, result.status, parsed, result.headers.get("etag"), result.headers.get("last-modified"), outlet_id
            )
            await session.commit()
        log.info("feed %s polled: HTTP %s, %d new articles", feed.id, result.status, report.articles_new)
        if report.articles_new:
            self._pages_due.set()
        return report

    async def _feed_failed(self, feed_id: int, reason: str, status: int | None) -> None:
        async with self.sessions() as session:
            current = await session.get(Feed, feed_id)
            if current is not None:
                store.record_feed_failure(current, reason, status)
                await session.commit()

    async def poll_due_feeds(self, on_feed: Callable[[Feed, PollReport], None] | None = None) -> PollReport:
        """Claim and poll every feed that is due, a batch at a time, until none is left."""
        total = PollReport()
        while True:
            async with self.sessions() as session:
                feeds = await store.claim_due_feeds(session, self.owner, self.settings.lease_seconds, self.settings.feed_batch)
            if not feeds:
                return total
            reports = await asyncio.gather(*(self._poll_guarded(feed) for feed in feeds))
            for feed, report in zip(feeds, reports, strict=True):
                total.add(report)
                if on_feed:
                    on_feed(feed, report)

    async def _poll_guarded(self, feed: Feed) -> PollReport:
        try:
            return await self.poll_feed(feed)
        except Exception as exc:  # a bug must not stop the loop: record it on the feed
            log.exception("polling feed %s failed", feed.url)
            await self._feed_failed(feed.id, f"internal error: {type(exc).__name__}: {exc}", None)
            return PollReport(feeds_polled=1, feeds_failed=1)

    # -- pages ---------------------------------------------------------------------------------

    async def process_page(self, article: Article) -> PollReport:
        """Fetch and extract one claimed article page and store the result. Transient failures
        (timeouts, refused connections, 5xx, 429) are retried later with backoff up to
        ``page_max_attempts``; anything else keeps the feed's text and records why."""
        s = self.settings
        retry_in = (
            PAGE_RETRY_BASE * 2**article.fetch_attempts if article.fetch_attempts + 1 < s.page_max_attempts else None
        )
        try:
            async with self._pages:
                result = await fetch(
                    self.client, article.url, max_bytes=s.max_page_bytes, total_timeout=s.total_timeout, accept=PAGE_ACCEPT
                )
            if not _is_html(result.headers.get("content-type")):
                raise ExtractionError(f"not an HTML page ({result.headers.get('content-type')})")
            extracted = await self.workers.run(extract_article, result.body, result.url)
        except HTTPStatusError as exc:
            transient = exc.status is not None and (exc.status >= 500 or exc.status == 429)
            return await self._page_failed(article.id, f"page: {exc.reason}", retry_in if transient else None)
        except FetchError as exc:
            return await self._page_failed(article.id, f"page: {exc.reason}", retry_in)
        except (ExtractionError, WorkerError) as exc:
            return await self._page_failed(article.id, f"extraction: {exc}", None)
        async with self.sessions() as session:
            current = await session.get(Article, article.id)
            if current is None:
                return PollReport()
            await store.record_extraction(session, current, result.url, extracted)
            await session.commit()
        log.info("article %s extracted: %d words", article.id, extracted.word_count)
        return PollReport(pages_ok=1)

    async def _page_failed(self, article_id: int, reason: str, retry_in: float | None) -> PollReport:
        async with self.sessions() as session:
            current = await session.get(Article, article_id)
            if current is not None:
                store.record_page_failure(current, reason, retry_in=retry_in)
                await session.commit()
        log.info("article %s page failed (%s): %s", article_id, "will retry" if retry_in else "final", reason)
        return PollReport(pages_retrying=1) if retry_in is not None else PollReport(pages_failed=1)

    async def process_pages(
        self, feed_ids: list[int] | None = None, on_page: Callable[[Article, PollReport], None] | None = None
    ) -> PollReport:
        """Claim and process due article pages, a batch at a time, until none is left.
        ``feed_ids`` restricts the work to articles first seen in those feeds."""
        total = PollReport()
        batch = self.settings.page_concurrency * 2
        while True:
            # Stories: link the articles whose text is final (dedup, story, citations).
            await self.linker.link_pending()
            async with self.sessions() as session:
                articles = await store.claim_pending_pages(session, self.owner, self.settings.lease_seconds, batch, feed_ids)
            if not articles:
                return total
            reports = await asyncio.gather(*(self._page_guarded(a) for a in articles))
            for article, report in zip(articles, reports, strict=True):
                total.add(report)
                if on_page:
                    on_page(article, report)

    async def _page_guarded(self, article: Article) -> PollReport:
        try:
            return await self.process_page(article)
        except Exception as exc:
            log.exception("processing page %s failed", article.url)
            return await self._page_failed(article.id, f"internal error: {type(exc).__name__}: {exc}", None)

    # -- loops ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll feeds and process pages until ``stop`` is set. Errors are logged, never raised."""
        await asyncio.gather(
            self._loop(stop, self._feeds_due, self.poll_due_feeds), self._loop(stop, self._pages_due, self.process_pages)
        )

    async def _loop(self, stop: asyncio.Event, due: asyncio.Event, step: Callable) -> None:
        while not stop.is_set():
            due.clear()
            try:
                await step()
            except Exception:
                log.exception("poller step %s failed; continuing", step.__name__)
            waiters = [asyncio.ensure_future(due.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=self.settings.poll_tick, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
