"""Claiming work rows with a lease, shared by every durable step (due feeds, pending pages,
pending deliveries).

A claim selects due rows with ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite ignores the
clause and serialises writers), stamps them with the claimer and a lease expiry, and commits. While
the claimer works, ``kept`` extends the leases it still holds (a heartbeat), so slow work — a feed
parse queued behind page extractions, a long stall at a host — is never taken over while its
claimer lives. Rows whose lease has expired (their claimer died, or its event loop stalled for a
whole lease) are due again. A finished step clears the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Collection, Generator, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol, TypeVar, overload

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.models import table_of, utcnow


class Leasable(Protocol):
    """A table model whose rows are leased (feeds, articles, deliveries): an integer primary key
    ``id``, a ``lease_owner`` and the ``until_column`` timestamps the functions name."""

    id: int
    lease_owner: str | None


class Claimed(Protocol):
    """A claimed row as a step handles it: a ``Leasable`` object, or a light row of its columns
    (the delivery worker's ``ClaimedDelivery``); only its ``id`` is read here and by the runner."""

    @property
    def id(self) -> int: ...


T = TypeVar("T", bound=Leasable)
log = logging.getLogger(__name__)

RENEWALS_PER_LEASE = 3
"""``kept`` renews a lease this many times per lease period, so one late or failed renewal (a busy
database) does not let the lease lapse."""

# With a spread, how many due rows per claimed row the ordered read takes at most to choose from (ids
# and groups only: up to 1,000 rows for a batch of 20; the read stops once the claim is sure to be
# full, ``take_turns``). When it reads that many without filling the claim (the first due rows are of
# groups without room: one host's backlog), the claim goes on with the first due row of every group
# (``firsts_query``), so a group behind the backlog is claimed at once.
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
    room: Callable[[str], int] | None = None,
) -> list[T]:
    """Lease up to ``limit`` rows of ``model`` matching every condition in ``due`` and not leased by
    anyone else, in ``order_by`` order; commit and return them. ``lease_seconds`` is the lease's
    length in seconds. ``model`` must have an ``id`` and the ``until_column`` timestamp; with an
    ``owner`` it must also have ``lease_owner`` (so a stopping process can release its own rows).
    Story linking leases through its own column (``until_column="link_lease_until"``, no owner).

    ``spread_by`` = ``(column, key)`` takes turns between the groups ``key(column value)`` names
    (hosts of URLs): up to ``SPREAD_FACTOR × limit`` due rows are read in order and the claim takes
    one row of each group in turn, so a host with thousands of due rows cannot fill every batch
    while other hosts wait behind its politeness limits. ``room(group)``, with ``spread_by``, caps how
    many rows of each group this claim takes (the runner passes the free per-host or
    per-subscription slots, so a full group's rows stay unclaimed for others). The statements are
    ``claim_rows``'s (the delivery worker's claims run it directly, in a transaction of their own)."""
    query = due_query(model, due, order_by, until_column=until_column, spread_column=spread_by[0] if spread_by else None)
    rows = await session.run_sync(claim_rows, model, query, utcnow(), owner, lease_seconds, limit,
                                  until_column=until_column, spread=spread_by[1] if spread_by else None, room=room)
    await session.commit()
    return rows


def due_query(model: type[Leasable], due: list, order_by: list, *, until_column: str = "lease_until",
              spread_column: Any = None) -> sa.Select:
    """``claim_rows``'s query: ``SELECT id[, spread_column] FROM model WHERE <due> AND <not leased at
    :now> ORDER BY <order_by> LIMIT :read FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite ignores the
    clause and serialises writers). ``due`` may use the ``:now`` parameter too
    (``sa.bindparam("now")``); a query built once serves every claim of its kind."""
    now = sa.bindparam("now", type_=getattr(model, until_column).type)
    columns = [model.id] if spread_column is None else [model.id, spread_column]
    return (
        select(*columns)
        .where(*due)
        .where(not_held(model, now, until_column))
        .order_by(*order_by)
        .limit(sa.bindparam("read", type_=sa.Integer))
        .with_for_update(skip_locked=True)
    )


class Firsts(NamedTuple):
    """``claim_rows``'s second read with a spread (``firsts_query``): ``ids``, the id of the first
    due row of each group, then ``rows``, those of them still due and free, locked."""

    ids: sa.Select
    rows: sa.Select


