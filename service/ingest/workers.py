"""Worker processes for the pipeline's CPU-bound steps (feed parsing, article extraction), each call
bounded by a time limit.

Built on pebble's ``ProcessPool``: a call that runs past its time limit has its worker killed and
replaced, and a worker that crashes (segfault, ``free(): invalid pointer``) is replaced too, so one
bad document never stops ingestion. Workers start with ``spawn`` and so inherit no event loop,
threads or sockets from the service. lxml is only ever driven by one thread per process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessPool

T = TypeVar("T")


class WorkerError(Exception):
    """A call in a worker process ran past its time limit, or its worker died."""


def warm_up() -> None:
    """Import the extraction stack, load the language model and build the stories' gazetteer of
    names (``stories.names``) in a new worker, before it takes work: otherwise the first page or
    article each (re)started worker handles spends seconds of its time limit on loading."""
    from service.ingest import extractor, language
    from service.stories import names

    language.identify("warm up the language identifier with a sentence of ordinary words")
    names.gazetteer()
    del extractor


class WorkerPool:
    """``workers`` processes; each call may take at most ``timeout`` seconds. Each new worker runs
    ``initializer`` (default ``warm_up``) before its first call, outside the time limit."""

    def __init__(self, workers: int, timeout: float, initializer: Callable[[], None] | None = warm_up) -> None:
        self.workers = workers
        self.timeout = timeout
        self.initializer = initializer
        self._pool: ProcessPool | None = None

    def _ensure(self) -> ProcessPool:
        if self._pool is None or not self._pool.active:
            self._pool = ProcessPool(
                max_workers=self.workers, context=multiprocessing.get_context("spawn"), initializer=self.initializer
            )
        return self._pool

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker process; ``function`` must be importable (module level)
        and its arguments and result picklable.

        Exceptions raised by ``function`` propagate unchanged. Raises ``WorkerError`` when the call
        exceeds the time limit or the worker dies while running it.
        """
        future = self._ensure().schedule(function, args=args, timeout=self.timeout)
        try:
            return await asyncio.wrap_future(future)
        except FutureTimeout as exc:
            raise WorkerError(f"{function.__name__} exceeded the {self.timeout:g} s time limit") from exc
        except ProcessExpired as exc:
            raise WorkerError(f"worker process died in {function.__name__} (exit code {exc.exitcode})") from exc

    def close(self) -> None:
        """Stop the workers; calls still queued are cancelled."""
        if self._pool is not None:
            self._pool.stop()
            self._pool.join(timeout=10)
            self._pool = None
