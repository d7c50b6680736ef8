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

_ACTIVE_KINDS = sa.select(table_of(Subscription).c.event_types).where(
    table_of(Subscription).c.state == SubscriptionState.active.value)
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


def active(session: Session) -> list[Subscription]:
    """Every active subscription, oldest first (the outbox picks those that take an event's type:
    one read for all the events of one change). Synchronous."""
    return list(session.scalars(select(Subscription).where(Subscription.state == SubscriptionState.active)
                                .order_by(col(Subscription.id))).all())


def any_active_for(session: Session, event_type: str) -> bool:
    """Whether some active subscription takes ``event_type`` events (synchronous; one SELECT)."""
    return any(event_type in (kinds or []) for kinds in session.scalars(_ACTIVE_KINDS))


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
