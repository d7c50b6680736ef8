"""The command line against a real SQLite file, and the migrations against the tables."""

from __future__ import annotations

import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from service.db import create_engine
from service.search import include_name, include_object
from tests.conftest import ROOT


def _cli(*args: str, db: str) -> subprocess.CompletedProcess:
    env = {"NEWSLOOM_DATABASE_URL": db, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "service.cli", *args], env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_feeds_add_and_list(tmp_path):
    db = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    added = _cli("feeds", "add", "https://example.org/rss", "ftp://example.org/x", db=db)
    assert added.returncode == 1
    assert "added\t1\thttps://example.org/rss" in added.stdout
    assert "not an absolute http(s) URL" in added.stderr
    again = _cli("feeds", "add", "https://example.org/rss", db=db)
    assert again.returncode == 0 and again.stdout.startswith("exists\t1")
    listed = _cli("feeds", "list", db=db)
    assert listed.returncode == 0
    assert "\tactive\t-\t0\t" in listed.stdout and "https://example.org/rss" in listed.stdout


def test_poll_without_once_is_a_clear_error(tmp_path):
    result = _cli("poll", db=f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    assert result.returncode == 1 and "poll --once" in result.stderr


async def test_migrations_match_the_tables(database_url):
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        # The same filters as migrations/env.py: only the search objects the database maintains are skipped.
        opts = {"include_name": include_name, "include_object": include_object}
        diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync, opts=opts), SQLModel.metadata))
    await engine.dispose()
    assert diff == []
