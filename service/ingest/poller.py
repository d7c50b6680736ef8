"""The pollers: claim due feeds, fetch and parse them, store new entries, then fetch and extract each
new entry's page. Every step reads its input from the database and records its outcome there, so a
crash loses nothing, and no single failure (bad feed, dead host, page that hangs the extractor) can
stop the loop.

Pipeline order for one article: ``fetcher.fetch`` (feed) → ``parser.parse_feed`` (worker process) →
``articles.store_entries`` → ``fetcher.fetch`` (page) → ``extractor.extract_page`` (worker process)
→ ``articles.book_extraction``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from service import metrics, owners
from service.config import Settings
from service.db import Writer
from service.ingest.feeds.entries import FeedParseError, ParsedFeed
from service.ingest.handoff import Announcer, Linking
from service.ingest.pages.extracted import ExtractionError
from service.ingest.workers import EXTRACT_PAGE, PARSE_FEED, WorkerError, WorkerPool
from service.jobs import Runner, Step
from service.models import Article, Feed, utcnow
from service.net.fetcher import (
    BlockedURL,
    FetchError,
    FetchResult,
    HTTPStatusError,
    RedirectError,
    ResponseTooLarge,
    fetch,
)
from service.net.hosts import HostLimiter, host_key
from service.net.robots import RobotsCache, RobotsUnavailable
from service.net.urls import redact_password
from service.storage import articles, feeds

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

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
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        client: httpx.AsyncClient,
        workers: WorkerPool,
        *,
        announcer: Announcer | None = None,
        linker: Linking | None = None,
        on_events: Callable[[], None] | None = None,
    ) -> None:
        """What becomes of completed articles is the caller's choice (``wiring.assemble`` makes it;
        see ``ingest.handoff``): ``announcer`` writes their ``article.created`` events in the
        transaction that completes them; ``linker`` is told of them (and run by ``run`` and
        ``process_pages``), and announces them itself once linked; with neither, nothing follows.
        ``on_events`` is called after a commit that wrote webhook deliveries (to wake the sender)."""
        self.settings = settings
        self.announcer = announcer
        self.linker = linker
        self.on_events = on_events
        self.sessions = sessions
        self.client = client
        self.workers = workers
        self.owner = owners.lease_owner()
        self._feeds_due = asyncio.Event()
        self._stop: asyncio.Event | None = None  # set by ``run``: once set, no new work is claimed
        self._pages_due = asyncio.Event()
        self._links_due = asyncio.Event()
        self._pages = asyncio.Semaphore(settings.page_concurrency)
        # The page extractor run in the worker pool: a module-level function
        # (html, url, feed_content) -> ExtractedArticle; tests swap in misbehaving ones.
        self.extract: Callable = EXTRACT_PAGE
        self.limiter = HostLimiter(settings.host_concurrency, settings.host_min_gap, settings.global_concurrency)
        self.robots = RobotsCache(client, settings.user_agent, settings.robots_cache_seconds,
                                  total_timeout=settings.total_timeout, limiter=self.limiter)
        self.writer = Writer(sessions)  # a feed's storage in one transaction, one hand-off on SQLite
        self.unchanged = UnchangedPolls(self.writer, settings)

    @property
    def stopping(self) -> bool:
        """True once the ``stop`` event given to ``run`` is set: claim nothing more."""
        return self._stop is not None and self._stop.is_set()

    def wake(self) -> None:
        """Look for due feeds now instead of at the next tick (called when a feed is added)."""
        self._feeds_due.set()

    # -- feeds ---------------------------------------------------------------------------------

    async def poll_feed(self, feed: Feed) -> PollReport:
        """Fetch, parse and store one claimed feed; record the outcome on the feed. Never raises
        for a bad feed: the reason goes to ``feed.last_error``. A feed whose host asked us to wait
        (Retry-After) is put off without a request."""
        report = PollReport(feeds_polled=1)
        wait = self.limiter.blocked_for(feed.url)
        if wait > 0:
            async with self.sessions() as session:
                await feeds.book_deferral(session, feed.id, utcnow() + timedelta(seconds=wait))
                await session.commit()
            metrics.POLLS.labels("deferred").inc()
            return PollReport()
        try:
            result = await self.fetch_feed(feed.url, feed.etag, feed.last_modified)
        except FetchError as exc:
            await self._fetch_failed(feed, exc)
            report.feeds_failed = 1
            return report
        return await self.ingest(feed, result, report)

    async def fetch_feed(self, url: str, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """GET a feed document with this poller's limits and politeness. Raises ``FetchError``."""
        s = self.settings
        try:
            result = await fetch(
                self.client, url, max_bytes=s.max_feed_bytes, total_timeout=s.total_timeout, max_redirects=s.max_redirects,
                etag=etag, last_modified=last_modified, accept=FEED_ACCEPT, limiter=self.limiter,
            )
        except FetchError as exc:
            metrics.record_fetch("feed", url, exc.status)
            raise
        metrics.record_fetch("feed", url, result.status, len(result.body))
        return result

    async def ingest(
        self, feed: Feed, result: FetchResult, report: PollReport | None = None, parsed: ParsedFeed | None = None
    ) -> PollReport:
        """Parse (in a worker process) and store a fetched feed document for ``feed`` (the row as
        claimed, or as just subscribed) and book the poll: a 304 or a byte-identical 200 body costs
        no parse and is booked with the others of the moment (``UnchangedPolls``); a permanent
        redirect (301/308 only) moves the feed's URL once the target answered. ``parsed``: the document already parsed
        (``parse_feed``; subscribing does), not parsed again. Never raises for a bad document."""
        report = report or PollReport(feeds_polled=1)
        s = self.settings
        digest = None
        headers = {k: result.headers[k] for k in ("etag", "last-modified", "cache-control") if k in result.headers}
        if not result.not_modified:
            digest = hashlib.sha256(result.body).hexdigest()
            if parsed is None and digest != feed.content_hash:
                try:
                    parsed = await self.parse_feed(result)
                except (FeedParseError, WorkerError) as exc:
                    await self._feed_failed(feed.id, str(exc), result.status)
                    metrics.POLLS.labels("failed").inc()
                    log.info("feed %s failed: %s", feed.id, redact_password(str(exc)))
                    report.feeds_failed = 1
                    return report
        if parsed is None and not result.permanent_url and await self.unchanged.book(feed, result.status, headers):
            metrics.POLLS.labels("not_modified").inc()
            report.feeds_not_modified = 1
            log.info("feed %s polled: HTTP %s, not modified", feed.id, result.status)
            return report
        booked, events = await self._book(
            feeds.book_document, _new_ids, feed.id, s, result.status, parsed, headers, digest, result.permanent_url
        )
        if not booked.found:
            return report
        report.articles_new = len(booked.new_ids)
        if parsed is None:
            report.feeds_not_modified = 1
        if booked.moved:
            log.info("feed %s moved permanently to %s", feed.id, redact_password(result.permanent_url or ""))
        self._articles_settled(events)
        metrics.POLLS.labels("ok" if parsed is not None else "not_modified").inc()
        metrics.ARTICLES_CREATED.inc(report.articles_new)
        log.info("feed %s polled: HTTP %s, %d new articles", feed.id, result.status, report.articles_new)
        if report.articles_new:
            self._pages_due.set()
        return report

    async def parse_feed(self, result: FetchResult) -> ParsedFeed:
        """Parse a fetched feed document in a worker process (``parser.parse_feed``). Raises
        ``FeedParseError`` for a document no feed parser reads, ``WorkerError`` when the parse
        crashed or ran out of time."""
        return await self.offload(
            PARSE_FEED, result.body, result.url, result.headers.get("content-type"), self.settings.max_feed_entries
        )

    async def offload(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in this poller's worker processes (``WorkerPool.run``: CPU work off
        the event loop). Raises what ``function`` raises, or ``WorkerError``."""
        return await self.workers.run(function, *args)

    async def _book(self, book: Callable[..., R], completed: Callable[[R], list[int]], *args: Any) -> tuple[R, int]:
        """Run a step's booking ``book(session, *args)`` (synchronous, over a
        ``sqlalchemy.orm.Session``, not committing: ``feeds.book_document``,
        ``articles.book_extraction``, ``articles.book_page_failure``) in a committed transaction,
        with the ``article.created`` events of the articles ``completed(result)`` names that it
        completed. Returns ``(result, deliveries written)``.

        Through the poller's ``Writer`` (one hand-off to its thread on SQLite) when there is no
        ``announcer`` (with stories on, the linker announces; then with the bookings finished
        meanwhile, ``Writer.run_together``: one commit for them all) or when the ``announcer`` could write
        no event (``Announcer.may_announce``: no subscriber takes them); else in an async session,
        where ``announce_articles`` writes the events in the same transaction (exactly once: an
        event is committed with the change that completes its article). Raises what ``book``
        raises (nothing committed)."""
        if self.announcer is None:
            return await self.writer.run_together(book, *args), 0
        if self.writer.threaded:
            try:
                return await self.writer.run(_book_unless_announcing, self.announcer, book, completed, *args), 0
            except _Announcing:
                pass  # rolled back: booked again below, with the events
        async with self.sessions() as session:
            booked = await session.run_sync(book, *args)
            events = await self._announce(session, completed(booked))
            await session.commit()
        return booked, events

    async def _announce(self, session: AsyncSession, article_ids: list[int]) -> int:
        """``article.created`` for completed articles, in the caller's transaction, by the
        ``announcer`` (none: nothing written here; with stories on the linker announces them once
        linked, so events carry their story)."""
        if self.announcer is None:
            return 0
        return await session.run_sync(self.announcer.announce_articles, article_ids)

    def _articles_settled(self, events: int) -> None:
        """After a commit that completed articles: wake the linker, and the webhook sender when
        ``events`` deliveries were written."""
        self._links_due.set()
        if events and self.on_events is not None:
            self.on_events()

    async def _fetch_failed(self, feed: Feed, exc: FetchError) -> None:
        reason = exc.reason
        if isinstance(exc, BlockedURL):
            reason = f"refused by the SSRF guard ({exc.rule}): {exc.reason}"
        retry_after = exc.retry_after
        if retry_after is not None:
            retry_after = min(retry_after, self.settings.max_retry_after)  # a server's 10^20 s is a day
            self.limiter.block(feed.url, retry_after)
        await self._feed_failed(feed.id, reason, exc.status, retry_after, host_key(feed.url))
        metrics.POLLS.labels("failed").inc()
        log.info("feed %s failed: %s", feed.id, redact_password(reason))

    async def _feed_failed(
        self, feed_id: int, reason: str, status: int | None, retry_after: float | None = None, host: str | None = None
    ) -> None:
        async with self.sessions() as session:
            await feeds.book_failure(session, feed_id, self.settings, reason, status, retry_after, host)
            await session.commit()

    async def poll_due_feeds(self, on_feed: Callable[[Feed, PollReport], None] | None = None) -> PollReport:
        """Poll every feed that is due, ``feed_concurrency`` at a time, until none is left (see
        ``FeedStep``); ``on_feed(feed, report)`` is called as each finishes."""
        return _total(await Runner(FeedStep(self), self.sessions, self.settings.lease_seconds).drain(on_feed, self._stop))

    # -- pages ---------------------------------------------------------------------------------

    async def process_page(self, article: Article) -> PollReport:
        """Fetch and extract one claimed article page and store the result. Transient failures
        (timeouts, refused connections, 5xx, 429) are retried later with backoff up to
        ``page_max_attempts``; anything else (a body over the cap, a refused address, a redirect
        loop, a 4xx) keeps the feed's text at once and records why."""
        s = self.settings
        assert article.url is not None, "a pending page has a link (articles._new_article)"
        retry_in = (
            PAGE_RETRY_BASE * 2**article.fetch_attempts if article.fetch_attempts + 1 < s.page_max_attempts else None
        )
        try:
            if s.robots_enabled and not await self.robots.allowed(article.url):
                return await self._page_failed(article.id, "page: robots.txt disallows fetching it", None)
        except RobotsUnavailable as exc:
            return await self._page_failed(article.id, f"page: {exc}", retry_in)
        try:
            async with self._pages:
                try:
                    result = await fetch(
                        self.client, article.url, max_bytes=s.max_page_bytes, total_timeout=s.total_timeout,
                        max_redirects=s.max_redirects, accept=PAGE_ACCEPT, limiter=self.limiter,
                    )
                except FetchError as exc:
                    metrics.record_fetch("page", article.url, exc.status)
                    raise
                metrics.record_fetch("page", article.url, result.status, len(result.body))
            if not _is_html(result.headers.get("content-type")):
                raise ExtractionError(f"not an HTML page ({result.headers.get('content-type')})")
            with metrics.EXTRACTION_SECONDS.time():
                extracted = await self.workers.run(self.extract, result.body, result.url, article.feed_content)
        except HTTPStatusError as exc:
            transient = exc.status is not None and (exc.status >= 500 or exc.status == 429)
            return await self._page_failed(article.id, f"page: {exc.reason}", retry_in if transient else None)
        except (ResponseTooLarge, BlockedURL, RedirectError) as exc:  # the same again at every attempt
            return await self._page_failed(article.id, f"page: {exc.reason}", None)
        except FetchError as exc:
            return await self._page_failed(article.id, f"page: {exc.reason}", retry_in)
        except (ExtractionError, WorkerError) as exc:
            return await self._page_failed(article.id, f"extraction: {exc}", None)
        current, events = await self._book(
            articles.book_extraction, lambda _booked: [article.id], article.id, result.url, extracted
        )
        if current is None:
            return PollReport()
        if self.linker is not None:
            self.linker.prefetch(current)
        self._articles_settled(events)
        metrics.EXTRACTIONS.labels("ok").inc()
        log.info("article %s extracted: %d words", article.id, extracted.word_count)
        return PollReport(pages_ok=1)

    async def _page_failed(self, article_id: int, reason: str, retry_in: float | None) -> PollReport:
        found, events = await self._book(
            articles.book_page_failure, lambda _booked: [article_id], article_id, reason, retry_in
        )
        if not found:
            return PollReport()
        self._articles_settled(events)
        metrics.EXTRACTIONS.labels("retry" if retry_in is not None else "failed").inc()
        log.info("article %s page failed (%s): %s", article_id, "will retry" if retry_in else "final", reason)
        return PollReport(pages_retrying=1) if retry_in is not None else PollReport(pages_failed=1)

    async def process_pages(
        self, feed_ids: list[int] | None = None, on_page: Callable[[Article, PollReport], None] | None = None
    ) -> PollReport:
        """Process every due article page, ``page_concurrency`` at a time, until none is left (see
        ``PageStep``), then have the ``linker``, if any, link the completed articles
        (``Linking.link_pending``; their work started meanwhile by ``Linking.prefetch``).
        ``feed_ids`` restricts the page work to articles first seen in those feeds. (In ``run`` the
        linker has a runner of its own, so a slow page never delays the linking, and the events, of
        the articles finished before it.)"""
        step = PageStep(self, feed_ids)
        report = _total(await Runner(step, self.sessions, self.settings.lease_seconds).drain(on_page, self._stop))
        if not self.stopping and self.linker is not None:
            await self.linker.link_pending()
        return report

    # -- loops ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll feeds and process pages until ``stop`` is set. Errors are logged, never raised.
        Feeds already overdue at start are first spread over ``poll_spread`` seconds. Once
        ``stop`` is set no new feed or page is claimed; the work in hand finishes."""
        self._stop = stop
        if self.settings.poll_spread > 0:
            try:
                async with self.sessions() as session:
                    await feeds.spread_overdue(session, self.settings)
            except Exception:
                log.exception("spreading overdue feeds failed; continuing")
        tick, lease = self.settings.poll_tick, self.settings.lease_seconds
        steps = [Runner(FeedStep(self), self.sessions, lease).run(stop, self._feeds_due, tick),
                 Runner(PageStep(self), self.sessions, lease).run(stop, self._pages_due, tick)]
        if self.linker is not None:
            steps.append(self.linker.run(stop, self._links_due, tick))
        await asyncio.gather(*steps)


class UnchangedPolls:
    """Books polls that brought nothing new (a 304, or the same bytes as last time) in groups: the
    polls that finish while a group's transaction runs form the next group, booked in one
    transaction (``feeds.record_unchanged``: one UPDATE statement for the group) instead of one
    each. The first poll of a quiet moment is booked at once, alone: grouping adds no wait."""

    def __init__(self, writer: Writer, settings: Settings) -> None:
        self.writer, self.settings = writer, settings
        self._waiting: list[tuple[tuple[Feed, int, dict[str, str]], asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def book(self, feed: Feed, status: int, headers: dict[str, str]) -> bool:
        """Book the unchanged poll of the claimed ``feed`` (HTTP ``status``; the response's
        ``etag``, ``last-modified`` and ``cache-control`` ``headers``) with the group of the moment.
        False when it was not booked: the feed is gone, its override changed since the claim, or the
        group's transaction failed (logged); the caller books it alone (``feeds.book_document``),
        so one bad row loses no other poll. A caller cancelled while it waits leaves its poll in
        the group."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append(((feed, status, headers), done))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                try:
                    unbooked = await self.writer.run(feeds.record_unchanged, [poll for poll, _ in group], self.settings)
                except Exception:
                    log.exception("booking %d unchanged polls together failed; booking each alone", len(group))
                    unbooked = {poll[0].id for poll, _ in group}
                for (feed, _status, _headers), done in group:
                    if not done.done():
                        done.set_result(feed.id not in unbooked)
        finally:
            self._flushing = None


