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

The functions that write deliveries are synchronous, over the caller's ``sqlalchemy.orm.Session``:
the linker runs them inside its assignment transaction on the ``db.Writer`` thread; an async caller
passes them to ``AsyncSession.run_sync``.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from service.models import Article, ExtractionStatus, Story, Subscription, utcnow
from service.storage import articles, deliveries, subscriptions
from service.storage.subscriptions import Subscriber
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


def _enqueue(session: Session, subscription_id: int, event_type: str, event_key: str, payload: str) -> str | None:
    """Insert one delivery unless this subscription already has one for ``event_key``; return its
    ``webhook-id``, or None when it existed."""
    event_id = new_event_id()
    return event_id if deliveries.insert(session, subscription_id, event_id, event_type, event_key, payload) else None


def _is_news(subscription: Subscriber, article: Article) -> bool:
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


def _taking(subscribers: list[Subscriber], event_type: str) -> list[Subscriber]:
    """The ``subscribers`` that take ``event_type`` events, in their order."""
    return [subscription for subscription in subscribers if event_type in subscription.event_types]


def announce_articles(session: Session, article_ids: list[int]) -> int:
    """Write ``article.created`` deliveries for the articles ``article_ids`` that are complete (not
    ``pending``) to every matching subscription (see the module docstring for what counts as new).
    The payload is the article as ``GET /v1/articles/{id}`` returns it; ``min_outlets`` sees the
    outlet count of the article's story (1 when it has none). Does not commit: call it inside the
    transaction that completes (or, with stories on, links) the articles. Returns the number of
    deliveries written."""
    if not article_ids:
        return 0
    return _announce_articles(session, article_ids, _taking(subscriptions.active(session), "article.created"))


def announce_linked(session: Session, article_id: int, story: Story, change: str | None, merged_ids: list[int]) -> int:
    """Write the deliveries of linking article ``article_id`` (its row already written) to
    ``story``, reading the active subscriptions once, and the article only when there are some:
    ``article.created`` for the article (as ``announce_articles``); ``story.created`` or
    ``story.updated`` when ``change`` names it (the article started the story, or brought it a new
    outlet or language); ``story.merged`` when the article brought the stories ``merged_ids`` (now
    deleted) into ``story``, the survivor. Story events are filtered against the story's
    languages, outlets and outlet count with the article's title, text and feeds, only for
    subscribers to whom the article is news; their payload is the story as ``GET /v1/stories``
    lists it (plus ``merged_story_ids`` for a merge). Does not commit: call it in the transaction
    that links the article. Returns the number of deliveries written."""
    subscribers = subscriptions.active(session)
    if not subscribers:
        return 0
    written = _announce_articles(session, [article_id], _taking(subscribers, "article.created"))
    article = articles.get(session, article_id)
    assert article is not None  # written in this transaction
    if change is not None:
        key = f"{change}:{story.id}" + (f":{article.id}" if change == "story.updated" else "")
        written += _announce_story_event(session, _taking(subscribers, change), change, story, article, key)
    if merged_ids:
        merged = sorted(merged_ids)
        key = f"story.merged:{story.id}:" + ",".join(str(i) for i in merged)
        written += _announce_story_event(session, _taking(subscribers, "story.merged"), "story.merged", story, article, key,
                                               {"merged_story_ids": merged})
    return written


def _announce_articles(session: Session, article_ids: list[int], subscribers: list[Subscriber]) -> int:
    """``announce_articles`` to the active ``subscribers`` of ``article.created``."""
    if not subscribers:
        return 0
    written = 0
    for article_id in article_ids:
        article = articles.get(session, article_id)
        if article is None or article.extraction_status == ExtractionStatus.pending:
            continue  # announced when its page is done
        outlet, feed_ids = articles.outlet_and_feeds(session, article)
        candidate = Candidate(
            title=article.title or "", text=article.text or "", languages={article.language} if article.language is not None else set(),
            outlets={outlet} if outlet is not None else set(), feed_ids=feed_ids, outlet_count=articles.story_outlet_count(session, article),
        )
        payload = None
        for subscription in subscribers:
            if not _is_news(subscription, article):
                continue
            if not matches(SubscriptionFilter.stored(subscription.filter), candidate):
                continue
            if payload is None:
                public = article_public(session, article.id)
                if public is None:  # deleted since it was read (another transaction's commit)
                    break
                payload = envelope("article.created", public.model_dump(mode="json"))
            key = f"article.created:{article_id}"
            written += _enqueue(session, subscription.id, "article.created", key, payload) is not None
    return written


def _announce_story_event(
    session: Session, subscribers: list[Subscriber], event_type: str, story: Story, article: Article, key: str,
    extra: dict | None = None,
) -> int:
    """The deliveries of one story event (``story.created``, ``story.updated``, ``story.merged``)
    that ``article`` caused, to the active ``subscribers`` of ``event_type``: the payload is
    ``story`` as ``GET /v1/stories`` lists it (plus ``extra``), sent to every one that matches the
    story and for which ``article`` is news; ``key`` dedups the event. Returns the number written."""
    if not subscribers:
        return 0
    view = story_view(session, story)
    _outlet, feed_ids = articles.outlet_and_feeds(session, article)
    candidate = Candidate(
        title=f"{story.title or ''}\n{article.title or ''}", text=article.text or "", languages=set(story.languages),
        outlets=set(view.outlets), feed_ids=feed_ids, outlet_count=story.outlet_count,
    )
    payload = envelope(event_type, {**view.model_dump(mode="json"), **(extra or {})})
    written = 0
    for subscription in subscribers:
        if _is_news(subscription, article) and matches(SubscriptionFilter.stored(subscription.filter), candidate):
            written += _enqueue(session, subscription.id, event_type, key, payload) is not None
    return written


def enqueue_ping(session: Session, subscription: Subscription) -> str:
    """Write a ``ping`` delivery for ``subscription`` (each ping is a new event) and return its
    ``webhook-id``. Does not commit."""
    data = {"subscription_id": subscription.id, "message": "ping from Newsloom"}
    event_id = _enqueue(session, subscription.id, "ping", f"ping:{uuid.uuid4().hex}", envelope("ping", data))
    assert event_id is not None  # the key is new
    return event_id
