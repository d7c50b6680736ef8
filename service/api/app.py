"""The FastAPI application. Its lifespan migrates the database, opens the engine, the HTTP clients
and the worker pool, and runs the pollers and the webhook delivery worker beside the API (each
unless disabled)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from service.api import problems, webhook_docs
from service.api.routes import articles, feeds, health, stories, subscriptions
from service.config import Settings, get_settings
from service.db import create_engine, migrate_async, session_factory
from service.ingest.fetcher import create_client
from service.ingest.poller import Poller
from service.ingest.workers import WorkerPool
from service.webhooks.delivery import DeliveryWorker, create_webhook_client

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
    webhook_client = create_webhook_client(settings)
    app.state.poller = app.state.delivery = None
    stop = asyncio.Event()
    tasks = []
    if settings.webhooks_enabled:
        app.state.delivery = DeliveryWorker(settings, app.state.sessions, webhook_client)
        tasks.append(asyncio.create_task(app.state.delivery.run(stop), name="webhook delivery"))
    # Subscriptions fetch and ingest the feed's first document, with or without the polling loops.
    wake = app.state.delivery.wake if app.state.delivery else None
    app.state.ingestor = Poller(settings, app.state.sessions, client, workers, on_events=wake)
    if settings.poller_enabled:
        app.state.poller = app.state.ingestor
        tasks.append(asyncio.create_task(app.state.poller.run(stop), name="pollers"))
    try:
        yield
    finally:
        stop.set()
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
            for task in pending:
                log.warning("%s did not stop within %s s; its leases will expire", task.get_name(), SHUTDOWN_GRACE)
                task.cancel()
        await client.aclose()
        await webhook_client.aclose()
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
    app.include_router(subscriptions.router)
    webhook_docs.document(app)
    return app
