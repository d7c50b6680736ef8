"""Database side of ingestion: claiming due feeds and pending pages with a lease, storing new
entries once, and recording the outcome of each poll and each page.

Claims go through ``service.leases`` (``SELECT … FOR UPDATE SKIP LOCKED`` with a lease), so several
processes share the work without taking the same row, and a dead process's rows become due again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service import leases
from service.config import Settings
from service.db import dialect_insert
from service.ingest import schedule
from service.ingest.hosts import host_key
from service.ingest.entries import ParsedEntry, ParsedFeed
from service.ingest.extractor import ExtractedArticle, content_hash
from service.ingest.text import clip_title
from service.ingest.urls import canonicalize, dedup_key, fits, outlet_domain, url_variants
from service.models import Article, Entry, ExtractionStatus, Feed, FeedState, Outlet, utcnow


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


async def claim_due_feeds(
    session: AsyncSession, owner: str, lease_seconds: int, limit: int, room: Callable[[str], int] | None = None
) -> list[Feed]:
    """Lease up to ``limit`` polled feeds whose next poll time has passed, oldest due first, and commit;
    at most ``room(host)`` feeds of one host when ``room`` is given."""
    due = [col(Feed.state).in_([FeedState.active, FeedState.failing]), Feed.next_poll_at <= utcnow()]
    spread = (Feed.url, host_key)  # one host's backlog must not hold up the others
    return await leases.claim(
        session, Feed, due, [col(Feed.next_poll_at)], owner, lease_seconds, limit, spread_by=spread, room=room
    )


def _clamp(moment: datetime | None, now: datetime) -> datetime | None:
    return min(moment, now) if moment else None


async def store_entries(session: AsyncSession, feed: Feed, parsed: ParsedFeed) -> list[int]:
    """Store the entries of ``parsed`` not seen before in ``feed``; return the new articles' ids.

    Identity (``entries.entry_key``): the GUID, else the link, else title and date. An entry already
    stored for this feed updates its article when its title or summary was edited (only from the
    article's own feed) and upgrades an ``http`` URL to ``https``. An entry with an unseen key whose
    link is the article of an entry of this feed that is no longer in the document is the same
    item with a changed GUID: that entry is re-keyed, not duplicated. An entry whose link
    (http or https, with or without trailing slash, AMP variants removed) is an article already
    stored from another feed is attached to that article. Every new article starts with the feed's
    own text (``text_source`` = ``feed``); those with a link wait for their page (``pending``),
    those without one keep it (``skipped``). Does not commit.
    """
    now = utcnow()
    outlet_id = await outlet_for(session, parsed.site_url or feed.url)
    keys_in_document = {entry.key for entry in parsed.entries}
    new_ids: list[int] = []
    seen: set[str] = set()
    for entry in parsed.entries:
        if entry.key in seen:  # the same item twice in one document
            continue
        seen.add(entry.key)
        canonical = canonicalize(entry.link) if entry.link else None
        known = (await session.exec(select(Entry).where(Entry.feed_id == feed.id, Entry.entry_key == entry.key))).first()
        if known is not None:
            await _update_article(session, known.article_id, feed, entry, canonical, now)
            continue
        found = await _stored_article(session, entry.link) if entry.link else None
        if found is not None:
            moved = (await session.exec(select(Entry).where(
                Entry.feed_id == feed.id, Entry.article_id == found.id, col(Entry.entry_key).not_in(keys_in_document)
            ))).first()
            if moved is not None:  # the GUID changed, the link did not (BL-13): same item
                moved.entry_key, moved.guid = entry.key, entry.guid
                await _update_article(session, found.id, feed, entry, canonical, now)
                continue
            article_id = found.id
            _prefer_https(found, entry.link, canonical)
        else:
            article_id, created = await _insert_article(session, _new_article(entry, canonical, feed, outlet_id, now))
            if created:
                new_ids.append(article_id)
        session.add(Entry(feed_id=feed.id, entry_key=entry.key, guid=entry.guid, link=canonical, article_id=article_id))
        await session.flush()
    return new_ids


async def _stored_article(session: AsyncSession, link: str) -> Article | None:
    """The article already stored under ``link``: by its dedup key, else by any of its canonical
    variants. Two lookups, each an equality on its own unique index (``url_key``, then
    ``canonical_url``), rather than one ``OR``; on PostgreSQL both rely on plans made for their
    parameters (``service.db.create_engine``: a cached generic plan made while ``articles`` was
    nearly empty scanned the table for every entry)."""
    found = (await session.exec(select(Article).where(Article.url_key == dedup_key(link)))).first()
    if found is None:
        found = (await session.exec(select(Article).where(col(Article.canonical_url).in_(url_variants(link))))).first()
    return found


async def _insert_article(session: AsyncSession, article: Article) -> tuple[int, bool]:
    """Insert ``article`` unless another transaction (a replica, or a feed polled at the same time)
    has just stored its canonical URL; returns ``(id, created)``."""
    values = {k: v for k, v in article.model_dump().items() if k != "id"}
    statement = dialect_insert(session)(Article).values(**values).on_conflict_do_nothing()  # canonical_url or url_key taken
    inserted = (await session.exec(statement.returning(Article.id))).first()
    if inserted is not None:
        return inserted[0], True
    existing = (await session.exec(select(Article.id).where(
        sa.or_(Article.canonical_url == article.canonical_url, Article.url_key == article.url_key)
    ))).first()
    if existing is None:  # pragma: no cover - a conflict we cannot see: let the caller's guard record it
        raise RuntimeError(f"article {article.canonical_url} conflicts but cannot be found")
    return existing, False


def _prefer_https(article: Article, link: str | None, canonical: str | None) -> None:
    """Store the https form of an article first seen over http (BL-16)."""
    if not link or not canonical or not canonical.startswith("https://"):
        return
    if article.canonical_url and article.canonical_url.startswith("http://") and (
        article.canonical_url[len("http://"):] == canonical[len("https://"):]
    ):
        article.canonical_url = canonical
    if article.url and article.url.startswith("http://") and link.startswith("https://"):
        article.url = link


async def _update_article(
    session: AsyncSession, article_id: int, feed: Feed, entry: ParsedEntry, canonical: str | None, now: datetime
) -> None:
    article = await session.get(Article, article_id)
    if article is None:
        return
    _prefer_https(article, entry.link, canonical)
    if article.feed_id != feed.id:
        return
    if entry.title and entry.title != article.title:
        article.title = entry.title
    if entry.summary_html and entry.summary_html != article.summary:
        article.summary = entry.summary_html
    if entry.updated_at and entry.updated_at != article.updated_at:
        article.updated_at = _clamp(entry.updated_at, now)


def _new_article(entry: ParsedEntry, canonical: str | None, feed: Feed, outlet_id: int | None, now: datetime) -> Article:
    published = _clamp(entry.published_at, now)
    status = ExtractionStatus.pending if entry.link else ExtractionStatus.skipped
    return Article(
        canonical_url=canonical,
        url_key=dedup_key(entry.link) if entry.link else None,
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
        published_raw=entry.published_raw,
        updated_at=_clamp(entry.updated_at, now),
        first_seen_at=now,
        sort_at=published or now,
        language=entry.language,
        word_count=len(entry.text.split()),
        extraction_status=status,
        extraction_error=(f"the entry's link cannot be fetched: {entry.link_refused}" if entry.link_refused
                          else "the entry has no link") if status == ExtractionStatus.skipped else None,
        next_fetch_at=now if status == ExtractionStatus.pending else None,
    )


def record_feed_success(
    feed: Feed, settings: Settings, status: int, parsed: ParsedFeed | None, headers: dict[str, str] | None = None,
    outlet_id: int | None = None, content_hash: str | None = None,
) -> None:
    """Book a successful poll on ``feed`` and release its lease: a 200 with a parsed document, a 304,
    or a 200 whose body is byte-identical to the last one (``parsed`` None for both).

    Validators are updated from every response that carries them, 200 or 304 (RFC 9110 §13.1;
    a 304 may bring a new ETag), and kept when a response omits them. The next poll is scheduled by
    ``schedule.next_interval`` (entry dates, Cache-Control max-age, RSS ttl / sy:update*). Does not
    commit."""
    now = utcnow()
    headers = headers or {}
    feed.last_polled_at = now
    feed.last_status = status
    feed.consecutive_failures = 0
    feed.state = FeedState.active
    feed.etag = headers.get("etag") or feed.etag
    feed.last_modified = headers.get("last-modified") or feed.last_modified
    dates: list[datetime | None] = []
    if parsed is not None:
        feed.title = feed.title or parsed.title  # a title the user gave (OPML import) wins
        feed.site_url = parsed.site_url or feed.site_url
        feed.outlet_id = outlet_id or feed.outlet_id
        feed.last_error = parsed.warning
        feed.content_hash = content_hash
        dates = [e.published_at or e.updated_at for e in parsed.entries]
    elif status != 304:
        feed.last_error = None
    feed.poll_interval = schedule.next_interval(
        settings, entry_dates=dates, now=now, max_age=schedule.cache_max_age(headers.get("cache-control")),
        ttl=parsed.ttl if parsed else None, current=feed.poll_interval,
    )
    feed.next_poll_at = now + timedelta(seconds=feed.poll_interval)
    leases.release(feed)


def record_feed_failure(
    feed: Feed, settings: Settings, reason: str, status: int | None, retry_after: float | None = None
) -> None:
    """Book a failed poll: count it, keep the reason, and schedule a retry with
    ``schedule.failure_delay`` (Retry-After if given, else exponential backoff with jitter). The
    feed shows as ``failing`` after ``settings.failing_after`` failures in a row and ``gone`` on
    HTTP 410 (no longer polled). Releases the lease; does not commit."""
    now = utcnow()
    feed.last_polled_at = now
    feed.last_status = status
    feed.last_error = reason
    feed.consecutive_failures += 1
    if status == 410:
        feed.state = FeedState.gone
    elif feed.consecutive_failures >= settings.failing_after:
        feed.state = FeedState.failing
    delay = schedule.failure_delay(settings, feed.consecutive_failures, retry_after)
    feed.next_poll_at = now + timedelta(seconds=delay)
    leases.release(feed)


def defer(feed: Feed, until: datetime) -> None:
    """Put off a claimed feed without counting a failure (its host asked us to wait); releases it."""
    feed.next_poll_at = max(feed.next_poll_at, until)
    leases.release(feed)


async def defer_host(session: AsyncSession, host: str, until: datetime, exclude: Iterable[int] = ()) -> None:
    """Make every feed on ``host`` due no earlier than ``until`` (Retry-After applies to the host,
    so the other feeds of a rate-limiting server wait too, in every replica). Does not commit."""
    patterns = [f"{scheme}://{host}{end}" for scheme in ("http", "https") for end in ("/%", ":%")]
    await session.exec(
        sa.update(Feed)
        .where(sa.or_(*(col(Feed.url).like(p) for p in patterns)), Feed.next_poll_at < until,
               col(Feed.id).not_in(list(exclude)))
        .values(next_poll_at=until)
    )


async def spread_overdue(session: AsyncSession, settings: Settings) -> int:
    """Spread feeds that are already due over the next ``poll_spread`` seconds (at start-up, so a
    restart does not hit every host at once). Returns how many were moved; commits."""
    now = utcnow()
    ids = (await session.exec(select(Feed.id).where(Feed.next_poll_at <= now,
                                                    col(Feed.state).in_([FeedState.active, FeedState.failing])))).all()
    for feed_id in ids:
        await session.exec(sa.update(Feed).where(Feed.id == feed_id).values(
            next_poll_at=now + timedelta(seconds=schedule.first_poll_offset(settings))))
    await session.commit()
    return len(ids)


async def move_feed(session: AsyncSession, feed: Feed, new_url: str) -> bool:
    """Update ``feed``'s URL after a permanent redirect (301/308). Returns False (and keeps the old
    URL) when another feed already has the new one. Does not commit."""
    canonical = canonicalize(new_url)
    if canonical == feed.url:
        return False
    taken = (await session.exec(select(Feed.id).where(Feed.url == canonical, Feed.id != feed.id))).first()
    if taken is not None:
        return False
    feed.url = canonical
    return True


async def claim_pending_pages(
    session: AsyncSession, owner: str, lease_seconds: int, limit: int, feed_ids: list[int] | None = None,
    room: Callable[[str], int] | None = None,
) -> list[Article]:
    """Lease up to ``limit`` articles whose page is due for fetching, oldest first, and commit.
    ``feed_ids`` restricts the claim to articles first seen in those feeds; ``room(host)`` caps the
    articles of one host when given."""
    due = [Article.extraction_status == ExtractionStatus.pending, col(Article.next_fetch_at) <= utcnow()]
    if feed_ids is not None:
        due.append(col(Article.feed_id).in_(feed_ids))
    order = [col(Article.next_fetch_at), col(Article.id)]
    spread = (Article.url, host_key)
    return await leases.claim(session, Article, due, order, owner, lease_seconds, limit, spread_by=spread, room=room)


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
    article.title = article.title or clip_title(extracted.title)
    article.authors = article.authors or extracted.authors
    page_published = _clamp(extracted.published_at, now)
    if page_published is not None and (not extracted.published_guessed or article.published_at is None):
        article.published_at = page_published
        article.sort_at = page_published
    article.updated_at = _clamp(extracted.updated_at, now) or article.updated_at
    article.site_name = extracted.site_name
    article.image_url = extracted.image
    article.fetched_at = now
    if extracted.canonical_url and fits(extracted.canonical_url):
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
