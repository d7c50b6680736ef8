"""How deep the work queues are, for the metrics (``service.metrics.QueueGauges``): feeds by state,
feeds due for a poll, pages due for extraction, webhook deliveries pending and how long the oldest
due one has waited. Counted across the whole database (every replica's work)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.models import Article, Delivery, DeliveryStatus, Feed
from service.storage import articles, feeds, sql


@dataclass(frozen=True)
class Depths:
    """Queue depths at one moment: ``feeds_by_state`` (state → count, states without feeds
    absent), ``feeds_due``, ``pages_due``, ``deliveries_pending`` (due now or later) and
    ``oldest_due_delivery`` (UTC, None when no delivery is due)."""

    feeds_by_state: dict[str, int]
    feeds_due: int
    pages_due: int
    deliveries_pending: int
    oldest_due_delivery: datetime | None


async def depths(session: AsyncSession, now: datetime) -> Depths:
    """The queue depths at ``now`` (UTC): five statements."""
    by_state = {str(state): n for state, n in (await session.exec(select(Feed.state, sa.func.count()).group_by(Feed.state))).all()}
    pending = await sql.count_where(session, Delivery, [col(Delivery.status) == DeliveryStatus.pending])
    oldest = (await session.exec(
        select(sa.func.min(Delivery.next_attempt_at))
        .where(Delivery.status == DeliveryStatus.pending, col(Delivery.next_attempt_at) <= now)
    )).one()
    if isinstance(oldest, str):  # SQLite aggregate results skip the column type
        oldest = datetime.fromisoformat(oldest).replace(tzinfo=UTC)
    elif oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return Depths(
        feeds_by_state=by_state,
        feeds_due=await sql.count_where(session, Feed, feeds.feed_is_due(now)),
        pages_due=await sql.count_where(session, Article, articles.page_is_due(now)),
        deliveries_pending=pending,
        oldest_due_delivery=oldest,
    )
