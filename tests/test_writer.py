"""``db.Writer``: whole transactions on the writer's own connection (SQLite file) or an async
session (PostgreSQL), and ``run_together``'s shared commits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import select

from service.db import Writer
from service.models import Outlet, table_of

OUTLETS = table_of(Outlet)


def _add_outlet(session: Session, domain: str, seen: list[Session]) -> str:
    seen.append(session)
    session.execute(sa.insert(OUTLETS).values(domain=domain, created_at=datetime.now(UTC)))
    return domain


def _fail(session: Session, seen: list[Session]) -> None:
    seen.append(session)
    session.execute(sa.insert(OUTLETS).values(domain="bad.example", created_at=datetime.now(UTC)))
    raise LookupError("this call fails")


async def _domains(sessions) -> set[str]:
    async with sessions() as session:
        return set((await session.exec(select(Outlet.domain))).all())


async def test_calls_made_together_share_one_commit_and_each_gets_its_result(sessions):
    writer = Writer(sessions)
    seen: list[Session] = []
    domains = [f"d{i}.example" for i in range(6)]
    # All six are queued before the first transaction starts (the group's task runs after them).
    assert await asyncio.gather(*(writer.run_together(_add_outlet, d, seen) for d in domains)) == domains
    assert await _domains(sessions) == set(domains)
    if writer.threaded:  # one transaction, one session for all six
        assert len(seen) == 6 and all(s is seen[0] for s in seen)


async def test_a_failing_call_loses_no_other_and_raises_to_its_own_caller(sessions):
    writer = Writer(sessions)
    seen: list[Session] = []
    results = await asyncio.gather(writer.run_together(_add_outlet, "a.example", seen), writer.run_together(_fail, seen),
                                   writer.run_together(_add_outlet, "b.example", seen), return_exceptions=True)
    assert results[0] == "a.example" and results[2] == "b.example"
    assert isinstance(results[1], LookupError)
    assert await _domains(sessions) == {"a.example", "b.example"}  # the failed call's row was rolled back
    # Alone, a failing call raises as well, and the writer goes on.
    with pytest.raises(LookupError):
        await writer.run_together(_fail, seen)
    assert await writer.run_together(_add_outlet, "c.example", seen) == "c.example"
    assert await _domains(sessions) == {"a.example", "b.example", "c.example"}


async def test_a_writer_dropped_while_an_executor_lock_is_held_is_closed_later_not_deadlocked(sessions):
    """A dropped Writer's finalizer may run inside ``ThreadPoolExecutor.submit`` (the garbage
    collector runs where memory is allocated), which holds ``concurrent.futures``' global lock: the
    finalizer hands the close to the closer thread instead of submitting (it waited for ever)."""
    import concurrent.futures.thread as executor_threads
    import gc
    import threading

    from service import db

    writer = Writer(sessions)
    if not writer.threaded:
        pytest.skip("the writer thread is SQLite's")
    thread = writer._thread
    dropped = threading.Event()

    def drop_under_the_lock() -> None:
        nonlocal writer
        with executor_threads._global_shutdown_lock:  # as inside submit
            del writer
            gc.collect()
        dropped.set()

    dropper = threading.Thread(target=drop_under_the_lock, daemon=True)
    dropper.start()
    dropper.join(60)  # deadlocked, it would hold the lock for ever (and every later to_thread with it)
    assert dropped.is_set(), "the dropped writer's finalizer waited for a lock its own thread held"
    closed = threading.Event()
    db._CLOSING.put(closed.set)  # after the writer's close: the closer runs them in order
    assert closed.wait(60)
    assert thread._shutdown
