"""Claiming work rows with a lease, shared by every durable step (due feeds, pending pages,
pending deliveries).

A claim selects due rows with ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite ignores the
clause and serialises writers), stamps them with the claimer and a lease expiry, and commits. Rows
whose lease has expired (their claimer died) are due again. A finished step clears the lease.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.models import utcnow

T = TypeVar("T")


async def claim(
    session: AsyncSession, model: type[T], due: list, order_by: list, owner: str, lease_seconds: float, limit: int
) -> list[T]:
    """Lease up to ``limit`` rows of ``model`` matching every condition in ``due`` and not leased by
    anyone else, in ``order_by`` order; commit and return them. ``model`` must have ``id``,
    ``lease_owner`` and ``lease_until`` columns."""
    now = utcnow()
    query = (
        select(model.id)
        .where(*due)
        .where(sa.or_(col(model.lease_until).is_(None), col(model.lease_until) < now))
        .order_by(*order_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.exec(query)).all())
    if not ids:
        await session.commit()
        return []
    until = now + timedelta(seconds=lease_seconds)
    await session.exec(sa.update(model).where(col(model.id).in_(ids)).values(lease_owner=owner, lease_until=until))
    rows = list((await session.exec(select(model).where(col(model.id).in_(ids)).order_by(*order_by))).all())
    await session.commit()
    return rows


def release(row) -> None:
    """Clear ``row``'s lease (the caller commits)."""
    row.lease_owner = None
    row.lease_until = None