class _Announcing(Exception):
    """Raised by ``_book_unless_announcing`` to roll its transaction back: the booking completed
    articles that need ``article.created`` events, which the writer's thread cannot write."""


def _book_unless_announcing(
    session: Session, announcer: Announcer, book: Callable[..., R], completed: Callable[[R], list[int]], *args: Any
) -> R:
    """``book(session, *args)`` where no ``article.created`` event can be written (the writer
    thread), for both steps' bookings (``Poller._book``): raises ``_Announcing`` (the ``Writer``
    rolls back) when ``announcer`` may announce the articles ``completed(result)`` names, for the
    caller to book again where it can announce them; else returns ``book``'s result."""
    booked = book(session, *args)
    ids = completed(booked)
    if ids and announcer.may_announce(session, ids):
        raise _Announcing
    return booked


def _new_ids(booked: feeds.Booked) -> list[int]:
    """The articles a feed document's booking created (complete ones among them are announced)."""
    return booked.new_ids


def _total(reports: list[PollReport]) -> PollReport:
    total = PollReport()
    for report in reports:
        total.add(report)
    return total


class FeedStep(Step[Feed, PollReport]):
    """Polling due feeds (``Poller.poll_feed``): ``feed_concurrency`` feeds in flight, at most
    ``host_concurrency`` of one host, each within the runner's deadline. A feed whose poll raised or
    overran is booked as failed (its backoff grows, so it is not retried at once)."""

    name = "feed"
    model = Feed

    def __init__(self, poller: Poller) -> None:
        s = poller.settings
        self.poller, self.owner = poller, poller.owner
        self.concurrency, self.per_key = s.feed_concurrency, s.host_concurrency

    def key(self, feed: Feed) -> str:
        return host_key(feed.url)

    async def claim(self, limit: int, room: Callable[[str], int] | None) -> list[Feed]:
        poller = self.poller  # through the poller's writer: one hand-off on SQLite, as the feed's booking
        return await poller.writer.run(feeds.lease_due_feeds, poller.owner, poller.settings.lease_seconds, limit, room)

    async def handle(self, feed: Feed) -> PollReport:
        return await self.poller.poll_feed(feed)

    async def failed(self, feed: Feed, reason: str) -> PollReport:
        await self.poller._feed_failed(feed.id, reason, None)
        return PollReport(feeds_polled=1, feeds_failed=1)

    async def next_due(self) -> datetime | None:
        async with self.poller.sessions() as session:
            return await feeds.next_poll_at(session)


