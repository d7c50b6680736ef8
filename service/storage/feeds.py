"""Feeds: when a feed is due, claiming due feeds with a lease, and booking each poll's outcome
(a new document with its entries, a 304, a failure, a move), with its schedule."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.config import Settings
from service.ingest import schedule
from service.ingest.feeds.entries import ParsedFeed
from service.models import Article, Entry, ExtractionStatus, Feed, FeedState, Outlet, table_of, utcnow
from service.net.hosts import host_key
from service.net.urls import canonicalize, without_userinfo
from service.storage import leases
from service.storage.articles import outlet_for, store_entries


def feed_is_due(now: datetime | sa.BindParameter) -> list[sa.ColumnElement[bool]]:
    """The conditions of a feed due for a poll at ``now`` (UTC, or a bound parameter): it is polled
    (``active`` or ``failing``; ``paused`` and ``gone`` are not) and its next poll time has passed.
    The claim, the CLI's progress total and the ``newsloom_feeds_due`` gauge all count with these."""
    return [col(Feed.state).in_([FeedState.active, FeedState.failing]), col(Feed.next_poll_at) <= now]


def lease_due_feeds(
    session: Session, owner: str, lease_seconds: float, limit: int, room: Callable[[str], int] | None = None
) -> list[Feed]:
    """Lease to ``owner`` for ``lease_seconds`` seconds up to ``limit`` polled feeds whose next poll
    time has passed and that nobody else holds, oldest due first, taking turns between hosts and
    at most ``room(host)`` feeds of one host when ``room`` is given (as ``leases.claim`` with
    ``spread_by``: one host's backlog must not hold up the others; ``SELECT … FOR UPDATE SKIP
    LOCKED`` on PostgreSQL). Returns them in that order. Does not commit; two statements built
    once (``_DUE_FEEDS`` and the lease stamp; ``leases.claim_rows``), one when nothing is due. For
    the poller's ``Writer`` (one hand-off to its thread on SQLite; through aiosqlite a claim was ten)."""
    return leases.claim_rows(session, Feed, _DUE_FEEDS, utcnow(), owner, lease_seconds, limit, spread=host_key, room=room)


_DUE_FEEDS = leases.due_query(Feed, feed_is_due(sa.bindparam("now", type_=table_of(Feed).c.next_poll_at.type)),
                              [col(Feed.next_poll_at)], spread_column=col(Feed.url))
"""``lease_due_feeds``'s read of the due feeds nobody holds (ids and URLs, ``:read`` of them, at
``:now``), built once."""


@dataclass
class Booked:
    """What ``book_document`` wrote: ``found`` False when the feed was deleted meanwhile (nothing
    written); ``new_ids`` the new articles' ids; ``moved`` True when the feed's URL was changed."""

    found: bool
    new_ids: list[int]
    moved: bool = False


def _success_statements() -> tuple[sa.Select, sa.Update]:
    """``book_document``'s read of the feed row (locked until the transaction ends on PostgreSQL, so
    the override it reads is the one the UPDATE finds), and the UPDATE that books a successful poll
    (``book_document``, ``record_unchanged``), built once on the table (Core: no ORM identity map
    or flush; a statement reused is compiled from SQLAlchemy's cache without a walk for its cache
    key, about 0.2 ms a statement).

    The UPDATE writes nothing unless the feed's ``poll_interval_override`` is still ``:override``
    (the interval was computed from it). It releases the lease, counts no failure, leaves a paused
    feed (polled on request) paused, and keeps what the response or document does not bring:
    validators absent from the response (RFC 9110 §13.1: a 304 may bring a new ETag), a title the
    user gave (OPML import: it wins over the feed's), the site URL, outlet, content hash and URL
    when None is given, and ``last_error`` when ``:keep_error`` (a 304)."""
    table, bind = table_of(Feed), sa.bindparam
    read = sa.select(table.c.id, table.c.url, table.c.content_hash, table.c.poll_interval,
                     table.c.poll_interval_override).where(table.c.id == bind("feed_id")).with_for_update()
    update = (
        sa.update(table)
        .where(table.c.id == bind("feed_id"), table.c.poll_interval_override.is_not_distinct_from(bind("override")))
        .values(
            last_polled_at=bind("now"), last_status=bind("status"), consecutive_failures=0,
            state=sa.case((table.c.state == FeedState.paused.value, table.c.state), else_=sa.literal(FeedState.active.value)),
            poll_interval=bind("interval"), next_poll_at=bind("next_poll_at"), lease_owner=None, lease_until=None,
            etag=sa.func.coalesce(bind("etag", type_=sa.String), table.c.etag),
            last_modified=sa.func.coalesce(bind("last_modified", type_=sa.String), table.c.last_modified),
            last_error=sa.case((bind("keep_error", type_=sa.Boolean), table.c.last_error), else_=bind("last_error", type_=sa.String)),
            title=sa.case((sa.or_(table.c.title.is_(None), table.c.title == ""), bind("title", type_=sa.String)),
                          else_=table.c.title),
            site_url=sa.func.coalesce(bind("site_url", type_=sa.String), table.c.site_url),
            outlet_id=sa.func.coalesce(bind("outlet_id", type_=sa.Integer), table.c.outlet_id),
            content_hash=sa.func.coalesce(bind("content_hash", type_=sa.String), table.c.content_hash),
            url=sa.func.coalesce(bind("url", type_=sa.String), table.c.url),
            url_key=sa.case((bind("url", type_=sa.String).is_(None), table.c.url_key), else_=bind("url_key", type_=sa.String)),
        )
    )
    return read, update


