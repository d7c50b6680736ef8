"""SQL helpers shared by the storage modules: counting rows under conditions, INSERT … ON CONFLICT DO
NOTHING in either dialect."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import dialect_insert
from service.models import table_of


async def count_where(session: AsyncSession, table: type, conditions: list[sa.ColumnElement[bool]]) -> int:
    """How many rows of ``table`` meet every one of ``conditions`` (one ``SELECT count(*)``)."""
    return (await session.exec(select(sa.func.count()).select_from(table).where(*conditions))).one()


def insert_ignore(session: Session, table: type[SQLModel], values: dict, conflict: list[str]) -> int | None:
    """INSERT … ON CONFLICT (``conflict``) DO NOTHING RETURNING id: the new row's id, or None when a
    row with the same key exists (inserted meanwhile by another transaction, perhaps)."""
    statement = dialect_insert(session)(table).values(**values).on_conflict_do_nothing(index_elements=conflict)
    return session.execute(statement.returning(table_of(table).c.id)).scalar_one_or_none()
