"""``/v1/stories``: stories (articles of several outlets and languages about one event), newest
activity first, with keyset pagination; and one story with its articles, first report and citations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.api.deps import SessionDep
from service.api.pagination import decode_cursor, decode_ranked_cursor, encode_cursor, utc_filter
from service.api.problems import Problem
from service.api.schemas import MAX_ID, Page
from service.shapes import CitationEdge, StoryArticle, StoryPublic, StorySummary
from service.api.validation import parse_search
from service.views import citations_for, domains_of, story_summary
from service.db import dialect_name
from service.models import Article, Outlet, Story, UTCDateTime
from service.search import SearchQuery, article_match

router = APIRouter(prefix="/v1/stories", tags=["stories"])


# The filters of the story list, shared with the story browser (service.ui), which offers the same.
CursorParam = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]
LimitParam = Annotated[int, Query(ge=1, le=200)]
LangParam = Annotated[str | None, Query(min_length=2, max_length=8, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,4})?$", description="Has an article in this language (ISO 639-1).")]
OutletParam = Annotated[str | None, Query(max_length=255, pattern=r"^[^\x00]*$", description="Has an article of this outlet (domain, e.g. welt.de).")]
MinOutletsParam = Annotated[int | None, Query(ge=1, le=MAX_ID, description="At least this many outlets.")]
MinLanguagesParam = Annotated[int | None, Query(ge=1, le=MAX_ID, description="At least this many languages.")]
SearchParam = Annotated[str | None, Query(
    max_length=512, pattern=r"^[^\x00]*$", description="Full-text search in the title and text of its articles, with the syntax of "
    "/v1/articles?q (words, \"quoted phrases\", -excluded, OR). Results are ordered by the relevance of the story's best-matching "
    "article, then most recently updated first.",
)]


@router.get("", response_model=Page[StorySummary])
async def list_stories(
    session: SessionDep,
    cursor: CursorParam = None,
    limit: LimitParam = 50,
    since: Annotated[datetime | None, Query(description="Updated at or after, ISO 8601 with a time zone.")] = None,
    lang: LangParam = None,
    outlet: OutletParam = None,
    min_outlets: MinOutletsParam = None,
    min_languages: MinLanguagesParam = None,
    q: SearchParam = None,
) -> Page[StorySummary]:
    """Stories, most recently updated first (then id); with ``q``, the stories with a matching
    article, by the relevance of their best match, then most recently updated first."""
    search = parse_search(q)
    dialect = dialect_name(session)
    hits = _story_hits(dialect, search) if search is not None else None
    query = select(Story) if hits is None else select(Story, hits.c.rank).join(hits, hits.c.story_id == Story.id)
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
    if cursor:
        *rank, moment, last_id = decode_ranked_cursor("stories", cursor) if hits is not None else decode_cursor("stories", cursor)
        older = sa.tuple_(Story.last_updated_at, Story.id) < sa.tuple_(sa.literal(moment, UTCDateTime()), sa.literal(last_id))
        if hits is not None:
            older = sa.or_(hits.c.rank < rank[0], sa.and_(hits.c.rank == rank[0], older))
        query = query.where(older)
    order = [col(Story.last_updated_at).desc(), col(Story.id).desc()]
    if hits is not None:
        order.insert(0, hits.c.rank.desc())
    rows = [row if hits is not None else (row, None) for row in (await session.exec(query.order_by(*order).limit(limit + 1))).all()]
    domains = await domains_of(session, {i for story, _ in rows[:limit] for i in story.outlet_ids})
    items = [StorySummary.model_validate(story_summary(story, domains)) for story, _ in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last, rank = rows[limit - 1]
        next_cursor = encode_cursor("stories", last.last_updated_at, last.id, rank=rank)
    return Page(items=items, next_cursor=next_cursor)


def _story_hits(dialect: str, search: SearchQuery) -> sa.Subquery:
    """``(story_id, rank)`` of every story with an article matching ``search``, ``rank`` being its
    best article's relevance (``service.search.article_match``: ``ts_rank_cd`` on PostgreSQL,
    −bm25 on SQLite; higher is better). The per-article ranks are computed in a ``MATERIALIZED``
    CTE (SQLite 3.35, PostgreSQL 12): SQLite allows FTS5's ``bm25()`` only beside its ``MATCH``, and
    would otherwise flatten the inner query into the aggregate."""
    match = article_match(dialect, search)
    matching = select(Article.story_id, match.rank.label("rank")).select_from(Article)
    if match.join is not None:
        matching = matching.join(*match.join)
    matching = matching.where(match.where, col(Article.story_id).is_not(None)).cte("matching").prefix_with("MATERIALIZED")
    return (
        select(matching.c.story_id, sa.func.max(matching.c.rank).label("rank"))
        .group_by(matching.c.story_id)
        .subquery("story_hits")
    )


@router.get("/{story_id}", response_model=StoryPublic)
async def get_story(story_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep) -> StoryPublic:
    """One story: its articles by publication time (first-seen time where none), who reported
    first, and the citations between its articles' outlets."""
    return (await read_story(session, story_id))[0]


async def read_story(session: AsyncSession, story_id: int) -> tuple[StoryPublic, dict[int, Article]]:
    """Story ``story_id`` as ``GET /v1/stories/{id}`` returns it, and its articles' rows by id (for
    what the API shape leaves out: summary, text). Four statements whatever the story's size (the
    story, its articles with their outlets, their citations, the story's outlets). Raises
    ``Problem`` (404) when there is no such story."""
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
    public = StoryPublic.model_validate(
        {**story_summary(story, domains), "first_reported": articles[0] if articles else None, "articles": articles, "citations": edges}
    )
    return public, {a.id: a for a, _ in rows}
