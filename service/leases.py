"""Claiming work rows with a lease, shared by every durable step (due feeds, pending pages,
pending deliveries).

A claim selects due rows with ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite ignores the
clause and serialises writers), stamps them with the claimer and a lease expiry, and commits. Rows
whose lease has expired (their claimer died) are due again. A finished step clears the lease.
"""

from __future__ import annotations

from datetime import timedelta
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.models import utcnow

T = TypeVar("T")

# With ``spread_by``, how many due rows per claimed row are read to choose from (ids and URLs only:
# 1,000 rows for a batch of 20). A host with more due rows than that can still fill a claim; a host
# column with a per-host window in SQL would lift that limit.
SPREAD_FACTOR = 50


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
    spread_by: tuple[Any, Callable[[str], str]] | None = None,
) -> list[T]:
    """Lease up to ``limit`` rows of ``model`` matching every condition in ``due`` and not leased by
    anyone else, in ``order_by`` order; commit and return them. ``lease_seconds`` is the lease's
    length in seconds. ``model`` must have an ``id`` and the ``until_column`` timestamp; with an
    ``owner`` it must also have ``lease_owner`` (so a stopping process can release its own rows).
    Story linking leases through its own column (``until_column="link_lease_until"``, no owner).

    ``spread_by`` = ``(column, key)`` takes turns between the groups ``key(column value)`` names
    (hosts of URLs): up to ``SPREAD_FACTOR × limit`` due rows are read in order and the claim takes
    one row of each group in turn, so a host with thousands of due rows cannot fill every batch
    while other hosts wait behind its politeness limits."""
    now = utcnow()
    until_attr = getattr(model, until_column)
    columns = [model.id] if spread_by is None else [model.id, spread_by[0]]
    query = (
        select(*columns)
        .where(*due)
        .where(sa.or_(col(until_attr).is_(None), col(until_attr) < now))
        .order_by(*order_by)
        .limit(limit if spread_by is None else limit * SPREAD_FACTOR)
        .with_for_update(skip_locked=True)
    )
    rows_found = list((await session.exec(query)).all())
    ids = rows_found if spread_by is None else _take_turns(rows_found, spread_by[1], limit)
    if not ids:
        await session.commit()
        return []
    until = now + timedelta(seconds=lease_seconds)
    stamp = {until_column: until} | ({"lease_owner": owner} if owner is not None else {})
    await session.exec(sa.update(model).where(col(model.id).in_(ids)).values(**stamp))
    rows = list((await session.exec(select(model).where(col(model.id).in_(ids)).order_by(*order_by))).all())
    await session.commit()
    return rows


def _take_turns(rows: list[tuple[int, str]], key: Callable[[str], str], limit: int) -> list[int]:
    """Up to ``limit`` ids from ``(id, value)`` rows, one per group ``key(value)`` in turn, keeping
    the rows' order within each group and the order in which groups first appear."""
    groups: dict[str, list[int]] = {}
    for row_id, value in rows:
        groups.setdefault(key(value or ""), []).append(row_id)
    queues = list(groups.values())
    taken: list[int] = []
    while queues and len(taken) < limit:
        for queue in queues:
            if len(taken) < limit:
                taken.append(queue.pop(0))
        queues = [q for q in queues if q]
    return taken


def release(row) -> None:
    """Clear ``row``'s lease (the caller commits)."""
    row.lease_owner = None
    row.lease_until = None