_READ_FEED, _BOOK_SUCCESS = _success_statements()


def _success_row(
    feed_id: int, override: int | None, interval: int, status: int, headers: dict[str, str], now: datetime,
    parsed: ParsedFeed | None = None, outlet_id: int | None = None, content_hash: str | None = None,
    url: str | None = None,
) -> dict:
    """``_BOOK_SUCCESS``'s parameters for the feed ``feed_id`` (see ``_success_statements``): polled
    at ``now``, next in ``interval`` seconds; ``parsed``'s fields when a document was parsed."""
    return {
        "feed_id": feed_id, "override": override, "now": now, "status": status, "interval": interval,
        "next_poll_at": now + timedelta(seconds=interval),
        "etag": headers.get("etag") or None, "last_modified": headers.get("last-modified") or None,
        "keep_error": parsed is None and status == 304, "last_error": parsed.warning if parsed is not None else None,
        "title": parsed.title if parsed is not None else None,
        "site_url": (parsed.site_url or None) if parsed is not None else None,
        "outlet_id": outlet_id, "content_hash": content_hash if parsed is not None else None, "url": url,
        "url_key": url and without_userinfo(url),
    }


def _book_success(session: Session, row: dict) -> bool:
    """Run ``_BOOK_SUCCESS`` with ``row`` (``_success_row``). False when nothing was written (the
    feed is gone, or its override is no longer the row's ``override``)."""
    result: sa.CursorResult = session.execute(_BOOK_SUCCESS, row)  # type: ignore[assignment]  # an UPDATE's result has rowcount
    return result.rowcount == 1


def book_document(
    session: Session, feed_id: int, settings: Settings, status: int, parsed: ParsedFeed | None,
    headers: dict[str, str], content_hash: str | None, moved_to: str | None,
) -> Booked:
    """Store a fetched document of the feed ``feed_id`` and book the poll on the feed's current row,
    in the caller's transaction: the new entries of ``parsed`` (``store_entries``, in the outlet of
    the document's site), a permanent redirect to ``moved_to`` (``move_feed``; None: none) and the
    feed's state, releasing its lease: validators from the response when it has them (RFC 9110
    §13.1), the next poll from ``schedule.next_interval`` (entry dates, Cache-Control max-age, RSS
    ttl) or the user's ``poll_interval_override``, a paused feed (polled on request) left paused;
    with ``parsed``, its title (unless the feed has one), site URL, outlet, warning as
    ``last_error`` and ``content_hash`` (the SHA-256 hex digest of the parsed body). ``parsed``
    None books an unchanged document (a 304, or the same bytes as last time) that
    ``record_unchanged`` could not book. ``headers``: the response's ``etag``, ``last-modified`` and
    ``cache-control``. A constant number of statements whatever the document's size. Does not commit."""
    current = session.execute(_READ_FEED, {"feed_id": feed_id}).first()
    if current is None:  # deleted while we were fetching
        return Booked(found=False, new_ids=[])
    outlet_id, new_ids = None, []
    if parsed is not None:
        outlet_id = outlet_for(session, parsed.site_url or current.url)
        new_ids = store_entries(session, current, parsed, outlet_id)
    moved = move_feed(session, feed_id, current.url, moved_to) if moved_to else None
    interval = _next_interval(current.poll_interval, current.poll_interval_override, settings, utcnow(), headers, parsed)
    while not _book_success(session, _success_row(feed_id, current.poll_interval_override, interval, status, headers,
                                                  utcnow(), parsed, outlet_id, content_hash, moved)):
        # The override changed since the read (on SQLite the read takes no lock): book on the row as it is now.
        current = session.execute(_READ_FEED, {"feed_id": feed_id}).first()
        if current is None:
            return Booked(found=False, new_ids=new_ids)
        interval = _next_interval(current.poll_interval, current.poll_interval_override, settings, utcnow(), headers, parsed)
    return Booked(found=True, new_ids=new_ids, moved=moved is not None)


