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
    session: AsyncSession,
    model: type[T],
    due: list,
    order_by: list,
    owner: str | None,
    lease_seconds: float,
    limit: int,
    *,
    until_column: str = "lease_until",
) -> list[T]:
    """Lease up to ``limit`` rows of ``model`` matching every condition in ``due`` and not leased by
    anyone else, in ``order_by`` order; commit and return them. ``lease_seconds`` is the lease's
    length in seconds. ``model`` must have an ``id`` and the ``until_column`` timestamp; with an
    ``owner`` it must also have ``lease_owner`` (so a stopping process can release its own rows).
    Story linking leases through its own column (``until_column="link_lease_until"``, no owner)."""
    now = utcnow()
    until_attr = getattr(model, until_column)
    query = (
        select(model.id)
        .where(*due)
        .where(sa.or_(col(until_attr).is_(None), col(until_attr) < now))
        .order_by(*order_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.exec(query)).all())
    if not ids:
        await session.commit()
        return []
    until = now + timedelta(seconds=lease_seconds)
    stamp = {until_column: until} | ({"lease_owner": owner} if owner is not None else {})
    await session.exec(sa.update(model).where(col(model.id).in_(ids)).values(**stamp))
    rows = list((await session.exec(select(model).where(col(model.id).in_(ids)).order_by(*order_by))).all())
    await session.commit()
    return rows


def release(row) -> None:
    """Clear ``row``'s lease (the caller commits)."""
    row.lease_owner = None
    row.lease_until = None
