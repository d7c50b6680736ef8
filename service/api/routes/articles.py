"""``/v1/articles``: the stored articles, newest first, with keyset pagination."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query
from sqlmodel import col, select

from service.api.deps import SessionDep
from service.api.pagination import decode_cursor, encode_cursor, utc_filter
from service.api.problems import Problem
from service.api.schemas import MAX_ID, ArticlePublic, ArticleSummary, Page
from service.api.views import citations_for
from service.models import Article, Entry, Outlet

router = APIRouter(prefix="/v1/articles", tags=["articles"])


@router.get("", response_model=Page[ArticleSummary])
async def list_articles(
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    feed_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only articles seen in this feed.")] = None,
    story_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only articles of this story.")] = None,
    lang: Annotated[str | None, Query(min_length=2, max_length=8, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,4})?$", description="ISO 639-1 code.")] = None,
    since: Annotated[datetime | None, Query(description="Published (else first seen) at or after, ISO 8601.")] = None,
    until: Annotated[datetime | None, Query(description="Published (else first seen) before, ISO 8601.")] = None,
) -> Page[ArticleSummary]:
    """Articles newest first by publication time (first-seen time when the feed gave none), then id."""
    query = select(Article, Outlet.domain).join(Outlet, col(Outlet.id) == col(Article.outlet_id), isouter=True)
    if feed_id is not None:
        query = query.where(sa.exists().where(Entry.article_id == Article.id, Entry.feed_id == feed_id))
    if story_id is not None:
        query = query.where(Article.story_id == story_id)
    if lang:
        query = query.where(Article.language == lang.lower())
    since, until = utc_filter("since", since), utc_filter("until", until)
    if since is not None:
        query = query.where(Article.sort_at >= since)
    if until is not None:
        query = query.where(Article.sort_at < until)
    if cursor:
        moment, last_id = decode_cursor(cursor)
        query = query.where(
            sa.or_(Article.sort_at < moment, sa.and_(Article.sort_at == moment, col(Article.id) < last_id))
        )
    query = query.order_by(col(Article.sort_at).desc(), col(Article.id).desc()).limit(limit + 1)
    rows = (await session.exec(query)).all()
    cites = await citations_for(session, [a.id for a, _outlet in rows[:limit]])
    items = [ArticleSummary.from_row(a, outlet, cites.get(a.id)) for a, outlet in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1][0]
        next_cursor = encode_cursor(last.sort_at, last.id)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{article_id}", response_model=ArticlePublic)
async def get_article(article_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep) -> ArticlePublic:
    """One article with its full text."""
    query = (
        select(Article, Outlet.domain)
        .join(Outlet, col(Outlet.id) == col(Article.outlet_id), isouter=True)
        .where(Article.id == article_id)
    )
    row = (await session.exec(query)).first()
    if row is None:
        raise Problem(404, f"no article with id {article_id}")
    return ArticlePublic.from_row(*row, (await citations_for(session, [article_id])).get(article_id))