def firsts_query(model: type[Leasable], due: list, order_by: list, group_column: Any, below: Any, *,
                 until_column: str = "lease_until") -> Firsts:
    """The first row in ``order_by`` order of each group (a value of ``group_column``, a stored
    column, greater than ``below``) among the rows matching ``due`` and not leased at ``:now``, in
    two statements. ``ids`` walks the groups in ``group_column`` order with a recursive CTE (a loose
    index scan, as PostgreSQL's wiki "Loose indexscan" shows): one index seek per group with a due
    row and one for its first row, however many rows a group has, given an index on ``(<due's
    equality columns>, group_column, <order_by>)`` (``ix_articles_host_queue``,
    ``ix_deliveries_subscription_queue``); a group whose first rows in that index are not due (a
    retry later) is read until its first due one. ``rows`` is ``due_query`` on the ids ``:firsts``
    (``id, group_column``, ``:read`` of them in ``order_by`` order, ``FOR UPDATE SKIP LOCKED`` on
    PostgreSQL): by primary key, so neither statement leaves the planner a scan of every due row to
    choose (SQLite has no statistics to tell)."""
    now = sa.bindparam("now", type_=getattr(model, until_column).type)
    conditions = [*due, not_held(model, now, until_column)]
    groups = select(sa.cast(sa.literal(below), group_column.type).label("grp")).cte("spread_groups", recursive=True)
    next_group = (select(group_column).where(group_column > groups.c.grp, *conditions).order_by(group_column).limit(1)
                  .scalar_subquery().correlate(groups))
    groups = groups.union_all(select(next_group).where(groups.c.grp.is_not(None)))
    first_row = (select(model.id).where(group_column == groups.c.grp, *conditions).order_by(*order_by).limit(1)
                 .scalar_subquery().correlate(groups))
    ids = select(first_row).where(groups.c.grp.is_not(None))
    chosen = col(model.id).in_(sa.bindparam("firsts", expanding=True))
    return Firsts(ids, due_query(model, [*due, chosen], order_by, until_column=until_column, spread_column=group_column))


@overload
def claim_rows(
    session: Session, model: type[T], query: sa.Select, now: datetime, owner: str | None, lease_seconds: float, limit: int,
    *, until_column: str = ..., spread: Callable[[Any], str] | None = ..., room: Callable[[str], int] | None = ...,
    firsts: Firsts | None = ..., returning: None = ...,
) -> list[T]: ...
@overload
def claim_rows(
    session: Session, model: type[T], query: sa.Select, now: datetime, owner: str | None, lease_seconds: float, limit: int,
    *, until_column: str = ..., spread: Callable[[Any], str] | None = ..., room: Callable[[str], int] | None = ...,
    firsts: Firsts | None = ..., returning: Sequence[sa.ColumnElement[Any]],
) -> list[sa.Row[Any]]: ...
def claim_rows(
    session: Session, model: type[T], query: sa.Select, now: datetime, owner: str | None, lease_seconds: float, limit: int,
    *, until_column: str = "lease_until", spread: Callable[[Any], str] | None = None, room: Callable[[str], int] | None = None,
    firsts: Firsts | None = None, returning: Sequence[sa.ColumnElement[Any]] | None = None,
) -> list[T] | list[sa.Row[Any]]:
    """The claim itself, synchronous and without a commit (one SELECT, and one UPDATE … RETURNING
    when something is due; two more SELECTs when ``firsts`` is read): lease to ``owner`` until ``now`` + ``lease_seconds`` seconds up to
    ``limit`` of the rows ``query`` (``due_query``) finds at ``now``, and return them in the query's
    order: as ``model`` objects of the session, or, with ``returning`` (columns of ``model``'s
    table), as Core rows of those columns (no ORM objects: the delivery worker's claims). The due
    rows are read on the session's connection (Core), and so are they stamped with ``returning``;
    without it the stamp goes through the ORM, which builds the objects. With ``spread`` (the key of a
    row's spread column), up to ``SPREAD_FACTOR × limit`` rows are read and the claim takes turns
    between their groups, at most ``room(group)`` of one group when ``room`` is given; the read
    stops as soon as the claim is sure to be full (``take_turns``; see ``claim``). When all those
    rows were read and the claim is not full, ``firsts`` (``firsts_query`` on a stored group
    column, the same one as the spread column) is read next: the first due row of each group."""
    connection = session.connection()
    params = {"now": now, "read": limit if spread is None else limit * SPREAD_FACTOR}
    order: dict[int, int] = {}  # id -> position in the reads' order
    if spread is None:
        ids = [row[0] for row in connection.execute(query, params)]
    else:
        with contextlib.closing(_spread_rows(connection, query, firsts, params, order)) as due:
            ids = take_turns(due, spread, limit, room)  # the rows past an early stop are not wanted
    if not ids:
        return []
    if not order:
        order = {row_id: i for i, row_id in enumerate(ids)}
    # One statement stamps and reads the rows (RETURNING: SQLite >= 3.35, PostgreSQL); they come back
    # in no set order, so they are put back in the order the query found them.
    values = {"ids": ids, "until": now + timedelta(seconds=lease_seconds), "owner": owner}
    if returning is not None:
        rows = connection.execute(_core_stamp_statement(model, until_column, owner is not None, tuple(returning)), values).all()
        return sorted(rows, key=lambda row: order[row[0]])
    stamped = session.scalars(_stamp_statement(model, until_column, owner is not None), values,
                              execution_options={"synchronize_session": False}).all()
    return sorted(stamped, key=lambda row: order[row.id])


