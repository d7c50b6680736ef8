"""Stories, read side: the API's story list (filters, search, keyset pagination) and one story with
its articles. The linker's own queries (candidates, assignment, merges) are in
``service.stories`` and ``service.storage.stories``; nothing here writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col, select

from service.db import dialect_name
from service.ingest.feeds.entries import language_code
from service.models import Article, Outlet, Story, table_of
from service.net.urls import outlet_named
from service.search import SearchQuery
from service.storage import sql
from service.storage.search import article_match


def _hits(dialect: str, search: SearchQuery) -> sa.Subquery:
    """``(story_id, rank)`` of every story with an article matching ``search``, ``rank`` being its
    best article's relevance (``storage.search.article_match``: ``ts_rank_cd`` on PostgreSQL,
    −bm25 on SQLite; higher is better). The per-article ranks are computed in a ``MATERIALIZED``
    CTE (SQLite 3.35, PostgreSQL 12): SQLite allows FTS5's ``bm25()`` only beside its ``MATCH``, and
    would otherwise flatten the inner query into the aggregate."""
    match = article_match(dialect, search)
    ranked = select(Article.story_id, match.rank.label("rank")).select_from(Article)
    if match.join is not None:
        ranked = ranked.join(*match.join)
    matching = ranked.where(match.where, col(Article.story_id).is_not(None)).cte("matching").prefix_with("MATERIALIZED")
    return (
        select(matching.c.story_id, sa.func.max(matching.c.rank).label("rank"))
        .group_by(matching.c.story_id)
        .subquery("story_hits")
    )


def listed(
    session: Session, *, limit: int, q: SearchQuery | None = None, since: datetime | None = None,
    lang: str | None = None, outlet: str | None = None, min_outlets: int | None = None, min_languages: int | None = None,
    after: tuple | None = None,
) -> list[tuple[Story, float | None]]:
    """At most ``limit`` stories with their relevance (None without ``q``): most recently updated
    first (then id), or with ``q`` those with a matching article, by their best match's relevance
    first. Filters: updated at or after ``since`` (UTC), an article in language ``lang`` (ISO
    639-1, any case; a region, ``de-CH``, is dropped as for articles), an article of the outlet
    ``outlet`` (its domain in any case, with ``www.``, or one of its URLs: ``urls.outlet_named``),
    at least ``min_outlets`` outlets and ``min_languages`` languages. ``after``: the keys of the previous
    page's last story, (moment, id) or with ``q`` (rank, moment, id). Synchronous (``db.Reader``)."""
    hits = _hits(dialect_name(session), q) if q is not None else None
    query = select(Story) if hits is None else select(Story, hits.c.rank).join(hits, hits.c.story_id == Story.id)
    if since is not None:
        query = query.where(Story.last_updated_at >= since)
    if lang:
        query = query.where(sa.exists().where(col(Article.story_id) == Story.id, col(Article.language) == language_code(lang)))
    if outlet:
        query = query.where(
            sa.exists().where(col(Article.story_id) == Story.id, col(Article.outlet_id) == Outlet.id, col(Outlet.domain) == outlet_named(outlet))
        )
    if min_outlets is not None:
        query = query.where(Story.outlet_count >= min_outlets)
    if min_languages is not None:
        query = query.where(Story.language_count >= min_languages)
    stories = table_of(Story)
    keys = [stories.c.last_updated_at, stories.c.id] if hits is None else [hits.c.rank, stories.c.last_updated_at, stories.c.id]
    result = session.execute(sql.newest_first(query, keys, after, limit))
    found = result.all() if hits is not None else result.scalars().all()
    # select(Story) gives stories, select(Story, rank) pairs.
    return cast(list[tuple[Story, float | None]], list(found) if hits is not None else [(story, None) for story in found])


def story(session: Session, story_id: int) -> Story | None:
    """The story row ``story_id``, or None when there is none (never made, or merged away).
    Synchronous (``db.Reader``)."""
    return session.get(Story, story_id)


def articles_of(session: Session, story_id: int) -> Sequence[tuple[Article, str | None]]:
    """The articles of story ``story_id`` by publication time (first-seen time where none), then
    id, each with its outlet's domain. One statement. Synchronous (``db.Reader``)."""
    rows = session.execute(
        select(Article, Outlet.domain)
        .join(Outlet, col(Outlet.id) == col(Article.outlet_id), isouter=True)
        .where(Article.story_id == story_id)
        .order_by(col(Article.sort_at), col(Article.id))
    ).all()
    return [(article, domain) for article, domain in rows]
