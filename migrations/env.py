"""Alembic environment: runs migrations on the async engine for NEWSLOOM_DATABASE_URL (or the URL
set by service.db.alembic_config).

On PostgreSQL the whole run holds a session-level advisory lock (``pg_advisory_lock``, PostgreSQL
manual §9.27.10 "Advisory Lock Functions"; key ``service.db.MIGRATION_LOCK``), taken before the
current revision is read: replicas starting at once run the migrations one after the other, and
every one after the first finds the database at head and does nothing. SQLite serialises writers
itself (and DDL there is transactional).

Schema comparison skips the search objects the database maintains (``service.search.include_name``
and ``include_object``; by name, nothing else)."""

import asyncio
from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import service.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from service.config import get_settings
from service.db import MIGRATION_LOCK
from service.search import include_name, include_object

config = context.config
if config.config_file_name and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name)

target_metadata = SQLModel.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or get_settings().database_url


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url())
    async with engine.connect() as connection:
        locked = connection.dialect.name == "postgresql"
        if locked:  # blocks while another process migrates; released below or when the connection closes
            await connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            await connection.commit()
        try:
            await connection.run_sync(_run)
            await connection.commit()
        finally:
            if locked:
                await connection.rollback()
                await connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
                await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
