"""``/v1/articles``: the stored articles, newest first or by search relevance, with keyset pagination."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import AfterValidator
from pydantic_core import to_json

from service.api.deps import ReaderDep
from service.api.pagination import decode_cursor, decode_ranked_cursor, encode_cursor, query_digest, utc_filter
from service.api.problems import Problem
from service.api.schemas import MAX_ID, Page
from service.api.validation import language_tag, parse_search
from service.ingest.feeds.entries import language_code
from service.shapes import ArticlePublic, ArticleSummary
from service.views import article_public, summary_page

router = APIRouter(prefix="/v1/articles", tags=["articles"])


@router.get("", response_model=Page[ArticleSummary])
async def list_articles(
    reader: ReaderDep,
    q: Annotated[str | None, Query(
        min_length=1, max_length=512, pattern=r"^[^\x00]*$", description='Full-text search in title and text: words (all must occur), "quoted phrases", '
        "-excluded words, OR between alternatives. Results are ordered by relevance, then newest first.",
    )] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=512, description="next_cursor of the previous page of this query (same filters and q; the limit may change)")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    feed_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only articles seen in this feed.")] = None,
    story_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only articles of this story.")] = None,
    lang: Annotated[str | None, AfterValidator(language_tag), Query(min_length=2, max_length=35, description=(
        "A BCP 47 language tag (en, pt-BR, zh-Hant-TW): articles in its language (ISO 639-1; script and region are ignored)."))] = None,
    since: Annotated[datetime | None, Query(description="Published (else first seen) at or after, ISO 8601.")] = None,
    until: Annotated[datetime | None, Query(description="Published (else first seen) before, ISO 8601.")] = None,
) -> Response:
    """Articles newest first by publication time (first-seen time when the feed gave none), then id;
    with ``q``, the matching articles by relevance, then newest first."""
    since, until = utc_filter("since", since), utc_filter("until", until)
    if since is not None and until is not None and since > until:
        raise Problem(422, f"since ({since.isoformat()}) is after until ({until.isoformat()}): the window is empty")
    search = parse_search(q)
    query = query_digest(q=search, feed_id=feed_id, story_id=story_id, lang=language_code(lang), since=since, until=until)
    after = None
    if cursor:
        after = decode_ranked_cursor("articles", query, cursor) if search is not None else decode_cursor("articles", query, cursor)
    items, last = await reader.run(summary_page, limit=limit, q=search, feed_id=feed_id, lang=lang, since=since, until=until,
                                   after=after, story_id=story_id)
    next_cursor = None
    if last is not None:
        next_cursor = encode_cursor("articles", query, last.sort_at, last.id, rank=last.rank if search is not None else None)
    # The rows have the shape's types: serialised once, as the model would (no validation per item,
    # nor FastAPI's of the page again).
    return Response(to_json({"items": items, "next_cursor": next_cursor}), media_type="application/json")


@router.get("/{article_id}", response_model=ArticlePublic)
async def get_article(article_id: Annotated[int, Path(ge=1, le=MAX_ID)], reader: ReaderDep) -> ArticlePublic:
    """One article with its full text."""
    found = await reader.run(article_public, article_id)
    if found is None:
        raise Problem(404, f"no article with id {article_id}")
    return found
