"""Deliveries: the webhook outbox. A delivery is written in the transaction of the change it
announces (``insert``), claimed with a lease by a delivery worker (``claim_due``), and booked after
each attempt: successes many at once (``book_successes``), any other outcome with the retry and
disable decision the worker takes (``attempted``, ``book_attempt``); ``end`` closes one whose
subscription is no longer active. The API lists a subscription's deliveries (``of_subscription``)
and sends one again (``retry_now``).

The worker's functions are synchronous, over a ``sqlalchemy.orm.Session``: it runs each claim and
each booking as one transaction through ``db.Writer`` (one hand-off to the SQLite writer thread
instead of one per statement). Times are aware UTC datetimes; ids are ``deliveries.id``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import dialect_insert
from service.models import Delivery, DeliveryStatus, Subscription, table_of, utcnow
from service.storage import leases, subscriptions


def insert(session: Session, subscription_id: int, event_id: str, event_type: str, event_key: str, payload: str) -> bool:
    """Write a pending delivery of ``payload`` (the JSON body, signed as is) to ``subscription_id``,
    due now, unless that subscription already has one for ``event_key`` (INSERT … ON CONFLICT DO
    NOTHING on ``(subscription_id, event_key)``). Returns whether it was written. Synchronous (the
    outbox writes in the caller's transaction, on the ``db.Writer`` thread or through
    ``AsyncSession.run_sync``); does not commit."""
    now = utcnow()
    values = {
        "subscription_id": subscription_id, "event_id": event_id, "event_key": event_key, "event_type": event_type,
        "payload": payload, "status": DeliveryStatus.pending.value, "attempts": 0, "next_attempt_at": now, "created_at": now,
    }
    statement = dialect_insert(session)(Delivery).values(**values).on_conflict_do_nothing(index_elements=["subscription_id", "event_key"])
    result = session.execute(statement.returning(Delivery.id))
    return result.scalar_one_or_none() is not None


_DUE_CONDITIONS = [col(Delivery.status) == DeliveryStatus.pending,
                   col(Delivery.next_attempt_at) <= sa.bindparam("now", type_=table_of(Delivery).c.next_attempt_at.type)]
_DUE = leases.due_query(Delivery, _DUE_CONDITIONS, [col(Delivery.next_attempt_at), col(Delivery.id)],
                        spread_column=Delivery.subscription_id)
_FIRSTS = leases.firsts_query(Delivery, _DUE_CONDITIONS, [col(Delivery.next_attempt_at), col(Delivery.id)],
                              col(Delivery.subscription_id), 0)
# Built once: a busy worker claims once per handful of finished deliveries, and building the query
# anew cost more than running it (bench/webhooks.py). ``_FIRSTS`` (the first due delivery of each
# subscription, on ``ix_deliveries_subscription_queue``) is read only when ``_DUE``'s rows are all
# of subscriptions without room.


class ClaimedDelivery(NamedTuple):
    """A claimed delivery as the worker sends it (``claim_due``; a row, not an ORM object): its id,
    subscription, ``webhook-id``, JSON body, attempts made before this one and creation time (UTC)."""

    id: int
    subscription_id: int
    event_id: str
    payload: str
    attempts: int
    created_at: datetime


_CLAIMED_COLUMNS = tuple(table_of(Delivery).c[name] for name in ClaimedDelivery._fields)


def claim_due(
    session: Session, owner: str, lease_seconds: float, limit: int, room: Callable[[str], int] | None = None
) -> tuple[list[ClaimedDelivery], dict[int, subscriptions.Endpoint | None]]:
    """Lease to ``owner`` for ``lease_seconds`` seconds up to ``limit`` pending deliveries whose
    attempt is due and that nobody else holds, taking turns between subscriptions and at most
    ``room(str(subscription_id))`` of one subscription when ``room`` is given (``leases.claim_rows``
    with a spread: up to ``leases.SPREAD_FACTOR × limit`` due rows are read to choose from, then,
    when they do not fill the claim, the first due delivery of each subscription;
    ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL). Returns them, earliest due first, and the
    endpoints of their subscriptions as they are now, by id (None: deleted since). Does not commit;
    three Core statements, one when nothing is due, two more when the first due deliveries are all
    of subscriptions without room."""
    rows = leases.claim_rows(session, Delivery, _DUE, utcnow(), owner, lease_seconds, limit, spread=str, room=room,
                             firsts=_FIRSTS, returning=_CLAIMED_COLUMNS)
    if not rows:
        return [], {}
    claimed = [ClaimedDelivery._make(row) for row in rows]
    wanted = {delivery.subscription_id for delivery in claimed}
    current = subscriptions.endpoints(session, wanted)
    return claimed, {sub_id: current.get(sub_id) for sub_id in wanted}


async def next_due(session: AsyncSession) -> datetime | None:
    """When the earliest pending delivery nobody holds falls due (None: there is none). Read-only."""
    return await leases.next_due(session, Delivery, [col(Delivery.status) == DeliveryStatus.pending], Delivery.next_attempt_at)


def book_successes(session: Session, by_status: dict[int | None, list[int]], now: datetime) -> None:
    """The deliveries ``by_status[status]`` were answered with that 2xx ``status`` at ``now``: one
    more attempt each, ``succeeded``, their leases released. One Core UPDATE per status (built once);
    does not commit. For subscriptions that were not failing (a success that ends a failing spell
    goes through ``book_attempt``, which clears ``failing_since``). Only pending deliveries are
    booked: a batch booked again after its sender was cancelled mid-commit counts no attempt twice."""
    connection = session.connection()
    for status, ids in by_status.items():
        connection.execute(_SUCCEEDED, {"ids": ids, "at": now, "answered": status})


_DELIVERIES = table_of(Delivery)
_AT = sa.bindparam("at", type_=_DELIVERIES.c.last_attempt_at.type)
_SUCCEEDED = (
    sa.update(_DELIVERIES)
    .where(_DELIVERIES.c.id.in_(sa.bindparam("ids", expanding=True)), _DELIVERIES.c.status == DeliveryStatus.pending.value)
    .values(attempts=_DELIVERIES.c.attempts + 1, last_attempt_at=_AT, last_response_status=sa.bindparam("answered", type_=sa.Integer),
            last_error=None, status=DeliveryStatus.succeeded.value, delivered_at=_AT, next_attempt_at=None, lease_owner=None,
            lease_until=None)
)
"""``book_successes``'s statement: Core, on the table (no ORM synchronisation), built once."""


