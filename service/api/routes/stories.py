"""``/v1/stories``: stories (articles of several outlets and languages about one event), newest
activity first, with keyset pagination; and one story with its articles, first report and citations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query
from sqlmodel import col, select

from service.api.deps import SessionDep
from service.api.pagination import decode_cursor, encode_cursor, utc_filter
from service.api.problems import Problem
from service.api.schemas import MAX_ID, CitationEdge, Page, StoryArticle, StoryPublic, StorySummary
from service.api.views import citations_for, domains_of, story_summary
from service.models import Article, Outlet, Story

router = APIRouter(prefix="/v1/stories", tags=["stories"])


@router.get("", response_model=Page[StorySummary])
async def list_stories(
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    since: Annotated[datetime | None, Query(description="Updated at or after, ISO 8601 with a time zone.")] = None,
    lang: Annotated[str | None, Query(min_length=2, max_length=8, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,4})?$", description="Has an article in this language (ISO 639-1).")] = None,
    outlet: Annotated[str | None, Query(max_length=255, pattern=r"^[^\x00]*$", description="Has an article of this outlet (domain, e.g. welt.de).")] = None,
    min_outlets: Annotated[int | None, Query(ge=1, le=MAX_ID, description="At least this many outlets.")] = None,
    min_languages: Annotated[int | None, Query(ge=1, le=MAX_ID, description="At least this many languages.")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200, pattern=r"^[^\x00]*$", description="Words in the title of one of its articles.")] = None,
) -> Page[StorySummary]:
    """Stories, most recently updated first (then id)."""
    query = select(Story)
    since = utc_filter("since", since)
    if since is not None:
        query = query.where(Story.last_updated_at >= since)
    if lang:
        query = query.where(sa.exists().where(Article.story_id == Story.id, Article.language == lang.lower()))
    if outlet:
        query = query.where(
            sa.exists().where(Article.story_id == Story.id, Article.outlet_id == Outlet.id, Outlet.domain == outlet.lower())
        )
    if min_outlets is not None:
        query = query.where(Story.outlet_count >= min_outlets)
    if min_languages is not None:
        query = query.where(Story.language_count >= min_languages)
    if q:
        for word in q.split()[:8]:
            pattern = f"%{word.lower()}%"
            query = query.where(sa.exists().where(Article.story_id == Story.id, sa.func.lower(Article.title).like(pattern)))
    if cursor:
        moment, last_id = decode_cursor(cursor)
        query = query.where(
            sa.or_(Story.last_updated_at < moment, sa.and_(Story.last_updated_at == moment, col(Story.id) < last_id))
        )
    query = query.order_by(col(Story.last_updated_at).desc(), col(Story.id).desc()).limit(limit + 1)
    rows = list((await session.exec(query)).all())
    domains = await domains_of(session, {i for story in rows[:limit] for i in story.outlet_ids})
    items = [StorySummary.model_validate(story_summary(story, domains)) for story in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last.last_updated_at, last.id)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{story_id}", response_model=StoryPublic)
async def get_story(story_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep) -> StoryPublic:
    """One story: its articles by publication time (first-seen time where none), who reported
    first, and the citations between its articles' outlets."""
    story = await session.get(Story, story_id)
    if story is None:
        raise Problem(404, f"no story with id {story_id}")
    rows = (
        await session.exec(
            select(Article, Outlet.domain)
            .join(Outlet, col(Outlet.id) == col(Article.outlet_id), isouter=True)
            .where(Article.story_id == story_id)
            .order_by(col(Article.sort_at), col(Article.id))
        )
    ).all()
    articles = [
        StoryArticle(
            id=a.id, title=a.title, url=a.url, outlet=domain, language=a.language, published_at=a.published_at,
            first_seen_at=a.first_seen_at, duplicate_of=a.duplicate_of, similarity=a.similarity,
        )
        for a, domain in rows
    ]
    outlet_of = {a.id: domain for a, domain in rows}
    cites = await citations_for(session, [a.id for a in articles])
    edges = [
        CitationEdge(article_id=aid, outlet=outlet_of.get(aid), cited_name=c.name, cited_outlet=c.outlet, cited_article_id=c.article_id)
        for aid in outlet_of
        for c in cites.get(aid, [])
    ]
    domains = await domains_of(session, set(story.outlet_ids))
    return StoryPublic.model_validate(
        {**story_summary(story, domains), "first_reported": articles[0] if articles else None, "articles": articles, "citations": edges}
    )
