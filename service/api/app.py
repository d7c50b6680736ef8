"""The FastAPI application. Its lifespan migrates the database, opens the engine, the shared HTTP
client and the worker pool, and runs the pollers beside the API (unless disabled)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from service.api import problems
from service.api.routes import articles, feeds, health, stories
from service.config import Settings, get_settings
from service.db import create_engine, migrate_async, session_factory
from service.ingest.fetcher import create_client
from service.ingest.poller import Poller
from service.ingest.workers import WorkerPool

log = logging.getLogger(__name__)

# Seconds the pollers get to finish their current step on shutdown before they are cancelled.
SHUTDOWN_GRACE = 10


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    await migrate_async(settings.database_url)
    engine = create_engine(settings.database_url)
    app.state.sessions = session_factory(engine)
    client = create_client(settings)
    workers = WorkerPool(settings.extract_workers, settings.extract_timeout)
    app.state.poller = None
    stop = asyncio.Event()
    task = None
    if settings.poller_enabled:
        app.state.poller = Poller(settings, app.state.sessions, client, workers)
        task = asyncio.create_task(app.state.poller.run(stop), name="pollers")
    try:
        yield
    finally:
        stop.set()
        if task is not None:
            try:
                await asyncio.wait_for(task, SHUTDOWN_GRACE)
            except TimeoutError:
                log.warning("pollers did not stop within %s s; their leases will expire", SHUTDOWN_GRACE)
        await client.aclose()
        workers.close()
        await engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """A Newsloom application for ``settings`` (default: from the environment)."""
    app = FastAPI(
        title="Newsloom",
        version="0.1.0",
        summary="Feeds, articles and stories as JSON.",
        lifespan=lifespan,
    )
    app.state.settings = settings or get_settings()
    problems.install(app)
    app.include_router(health.router)
    app.include_router(feeds.router)
    app.include_router(articles.router)
    app.include_router(stories.router)
    return app
