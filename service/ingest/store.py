"""Database side of ingestion: claiming due feeds and pending pages with a lease, storing new
entries once, and recording the outcome of each poll and each page.

Claims go through ``service.leases`` (``SELECT … FOR UPDATE SKIP LOCKED`` with a lease), so several
processes share the work without taking the same row, and a dead process's rows become due again.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service import leases
from service.db import dialect_insert
from service.ingest.entries import ParsedEntry, ParsedFeed
from service.ingest.extractor import ExtractedArticle, content_hash
from service.ingest.urls import canonicalize, outlet_domain
from service.models import Article, Entry, ExtractionStatus, Feed, FeedState, Outlet, utcnow

# Consecutive failures after which a feed shows as ``failing`` (it is still polled, with backoff).
FAILING_AFTER = 3
# Longest wait between polls of a failing feed, in seconds.
MAX_BACKOFF = 24 * 3600


async def _insert_ignore(session: AsyncSession, table: type, values: dict, conflict: list[str]) -> int | None:
    """INSERT … ON CONFLICT (``conflict``) DO NOTHING RETURNING id: the new row's id, or None when a
    row with the same key exists (inserted meanwhile by another transaction, perhaps)."""
    statement = dialect_insert(session)(table).values(**values).on_conflict_do_nothing(index_elements=conflict)
    return (await session.exec(statement.returning(table.id))).scalar_one_or_none()


async def outlet_for(session: AsyncSession, url: str | None) -> int | None:
    """The id of the outlet owning ``url``'s registrable domain, created on first sight."""
    domain = outlet_domain(url) if url else None
    if not domain:
        return None
    await _insert_ignore(session, Outlet, {"domain": domain, "created_at": utcnow()}, ["domain"])
    return (await session.exec(select(Outlet.id).where(Outlet.domain == domain))).one()


async def claim_due_feeds(session: AsyncSession, owner: str, lease_seconds: int, limit: int) -> list[Feed]:
    """Lease up to ``limit`` polled feeds whose next poll time has passed, oldest due first, and commit."""
    due = [col(Feed.state).in_([FeedState.active, FeedState.failing]), Feed.next_poll_at <= utcnow()]
    return await leases.claim(session, Feed, due, [col(Feed.next_poll_at)], owner, lease_seconds, limit)


def _clamp(moment: datetime | None, now: datetime) -> datetime | None:
    return min(moment, now) if moment else None


async def store_entries(session: AsyncSession, feed: Feed, parsed: ParsedFeed) -> list[int]:
    """Store the entries of ``parsed`` not seen before in ``feed``; return the new articles' ids.

    An entry already stored for this feed (same key) is skipped. An entry whose canonical link is an
    article already stored from another feed is attached to that article (one article, several
    entries). Every new article starts with the feed's own text (``text_source`` = ``feed``); those
    with a link wait for their page (``pending``), those without one keep it (``skipped``). Does not
    commit.
    """
    now = utcnow()
    outlet_id = await outlet_for(session, parsed.site_url or feed.url)
    new_ids: list[int] = []
    for entry in parsed.entries:
        known = await session.exec(select(Entry.id).where(Entry.feed_id == feed.id, Entry.entry_key == entry.key))
        if known.first() is not None:
            continue
        canonical = entry.key if entry.link else None
        values = _new_article(entry, canonical, feed, outlet_id, now).model_dump(exclude={"id"})
        # Insert-or-ignore rather than look-then-insert: another feed (in this process or another
        # replica) may store the same canonical URL at the same moment.
        article_id = await _insert_ignore(session, Article, values, ["canonical_url"])
        if article_id is None:
            article_id = (await session.exec(select(Article.id).where(Article.canonical_url == canonical))).one()
        else:
            new_ids.append(article_id)
        entry_row = {"feed_id": feed.id, "entry_key": entry.key, "guid": entry.guid, "link": entry.link,
                     "article_id": article_id, "first_seen_at": now}
        await _insert_ignore(session, Entry, entry_row, ["feed_id", "entry_key"])
    return new_ids


def _new_article(entry: ParsedEntry, canonical: str | None, feed: Feed, outlet_id: int | None, now: datetime) -> Article:
    published = _clamp(entry.published_at, now)
    status = ExtractionStatus.pending if entry.link else ExtractionStatus.skipped
    return Article(
        canonical_url=canonical,
        url=entry.link,
        feed_id=feed.id,
        outlet_id=outlet_id,
        guid=entry.guid,
        title=entry.title,
        summary=entry.summary_html,
        feed_content=entry.content_html,
        text=entry.text or None,
        text_source="feed" if entry.text else None,
        authors=entry.authors,
        published_at=published,
        updated_at=_clamp(entry.updated_at, now),
        first_seen_at=now,
        sort_at=published or now,
        language=entry.language,
        word_count=len(entry.text.split()),
        extraction_status=status,
        extraction_error="the entry has no link" if status == ExtractionStatus.skipped else None,
        next_fetch_at=now if status == ExtractionStatus.pending else None,
    )


def record_feed_success(feed: Feed, status: int, parsed: ParsedFeed | None, etag: str | None, last_modified: str | None, outlet_id: int | None) -> None:
    """Book a successful poll (200 with a parsed document, or 304 with ``parsed`` None) on ``feed``
    and release its lease. Does not commit."""
    now = utcnow()
    feed.last_polled_at = now
    feed.last_status = status
    feed.consecutive_failures = 0
    feed.state = FeedState.active
    feed.next_poll_at = now + timedelta(seconds=feed.poll_interval)
    if parsed is not None:
        feed.title = parsed.title or feed.title
        feed.site_url = parsed.site_url or feed.site_url
        feed.outlet_id = outlet_id or feed.outlet_id
        feed.last_error = parsed.warning
        feed.etag = etag
        feed.last_modified = last_modified
    leases.release(feed)