def _next_interval(
    current: int, override: int | None, settings: Settings, now: datetime, headers: dict[str, str], parsed: ParsedFeed | None
) -> int:
    """Seconds until a feed's next poll after a successful one at ``now``: the user's ``override``,
    else ``schedule.next_interval`` from the document's entry dates and ttl (none for ``parsed``
    None), the response's Cache-Control ``headers`` and the ``current`` interval."""
    dates = [e.published_at or e.updated_at for e in parsed.entries] if parsed is not None else []
    return override or schedule.next_interval(
        settings, entry_dates=dates, now=now, max_age=schedule.cache_max_age(headers.get("cache-control")),
        ttl=parsed.ttl if parsed else None, current=current,
    )


def record_unchanged(session: Session, polls: Sequence[tuple[Feed, int, dict[str, str]]], settings: Settings) -> set[int]:
    """Book polls that brought nothing new — a 304, or a 200 whose body is byte-identical to the
    last one parsed — as ``book_document`` would with ``parsed`` None, releasing the leases: one
    UPDATE statement run for all ``polls`` (an executemany), then, unless the driver counted every
    row written (SQLite does; asyncpg counts no executemany's), one read of their overrides.
    ``polls``: ``(feed, status, headers)`` for each claimed ``feed`` (the row as claimed: the
    interval is computed from its ``poll_interval`` and ``poll_interval_override``), the response's
    HTTP ``status`` and ``headers`` (``etag``, ``last-modified``, ``cache-control``, lower-case
    names, those present).

    Returns the ids of the feeds not booked: those gone, and those whose override changed since
    the claim (a user's edit; nothing is written for them); the caller books each of those from its
    current row (``book_document``). A paused feed stays paused. Does not commit."""
    now = utcnow()
    rows = [_success_row(feed.id, feed.poll_interval_override,
                         _next_interval(feed.poll_interval, feed.poll_interval_override, settings, now, headers, None),
                         status, headers, now) for feed, status, headers in polls]
    result: sa.CursorResult = session.execute(_BOOK_SUCCESS, rows)  # type: ignore[assignment]  # an UPDATE's result has rowcount
    if result.rowcount == len(rows) and (len(rows) == 1 or session.get_bind().dialect.supports_sane_multi_rowcount):
        return set()  # all booked (asyncpg counts no executemany's rows: read them back)
    overrides = dict(session.execute(_OVERRIDES, {"ids": [row["feed_id"] for row in rows]}).all())
    return {feed.id for feed, _status, _headers in polls
            if feed.id not in overrides or overrides[feed.id] != feed.poll_interval_override}


_OVERRIDES = sa.select(table_of(Feed).c.id, table_of(Feed).c.poll_interval_override).where(
    table_of(Feed).c.id.in_(sa.bindparam("ids", expanding=True)))
"""``record_unchanged``'s read of the ``:ids`` feeds' overrides, built once."""


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
    elif feed.state == FeedState.paused:
        pass  # polled on request: stays paused
    elif feed.consecutive_failures >= settings.failing_after:
        feed.state = FeedState.failing
    delay = schedule.failure_delay(settings, feed.consecutive_failures, retry_after)
    feed.next_poll_at = now + timedelta(seconds=delay)
    leases.release(feed)


def defer(feed: Feed, until: datetime) -> None:
    """Put off a claimed feed without counting a failure (its host asked us to wait); releases it."""
    feed.next_poll_at = max(feed.next_poll_at, until)
    leases.release(feed)


async def book_deferral(session: AsyncSession, feed_id: int, until: datetime) -> None:
    """``defer`` the current row of the claimed feed ``feed_id`` to ``until`` (UTC); nothing when
    the feed was deleted meanwhile. Does not commit."""
    current = await session.get(Feed, feed_id)
    if current is not None:
        defer(current, until)


async def book_failure(
    session: AsyncSession, feed_id: int, settings: Settings, reason: str, status: int | None,
    retry_after: float | None = None, host: str | None = None,
) -> None:
    """Book a failed poll (``record_feed_failure``) on the current row of the claimed feed
    ``feed_id``; nothing when it was deleted meanwhile. With ``retry_after`` (seconds) and the
    feed's ``host`` (``hosts.host_key``), the host's other feeds wait as long (``defer_host``).
    Does not commit."""
    current = await session.get(Feed, feed_id)
    if current is None:
        return
    record_feed_failure(current, settings, reason, status, retry_after)
    if retry_after is not None and host:
        await defer_host(session, host, current.next_poll_at, exclude=[feed_id])


