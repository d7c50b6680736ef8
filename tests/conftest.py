"""Shared fixtures: the shared corpus, a real HTTP server on 127.0.0.1, a migrated database (a
SQLite file always; PostgreSQL too when NEWSLOOM_TEST_POSTGRES_URL is set), a poller wired to
them, and a ``newsloom serve`` subprocess."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from service.config import Settings
from service.db import create_engine, migrate_async, session_factory
from service.ingest.poller import Poller
from service.ingest.workers import WorkerPool
from service.wiring import assemble
from tests.server import TestServer

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NEWSLOOM_SHARED", ROOT.parent / "shared"))
POSTGRES_URL = os.environ.get("NEWSLOOM_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def corpus() -> Path:
    """``../shared/corpus``; tests that need it are skipped when it is absent."""
    path = SHARED / "corpus"
    if not (path / "MANIFEST.md").is_file():
        pytest.skip(f"shared corpus not found at {path} (set NEWSLOOM_SHARED to the shared/ folder)")
    return path


@pytest.fixture(scope="session")
def bug_cases() -> Path:
    path = SHARED / "bug-cases"
    if not (path / "README.md").is_file():
        pytest.skip(f"shared bug cases not found at {path}")
    return path


@pytest.fixture
def server() -> Iterator[TestServer]:
    """A real HTTP server on 127.0.0.1; ``/corpus/…`` serves the shared corpus when present."""
    corpus_path = SHARED / "corpus"
    with TestServer(corpus_path if corpus_path.is_dir() else None) as srv:
        yield srv


async def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(sa.text("CREATE SCHEMA public"))
    await engine.dispose()


async def empty_database(backend: str, tmp_path: Path) -> str:
    """The URL of an empty, unmigrated database: a new SQLite file for ``sqlite``; for
    ``postgresql`` the configured server with its public schema dropped and recreated (skipped
    when NEWSLOOM_TEST_POSTGRES_URL is not set)."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'newsloom.db'}"
    if not POSTGRES_URL:
        pytest.skip("NEWSLOOM_TEST_POSTGRES_URL is not set")
    await _reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request, tmp_path) -> str:
    """A freshly migrated, empty database: a SQLite file, and PostgreSQL when configured."""
    url = await empty_database(request.param, tmp_path)
    await migrate_async(url)
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Test settings: loopback allowed (the test server is on 127.0.0.1), no politeness gap, no
    API keys needed (auth is tested on its own in test_production.py)."""
    return Settings(database_url=database_url, extract_workers=1, poll_tick=0.2, total_timeout=20,
                    allow_private_networks=True, host_min_gap=0, poll_spread=0, auth=False)


@pytest.fixture
async def sessions(settings: Settings):
    engine = create_engine(settings.database_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
def workers() -> Iterator[WorkerPool]:
    """One pool of worker processes for the whole run (spawning them costs seconds)."""
    pool = WorkerPool(workers=2, timeout=30)
    yield pool
    pool.close()


@pytest.fixture
async def poller(settings: Settings, sessions, workers: WorkerPool, server: TestServer) -> AsyncIterator[Poller]:
    """A poller whose client resolves ``*.example.org`` to the test server and trusts its TLS certificate."""
    async with assemble(settings, sessions=sessions, workers=workers, deliveries=False,
                        resolver=server.resolver, verify=server.client_ssl) as service:
        yield service.ingestor


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """``newsloom serve`` in a subprocess on a free loopback port, with its own environment. Its log
    lines are collected by a reader thread; ``wait_for_log`` blocks until one matches."""

    def __init__(self, database_url: str, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "NEWSLOOM_DATABASE_URL": database_url, "NEWSLOOM_EXTRACT_WORKERS": "1",
                    "NEWSLOOM_POLL_TICK": "0.5", "NEWSLOOM_LOG_LEVEL": "INFO",
                    "NEWSLOOM_ALLOW_PRIVATE_NETWORKS": "true", "NEWSLOOM_HOST_MIN_GAP": "0",
                    "NEWSLOOM_AUTH": "off", **env}
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []
        self._changed = threading.Condition()

    def run_cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "service.cli", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, cwd=ROOT)

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<exited>")
            self._changed.notify_all()

    def wait_for_log(self, pattern: str, timeout: float = 120, count: int = 1) -> list[str]:
        """Block until ``count`` log lines match the regular expression ``pattern``; raise
        AssertionError with the log if the service exits or ``timeout`` seconds pass first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines if regex.search(line)]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.lines and self.lines[-1] == "<exited>"):
                    raise AssertionError(f"no log line matching {pattern!r}:\n{''.join(self.lines[-40:])}")
                self._changed.wait(remaining)

    def start(self) -> ServiceProcess:
        """Start the process without waiting for it (see ``wait_started``)."""
        self.proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(self.port)],
                                     env=self.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def wait_started(self, timeout: float = 90) -> ServiceProcess:
        """Block until the server answers (its startup log line); kill it and raise if it does not."""
        assert self.proc is not None
        try:
            # `newsloom serve` binds the port first and logs "Newsloom running on" once the start-up is complete.
            self.wait_for_log("Newsloom running on", timeout=timeout)
        except AssertionError:
            self.proc.kill()
            raise
        return self

    def __enter__(self) -> ServiceProcess:
        return self.start().wait_started()

    def __exit__(self, *exc) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def service_factory(database_url: str):
    """Start ``newsloom serve`` subprocesses against the test database: ``with factory(**env) as svc``."""
    return lambda **env: ServiceProcess(database_url, **env)


@pytest.fixture
def api(settings: Settings) -> Iterator[str]:
    """The application served by uvicorn on a free loopback port in a background thread (pollers
    off, so tests control the data; auth off, so no keys are needed); yields its base URL."""
    with running_app(settings.model_copy(update={"poller_enabled": False, "auth": False})) as base:
        yield base


@contextlib.contextmanager
def running_app(settings: Settings) -> Iterator[str]:
    """``create_app(settings)`` served by uvicorn on a free loopback port in a background thread;
    yields its base URL and stops it (running the lifespan's shutdown) on exit."""
    import uvicorn

    from service.api.app import create_app

    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="on")
    started = threading.Event()

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            started.set()

    server = Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert started.wait(60) and server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{config.port}"
    server.should_exit = True
    thread.join(30)