@dataclass(frozen=True)
class Outcome:
    """What one attempt leads to, as the worker decided it: the delivery's new ``status`` and
    ``next_attempt_at`` (None unless it stays pending), the subscription's ``failing_since`` (None
    once it answered 2xx) and, when the subscription is to be disabled, why."""

    status: DeliveryStatus
    next_attempt_at: datetime | None
    failing_since: datetime | None
    disable_reason: str | None = None


def attempted(session: Session, delivery_id: int) -> tuple[Delivery, Subscription] | None:
    """The delivery ``delivery_id`` and its subscription, to book an attempt on (None: deleted
    meanwhile, with its subscription; or no longer pending: its success was committed by a group
    commit its sender did not see through, cancelled at a deadline, and must not be undone)."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is not None and delivery.status != DeliveryStatus.pending:
        return None
    subscription = session.get(Subscription, delivery.subscription_id) if delivery is not None else None
    return (delivery, subscription) if delivery is not None and subscription is not None else None


def book_attempt(
    session: Session, delivery: Delivery, subscription: Subscription, now: datetime, response_status: int | None,
    error: str | None, outcome: Outcome,
) -> None:
    """Book one attempt of ``delivery`` (from ``attempted``) made at ``now``: the HTTP
    ``response_status`` (None without a response), the ``error`` (None for a success) and its
    ``outcome``; release the lease; disable ``subscription`` when the outcome says so (its pending
    deliveries become ``dead``). Does not commit."""
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_response_status = response_status
    delivery.last_error = error
    delivery.status = outcome.status
    delivery.next_attempt_at = outcome.next_attempt_at
    if outcome.status == DeliveryStatus.succeeded:
        delivery.delivered_at = now
    leases.release(delivery)
    subscription.failing_since = outcome.failing_since
    if outcome.disable_reason is not None:
        session.flush()  # this delivery's own status first: disabling kills the pending ones
        subscriptions.disable(session, subscription, outcome.disable_reason)


def end(session: Session, delivery_id: int, status: DeliveryStatus) -> None:
    """Give the delivery ``delivery_id`` the final ``status`` (``dead``: its subscription is no
    longer active) without an attempt, and release its lease. Does not commit."""
    session.execute(
        sa.update(Delivery).where(col(Delivery.id) == delivery_id)
        .values(status=status, next_attempt_at=None, lease_owner=None, lease_until=None),
        execution_options={"synchronize_session": False},
    )


async def by_event_id(session: AsyncSession, event_id: str) -> Delivery:
    """The delivery whose ``webhook-id`` is ``event_id``. Raises ``sqlalchemy.exc.NoResultFound``
    when there is none."""
    return (await session.exec(select(Delivery).where(Delivery.event_id == event_id))).one()


async def get(session: AsyncSession, delivery_id: int) -> Delivery | None:
    """The delivery ``delivery_id``, or None."""
    return await session.get(Delivery, delivery_id)


async def of_subscription(
    session: AsyncSession, subscription_id: int, status: DeliveryStatus | None, before: int | None, limit: int
) -> list[Delivery]:
    """Up to ``limit`` deliveries of ``subscription_id``, newest (highest id) first: only those in
    ``status`` when it is given, only ids below ``before`` when it is given (a page's cursor)."""
    query = select(Delivery).where(Delivery.subscription_id == subscription_id)
    if status is not None:
        query = query.where(Delivery.status == status)
    if before is not None:
        query = query.where(col(Delivery.id) < before)
    return list((await session.exec(query.order_by(col(Delivery.id).desc()).limit(limit))).all())


async def retry_now(session: AsyncSession, delivery: Delivery) -> Delivery:
    """Make ``delivery`` pending and due now (its attempt count goes on), commit, and return it as stored."""
    delivery.status = DeliveryStatus.pending
    delivery.next_attempt_at = utcnow()
    await session.commit()
    await session.refresh(delivery)
    return delivery
