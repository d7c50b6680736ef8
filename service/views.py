"""The public shapes (``service.shapes``) built from rows, shared by the API routes and the webhook
payloads (an event carries the article or story exactly as the API returns it)."""

from __future__ import annotations

from collections import defaultdict

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.shapes import CitationPublic, StorySummary
from service.models import Citation, Outlet, Story


async def citations_for(session: AsyncSession, article_ids: list[int]) -> dict[int, list[CitationPublic]]:
    """Article id → the outlets it cites (in order of storage), for the given articles."""
    if not article_ids:
        return {}
    query = (
        select(Citation, Outlet.domain)
        .join(Outlet, col(Outlet.id) == col(Citation.outlet_id), isouter=True)
        .where(col(Citation.article_id).in_(article_ids))
        .order_by(col(Citation.id))
    )
    out: dict[int, list[CitationPublic]] = defaultdict(list)
    for citation, domain in (await session.exec(query)).all():
        out[citation.article_id].append(CitationPublic(name=citation.name, outlet=domain, article_id=citation.cited_article_id))
    return out


async def domains_of(session: AsyncSession, outlet_ids: set[int]) -> dict[int, str]:
    """Outlet id → registrable domain, for the given ids."""
    if not outlet_ids:
        return {}
    rows = (await session.exec(select(Outlet.id, Outlet.domain).where(col(Outlet.id).in_(outlet_ids)))).all()
    return dict(rows)


def story_summary(story: Story, domains: dict[int, str]) -> dict:
    """The fields of ``StorySummary`` for ``story`` (``domains``: outlet id → domain)."""
    return {
        "id": story.id, "title": story.title, "first_seen_at": story.first_seen_at, "last_updated_at": story.last_updated_at,
        "article_count": story.article_count, "outlet_count": story.outlet_count, "languages": story.languages,
        "outlets": sorted(domains[i] for i in story.outlet_ids if i in domains),
    }


async def story_view(session: AsyncSession, story: Story) -> StorySummary:
    """``story`` as ``GET /v1/stories`` lists it."""
    return StorySummary.model_validate(story_summary(story, await domains_of(session, set(story.outlet_ids))))
