"""Webhook subscriptions: created, read, changed and removed through the API; the active ones of
an event type read by the outbox; disabled (with their pending deliveries ``dead``) by the API or
by the delivery worker when an endpoint is gone or keeps failing."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.models import Delivery, DeliveryStatus, Subscription, SubscriptionState, table_of, utcnow


class Subscriber(NamedTuple):
    """What the outbox needs of an active subscription (``active``): its id, the event types it
    takes, its stored filter (``SubscriptionFilter.stored``) and its creation time (UTC)."""

    id: int
    event_types: list[str]
    filter: dict
    created_at: datetime


_ACTIVE = sa.select(*(table_of(Subscription).c[name] for name in Subscriber._fields)).where(
    table_of(Subscription).c.state == SubscriptionState.active.value).order_by(table_of(Subscription).c.id)
# Built once (Core, on the table): reused, it is compiled from SQLAlchemy's cache without a walk for its cache key.


async def add(session: AsyncSession, subscription: Subscription) -> Subscription:
    """Insert ``subscription`` and commit; returns it with its id and defaults as stored."""
    session.add(subscription)
    await session.commit()
    await session.refresh(subscription)
    return subscription


async def get(session: AsyncSession, subscription_id: int) -> Subscription | None:
    """The subscription ``subscription_id``, or None."""
    return await session.get(Subscription, subscription_id)


async def every(session: AsyncSession) -> list[Subscription]:
    """Every subscription, oldest (lowest id) first."""
    return list((await session.exec(select(Subscription).order_by(col(Subscription.id)))).all())


async def save(session: AsyncSession, subscription: Subscription) -> Subscription:
    """Commit the changes made to ``subscription`` (and anything else pending in ``session``) and
    return it as stored."""
    subscription.updated_at = utcnow()
    await session.commit()
    await session.refresh(subscription)
    return subscription


async def remove(session: AsyncSession, subscription: Subscription) -> None:
    """Delete ``subscription`` and its deliveries (ON DELETE CASCADE) and commit."""
    await session.delete(subscription)
    await session.commit()


class Endpoint(NamedTuple):
    """What the delivery worker needs of a subscription to send to it (``endpoints``): its id, the
    URL, the signing secret and the previous one with its expiry (UTC; during a rotation both
    sign), its state and since when it has been failing (UTC; None: it is not)."""

    id: int
    url: str
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    state: str
    failing_since: datetime | None


_ENDPOINTS = sa.select(*(table_of(Subscription).c[name] for name in Endpoint._fields)).where(
    table_of(Subscription).c.id.in_(sa.bindparam("ids", expanding=True)))


def endpoints(session: Session, ids: Iterable[int]) -> dict[int, Endpoint]:
    """The endpoints of the subscriptions among ``ids`` that exist, by id (one Core SELECT, built
    once: the delivery worker's every claim reads them)."""
    return {row[0]: Endpoint._make(row) for row in session.connection().execute(_ENDPOINTS, {"ids": list(ids)})}


def active(session: Session) -> list[Subscriber]:
    """Every active subscription, oldest first (the outbox picks those that take an event's type:
    one read for all the events of one change). Synchronous; one Core SELECT on the session's
    connection: no ORM objects, and no autoflush of the caller's pending changes (the linker asks
    in every assignment, mostly of a database without subscriptions)."""
    return [Subscriber._make(row) for row in session.connection().execute(_ACTIVE)]


def any_active_for(session: Session, event_type: str) -> bool:
    """Whether some active subscription takes ``event_type`` events (synchronous; one SELECT)."""
    return any(event_type in (subscriber.event_types or []) for subscriber in active(session))


def disable(session: Session, subscription: Subscription, reason: str) -> None:
    """Disable ``subscription`` with ``reason`` and make its pending deliveries ``dead`` (kept, and
    retryable through the API once it is enabled again). Synchronous (an async caller passes it to
    ``AsyncSession.run_sync``); does not commit."""
    subscription.state = SubscriptionState.disabled
    subscription.disabled_reason = reason
    subscription.updated_at = utcnow()
    session.execute(
        sa.update(Delivery)
        .where(col(Delivery.subscription_id) == subscription.id, col(Delivery.status) == DeliveryStatus.pending)
        .values(status=DeliveryStatus.dead, next_attempt_at=None, lease_owner=None, lease_until=None)
    )


def enable(subscription: Subscription) -> None:
    """Make ``subscription`` active again, its disabling reason and failing spell forgotten (the
    caller saves it)."""
    subscription.state = SubscriptionState.active
    subscription.disabled_reason = None
    subscription.failing_since = None
