"""The leased-step runner: one loop for every durable step (feed polls, page fetches, story links,
webhook deliveries).

A *step* says how to claim its rows (``leases.claim``), how to handle one claimed row, and what to
record when one fails or overruns its deadline. The ``Runner`` keeps up to ``step.concurrency``
rows in flight at all times: as soon as one finishes its slot is claimed again (rows finished while
a claim runs are claimed together, so a busy runner claims in batches and an idle one at once), so
one slow row never holds up the others. Rows carry a *key* (a host, a subscription): at most
``step.per_key`` rows of one key are in flight, and a claim skips keys that are full, so a slow host
or receiver occupies only its own slots. The leases of every row in flight are renewed by one
heartbeat (``leases.kept``). Each row gets its own deadline, ``DEADLINE_LEASES`` lease periods;
then it is cancelled and ``step.failed`` records why. The stages inside a row have tighter limits
of their own (``total_timeout`` per request, ``extract_timeout`` per document, ``webhook_timeout``
per delivery); the deadline is the backstop for a row that hangs anyway (a stuck database call, a
bug), and it is long because a row may legitimately queue for its host's politeness gap or for a
worker process. When the runner stops (``stop`` set) it claims nothing more and
lets the rows in flight finish; if it is cancelled, the rows still in flight are cancelled and
their leases released so another worker takes them at once: ownerless leases (story links) by
the runner, leases with an owner by the process that owns them (``api.app.release_leases``).

Idle, the runner waits for ``wake``, for ``stop``, for the step's next due row (``step.next_due``:
a webhook retry due in 3 s is claimed within moments of its time) or ``tick`` seconds, whichever
comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from service.models import utcnow
from service.storage import leases
from service.storage.leases import Claimed, Leasable

log = logging.getLogger(__name__)

DEADLINE_LEASES = 4
"""A row still running after this many lease periods is cancelled and booked as failed."""

Row = TypeVar("Row", bound=Claimed)


class _Unbooked:
    """The outcome of a row whose failure could not even be booked (no result; not None, which a
    step's ``handle`` may return)."""


_UNBOOKED = _Unbooked()
Result = TypeVar("Result")


class Step(Generic[Row, Result]):
    """One kind of leased work. Subclasses set the attributes and implement ``claim``, ``handle``
    and ``failed``; ``key`` and ``next_due`` are optional."""

    name: str = "step"
    model: type[Leasable]
    owner: str | None = None
    """The claimer written to ``lease_owner`` (None: the model's leases carry no owner)."""
    until_column: str = "lease_until"
    concurrency: int = 8
    """Rows in flight at once."""
    per_key: int | None = None
    """Rows of one key in flight at once (None: no limit beyond ``concurrency``)."""

    def key(self, row: Row) -> str | None:
        """The group ``row`` counts against for ``per_key`` (a host, a subscription), or None."""
        return None

    async def claim(self, limit: int, room: Callable[[str], int] | None) -> list[Row]:
        """Lease and commit up to ``limit`` due rows, taking from each key at most ``room(key)``
        rows (``room`` is None when the step has no ``per_key``)."""
        raise NotImplementedError

    async def handle(self, row: Row) -> Result:
        """Do the work of one claimed row and record its outcome (releasing the lease)."""
        raise NotImplementedError

    async def failed(self, row: Row, reason: str) -> Result:
        """Record that ``row`` failed with ``reason`` (an internal error, or its deadline passed) in
        a way that ends: a poison row must not be retried forever."""
        raise NotImplementedError

    async def next_due(self) -> datetime | None:
        """When the earliest unclaimed row falls due (None: unknown, wait for a wake-up or a tick)."""
        return None


class Runner(Generic[Row, Result]):
    """Runs one ``Step`` over its rows (see the module docstring)."""

    def __init__(self, step: Step[Row, Result], sessions: async_sessionmaker[AsyncSession], lease_seconds: float) -> None:
        """``lease_seconds``: the length of the leases the step's claims take (renewed every third)."""
        self.step = step
        self.sessions = sessions
        self.lease_seconds = lease_seconds
        self.deadline = DEADLINE_LEASES * lease_seconds

    async def drain(
        self, on_item: Callable[[Row, Result], Any] | None = None, stop: asyncio.Event | None = None
    ) -> list[Result]:
        """Claim and handle rows until none is due and none is in flight (or ``stop`` is set and
        the rows in flight have finished); returns the results in the order the rows finished (a row
        whose failure could not even be booked has none: its lease lapses and it is due again)."""
        results: list[Result] = []
        await self._work(results, on_item, stop, None, 0.0)
        return results

    async def run(self, stop: asyncio.Event, wake: asyncio.Event, tick: float) -> None:
        """Claim and handle rows until ``stop`` is set, then let the rows in flight finish. Idle, wait
        for ``wake``, ``stop``, the next due row or ``tick`` seconds. Errors are logged, never raised."""
        while not stop.is_set():
            try:
                await self._work(None, None, stop, wake, tick)
            except Exception:  # a bug in the loop itself: the rows in flight were released; start again
                log.exception("%s: runner failed; continuing", self.step.name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), tick)

    async def _work(
        self, results: list | None, on_item: Callable | None, stop: asyncio.Event | None,
        wake: asyncio.Event | None, tick: float,
    ) -> None:
        step = self.step
        in_flight: dict[asyncio.Task, Row] = {}  # the heartbeat renews the leases of its rows as they come and go
        keys: Counter[str] = Counter()

        def room(key: str) -> int:
            return (step.per_key or 0) - keys[key]

        async with leases.kept(self.sessions, step.model, in_flight.values(), step.owner, self.lease_seconds,
                               until_column=step.until_column):
            try:
                while True:
                    stopping = stop is not None and stop.is_set()
                    rows, claim_failed = [], False
                    if not stopping and len(in_flight) < step.concurrency:
                        if wake is not None:
                            wake.clear()
                        try:
                            rows = await step.claim(step.concurrency - len(in_flight), room if step.per_key else None)
                        except Exception:
                            if wake is None:  # draining: the caller sees the error
                                raise
                            # The database is unreachable: the rows in flight go on; claim again after a tick.
                            log.exception("%s: claiming failed; trying again in %g s", step.name, tick)
                            claim_failed = True
                        for row in rows:
                            key = step.key(row)
                            if key is not None:
                                keys[key] += 1
                            in_flight[asyncio.create_task(self._guarded(row), name=f"{step.name} {row.id}")] = row
                    if not in_flight and (wake is None or stopping):
                        return
                    waiters: set[asyncio.Future] = set(in_flight)
                    timeout = None
                    if wake is not None and not stopping and len(in_flight) < step.concurrency:
                        # Free slots: claim again when woken, or when the next row falls due.
                        waiters.add(asyncio.ensure_future(wake.wait()))
                        timeout = tick if claim_failed else await self._idle_timeout(tick)
                    if stop is not None and not stopping:
                        waiters.add(asyncio.ensure_future(stop.wait()))
                    try:
                        done, _pending = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        for waiter in waiters - set(in_flight):
                            waiter.cancel()
                    for task in set(in_flight) & done:
                        row = in_flight.pop(task)
                        key = step.key(row)
                        if key is not None:
                            keys[key] -= 1
                        result = task.result()
                        if result is _UNBOOKED:  # its failure could not be booked: the lease lapses, it is due again
                            continue
                        if results is not None:
                            results.append(result)
                        if on_item is not None:
                            on_item(row, result)
            finally:
                if in_flight:  # cancelled (shutdown past its grace)
                    for task in in_flight:
                        task.cancel()
                    await asyncio.gather(*in_flight, return_exceptions=True)
                    if step.owner is None:  # leases with an owner are released by owner (api.app.release_leases)
                        await self._release([row.id for row in in_flight.values()])

    async def _idle_timeout(self, tick: float) -> float:
        """Seconds to wait before claiming again when nothing wakes the runner: until the step's
        next due row, at most ``tick``."""
        try:
            due = await self.step.next_due()
        except Exception:
            log.warning("%s: reading the next due time failed", self.step.name, exc_info=True)
            return tick
        if due is None:
            return tick
        wait = (due - utcnow()).total_seconds()
        # Due already but not claimed: its key is full or the slots are; a finished row wakes us.
        return tick if wait <= 0 else min(tick, wait + 0.01)

    async def _guarded(self, row: Row) -> Result | _Unbooked:
        """``step.handle(row)`` within the row's deadline; an exception or an overrun is booked
        with ``step.failed`` (and if even that fails, the lease lapses and the row is due again)."""
        step = self.step
        try:
            async with asyncio.timeout(self.deadline):
                return await step.handle(row)
        except TimeoutError:
            reason = f"no outcome within {self.deadline:g} s"
            log.warning("%s %s: %s", step.name, row.id, reason)
        except Exception as exc:
            log.exception("%s %s failed", step.name, row.id)
            reason = f"internal error: {type(exc).__name__}: {exc}"
        try:
            return await step.failed(row, reason)
        except Exception:
            log.exception("%s %s: booking the failure failed; its lease lapses", step.name, row.id)
            return _UNBOOKED

    async def _release(self, ids: list[int]) -> None:
        """Clear the ownerless leases of the rows ``ids`` (on cancellation)."""
        step = self.step
        try:
            async with self.sessions() as session:
                await leases.release_rows(session, step.model, ids, until_column=step.until_column)
        except Exception:
            log.warning("%s: releasing %d leases failed; they lapse after %g s", step.name, len(ids),
                        self.lease_seconds, exc_info=True)

