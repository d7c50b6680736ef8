"""The background loop every worker runs: do a step, then wait for a wake-up or the next tick."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def run_until_stopped(step: Callable[[], Awaitable[object]], stop: asyncio.Event, wake: asyncio.Event, tick: float) -> None:
    """Call ``step`` until ``stop`` is set, waiting between calls until ``wake`` is set or ``tick``
    seconds pass. An exception in ``step`` is logged and the loop goes on."""
    while not stop.is_set():
        wake.clear()
        try:
            await step()
        except Exception:
            log.exception("background step %s failed; continuing", getattr(step, "__qualname__", step))
        waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
        await asyncio.wait(waiters, timeout=tick, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