async def next_poll_at(session: AsyncSession) -> datetime | None:
    """The earliest next poll time (UTC) of the polled feeds (``active``, ``failing``) nobody holds
    a lease on, past or future; None when there is none. Read-only (ends its transaction)."""
    return await leases.next_due(session, Feed, [col(Feed.state).in_([FeedState.active, FeedState.failing])],
                                 Feed.next_poll_at)


async def defer_host(session: AsyncSession, host: str, until: datetime, exclude: Iterable[int] = ()) -> None:
    """Make every feed on ``host`` due no earlier than ``until`` (Retry-After applies to the host,
    so the other feeds of a rate-limiting server wait too, in every replica). Does not commit."""
    patterns = [f"{scheme}://{host}{end}" for scheme in ("http", "https") for end in ("/%", ":%")]
    await session.exec(
        sa.update(Feed)
        .where(sa.or_(*(col(Feed.url).like(p) for p in patterns)), col(Feed.next_poll_at) < until,
               col(Feed.id).not_in(list(exclude)))
        .values(next_poll_at=until)
    )


async def spread_overdue(session: AsyncSession, settings: Settings) -> int:
    """Spread feeds that are already due over the next ``poll_spread`` seconds (at start-up, so a
    restart does not hit every host at once). Returns how many were moved; commits."""
    now = utcnow()
    ids = (await session.exec(select(Feed.id).where(Feed.next_poll_at <= now,
                                                    col(Feed.state).in_([FeedState.active, FeedState.failing])))).all()
    if ids:  # one executemany UPDATE, each feed with its own random offset
        table = table_of(Feed)
        await session.exec(
            sa.update(table).where(table.c.id == sa.bindparam("feed_id"))
            .values(next_poll_at=sa.bindparam("moment", type_=table.c.next_poll_at.type)),
            params=[{"feed_id": i, "moment": now + timedelta(seconds=schedule.first_poll_offset(settings))} for i in ids],
        )
    await session.commit()
    return len(ids)


def move_feed(session: Session, feed_id: int, url: str, new_url: str) -> str | None:
    """The URL the feed ``feed_id``, now at ``url``, takes after a permanent redirect (301/308) to
    ``new_url``: its canonical form, or None (the feed keeps ``url``) when that is ``url`` or
    another feed has it already, with any credentials (``url_key``). Reads only; the caller writes it."""
    canonical = canonicalize(new_url)
    if canonical == url:
        return None
    taken = session.scalars(select(Feed.id).where(sa.or_(col(Feed.url) == canonical, col(Feed.url_key) == without_userinfo(canonical)),
                                                  Feed.id != feed_id)).first()
    return None if taken is not None else canonical


# -- subscriptions and the API's read side ------------------------------------------------------------


async def get(session: AsyncSession, feed_id: int) -> Feed | None:
    """The feed ``feed_id``, or None."""
    return await session.get(Feed, feed_id)


async def reread(session: AsyncSession, feed: Feed) -> None:
    """Load ``feed``'s row again (another transaction, a poll, has changed it)."""
    await session.refresh(feed)


async def remove(session: AsyncSession, feed: Feed) -> None:
    """Delete ``feed`` (its entries go with it; the articles stay) and commit. An article first seen
    in it is handed to the remaining feed that listed it first (earliest entry, then lowest feed
    id), so its ``feed_id`` stays a feed that lists it; an article no other feed lists keeps none
    (null) until a feed lists it again (``store_entries``)."""
    entries, articles = table_of(Entry), table_of(Article)
    others = sa.select(entries.c.feed_id).where(entries.c.article_id == articles.c.id, entries.c.feed_id != feed.id)
    heir = others.order_by(entries.c.first_seen_at, entries.c.feed_id).limit(1).scalar_subquery()
    # Only the articles another feed lists: the rest are set null by the foreign key (ON DELETE SET NULL).
    await session.exec(sa.update(articles).where(articles.c.feed_id == feed.id, others.exists()).values(feed_id=heir))
    await session.delete(feed)
    await session.commit()


async def missing(session: AsyncSession, feed_ids: Iterable[int]) -> list[int]:
    """The ids among ``feed_ids`` that name no feed, ascending (a webhook filter's ``feeds``)."""
    wanted = set(feed_ids)
    if not wanted:
        return []
    found = set((await session.exec(select(col(Feed.id)).where(col(Feed.id).in_(wanted)))).all())
    return sorted(wanted - found)