class PageStep(Step[Article, PollReport]):
    """Fetching and extracting due article pages (``Poller.process_page``): ``page_concurrency``
    pages in flight, at most ``host_concurrency`` of one host, each within the runner's deadline. A page
    whose processing raised or overran fails for good (keeping the feed's text): it would again."""

    name = "page"
    model = Article

    def __init__(self, poller: Poller, feed_ids: list[int] | None = None) -> None:
        """``feed_ids``: only articles first seen in those feeds."""
        s = poller.settings
        self.poller, self.owner, self.feed_ids = poller, poller.owner, feed_ids
        self.concurrency, self.per_key = s.page_concurrency, s.host_concurrency

    def key(self, article: Article) -> str:
        assert article.url is not None, "a pending page has a link (articles._new_article)"
        return host_key(article.url)

    async def claim(self, limit: int, room: Callable[[str], int] | None) -> list[Article]:
        poller = self.poller  # through the poller's writer: one hand-off on SQLite, as the page's booking
        return await poller.writer.run(articles.lease_due_pages, poller.owner, poller.settings.lease_seconds, limit,
                                       self.feed_ids, room)

    async def handle(self, article: Article) -> PollReport:
        return await self.poller.process_page(article)

    async def failed(self, article: Article, reason: str) -> PollReport:
        return await self.poller._page_failed(article.id, reason, None)

    async def next_due(self) -> datetime | None:
        async with self.poller.sessions() as session:
            return await articles.next_fetch_at(session)