def _spread_rows(connection: sa.Connection, query: sa.Select, firsts: Firsts | None, params: dict[str, Any],
                 order: dict[int, int]) -> Generator[tuple[int, Any]]:
    """``(id, spread value)`` of the rows ``query`` reads, then, when it read all ``params["read"]``
    and ``firsts`` is given, of those ``firsts`` reads that were not read yet; executed and read as
    they are consumed, each id's position noted in ``order``."""
    with contextlib.closing(connection.execute(query, params)) as result:
        for row_id, value in result:
            order[row_id] = len(order)
            yield row_id, value
    if firsts is None or len(order) < params["read"]:
        return
    ids = [row_id for row_id, in connection.execute(firsts.ids, params) if row_id is not None and row_id not in order]
    if not ids:
        return
    with contextlib.closing(connection.execute(firsts.rows, {**params, "firsts": ids})) as result:
        for row_id, value in result:
            order[row_id] = len(order)
            yield row_id, value


def not_held(model: type, now: datetime | sa.BindParameter, until_column: str = "lease_until") -> sa.ColumnElement[bool]:
    """The condition of a row of ``model`` nobody holds a lease on at ``now`` (a time or a bound
    parameter): never leased, released, or its lease has expired."""
    until = col(getattr(model, until_column))
    return sa.or_(until.is_(None), until < now)


@functools.cache
def _stamp_statement(model: type[Leasable], until_column: str, owned: bool) -> sa.Update:
    """``claim``'s ``UPDATE … SET <until_column> = :until[, lease_owner = :owner] WHERE id IN :ids
    RETURNING <model>``, built once per kind of claim: a statement reused is compiled from
    SQLAlchemy's cache without a walk for its cache key."""
    stamp: dict[str, sa.BindParameter] = {until_column: sa.bindparam("until")}
    if owned:
        stamp["lease_owner"] = sa.bindparam("owner")
    return sa.update(model).where(col(model.id).in_(sa.bindparam("ids", expanding=True))).values(**stamp).returning(model)


@functools.cache
def _core_stamp_statement(model: type[Leasable], until_column: str, owned: bool, returning: tuple[sa.ColumnElement[Any], ...]) -> sa.Update:
    """``_stamp_statement`` in Core, on ``model``'s table: ``… RETURNING <returning>`` (the
    returning columns' first must be the id), built once per kind of claim."""
    table = table_of(model)
    stamp: dict[str, sa.BindParameter] = {until_column: sa.bindparam("until")}
    if owned:
        stamp["lease_owner"] = sa.bindparam("owner")
    return sa.update(table).where(table.c.id.in_(sa.bindparam("ids", expanding=True))).values(**stamp).returning(*returning)


def take_turns(
    rows: Iterable[tuple[int, Any]], key: Callable[[Any], str], limit: int, room: Callable[[str], int] | None = None
) -> list[int]:
    """Up to ``limit`` ids from ``(id, value)`` rows, one per group ``key(value)`` in turn, keeping
    the rows' order within each group and the order in which groups first appear; at most
    ``room(group)`` ids of a group when ``room`` is given.

    ``rows`` is consumed only until the claim is sure to be full: without ``room``, once ``limit``
    groups have been seen (the first row of each is taken whatever follows); with ``room``, once
    the rows seen fill ``limit`` within each group's room (later rows, due later, wait for the next
    claim: ``room`` already keeps one group from filling it)."""
    groups: dict[str, list[int]] = {}
    caps: dict[str, int] = {}
    sure = 0  # rows read that the claim takes (see above): at ``limit``, the rest is not read
    for row_id, value in rows:
        group = key(value if value is not None else "")
        queue = groups.get(group)
        if queue is None:
            queue = groups[group] = []
            caps[group] = min(limit, max(0, room(group))) if room is not None else limit
        if len(queue) < caps[group]:
            queue.append(row_id)
            if room is not None or len(queue) == 1:
                sure += 1
                if sure >= limit:
                    break
    queues = [queue for queue in groups.values() if queue]
    taken: list[int] = []
    while queues and len(taken) < limit:
        for queue in queues:
            if len(taken) < limit:
                taken.append(queue.pop(0))
        queues = [q for q in queues if q]
    return taken


