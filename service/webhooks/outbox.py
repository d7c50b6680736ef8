"""The transactional outbox: events become ``deliveries`` rows in the same database transaction as
the change they announce, so a crash can neither lose an event nor announce a rolled-back change.
The delivery worker (``service.webhooks.delivery``) sends them later.

Which ingests count as new (bug case BL-34, our policy): ``article.created`` fires once per article
and subscription, when the article is complete (page extracted, or given up and kept with the feed's
text), and only for articles that are news to the subscriber: first seen *and* published (when the
feed or page says) at or after the subscription's creation. A feed's backlog on its first fetch
and edits of known entries fire nothing.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.api.schemas import ArticlePublic
from service.db import dialect_insert
from service.models import Article, Delivery, ExtractionStatus, Entry, Outlet, Subscription, SubscriptionState, utcnow
from service.webhooks.matching import Candidate, SubscriptionFilter, matches

EVENT_TYPES = ("article.created", "story.created", "story.updated")


def new_event_id() -> str:
    """A unique ``webhook-id``: ``msg_`` and 32 hex digits."""
    return f"msg_{uuid.uuid4().hex}"


def envelope(event_type: str, data: dict, timestamp: datetime | None = None) -> str:
    """The JSON body of an event: ``{"type", "timestamp" (ISO 8601 UTC), "data"}``."""
    moment = (timestamp or utcnow()).isoformat().replace("+00:00", "Z")
    return json.dumps({"type": event_type, "timestamp": moment, "data": data}, ensure_ascii=False, separators=(",", ":"))


async def _enqueue(session: AsyncSession, subscription_id: int, event_type: str, event_key: str, payload: str) -> str | None:
    """Insert one delivery unless this subscription already has one for ``event_key``; return its
    ``webhook-id``, or None when it existed."""
    event_id = new_event_id()
    values = {
        "subscription_id": subscription_id, "event_id": event_id, "event_key": event_key, "event_type": event_type,
        "payload": payload, "status": "pending", "attempts": 0, "next_attempt_at": utcnow(), "created_at": utcnow(),
    }
    statement = dialect_insert(session)(Delivery).values(**values).on_conflict_do_nothing(index_elements=["subscription_id", "event_key"])
    result = await session.exec(statement.returning(Delivery.id))
    return event_id if result.scalar_one_or_none() is not None else None


async def _subscribers(session: AsyncSession, event_type: str) -> list[Subscription]:
    rows = await session.exec(select(Subscription).where(Subscription.state == SubscriptionState.active))
    return [s for s in rows.all() if event_type in s.event_types]


async def announce_articles(session: AsyncSession, article_ids: list[int]) -> int:
    """Write ``article.created`` deliveries for the articles ``article_ids`` that are complete (not
    ``pending``) to every matching subscription (see the module docstring for what counts as new). Does not commit: call
    it inside the transaction that completes the articles. Returns the number of deliveries written."""
    if not article_ids:
        return 0
    subscribers = await _subscribers(session, "article.created")
    if not subscribers:
        return 0
    written = 0
    for article_id in article_ids:
        row = (
            await session.exec(
                select(Article, Outlet.domain)
                .join(Outlet, col(Outlet.id) == col(Article.outlet_id), isouter=True)
                .where(Article.id == article_id)
            )
        ).first()
        if row is None:
            continue
        article, outlet = row
        if article.extraction_status == ExtractionStatus.pending:
            continue  # announced when its page is done
        feed_ids = set((await session.exec(select(Entry.feed_id).where(Entry.article_id == article_id))).all())
        candidate = Candidate(
            title=article.title or "", text=article.text or "", language=article.language,
            outlets={outlet} if outlet else set(), feed_ids=feed_ids,
        )
        payload = None
        for subscription in subscribers:
            if article.first_seen_at < subscription.created_at:
                continue
            if article.published_at is not None and article.published_at < subscription.created_at:
                continue
            if not matches(SubscriptionFilter.model_validate(subscription.filter), candidate):
                continue
            if payload is None:
                payload = envelope("article.created", ArticlePublic.from_row(article, outlet).model_dump(mode="json"))
            key = f"article.created:{article_id}"
            written += await _enqueue(session, subscription.id, "article.created", key, payload) is not None
    return written


async def enqueue_ping(session: AsyncSession, subscription: Subscription) -> str:
    """Write a ``ping`` delivery for ``subscription`` (each ping is a new event) and return its
    ``webhook-id``. Does not commit."""
    data = {"subscription_id": subscription.id, "message": "ping from Newsloom"}
    event_id = await _enqueue(session, subscription.id, "ping", f"ping:{uuid.uuid4().hex}", envelope("ping", data))
    assert event_id is not None  # the key is new
    return event_id
