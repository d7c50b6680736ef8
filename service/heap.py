"""The heaps of Newsloom's processes. The C heap (glibc's malloc): handing free pages back, and the
settings of ``newsloom serve``'s main process; where the C library is not glibc, nothing is done
(measured with ``bench/memory.py``, ``docs/operations.md``, "Memory"). Python's: the cyclic garbage
collector kept off the objects a process makes at its start (``collector_paused``)."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
from collections.abc import Iterator

# mallopt(3) parameters (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

SERVICE_ARENAS = 2
"""malloc arenas of the service's main process."""
SERVICE_MMAP_THRESHOLD = 128 * 1024
"""Bytes from which an allocation of the service's main process is a mapping of its own."""
WORKER_FREE_BYTES = 12 * 1024 * 1024
"""Free bytes a worker's C heap may keep between calls (``release_free_memory``)."""


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (malloc.h, glibc 2.33 and later): byte counts as ``size_t``."""

    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    libc = ctypes.CDLL(None)
    if not (hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt")):
        return None
    if hasattr(libc, "mallinfo2"):
        libc.mallinfo2.restype = _MallInfo2
    return libc


def free_heap_bytes() -> int | None:
    """Bytes in the free chunks of the C heap's arenas (glibc's ``mallinfo2().fordblks``: pages
    the process holds, resident once touched, that hold no live allocation); None where the C
    library is not glibc 2.33 or later."""
    libc = _glibc()
    return libc.mallinfo2().fordblks if libc is not None and hasattr(libc, "mallinfo2") else None


def release_free_memory(keep: int = 0) -> bool:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim(0)``) when its free
    chunks hold more than ``keep`` bytes (``free_heap_bytes``; where that is unknown, always);
    True when it trimmed.

    A worker calls it after each call with ``keep=WORKER_FREE_BYTES``: the lxml trees of a large
    page are freed, but glibc keeps their pages in the process, and a worker that had extracted
    the corpus's 240 pages held 20 MiB more for it. Trimming after every page instead cost the
    worker about 200,000 page faults over those pages (each trimmed page touched again by the
    next), about 8 % of its CPU; with 12 MiB kept it trims after about one page in five, with
    half the faults and the same peak (``docs/benchmarks.md``, "Branch ingoff8")."""
    libc = _glibc()
    if libc is None:
        return False
    free = free_heap_bytes()
    if free is not None and free <= keep:
        return False
    libc.malloc_trim(0)
    return True


def settle_service_heap() -> bool:
    """Set the C heap of a long-running process with threads (``newsloom serve``'s main process,
    before its threads start); True when set (glibc), False elsewhere.

    - At most ``SERVICE_ARENAS`` arenas: glibc gives a thread that allocates while another holds
      the arena one of its own (up to 8 per CPU), and the service has a dozen threads (one per
      aiosqlite connection, pebble's three, AnyIO's), mostly idle, each arena keeping its own free
      pages. The threads run Python, one at a time (the GIL), so they seldom contend for malloc.
    - Blocks of ``SERVICE_MMAP_THRESHOLD`` bytes or more (feed and page bodies in flight, their
      decoded copies) mapped apart and unmapped when freed: glibc's default threshold is the same
      but rises to the largest mapped block freed (up to 32 MiB), after which bodies are carved
      from the heap, and its pages stay in the process after them.

    With both, the main process peaked at 104 MiB instead of 110 ingesting the 240 corpus pages
    (``bench/memory.py``)."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, SERVICE_ARENAS) and libc.mallopt(M_MMAP_THRESHOLD, SERVICE_MMAP_THRESHOLD))


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off inside (``gc.disable``), and the objects made there kept out
    of every later collection (``gc.freeze``) after: for a process's imports and loaded data, which
    live as long as it does. In ``poll --once``'s main process, collections among its stack's
    objects took about 0.15 s of the 0.6 s of CPU of its imports and database check, and found
    little to free (about 1,200 of the 95,000 objects, which are now kept); in a worker's warm-up
    (``workers.warm_up``) about 0.05 s of 0.5 s, and with those objects frozen a page's
    collections cost 0.05 instead of 0.25 ms (the 240 corpus pages in one process)."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