async def claim_one(session: AsyncSession, feed_id: int, owner: str | None, lease_seconds: float) -> Feed | None:
    """Lease the feed ``feed_id`` now, due or not (a refresh asked for by hand), and commit; None
    when another claimer holds it."""
    claimed = await leases.claim(session, Feed, [col(Feed.id) == feed_id], [col(Feed.id)], owner, lease_seconds, 1)
    return claimed[0] if claimed else None


async def by_url(session: AsyncSession, canonical: str) -> Feed | None:
    """The feed subscribed under the canonical URL ``canonical`` (``urls.canonicalize``) whatever
    credentials either carries (``user:password@``, RFC 3986 §3.2.1), or None: credentials are how
    a private feed is fetched, not which feed it is, so ``https://user:pw@host/feed``,
    ``https://other:pw@host/feed`` and ``https://host/feed`` are one subscription. The feed stored
    under ``canonical`` itself comes first. One SELECT: the URL, or any URL of that scheme ending
    ``@`` and the rest (``LIKE``, narrowed here by comparing ``urls.without_userinfo`` exactly)."""
    bare = without_userinfo(canonical)
    scheme, _, rest = bare.partition("://")
    escaped = "".join("\\" + c if c in "\\%_" else c for c in rest)
    rows = (await session.exec(select(Feed).where(sa.or_(
        col(Feed.url).in_({canonical, bare}), col(Feed.url).like(f"{scheme}://%@{escaped}", escape="\\"))))).all()
    return next((f for f in rows if f.url == canonical), None) or next((f for f in rows if without_userinfo(f.url) == bare), None)


async def set_url(session: AsyncSession, feed: Feed, url: str) -> None:
    """Store ``url`` (canonical; the feed's URL with other credentials) as ``feed``'s and commit."""
    feed.url, feed.url_key = url, without_userinfo(url)
    await session.commit()


async def add(session: AsyncSession, feed: Feed) -> tuple[Feed, bool]:
    """Store the new ``feed`` (its URL canonical) with the outlet of its URL, and commit. Returns
    ``(feed, True)``, or ``(existing, False)`` when another transaction subscribed the same feed
    first: the same URL, or the same but for credentials (``url_key``, the URL without
    ``user:password@``, is unique: two subscriptions racing past ``by_url`` store one feed)."""
    feed.url_key = without_userinfo(feed.url)
    feed.outlet_id = await session.run_sync(outlet_for, feed.url)
    session.add(feed)
    try:
        await session.commit()
    except sa.exc.IntegrityError:
        await session.rollback()
        existing = await by_url(session, feed.url)
        if existing is None:  # not the URL's uniqueness that refused it, or that feed is gone again
            raise
        return existing, False
    await session.refresh(feed)
    return feed, True


async def listed(session: AsyncSession, feed_id: int | None = None) -> list[tuple[Feed, str | None, int, int]]:
    """Feeds (all, or the one with ``feed_id``) ordered by id, each with its outlet's domain, the
    number of distinct articles seen in it (two entries linking one article count once, as
    ``GET /v1/articles?feed_id=`` lists it once) and how many of those have their page still to
    fetch and extract (``pending``; a page waits for its host's turn, ``NEWSLOOM_HOST_MIN_GAP``
    apart). One statement: grouped counts of ``entries`` (the pending ones found through the
    page queue's index) joined to the feeds."""
    counts = (
        select(Entry.feed_id, sa.func.count(sa.func.distinct(col(Entry.article_id))).label("n"))
        .group_by(col(Entry.feed_id))
        .subquery()
    )
    pending = (
        select(Entry.feed_id, sa.func.count(sa.func.distinct(col(Entry.article_id))).label("n"))
        .join(Article, col(Article.id) == col(Entry.article_id))
        .where(col(Article.extraction_status) == ExtractionStatus.pending)
        .group_by(col(Entry.feed_id))
        .subquery()
    )
    query = (
        select(Feed, Outlet.domain, sa.func.coalesce(counts.c.n, 0), sa.func.coalesce(pending.c.n, 0))
        .join(Outlet, col(Outlet.id) == col(Feed.outlet_id), isouter=True)
        .join(counts, counts.c.feed_id == col(Feed.id), isouter=True)
        .join(pending, pending.c.feed_id == col(Feed.id), isouter=True)
        .order_by(col(Feed.id))
    )
    if feed_id is not None:
        query = query.where(Feed.id == feed_id)
    return [(feed, domain, int(count), int(waiting)) for feed, domain, count, waiting in (await session.exec(query)).all()]
