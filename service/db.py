"""Database engine, sessions and schema migrations (SQLite by default, PostgreSQL when configured).

Alembic is imported only by the functions that migrate: ``newsloom serve`` migrates in a process of
its own (``migrate_apart``), so its 10 MiB of modules stay out of the serving process."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import multiprocessing
import queue
import re
import threading
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic_core
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

if TYPE_CHECKING:
    from alembic.config import Config

T = TypeVar("T")

_PACKAGE = Path(__file__).resolve().parent

MIGRATION_LOCK = int.from_bytes(b"newsloom", "big") & 0x7FFF_FFFF_FFFF_FFFF
"""Key (bigint) of the PostgreSQL advisory lock held while migrations run (``migrations/env.py``)."""

# Name prefix of a ``Reader``'s SQLite threads.
READER_THREADS = "sqlite-reader"
JSON_READ = pydantic_core.from_json
"""How engines read JSON columns: text or bytes to Python objects (as ``json.loads``; raises
``ValueError`` on malformed JSON)."""


def create_engine(url: str, *, reads: bool = False) -> AsyncEngine:
    """An async engine for ``url`` (``sqlite+aiosqlite://`` or ``postgresql+asyncpg://``).

    SQLite connections get foreign keys on, WAL journaling and a 30 s busy timeout so the API and the
    pollers of one process can write to the same file.

    JSON columns are read with ``pydantic_core.from_json`` (``JSON_READ``), about six times faster
    than ``json.loads`` for the short lists they hold (authors, languages).

    PostgreSQL connections plan every statement for its parameters (``plan_cache_mode =
    force_custom_plan``). asyncpg prepares and caches each statement per connection, and after five
    runs PostgreSQL may switch to a generic plan that it keeps until the table's statistics change
    (never, on a server without autovacuum); one made while ``articles`` was nearly empty scanned the
    whole table for every stored entry (store-path ingest at 37 instead of 75 articles/s by 10,000
    articles in ``bench/api.py``). Planning these short statements costs well under a millisecond.

    ``reads`` (PostgreSQL; ``Reader``'s engine): each statement commits on its own (``AUTOCOMMIT``:
    no ``BEGIN`` and ``ROLLBACK`` round trips around a read) and a connection is not pinged when
    taken from the pool (the other engines ping each one: a connection the server closed is found
    before a write starts); ``Reader`` retries a read once on a connection found closed. 10
    connections, no overflow.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, json_deserializer=JSON_READ)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    settings = {"plan_cache_mode": "force_custom_plan"}
    if reads:
        return create_async_engine(url, isolation_level="AUTOCOMMIT", pool_size=10, max_overflow=0, json_deserializer=JSON_READ,
                                   connect_args={"server_settings": settings})
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, json_deserializer=JSON_READ,
                               connect_args={"server_settings": settings})


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - exercised by every test
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    # Setting the journal mode takes a write lock even when the file is already in WAL mode;
    # once, a connection opened while the API server was writing failed there with
    # "database is locked". The mode is stored in the file, so set it only when it differs.
    cur.execute("PRAGMA journal_mode")
    if cur.fetchone()[0].lower() != "wal":
        cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def missing_sqlite_file(url: str) -> Path | None:
    """The absolute path of the SQLite file that ``url`` names when no such file exists (so opening
    it would create an empty database); None when it exists, for an in-memory database and for
    PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database).resolve()
    return None if path.exists() else path


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


class Writer:
    """Runs a whole transaction — a synchronous function over a ``sqlalchemy.orm.Session`` — and
    commits it: on a SQLite file in one hand-off to a thread of its own holding a connection of its
    own, elsewhere (PostgreSQL, in-memory SQLite) in an async session's ``run_sync``.

    Why: through aiosqlite every statement, the transaction's start, its commit and the pool's
    check-out and reset are each a hand-off to the connection's thread and back (about 35 for a
    feed document stored through the ORM); here one. The connection has the same settings as the
    engine's (``create_engine``: WAL, 30 s busy timeout, foreign keys), so it waits for other
    writers, in this process or others, as they do. Transactions run one at a time, in order.

    ``run_together`` lets calls made while a transaction runs share the next one: a commit rewrites
    every page the transaction touched (on SQLite a WAL frame each), and calls of one kind touch
    mostly the same pages (the right edge of the time-ordered indexes, the tables' last pages)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        engine: AsyncEngine = sessions.kw["bind"]
        url = engine.url
        self.threaded = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
        if self.threaded:
            # One connection, used by the one thread (so ``check_same_thread`` can be off).
            self._engine = sa.create_engine(url.set(drivername="sqlite"), poolclass=sa.pool.StaticPool, json_deserializer=JSON_READ,
                                            connect_args={"timeout": 30, "check_same_thread": False})
            event.listen(self._engine, "connect", _sqlite_pragmas)
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
            _start_closer()
            weakref.finalize(self, _close_later, functools.partial(_close_writer, self._thread, self._engine))
        self._waiting: list[tuple[Callable[..., Any], tuple, asyncio.Future[Any]]] = []
        self._grouping: asyncio.Task[None] | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(session, *args)`` in a transaction, committed when it returns (a ``session.rollback()``
        inside ``fn`` leaves nothing to commit); rolled back when it raises, and the error raised
        here. Returns what ``fn`` returns. On the thread, a caller cancelled while it waits (a step's
        deadline) does not stop the transaction: it still commits or rolls back as a whole."""
        if self.threaded:
            return await asyncio.get_running_loop().run_in_executor(self._thread, self._transaction, fn, args)
        async with self.sessions() as session:
            result = await session.run_sync(fn, *args)
            await session.commit()
            return result

    async def run_together(self, fn: Callable[..., T], *args: Any) -> T:
        """As ``run``, but on the thread the calls made while a transaction runs are made in the
        next one, in order, and committed together (one commit for a group instead of one each);
        each caller gets its own call's result once the group is committed. ``fn`` must not roll
        back. When a call raises or the commit fails, the group is rolled back and, if it held
        others, each call is made again alone (``run``), so one bad call loses no other and raises
        to its own caller. A caller cancelled while it waits leaves its call in the group.
        Elsewhere: ``run``."""
        if not self.threaded:
            return await self.run(fn, *args)
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((fn, args, done))
        if self._grouping is None:
            self._grouping = asyncio.create_task(self._run_groups())
        return await done

    async def _run_groups(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                calls = [(fn, args) for fn, args, _done in group]
                try:
                    results = await loop.run_in_executor(self._thread, self._transactions, calls)
                except Exception as exc:
                    if len(group) == 1:
                        _settle(group[0][2], error=exc)
                    else:  # which call failed is unknown: each alone
                        await asyncio.gather(*(_settle_with(done, self.run(fn, *args)) for fn, args, done in group))
                    continue
                for (_fn, _args, done), result in zip(group, results, strict=True):
                    _settle(done, result)
        finally:
            self._grouping = None

    def _transaction(self, fn: Callable[..., T], args: tuple) -> T:
        return self._transactions([(fn, args)])[0]

    def _transactions(self, calls: list[tuple[Callable[..., Any], tuple]]) -> list[Any]:
        with Session(self._engine, expire_on_commit=False) as session:
            results = [fn(session, *args) for fn, args in calls]
            session.commit()
            return results


def _settle(done: asyncio.Future[Any], result: Any = None, error: Exception | None = None) -> None:
    """Give ``done`` ``result``, or ``error`` when given, unless its caller was cancelled meanwhile."""
    if done.done():
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)


async def _settle_with(done: asyncio.Future[T], call: Awaitable[T]) -> None:
    """``_settle`` ``done`` with the result or the error of ``call``."""
    try:
        result = await call
    except Exception as exc:
        _settle(done, error=exc)
    else:
        _settle(done, result)


class Reader:
    """Runs a read — a synchronous function over a ``sqlalchemy.orm.Session`` — and returns what it
    returns: on a SQLite file in one hand-off to one of ``threads`` threads, each holding a
    connection of its own (WAL: readers neither wait for the writer nor hold it up); on PostgreSQL
    in an async session's ``run_sync`` on an engine of its own (``create_engine(url, reads=True)``:
    autocommit, no ping; ``close`` closes its connections); elsewhere (in-memory SQLite) in a
    session of ``sessions``. Nothing is committed: the session is closed (rolled back) when the
    function returns.

    Why: through aiosqlite each step of a read is a hand-off to the connection's thread and back
    (for a list page ten: the session's connection, cursor, execute, fetch, close, two rollbacks);
    the first page of ``GET /v1/articles`` at 0.56 ms of CPU through a session, 0.36 here. On
    PostgreSQL a session of the service's engine makes four round trips for one statement (the
    ping, ``BEGIN``, the statement, ``ROLLBACK``), this one. The connections have the engine's
    settings (``create_engine``)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], threads: int = 2) -> None:
        self.sessions = sessions
        engine: AsyncEngine = sessions.kw["bind"]
        url = engine.url
        self.threaded = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
        self._reads: AsyncEngine | None = None
        if self.threaded:
            # One connection per thread (SingletonThreadPool), used by that thread only; closed from
            # another at the end (so ``check_same_thread`` is off).
            self._engine = sa.create_engine(url.set(drivername="sqlite"), poolclass=sa.pool.SingletonThreadPool,
                                            pool_size=threads, json_deserializer=JSON_READ,
                                            connect_args={"timeout": 30, "check_same_thread": False})
            event.listen(self._engine, "connect", _sqlite_pragmas)
            self._threads = ThreadPoolExecutor(threads, thread_name_prefix=READER_THREADS)
            _start_closer()
            weakref.finalize(self, _close_later, functools.partial(_close_reader, self._threads, self._engine))
        elif url.get_backend_name() == "postgresql":
            self._reads = create_engine(url.render_as_string(hide_password=False), reads=True)
            self.sessions = session_factory(self._reads)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(session, *args, **kwargs)``; returns what it returns and raises what it raises. A
        caller cancelled while it waits leaves the read to finish on its thread. On PostgreSQL a
        read that finds its connection closed (the server restarted: SQLAlchemy then discards the
        pool's older connections too) is made once more, on a new connection."""
        if self.threaded:
            call = functools.partial(self._read, fn, *args, **kwargs)
            return await asyncio.get_running_loop().run_in_executor(self._threads, call)
        try:
            async with self.sessions() as session:
                return await session.run_sync(fn, *args, **kwargs)
        except sa.exc.DBAPIError as exc:
            if self._reads is None or not exc.connection_invalidated:
                raise
        async with self.sessions() as session:
            return await session.run_sync(fn, *args, **kwargs)

    @property
    def engine(self) -> sa.Engine:
        """The (synchronous) engine its reads run on: their statements can be watched there."""
        if self.threaded:
            return self._engine
        return (self._reads or self.sessions.kw["bind"]).sync_engine

    async def close(self) -> None:
        """Close the reader's PostgreSQL connections (reads after this open new ones). Its SQLite
        threads close theirs when the reader is garbage-collected."""
        if self._reads is not None:
            await self._reads.dispose()

    def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with Session(self._engine) as session:
            return fn(session, *args, **kwargs)


# The connections of a dropped ``Writer`` or ``Reader`` are closed by one daemon thread, not by
# their finalizers: a finalizer runs wherever the garbage collector runs, e.g. inside
# ``ThreadPoolExecutor.submit`` or ``Thread.start`` while they hold their locks, where submitting
# work or starting a thread waits for ever (seen: ``asyncio.to_thread`` → ``submit`` → GC →
# ``_close_writer`` → ``submit``). ``queue.SimpleQueue.put`` is safe there (its documentation: for
# ``__del__`` methods and weakref callbacks).
_CLOSING: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
_CLOSER_LOCK = threading.Lock()
_closer: threading.Thread | None = None


def _start_closer() -> None:
    """Start the thread that runs the closes ``_close_later`` hands over (once per process)."""
    global _closer
    with _CLOSER_LOCK:
        if _closer is None or not _closer.is_alive():
            _closer = threading.Thread(target=_run_closes, name="closing-sqlite", daemon=True)
            _closer.start()


def _run_closes() -> None:
    while True:
        close = _CLOSING.get()
        try:
            close()
        except Exception:  # one engine that fails to close must not stop the others'
            logging.getLogger(__name__).exception("closing a dropped SQLite writer or reader")


def _close_later(close: Callable[[], None]) -> None:
    """A finalizer: ``close`` handed to the closer thread; run here when the garbage collector is
    off (``weakref.finalize``'s pass at interpreter exit disables it, so no collection interrupts a
    lock's holder there, and the daemon closer may not get to it before the process ends)."""
    if gc.isenabled():
        _CLOSING.put(close)
    else:
        close()


def _close_reader(threads: ThreadPoolExecutor, engine: sa.Engine) -> None:
    """Close a ``Reader``'s connections once the reads under way are done (they are short). When the
    reader's last reference went with one of its own reads (a caller cancelled while it waited), this
    runs on that read's thread, which cannot wait for itself to end: a thread of its own closes them."""
    if threading.current_thread().name.startswith(READER_THREADS):
        threading.Thread(target=_close_reader, args=(threads, engine), name="closing-sqlite-readers").start()
        return
    threads.shutdown(wait=True)
    engine.dispose()


def _close_writer(thread: ThreadPoolExecutor, engine: sa.Engine) -> None:
    """Close a ``Writer``'s connection in its own thread, after the transactions queued, and let
    the thread end."""
    try:
        thread.submit(engine.dispose)
    except RuntimeError:  # the interpreter is exiting (its executors are shut): close it here
        engine.dispose()
    thread.shutdown(wait=False)


def dialect_name(session: AsyncSession | Session) -> str:
    """``"postgresql"`` or ``"sqlite"``: the database the session talks to, for the queries that
    differ between the two (a session bound to nothing counts as SQLite, the embedded default)."""
    return session.bind.dialect.name if session.bind else "sqlite"


def dialect_insert(session: AsyncSession | Session):
    """The INSERT construct of the session's dialect (PostgreSQL or SQLite), which supports
    ``on_conflict_do_nothing`` and ``returning``."""
    if dialect_name(session) == "postgresql":
        # Imported here: a service on SQLite never loads the PostgreSQL dialect (2 MiB).
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    return sqlite.insert


def _script_location() -> Path:
    """The Alembic scripts: inside the package when installed from a wheel, else the repository root."""
    packaged = _PACKAGE / "_migrations"
    return packaged if packaged.is_dir() else _PACKAGE.parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic configuration for ``url`` that works from any working directory."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_script_location()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


@functools.cache
def _revisions() -> tuple[frozenset[str], frozenset[str]]:
    """The revisions of the migration scripts, and those of them some script revises (names as
    its ``down_revision``), read from the scripts' ``revision = …`` and ``down_revision = …``
    lines."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (_script_location() / "versions").glob("*.py"):
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            if name.strip() in ("revision", "down_revision"):
                (revisions if name.strip() == "revision" else revised).update(re.findall(r"[\"'](\w+)[\"']", value))
    return frozenset(revisions), frozenset(revised)


async def at_head(engine: AsyncEngine) -> bool:
    """Whether the database of ``engine`` is at the newest migration: its one ``alembic_version``
    row names a revision of the scripts that no script revises. Read with one SELECT and without
    importing Alembic (about 0.2 s of CPU at a command's start), so a command finds out quickly
    that ``migrate`` has nothing to do; False when it cannot tell (no version table, no row,
    several heads, a revision the scripts do not have): ``migrate`` decides then."""
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalars().all()
    except sa.exc.DBAPIError:
        return False
    revisions, revised = _revisions()
    return len(rows) == 1 and rows[0] in revisions and rows[0] not in revised


async def current_revision(url: str) -> str | None:
    """The Alembic revision the database at ``url`` is at; None for a database without one."""
    from alembic.migration import MigrationContext

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    finally:
        await engine.dispose()


def migrate(url: str) -> list[str]:
    """Apply every pending migration to the database at ``url`` (blocking; runs its own event loop)
    and return the ones applied, oldest first, as ``"<revision> <message>"`` (empty when the
    database was up to date).

    Safe to call from several processes at once: on PostgreSQL the run holds the advisory lock
    ``MIGRATION_LOCK`` (see ``migrations/env.py``), so the others wait and then find nothing to do.
    Call it from synchronous code, or with ``asyncio.to_thread`` from async code. Raises what
    Alembic raises (``alembic.util.CommandError``, SQLAlchemy errors) when a migration fails.
    """
    from alembic import command
    from alembic.script import ScriptDirectory

    cfg = alembic_config(url)
    before = asyncio.run(current_revision(url))
    command.upgrade(cfg, "head")
    after = asyncio.run(current_revision(url))
    if after == before:
        return []
    applied = ScriptDirectory.from_config(cfg).iterate_revisions(after, before)
    return [f"{r.revision} {(r.doc or '').strip()}" for r in reversed(list(applied))]


async def migrate_async(url: str) -> None:
    """``migrate`` from inside a running event loop (in a worker thread, off the loop)."""
    await asyncio.to_thread(migrate, url)


def _migrate_to_heads(url: str) -> list[str]:
    from alembic.script import ScriptDirectory

    migrate(url)
    return ScriptDirectory.from_config(alembic_config(url)).get_heads()


def _migrate_in_child(url: str) -> list[str]:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        return child.submit(_migrate_to_heads, url).result()


async def migrate_apart(url: str) -> list[str]:
    """``migrate`` in a process of its own (spawned, and gone when the migration is done), off the
    event loop; returns this code's migration heads (revision ids). The caller never imports
    Alembic (about 10 MiB resident; ``docs/operations.md``, "Memory"), at the cost of about a second
    of start-up. Raises what ``migrate`` raises."""
    return await asyncio.to_thread(_migrate_in_child, url)
