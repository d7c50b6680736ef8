"""The public shapes (``service.shapes``) built from rows, shared by the API routes and the webhook
payloads (an event carries the article or story exactly as the API returns it). The rows come from
the storage layer (``service.storage``); nothing here builds SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.models import Story
from service.shapes import ArticlePublic, FailurePublic, StorySummary
from service.storage import articles, failures


def listed_citations(session: Session, rows: Sequence[sa.Row]) -> dict[int, list[dict]]:
    """The citations (``CitationPublic`` members as dicts) of the listed ``rows`` that cite anyone
    (their ``has_cites``): no statement at all for a page that cites nobody. Synchronous."""
    return articles.citations_of(session, [row.id for row in rows if row.has_cites])


def summary_page(session: Session, *, limit: int, **filters: Any) -> tuple[list[dict], sa.Row | None]:
    """One page of ``GET /v1/articles``: the first ``limit`` rows of ``storage.articles.listed``
    for ``filters`` (its keyword arguments but ``limit``) as ``ArticleSummary`` members
    (``summary_items``, with their citations), and the last of those rows when more follow (its
    keys make the next cursor), else None. Synchronous, one read (``db.Reader``): two statements
    when the page cites anyone, else one."""
    rows = articles.listed(session, limit=limit + 1, **filters)
    page = rows[:limit]
    return summary_items(page, listed_citations(session, page)), page[-1] if len(rows) > limit else None


def summary_items(rows: Sequence[sa.Row], cites: dict[int, list[dict]]) -> list[dict]:
    """``storage.articles.listed`` rows as ``ArticleSummary`` members (dicts in its field order,
    ready for ``pydantic_core.to_json``; the same JSON as the model gives), with their ``cites``.
    Built without validating each row again: the columns have the model's types (times UTC-aware,
    ``authors`` and ``enclosures`` as stored, ``extraction_status`` a string)."""
    names = articles.LISTED
    items = []
    for row in rows:
        item = dict(zip(names, row, strict=False))  # the row goes on: has_cites, sort_at, rank
        item["cites"] = cites.get(row.id, [])
        items.append(item)
    return items


def article_public(session: Session, article_id: int) -> ArticlePublic | None:
    """Article ``article_id`` as ``GET /v1/articles/{id}`` answers it and an ``article.created``
    event carries it (the one builder of both): the listed fields, its citations, its full
    ``text`` and the stages that failed on it; None when there is no such article. Three
    statements at most (the row, citations only when it cites anyone, failures). Synchronous:
    one read (``db.Reader``), or ``run_sync`` in the outbox's transaction."""
    row = articles.by_id(session, article_id)
    if row is None:
        return None
    item = summary_items([row], listed_citations(session, [row]))[0]
    failed = failures.of_items(session, [article_id]).get(article_id, [])
    return ArticlePublic.model_validate({**item, "text": row.text, "failures": [FailurePublic.model_validate(f.model_dump()) for f in failed]})


def story_summary(story: Story, domains: dict[int, str]) -> dict:
    """The fields of ``StorySummary`` for ``story`` (``domains``: outlet id → domain)."""
    return {
        "id": story.id, "title": story.title, "first_seen_at": story.first_seen_at, "last_updated_at": story.last_updated_at,
        "article_count": story.article_count, "outlet_count": story.outlet_count, "languages": story.languages,
        "outlets": sorted(domains[i] for i in story.outlet_ids if i in domains),
    }


def story_view(session: Session, story: Story) -> StorySummary:
    """``story`` as ``GET /v1/stories`` lists it. Synchronous (``run_sync``)."""
    return StorySummary.model_validate(story_summary(story, articles.outlet_domains(session, story.outlet_ids)))
