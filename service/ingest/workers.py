"""Worker processes for the pipeline's CPU-bound steps (feed parsing, article extraction), each call
bounded by a time limit.

Built on pebble's ``ProcessPool``: a call that runs past its time limit has its worker killed and
replaced, and a worker that crashes (segfault, ``free(): invalid pointer``) is replaced too, so one
bad document never stops ingestion. Workers start with ``spawn`` and so inherit no event loop,
threads or sockets from the service. lxml is only ever driven by one thread per process.

The pipeline's functions are handed to the pool by name (``ByName``), so the main process never
imports what only the workers run: trafilatura, htmldate, justext, the language model, feedparser
and lxml stay out of it (``docs/operations.md``, "Memory"; feed discovery in the main process
judges bodies with ``service.ingest.feeds.sniff``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import multiprocessing
import multiprocessing.context
import pkgutil
from collections.abc import Callable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pebble import ProcessExpired, ProcessPool

from service import logs
from service.errors import NewsloomError
from service.heap import WORKER_FREE_BYTES, collector_paused, release_free_memory

if TYPE_CHECKING:  # not imported at run time: workers import this module, and need no pydantic
    from service.config import Settings

T = TypeVar("T")


class WorkerError(NewsloomError):
    """A call in a worker process ran past its time limit, or its worker died."""


@dataclass(frozen=True)
class ByName:
    """A module-level function named ``"package.module:function"`` (entry-point syntax), imported
    (``pkgutil.resolve_name``) only in the worker process that calls it. Picklable as its name.
    After the call the worker's C heap keeps at most ``heap.WORKER_FREE_BYTES`` free."""

    path: str

    @property
    def __name__(self) -> str:
        return self.path.rpartition(":")[2]

    def __call__(self, *args: Any) -> Any:
        try:
            return pkgutil.resolve_name(self.path)(*args)
        finally:
            release_free_memory(WORKER_FREE_BYTES)


# The pipeline's CPU-bound steps, by name (``ByName``).
PARSE_FEED = ByName("service.ingest.feeds.parser:parse_feed")
FEED_LINKS = ByName("service.ingest.feeds.discovery:feed_links")
EXTRACT_PAGE = ByName("service.ingest.pages.extractor:extract_page")


EXTRACTION_WARM_UP = ("service.ingest.feeds.parser", "service.ingest.pages.extractor:preload")
"""The feed parser (its imports cost a worker about 0.4 s of CPU at its first feed) and the
extraction stack with what its first page would load (``extractor.preload``)."""
STORIES_WARM_UP = ("service.stories.names:gazetteer",)
"""The stories' gazetteer of names (about 23 MiB, 45 MiB while it is built)."""
ENCODERS_WARM_UP = ("service.stories.fingerprints", "service.stories.representation:load_encoders")
"""The encoders, loaded whole, and the MinHash stack (about 1 s of CPU), for a story worker
(``story_pool``)."""


def warm_up(*steps: str) -> None:
    """Load what a new worker's calls need before it takes work, outside their time limit (else the
    first page or article each (re)started worker handles spends seconds of it on loading). Each of
    ``steps`` is a module to import (``"package.module"``) or a function to call with no arguments
    (``"package.module:function"``), resolved by name (``pkgutil.resolve_name``) as ``ByName`` does,
    so this module names no pipeline stage it would have to import. The cyclic garbage collector
    is off meanwhile and what was loaded is kept out of later collections (``heap.collector_paused``)."""
    with collector_paused():
        for step in steps:
            found = pkgutil.resolve_name(step)
            if ":" in step:
                found()


def _start_worker(logging_as: tuple[str | int, str] | None, initializer: Callable[..., None] | None, *initargs: Any) -> None:
    """A new worker's start: log as the process that started it (``logs.configured``: its level, and
    JSON lines when it writes them; else a worker's warnings, such as a story cache it cannot read,
    reach stderr as bare text), then ``initializer(*initargs)``."""
    if logging_as is not None:
        logs.configure(*logging_as)
    if initializer is not None:
        initializer(*initargs)


PIPE_BYTES = 1024 * 1024
"""Bytes a pipe to the workers holds (Linux's ``/proc/sys/fs/pipe-max-size`` by default; 64 KiB
without ``_Spawning``): a page or two of the corpus, written whole while the worker extracts the
one before."""


