"""Subscribing to feeds: shared by the API (``POST /v1/feeds``) and the CLI (``newsloom feeds add``)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.ingest import store
from service.ingest.urls import canonicalize, check_fetchable
from service.models import Entry, Feed, Outlet, utcnow


async def add_feed(session: AsyncSession, url: str, poll_interval: int) -> tuple[Feed, bool]:
    """Subscribe to the feed at ``url``, due for its first poll at once, and commit.

    Returns ``(feed, True)`` for a new subscription and ``(existing_feed, False)`` when the canonical
    form of ``url`` is already subscribed. Raises ``service.ingest.urls.InvalidURL`` for anything but
    an absolute http(s) URL.
    """
    canonical = canonicalize(check_fetchable(url))
    existing = (await session.exec(select(Feed).where(Feed.url == canonical))).first()
    if existing is not None:
        return existing, False
    feed = Feed(url=canonical, poll_interval=poll_interval, next_poll_at=utcnow())
    feed.outlet_id = await store.outlet_for(session, canonical)
    session.add(feed)
    try:
        await session.commit()
    except sa.exc.IntegrityError:  # another request subscribed the same URL a moment ago
        await session.rollback()
        return (await session.exec(select(Feed).where(Feed.url == canonical))).one(), False
    await session.refresh(feed)
    return feed, True


async def feed_rows(session: AsyncSession, feed_id: int | None = None) -> list[tuple[Feed, str | None, int]]:
    """Feeds (all, or the one with ``feed_id``) ordered by id, each with its outlet's domain and the
    number of articles seen in it."""
    counts = (
        select(Entry.feed_id, func.count(col(Entry.id)).label("n")).group_by(col(Entry.feed_id)).subquery()
    )
    query = (
        select(Feed, Outlet.domain, func.coalesce(counts.c.n, 0))
        .join(Outlet, col(Outlet.id) == col(Feed.outlet_id), isouter=True)
        .join(counts, counts.c.feed_id == col(Feed.id), isouter=True)
        .order_by(col(Feed.id))
    )
    if feed_id is not None:
        query = query.where(Feed.id == feed_id)
    return [(feed, domain, int(count)) for feed, domain, count in (await session.exec(query)).all()]