def record_feed_failure(feed: Feed, reason: str, status: int | None) -> None:
    """Book a failed poll: count it, keep the reason, back off exponentially with jitter
    (interval × 2^failures, at most a day, ±10 %), mark the feed ``failing`` after
    ``FAILING_AFTER`` failures in a row and ``gone`` on HTTP 410. Releases the lease; does not commit."""
    now = utcnow()
    feed.last_polled_at = now
    feed.last_status = status
    feed.last_error = reason
    feed.consecutive_failures += 1
    if status == 410:
        feed.state = FeedState.gone
    elif feed.consecutive_failures >= FAILING_AFTER:
        feed.state = FeedState.failing
    delay = min(feed.poll_interval * 2 ** min(feed.consecutive_failures, 16), MAX_BACKOFF)
    feed.next_poll_at = now + timedelta(seconds=delay * random.uniform(0.9, 1.1))
    leases.release(feed)


async def claim_pending_pages(
    session: AsyncSession, owner: str, lease_seconds: int, limit: int, feed_ids: list[int] | None = None
) -> list[Article]:
    """Lease up to ``limit`` articles whose page is due for fetching, oldest first, and commit.
    ``feed_ids`` restricts the claim to articles first seen in those feeds."""
    due = [Article.extraction_status == ExtractionStatus.pending, col(Article.next_fetch_at) <= utcnow()]
    if feed_ids is not None:
        due.append(col(Article.feed_id).in_(feed_ids))
    order = [col(Article.next_fetch_at), col(Article.id)]
    return await leases.claim(session, Article, due, order, owner, lease_seconds, limit)


async def record_extraction(session: AsyncSession, article: Article, page_url: str, extracted: ExtractedArticle) -> None:
    """Store the text and metadata extracted from ``article``'s page and release its lease.

    Precedence, field by field (the feed's values were stored with the entry):

    * ``title``, ``authors``: the feed's, else the page's (the feed states them explicitly and
      without site-name decoration; the page's are chosen among several candidates);
    * ``published_at``: the page's declared time (JSON-LD / ``<meta>``), else the feed's, else the
      page's htmldate guess; ``updated_at``: the page's, else the feed's. Never later than now;
    * ``language``: identified from the page text when confident, else the page's ``lang``, else
      the feed's (BL-32: a site-wide ``lang="en"`` or ``<language>`` must not beat the text);
    * ``canonical_url``: the page's ``rel=canonical``/``og:url`` unless another article holds it;
    * ``site_name``, ``image_url``, ``word_count``, ``content_hash``: the page's.

    A walled page (paywall, consent wall, script-only shell) never becomes the text: when the
    feed's own content is clearly the whole article (judged in the worker by ``extract_page``) that is stored
    with status ``ok``, ``text_source`` = ``feed`` and the wall as ``extraction_error``; otherwise
    the article is ``failed`` with the wall as reason and keeps the feed's text. Does not commit.
    """
    now = utcnow()
    article.title = article.title or extracted.title
    article.authors = article.authors or extracted.authors
    page_published = _clamp(extracted.published_at, now)
    if page_published is not None and (not extracted.published_guessed or article.published_at is None):
        article.published_at = page_published
        article.sort_at = page_published
    article.updated_at = _clamp(extracted.updated_at, now) or article.updated_at
    article.site_name = extracted.site_name
    article.image_url = extracted.image
    article.fetched_at = now
    if extracted.canonical_url:
        canonical = canonicalize(extracted.canonical_url)
        taken = await session.exec(select(Article.id).where(Article.canonical_url == canonical, Article.id != article.id))
        if taken.first() is None:
            article.canonical_url = canonical
    if extracted.wall:
        if extracted.feed_text and extracted.feed_text_complete:
            _set_text(article, extracted.feed_text, "feed")
            article.extraction_status = ExtractionStatus.ok
            article.extraction_error = f"{extracted.wall}; the feed's full content is used"
        else:
            article.extraction_status = ExtractionStatus.failed
            article.extraction_error = extracted.wall
        if extracted.language:
            article.language, article.language_confidence = extracted.language, extracted.language_confidence
    else:
        _set_text(article, extracted.text, "page")
        article.extraction_status = ExtractionStatus.ok
        article.extraction_error = None
        if extracted.language:
            article.language = extracted.language
            article.language_confidence = extracted.language_confidence
    leases.release(article)


def _set_text(article: Article, text: str, source: str) -> None:
    article.text = text
    article.text_source = source
    article.word_count = len(text.split())
    article.content_hash = content_hash(text)


def record_page_failure(article: Article, reason: str, *, retry_in: float | None) -> None:
    """Book a page that could not be fetched or extracted.

    With ``retry_in`` (seconds) the page stays ``pending`` and is tried again then; without it the
    article is marked ``failed`` with ``reason`` and keeps the feed's own content or summary as its
    text (stored with the entry, ``text_source`` = ``feed``). Releases the lease; does not commit.
    """
    now = utcnow()
    article.fetch_attempts += 1
    article.extraction_error = reason
    if retry_in is not None:
        article.next_fetch_at = now + timedelta(seconds=retry_in)
    else:
        article.extraction_status = ExtractionStatus.failed
        article.next_fetch_at = None
    leases.release(article)
