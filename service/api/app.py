"""The FastAPI application. Its lifespan migrates the database, opens the engine, the HTTP clients
and the worker pool, and runs the pollers and the webhook delivery worker beside the API (each
unless disabled).

Shutdown (SIGTERM: uvicorn stops accepting connections, then runs the lifespan's exit): the workers
stop claiming, in-flight work gets ``NEWSLOOM_SHUTDOWN_GRACE`` seconds to finish, what is still
running is cancelled, and every lease this process holds is released so another replica (or this
one, restarted) takes the work at once instead of after ``NEWSLOOM_LEASE_SECONDS``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import sqlalchemy as sa
from fastapi import Depends, FastAPI
from sqlmodel import col

from service import metrics, ui
from service.api import docs, problems, webhook_docs
from service.api.middleware import RequestContext
from service.api.routes import articles, feeds, health, stories, subscriptions
from service.api.routes import metrics as metrics_route
from service.api.security import authorize, authorize_read
from service.api.validation import reject_unknown_query_parameters
from service.auth import RateLimiter
from service.config import Settings, get_settings
from service.db import create_engine, migrate_apart, session_factory
from service.ingest.fetcher import create_client
from service.ingest.poller import Poller
from service.ingest.workers import service_pool, story_pool
from service.models import Article, Delivery, Feed
from service.webhooks.delivery import DeliveryWorker, create_webhook_client

log = logging.getLogger(__name__)


async def release_leases(sessions, owners: list[str]) -> dict[str, int]:
    """Clear the leases that ``owners`` hold on feeds, article pages and deliveries (the rows stay
    due, so the next claimer takes them at once); returns the count per table. Commits."""
    released = {}
    async with sessions() as session:
        for name, model in (("feeds", Feed), ("pages", Article), ("deliveries", Delivery)):
            result = await session.exec(
                sa.update(model).where(col(model.lease_owner).in_(owners)).values(lease_owner=None, lease_until=None)
            )
            released[name] = result.rowcount or 0
        await session.commit()
    return released


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.migration_heads = await migrate_apart(settings.database_url)
    app.state.stopping = False
    engine = create_engine(settings.database_url)
    app.state.sessions = session_factory(engine)
    client = create_client(settings)
    stories = story_pool(settings)
    if stories is not None:
        stories.start()  # its warm-up (encoders, gazetteer: seconds) overlaps the start-up, not the first link
    workers = service_pool(settings, stories=False)
    webhook_client = create_webhook_client(settings)
    app.state.poller = app.state.delivery = None
    stop = asyncio.Event()
    tasks = []
    if settings.webhooks_enabled:
        app.state.delivery = DeliveryWorker(settings, app.state.sessions, webhook_client)
        tasks.append(asyncio.create_task(app.state.delivery.run(stop), name="webhook delivery"))
    # Subscriptions fetch and ingest the feed's first document, with or without the polling loops.
    wake = app.state.delivery.wake if app.state.delivery else None
    app.state.ingestor = Poller(settings, app.state.sessions, client, workers, on_events=wake, story_workers=stories)
    if settings.poller_enabled:
        app.state.poller = app.state.ingestor
        tasks.append(asyncio.create_task(app.state.poller.run(stop), name="pollers"))
    app.state.tasks = tasks
    try:
        yield
    finally:
        app.state.stopping = True
        stop.set()
        grace = settings.shutdown_grace
        if tasks:
            log.info("shutdown: finishing in-flight work (up to %g s)", grace)
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                log.warning("shutdown: %s did not finish within %g s; cancelling it", task.get_name(), grace)
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        owners = [w.owner for w in (app.state.ingestor, app.state.delivery) if w is not None]
        try:
            released = await release_leases(app.state.sessions, owners)
            log.info("shutdown: released leases: %s", ", ".join(f"{n} {c}" for n, c in released.items()))
        except Exception:
            log.exception("shutdown: releasing leases failed; they expire after %s s", settings.lease_seconds)
        await client.aclose()
        await webhook_client.aclose()
        workers.close()
        if stories is not None:
            stories.close()
        await engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """A Newsloom application for ``settings`` (default: from the environment)."""
    app = FastAPI(
        title="Newsloom",
        version="0.1.0",
        summary="Feeds, articles and stories as JSON.",
        lifespan=lifespan,
        docs_url=None,  # served by docs.install, from this service rather than a CDN
        redoc_url=None,
        dependencies=[Depends(reject_unknown_query_parameters)],
    )
    app.state.settings = settings = settings or get_settings()
    app.state.rate_limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
    app.state.queue_gauges = metrics.QueueGauges()
    problems.install(app)
    app.add_middleware(RequestContext, max_body_bytes=settings.max_body_bytes)
    # Open: liveness and readiness probes. /metrics needs a read key; /v1 needs read or admin (see security.py).
    app.include_router(health.router)
    app.include_router(metrics_route.router, dependencies=[Depends(authorize_read)])
    app.include_router(feeds.router, dependencies=[Depends(authorize)])
    app.include_router(articles.router, dependencies=[Depends(authorize)])
    app.include_router(stories.router, dependencies=[Depends(authorize)])
    app.include_router(subscriptions.router, dependencies=[Depends(authorize)])
    docs.install(app)  # Swagger UI at /docs, its assets included
    ui.install(app)  # the story browser at /ui/ (its key check is the API's)
    webhook_docs.document(app)
    problems.document_errors(app)
    return app
