"""SQL helpers shared by the storage modules: keyset pagination, running a Core statement, counting
rows under conditions, INSERT … ON CONFLICT DO NOTHING in either dialect, and the trivial queries of
the health checks. Which database a session talks to is ``service.db.dialect_name``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import dialect_insert
from service.models import table_of

S = TypeVar("S", bound=sa.Select)


async def count_where(session: AsyncSession, table: type, conditions: list[sa.ColumnElement[bool]]) -> int:
    """How many rows of ``table`` meet every one of ``conditions`` (one ``SELECT count(*)``)."""
    return (await session.exec(select(sa.func.count()).select_from(table).where(*conditions))).one()


def insert_ignore(session: Session, table: type[SQLModel], values: dict, conflict: list[str]) -> int | None:
    """INSERT … ON CONFLICT (``conflict``) DO NOTHING RETURNING id: the new row's id, or None when a
    row with the same key exists (inserted meanwhile by another transaction, perhaps)."""
    statement = dialect_insert(session)(table).values(**values).on_conflict_do_nothing(index_elements=conflict)
    return session.execute(statement.returning(table_of(table).c.id)).scalar_one_or_none()


def in_bound(column: sa.ColumnElement, name: str, dialect: str) -> sa.ColumnElement[bool]:
    """``column IN`` the list of values bound as ``name``, in one SQL text whatever the list's
    length: ``column = ANY(:name)`` (an array) on PostgreSQL, ``column IN (SELECT value FROM
    json_each(:name))`` (the list as JSON text) on SQLite (``dialect``: ``db.dialect_name``). An
    expanding ``IN`` renders the statement again for each length, and SQLite prepares each
    rendering again; storing a feed document runs three such lists."""
    if dialect == "postgresql":
        # Imported here: a service on SQLite never loads the PostgreSQL dialect (2 MiB).
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.bindparam(name, type_=ARRAY(column.type)))
    values = sa.func.json_each(sa.bindparam(name, type_=sa.JSON)).table_valued("value")
    return column.in_(sa.select(values.c.value))


def newest_first(query: S, keys: Sequence[sa.ColumnElement], after: Sequence | None, limit: int | sa.BindParameter) -> S:
    """``query`` as one page of a keyset-paginated list sorted by ``keys`` descending (e.g.
    ``(sort_at, id)``, or ``(rank, sort_at, id)`` for search results): at most ``limit`` rows,
    resuming after the row whose keys were ``after`` (the last row of the previous page; None for
    the first page). The last two keys (a time and a unique id) are compared as one row value, so
    an index on them starts a deep page where it should; a key before them (a relevance) is
    compared on its own: ``k0 < v0 OR (k0 = v0 AND (k1, k2) < (v1, v2))``. Values are bound with
    their key's type (``UTCDateTime`` for times); ``after`` and ``limit`` may be bound parameters
    instead (a statement built once and run with other values). Raises ``ValueError`` when
    ``after`` does not hold one value per key."""
    if after is not None:
        if len(after) != len(keys) or len(keys) < 2:
            raise ValueError(f"a keyset of {len(keys)} keys cannot resume after {len(after)} values")
        bound = [value if isinstance(value, sa.BindParameter) else sa.literal(value, key.type)
                 for key, value in zip(keys, after, strict=True)]
        older = sa.tuple_(*keys[-2:]) < sa.tuple_(*bound[-2:])
        for key, value in zip(reversed(keys[:-2]), reversed(bound[:-2]), strict=True):
            older = sa.or_(key < value, sa.and_(key == value, older))
        query = query.where(older)
    return query.order_by(*(key.desc() for key in keys)).limit(limit)


async def rows(session: AsyncSession, statement: sa.Executable, params: dict | None = None) -> Sequence[sa.Row]:
    """Every row of a Core statement (columns, not ORM objects), as SQLAlchemy ``Row`` tuples;
    ``params``: values of its bound parameters by name."""
    # exec runs any statement; SQLModel's overloads list only its own selects and DML.
    return (await session.exec(statement, params=params)).all()  # type: ignore[call-overload]


async def ping(session: AsyncSession) -> None:
    """Run ``SELECT 1``: returns once the database answers; raises the driver's error otherwise."""
    await rows(session, sa.text("SELECT 1"))


async def schema_heads(session: AsyncSession) -> set[str]:
    """The Alembic revisions the database's schema is at (``alembic_version``); raises the driver's
    error when the table is missing."""
    return {row[0] for row in await rows(session, sa.text("SELECT version_num FROM alembic_version"))}