class _Spawning(multiprocessing.context.SpawnContext):
    """The ``spawn`` start method with pipes of ``PIPE_BYTES`` where the system allows it (Linux's
    ``F_SETPIPE_SZ``). Through a 64 KiB pipe a page of 150 KB reaches the worker only as the main
    process's sending thread is woken to write each next piece, so on a loaded machine the worker
    waited for it between pages; with the page in the pipe whole it reads it at once."""

    def Pipe(self, duplex: bool = True):
        reader, writer = super().Pipe(duplex)
        if hasattr(fcntl, "F_SETPIPE_SZ") and not duplex:
            with contextlib.suppress(OSError):  # above the system's limit: the pipe keeps its size
                fcntl.fcntl(writer.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        return reader, writer


class WorkerPool:
    """``workers`` processes, started on the first call; each call may take at most ``timeout``
    seconds. Each new worker takes this process's logging (``logs.configured``) and runs
    ``initializer(*initargs)`` (default: ``warm_up`` of the extraction stack and the stories' names)
    before its first call, outside the time limit."""

    def __init__(self, workers: int, timeout: float, initializer: Callable[..., None] | None = warm_up,
                 initargs: tuple = (*EXTRACTION_WARM_UP, *STORIES_WARM_UP)) -> None:
        self.workers = workers
        self.timeout = timeout
        self.initializer = initializer
        self.initargs = initargs
        self._pool: ProcessPool | None = None
        self.queued = 0
        """Calls made and not finished (running or waiting for a worker)."""

    def _ensure(self) -> ProcessPool:
        if self._pool is None or not self._pool.active:
            self._pool = ProcessPool(max_workers=self.workers, context=_Spawning(),
                                     initializer=_start_worker, initargs=(logs.configured(), self.initializer, *self.initargs))
        return self._pool

    def start(self) -> None:
        """Start the workers now rather than on the first call (reading ``active`` starts a new
        pebble pool), so their start and warm-up overlap the caller's own start-up."""
        if not self._ensure().active:
            raise WorkerError("the worker pool did not start")

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker process; ``function`` must be importable (module level)
        or a ``ByName``, and its arguments and result picklable.

        Exceptions raised by ``function`` propagate unchanged. Raises ``WorkerError`` when the call
        exceeds the time limit or the worker dies while running it.
        """
        future = self._ensure().schedule(function, args=args, timeout=self.timeout)
        self.queued += 1
        try:
            return await asyncio.wrap_future(future)
        except FutureTimeout as exc:
            raise WorkerError(f"{function.__name__} exceeded the {self.timeout:g} s time limit") from exc
        except ProcessExpired as exc:
            raise WorkerError(f"worker process died in {function.__name__} (exit code {exc.exitcode})") from exc
        finally:
            self.queued -= 1

    def close(self) -> None:
        """Stop the workers; calls still queued are cancelled."""
        if self._pool is not None:
            self._pool.stop()
            self._pool.join(timeout=10)
            self._pool = None


def service_pool(settings: Settings, stories: bool | None = None) -> WorkerPool:
    """The pool of the service or a command run with ``settings``: ``extract_workers`` processes,
    ``extract_timeout`` seconds a call, warmed for story linking too when ``stories`` (default:
    ``stories_enabled``; False when a ``story_pool`` computes the story features)."""
    stories = settings.stories_enabled if stories is None else stories
    return WorkerPool(settings.extract_workers, settings.extract_timeout,
                      initargs=(*EXTRACTION_WARM_UP, *(STORIES_WARM_UP if stories else ())))


def story_pool(settings: Settings) -> WorkerPool | None:
    """The pool for story features beside ``service_pool`` (``story_workers`` processes, warmed with
    the encoders and the gazetteer, not the extraction stack), so that linking runs on a core of its
    own while pages are extracted; None with stories off."""
    if not settings.stories_enabled:
        return None
    return WorkerPool(settings.story_workers, settings.extract_timeout, initargs=(*STORIES_WARM_UP, *ENCODERS_WARM_UP))


@contextlib.contextmanager
def worker_pools(settings: Settings) -> Iterator[tuple[WorkerPool, WorkerPool | None]]:
    """The service's worker processes for ``settings``: the extraction pool (``service_pool``) and,
    with stories on, the story pool (``story_pool``; else None), both started at once, so their
    spawn and warm-up (seconds with stories on) overlap what the caller does next; stopped on
    exit. Light to import (this module needs neither the database nor the HTTP stack), so a
    command can start them before it imports those (``cli.cmd_poll``)."""
    with contextlib.ExitStack() as stack:
        story_workers = story_pool(settings)  # None with stories off
        if story_workers is not None:
            story_workers.start()
            stack.callback(story_workers.close)
        workers = service_pool(settings, stories=False)  # the story pool warms for the stories
        workers.start()
        stack.callback(workers.close)
        yield workers, story_workers
