"""The transactional outbox: events become ``deliveries`` rows in the same database transaction as
the change they announce, so a crash can neither lose an event nor announce a rolled-back change.
The delivery worker (``service.webhooks.delivery``) sends them later.

Which ingests count as new (bug case BL-34, our policy): ``article.created`` fires once per article
and subscription, when the article is complete (page extracted, or given up and kept with the feed's
text) and, with stories on, linked to its story; and only for articles that are news to the
subscriber: first seen *and* published (when the feed or page says) at or after the subscription's
creation. A feed's backlog on its first fetch (``Article.backlog``: its undated items too, which
cannot be told from news) and edits of known entries fire nothing.
``story.created`` fires when an article starts a story, ``story.updated`` when an article brings a
story a new outlet or a new language; both only for articles that are news in the same sense.
``story.merged`` fires when late evidence shows two stories to be one: the survivor (the older)
took the other stories' articles, whose ids are gone (``merged_story_ids`` in the payload).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from service.models import Article, ExtractionStatus, Story, Subscription, utcnow
from service.storage import articles, deliveries, subscriptions
from service.views import article_public, story_view
from service.webhooks.matching import Candidate, SubscriptionFilter, matches

EVENT_TYPES = ("article.created", "story.created", "story.updated", "story.merged")


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
    return event_id if await deliveries.insert(session, subscription_id, event_id, event_type, event_key, payload) else None


def _is_news(subscription: Subscription, article: Article) -> bool:
    """BL-34: only articles first seen and published at or after the subscription's creation; an
    undated article of a feed's first fetch is backlog, not news."""
    if article.first_seen_at < subscription.created_at:
        return False
    if article.published_at is None:
        return not article.backlog
    return article.published_at >= subscription.created_at


def may_announce(session: Session, article_ids: list[int]) -> bool:
    """Whether ``announce_articles`` could write a delivery for any of ``article_ids``: some active
    subscription takes ``article.created`` and some of the articles is complete (not ``pending``).
    Synchronous (a ``sqlalchemy.orm.Session``); one SELECT, two when a subscription takes the event
    (the subscriptions first: without one, as on most pages' bookings, nothing else is read)."""
    return subscriptions.any_active_for(session, "article.created") and articles.any_complete(session, article_ids)


async def announce_articles(session: AsyncSession, article_ids: list[int]) -> int:
    """Write ``article.created`` deliveries for the articles ``article_ids`` that are complete (not
    ``pending``) to every matching subscription (see the module docstring for what counts as new).
    The payload is the article as ``GET /v1/articles/{id}`` returns it; ``min_outlets`` sees the
    outlet count of the article's story (1 when it has none). Does not commit: call it inside the
    transaction that completes (or, with stories on, links) the articles. Returns the number of
    deliveries written."""
    if not article_ids:
        return 0
    subscribers = await subscriptions.active_for(session, "article.created")
    if not subscribers:
        return 0
    written = 0
    for article_id in article_ids:
        article = await articles.get(session, article_id)
        if article is None or article.extraction_status == ExtractionStatus.pending:
            continue  # announced when its page is done
        outlet, feed_ids = await articles.outlet_and_feeds(session, article)
        candidate = Candidate(
            title=article.title or "", text=article.text or "", languages={article.language} if article.language is not None else set(),
            outlets={outlet} if outlet is not None else set(), feed_ids=feed_ids, outlet_count=await articles.story_outlet_count(session, article),
        )
        payload = None
        for subscription in subscribers:
            if not _is_news(subscription, article):
                continue
            if not matches(SubscriptionFilter.model_validate(subscription.filter), candidate):
                continue
            if payload is None:
                public = await article_public(session, article.id)
                if public is None:  # deleted since it was read (another transaction's commit)
                    break
                payload = envelope("article.created", public.model_dump(mode="json"))
            key = f"article.created:{article_id}"
            written += await _enqueue(session, subscription.id, "article.created", key, payload) is not None
    return written


async def announce_story(session: AsyncSession, story: Story, event_type: str, article: Article) -> int:
    """Write ``story.created`` or ``story.updated`` deliveries for ``story``, which ``article`` just
    created or grew (by a new outlet or language), to every matching subscription. The filter sees
    the story's languages, outlets and outlet count and the article's title, text and feeds; the
    payload is the story as ``GET /v1/stories`` lists it. Only articles that are news to the
    subscriber (as for ``article.created``) cause events. Does not commit; returns the number of
    deliveries written."""
    key = f"{event_type}:{story.id}" + (f":{article.id}" if event_type == "story.updated" else "")
    return await _announce_story_event(session, event_type, story, article, key)


async def announce_merge(session: AsyncSession, survivor: Story, merged_ids: list[int], article: Article) -> int:
    """Write ``story.merged`` deliveries: ``article`` brought the stories ``merged_ids`` (now
    deleted) into ``survivor``. Filtered and keyed as ``announce_story``; the payload is the
    survivor as ``GET /v1/stories`` lists it plus ``merged_story_ids``. Does not commit; returns
    the number of deliveries written."""
    key = f"story.merged:{survivor.id}:" + ",".join(str(i) for i in sorted(merged_ids))
    return await _announce_story_event(session, "story.merged", survivor, article, key, {"merged_story_ids": sorted(merged_ids)})


async def _announce_story_event(
    session: AsyncSession, event_type: str, story: Story, article: Article, key: str, extra: dict | None = None
) -> int:
    """The deliveries of one story event (``story.created``, ``story.updated``, ``story.merged``)
    that ``article`` caused: the payload is ``story`` as ``GET /v1/stories`` lists it (plus
    ``extra``), sent to every subscription of ``event_type`` that matches the story and for which
    ``article`` is news; ``key`` dedups the event. Returns the number written."""
    subscribers = await subscriptions.active_for(session, event_type)
    if not subscribers:
        return 0
    view = await story_view(session, story)
    _outlet, feed_ids = await articles.outlet_and_feeds(session, article)
    candidate = Candidate(
        title=f"{story.title or ''}\n{article.title or ''}", text=article.text or "", languages=set(story.languages),
        outlets=set(view.outlets), feed_ids=feed_ids, outlet_count=story.outlet_count,
    )
    payload = envelope(event_type, {**view.model_dump(mode="json"), **(extra or {})})
    written = 0
    for subscription in subscribers:
        if _is_news(subscription, article) and matches(SubscriptionFilter.model_validate(subscription.filter), candidate):
            written += await _enqueue(session, subscription.id, event_type, key, payload) is not None
    return written


async def enqueue_ping(session: AsyncSession, subscription: Subscription) -> str:
    """Write a ``ping`` delivery for ``subscription`` (each ping is a new event) and return its
    ``webhook-id``. Does not commit."""
    data = {"subscription_id": subscription.id, "message": "ping from Newsloom"}
    event_id = await _enqueue(session, subscription.id, "ping", f"ping:{uuid.uuid4().hex}", envelope("ping", data))
    assert event_id is not None  # the key is new
    return event_id