async def next_due(
    session: AsyncSession, model: type, due: list, time_column: Any, *, until_column: str = "lease_until"
) -> datetime | None:
    """The earliest ``time_column`` among the rows of ``model`` matching ``due`` (conditions without
    the time one) that nobody holds a lease on; None when there is none. Read-only."""
    query = (
        select(sa.func.min(time_column))
        .select_from(model)
        .where(*due)
        .where(not_held(model, utcnow(), until_column))
    )
    moment = (await session.exec(query)).one()
    await session.commit()
    return moment


def release(row) -> None:
    """Clear ``row``'s lease (the caller commits)."""
    row.lease_owner = None
    row.lease_until = None


async def release_rows(session: AsyncSession, model: type[Leasable], ids: list[int], *,
                       until_column: str = "lease_until") -> int:
    """Clear the leases of the rows ``ids`` of ``model`` that are still leased (an ownerless step's
    rows, when its runner is cancelled), so they are due again at once; commit and return how many."""
    until_attr = getattr(model, until_column)
    result = await session.exec(sa.update(model).where(col(model.id).in_(ids), col(until_attr).is_not(None))
                                .values({until_column: None}))
    await session.commit()
    return result.rowcount


async def holders(session: AsyncSession, models: Iterable[type[Leasable]]) -> set[str]:
    """The owners that hold a lease on any row of ``models`` (expired leases included)."""
    found: set[str] = set()
    for model in models:
        held = await session.exec(select(col(model.lease_owner)).where(col(model.lease_owner).is_not(None)).distinct())
        found.update(owner for owner in held if owner is not None)
    return found


async def release_owned(session: AsyncSession, models: dict[str, type[Leasable]], owners: list[str]) -> dict[str, int]:
    """Clear every lease that ``owners`` hold on the tables of ``models`` (name → model: feeds,
    pages, deliveries), so the rows are due again at once for the next claimer (a clean shutdown);
    commit and return the count per name."""
    released = {}
    for name, model in models.items():
        result = await session.exec(
            sa.update(model).where(col(model.lease_owner).in_(owners)).values(lease_owner=None, lease_until=None)
        )
        released[name] = result.rowcount or 0
    await session.commit()
    return released


async def renew(
    session: AsyncSession, model: type[Leasable], ids: list[int], owner: str | None, lease_seconds: float,
    *, until_column: str = "lease_until",
) -> int:
    """Extend to now + ``lease_seconds`` (seconds) the leases of the rows ``ids`` of ``model`` that
    are still leased — by ``owner`` when it is given (a row another claimer took over, or one the
    step released, is left alone); commit and return how many rows were extended."""
    until_attr = getattr(model, until_column)
    conditions: list[sa.ColumnElement[bool]] = [col(model.id).in_(ids), col(until_attr).is_not(None)]
    if owner is not None:
        conditions.append(col(model.lease_owner) == owner)
    until = utcnow() + timedelta(seconds=lease_seconds)
    result = await session.exec(sa.update(model).where(*conditions).values({until_column: until}))
    await session.commit()
    return result.rowcount


@contextlib.asynccontextmanager
async def kept(
    sessions: async_sessionmaker[AsyncSession], model: type, rows: Collection, owner: str | None, lease_seconds: float,
    *, until_column: str = "lease_until",
) -> AsyncIterator[None]:
    """Keep the leases of the claimed ``rows`` alive while the ``async with`` block runs: every
    ``lease_seconds / RENEWALS_PER_LEASE`` seconds a background task extends (``renew``) those still
    held. A failed renewal is logged and tried again at the next beat; it never interrupts the block.
    When the process dies, the beats stop and the leases expire, so other workers take the rows.
    ``rows`` may change while the block runs (the runner's rows in flight, a live view of its
    dict): each beat renews the rows in it at that moment."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(lease_seconds / RENEWALS_PER_LEASE)
            ids = [row.id for row in rows]
            if not ids:
                continue
            try:
                async with sessions() as session:
                    await renew(session, model, ids, owner, lease_seconds, until_column=until_column)
            except Exception:  # a busy or unreachable database: the next beat tries again
                log.warning("renewing the leases of %d %s rows failed", len(ids), model.__name__, exc_info=True)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
