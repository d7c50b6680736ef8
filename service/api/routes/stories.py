"""``/v1/stories``: stories (articles of several outlets and languages about one event), newest
activity first, with keyset pagination; and one story with its articles, first report and citations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import AfterValidator
from sqlalchemy.orm import Session

from service.api.deps import ReaderDep
from service.api.pagination import decode_cursor, decode_ranked_cursor, encode_cursor, query_digest, utc_filter
from service.api.problems import Problem
from service.api.schemas import MAX_ID, Page
from service.api.validation import language_tag, outlet_name, parse_search
from service.ingest.feeds.entries import language_code
from service.models import Article
from service.net.urls import outlet_named
from service.shapes import CitationEdge, StoryArticle, StoryPublic, StorySummary
from service.storage import articles, story_views
from service.views import story_summary

router = APIRouter(prefix="/v1/stories", tags=["stories"])


# The filters of the story list, shared with the story browser (service.ui), which offers the same.
CursorParam = Annotated[str | None, Query(min_length=1, max_length=512, description="next_cursor of the previous page of this query (same filters and q; the limit may change)")]
LimitParam = Annotated[int, Query(ge=1, le=200)]
LangParam = Annotated[str | None, AfterValidator(language_tag), Query(min_length=2, max_length=35, description=(
    "Has an article in this language: a BCP 47 language tag (en, pt-BR, zh-Hant-TW; its script and region are ignored)."))]
OutletParam = Annotated[str | None, AfterValidator(outlet_name), Query(min_length=1, max_length=255, description=(
    "Has an article of this outlet (domain, e.g. welt.de; www.welt.de or a URL of the site is read as welt.de). A name "
    "no host can be read from is a 422; an outlet with no article yet gives an empty list."))]
MinOutletsParam = Annotated[int | None, Query(ge=1, le=MAX_ID, description="At least this many outlets.")]
MinLanguagesParam = Annotated[int | None, Query(ge=1, le=MAX_ID, description="At least this many languages.")]
SearchParam = Annotated[str | None, Query(
    min_length=1, max_length=512, pattern=r"^[^\x00]*$", description="Full-text search in the title and text of its articles, with the syntax of "
    "/v1/articles?q (words, \"quoted phrases\", -excluded, OR). Results are ordered by the relevance of the story's best-matching "
    "article, then most recently updated first.",
)]


@router.get("", response_model=Page[StorySummary])
async def list_stories(
    reader: ReaderDep,
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
    since = utc_filter("since", since)
    query = query_digest(q=search, since=since, lang=language_code(lang), outlet=outlet and outlet_named(outlet),
                         min_outlets=min_outlets, min_languages=min_languages)
    after = None
    if cursor:
        after = decode_ranked_cursor("stories", query, cursor) if search is not None else decode_cursor("stories", query, cursor)
    return await reader.run(story_page, limit=limit, query=query, q=search, since=since, lang=lang, outlet=outlet,
                            min_outlets=min_outlets, min_languages=min_languages, after=after)


def story_page(session: Session, *, limit: int, query: str, **filters: Any) -> Page[StorySummary]:
    """One page of ``GET /v1/stories``: the first ``limit`` stories of ``storage.story_views.listed``
    for ``filters`` (its keyword arguments but ``limit`` and ``query``) with their outlets, and the
    next cursor (for the filters of digest ``query``) when more follow. Synchronous, one read
    (``db.Reader``): two statements."""
    rows = story_views.listed(session, limit=limit + 1, **filters)
    domains = articles.outlet_domains(session, {i for story, _ in rows[:limit] for i in story.outlet_ids})
    items = [StorySummary.model_validate(story_summary(story, domains)) for story, _ in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last, last_rank = rows[limit - 1]
        next_cursor = encode_cursor("stories", query, last.last_updated_at, last.id, rank=last_rank)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{story_id}", response_model=StoryPublic)
async def get_story(story_id: Annotated[int, Path(ge=1, le=MAX_ID)], reader: ReaderDep) -> StoryPublic:
    """One story: its articles by publication time (first-seen time where none), who reported
    first, and the citations between its articles' outlets."""
    return (await reader.run(read_story, story_id))[0]


def read_story(session: Session, story_id: int) -> tuple[StoryPublic, dict[int, Article]]:
    """Story ``story_id`` as ``GET /v1/stories/{id}`` returns it, and its articles' rows by id (for
    what the API shape leaves out: summary, text). Four statements whatever the story's size (the
    story, its articles with their outlets, their citations, the story's outlets). Synchronous, one
    read (``db.Reader``). Raises ``Problem`` (404) when there is no such story."""
    story = story_views.story(session, story_id)
    if story is None:
        raise Problem(404, f"no story with id {story_id}")
    rows = story_views.articles_of(session, story_id)
    members = [
        StoryArticle(
            id=a.id, title=a.title, url=a.url, outlet=domain, language=a.language, published_at=a.published_at,
            first_seen_at=a.first_seen_at, duplicate_of=a.duplicate_of, similarity=a.similarity,
        )
        for a, domain in rows
    ]
    outlet_of = {a.id: domain for a, domain in rows}
    cites = articles.citations_of(session, [a.id for a in members])
    edges = [
        CitationEdge(article_id=aid, outlet=outlet_of.get(aid), cited_name=c["name"], cited_outlet=c["outlet"],
                     cited_article_id=c["article_id"])
        for aid in outlet_of
        for c in cites.get(aid, [])
    ]
    domains = articles.outlet_domains(session, story.outlet_ids)
    public = StoryPublic.model_validate(
        {**story_summary(story, domains), "first_reported": members[0] if members else None, "articles": members, "citations": edges}
    )
    return public, {a.id: a for a, _ in rows}
