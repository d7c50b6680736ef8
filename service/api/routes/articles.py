"""``/v1/articles``: the stored articles, newest first or by search relevance, with keyset pagination."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Response
from sqlmodel import col, select

from service.api.deps import SessionDep
from service.api.pagination import decode_cursor, decode_ranked_cursor, encode_cursor, utc_filter
from service.api.problems import Problem
from service.api.schemas import MAX_ID, Page
from service.api.validation import parse_search
from service.db import dialect_name
from service.models import Article, Entry, Outlet, UTCDateTime, table_of
from service.search import SearchQuery, article_match
from service.shapes import ArticlePublic, ArticleSummary, FailurePublic
from service.storage import failures
from service.views import citations_for

router = APIRouter(prefix="/v1/articles", tags=["articles"])

# The columns a list item shows, and ``sort_at`` for the cursor: loading the texts (``text``,
# ``feed_content``, ``minhash``) and building ORM objects from them made a list page cost three
# times a ``/healthz``.
SUMMARY_COLUMNS = [table_of(Article).c[name] for name in [*ArticleSummary.model_fields, "sort_at"] if name in table_of(Article).c]


def list_query(
    dialect: str, *, limit: int, q: SearchQuery | None = None, feed_id: int | None = None, lang: str | None = None,
    since: datetime | None = None, until: datetime | None = None, after: tuple | None = None, story_id: int | None = None,
) -> sa.Select:
    """The SELECT behind ``GET /v1/articles`` for ``dialect`` ("postgresql" or "sqlite"): rows of the
    ``ArticleSummary`` columns of ``articles`` (``SUMMARY_COLUMNS``; never the texts) and the
    outlet's domain as ``outlet`` — plus the relevance ``rank`` when ``q`` is given — at most ``limit``.

    Without ``q``: newest first by (sort_at, id), resuming after ``after`` = (moment, id). With
    ``q``: most relevant first, then newest, resuming after ``after`` = (rank, moment, id); see
    ``service.search`` for the matching on each database. Every filter is served by an index
    (migration 0006; ``bench/api.py`` shows the plans)."""
    columns = [*SUMMARY_COLUMNS, col(Outlet.domain).label("outlet")]
    match = article_match(dialect, q, [lang.lower()] if lang else None) if q is not None else None
    if match is not None:
        columns.append(match.rank.label("rank"))
    query = select(*columns).join(Outlet, col(Outlet.id) == col(Article.outlet_id), isouter=True)
    if match is not None:
        if match.join is not None:
            query = query.join(*match.join)
        query = query.where(match.where)
    if feed_id is not None:
        # The feed's entries drive the query (index on entries (feed_id, article_id)), rather than a
        # newest-first scan of all articles probing each for an entry (0.3× /healthz at 100,000).
        query = query.where(col(Article.id).in_(select(Entry.article_id).where(Entry.feed_id == feed_id)))
    if story_id is not None:
        query = query.where(Article.story_id == story_id)
    if lang:
        query = query.where(Article.language == lang.lower())
    if since is not None:
        query = query.where(Article.sort_at >= since)
    if until is not None:
        query = query.where(Article.sort_at < until)
    if after is not None:
        *rank, moment, last_id = after
        # A row-value comparison: an index condition on (sort_at, id), so a deep page starts where it should.
        older = sa.tuple_(Article.sort_at, Article.id) < sa.tuple_(sa.literal(moment, UTCDateTime()), sa.literal(last_id))
        if match is not None:
            older = sa.or_(match.rank < rank[0], sa.and_(match.rank == rank[0], older))
        query = query.where(older)
    order: list[sa.ColumnElement] = [col(Article.sort_at).desc(), col(Article.id).desc()]
    if match is not None:
        order.insert(0, match.rank.desc())
    return query.order_by(*order).limit(limit)


@router.get("", response_model=Page[ArticleSummary])
async def list_articles(
    session: SessionDep,
    q: Annotated[str | None, Query(
        max_length=512, pattern=r"^[^\x00]*$", description='Full-text search in title and text: words (all must occur), "quoted phrases", '
        "-excluded words, OR between alternatives. Results are ordered by relevance, then newest first.",
    )] = None,
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    feed_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only articles seen in this feed.")] = None,
    story_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only articles of this story.")] = None,
    lang: Annotated[str | None, Query(min_length=2, max_length=8, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,4})?$", description="ISO 639-1 code.")] = None,
    since: Annotated[datetime | None, Query(description="Published (else first seen) at or after, ISO 8601.")] = None,
    until: Annotated[datetime | None, Query(description="Published (else first seen) before, ISO 8601.")] = None,
) -> Response:
    """Articles newest first by publication time (first-seen time when the feed gave none), then id;
    with ``q``, the matching articles by relevance, then newest first."""
    since, until = utc_filter("since", since), utc_filter("until", until)
    search = parse_search(q)
    after = None
    if cursor:
        after = decode_ranked_cursor("articles", cursor) if search is not None else decode_cursor("articles", cursor)
    dialect = dialect_name(session)
    query = list_query(dialect, limit=limit + 1, q=search, feed_id=feed_id, lang=lang, since=since, until=until,
                       after=after, story_id=story_id)
    rows = (await session.exec(query)).all()  # type: ignore[call-overload]  # SQLModel types exec() for its own Select; rows here
    cites = await citations_for(session, [row.id for row in rows[:limit]])
    items = [ArticleSummary.model_validate({**row._mapping, "cites": cites.get(row.id, [])}) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor("articles", last.sort_at, last.id, rank=last.rank if search is not None else None)
    # Validated once, above; FastAPI would validate the page again before serialising it.
    return Response(Page[ArticleSummary](items=items, next_cursor=next_cursor).model_dump_json(), media_type="application/json")


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
    article = ArticlePublic.from_row(*row, (await citations_for(session, [article_id])).get(article_id))
    article.failures = [FailurePublic.model_validate(f.model_dump())
                        for f in (await failures.of_items(session, [article_id])).get(article_id, [])]
    return article
