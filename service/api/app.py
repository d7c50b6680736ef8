"""The FastAPI application. Its lifespan migrates the database, opens the engine, the HTTP clients
and the worker pool, and runs the pollers and the webhook delivery worker beside the API (each
unless disabled).

Shutdown (SIGTERM: uvicorn stops accepting connections, then runs the lifespan's exit): the workers
stop claiming, in-flight work gets ``NEWSLOOM_SHUTDOWN_GRACE`` seconds to finish, what is still
running is cancelled, and every lease this process holds is released so another replica (or this
one, restarted) takes the work at once instead of after ``NEWSLOOM_LEASE_SECONDS``. A process
killed without that (SIGKILL, a crash) leaves its leases behind: its successor on the same machine
and in the same PID namespace releases them at start-up (``reclaim_dead_leases``); anywhere else
they expire."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI

from service import metrics, owners, ui
from service.api import docs, problems, webhook_docs
from service.api.middleware import RequestContext
from service.api.routes import articles, feeds, health, stories, subscriptions
from service.api.routes import metrics as metrics_route
from service.api.security import authorize, authorize_read
from service.api.validation import reject_empty_query_parameters, reject_unknown_query_parameters
from service.auth import RateLimiter
from service.config import Settings, get_settings
from service.db import Reader, migrate_apart
from service.models import Article, Delivery, Feed
from service.storage import leases, queues
from service.wiring import assemble

log = logging.getLogger(__name__)


LEASED: dict[str, type[leases.Leasable]] = {"feeds": Feed, "pages": Article, "deliveries": Delivery}
"""The tables whose leases carry an owner (``owners.lease_owner``), by the name logs give them."""


async def release_leases(sessions, owners: list[str]) -> dict[str, int]:
    """Clear the leases that ``owners`` hold on feeds, article pages and deliveries (the rows stay
    due, so the next claimer takes them at once); returns the count per table. Commits."""
    async with sessions() as session:
        return await leases.release_owned(session, LEASED, owners)


async def reclaim_dead_leases(sessions) -> dict[str, int]:
    """At start-up: release the leases of owners that are provably dead (``owners.dead``: a
    predecessor on this machine and in this PID namespace killed without its shutdown, SIGKILL or
    a crash), so their feeds, pages and deliveries are taken at once rather than after
    ``NEWSLOOM_LEASE_SECONDS``. The leases of live processes and of other machines' and containers'
    replicas are left alone. Returns the count per table. Commits."""
    async with sessions() as session:
        gone = sorted(owner for owner in await leases.holders(session, LEASED.values()) if owners.dead(owner))
    return await release_leases(sessions, gone) if gone else {}


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.migration_heads = await migrate_apart(settings.database_url)
    app.state.stopping = False
    async with assemble(settings) as service:
        app.state.sessions = service.sessions
        reclaimed = await reclaim_dead_leases(service.sessions)
        if any(reclaimed.values()):
            log.info("start-up: released the leases of dead processes: %s", ", ".join(f"{n} {c}" for n, c in reclaimed.items()))
        app.state.reader = Reader(service.sessions)  # the article list's read: one hand-off on SQLite, one round trip on PostgreSQL
        # Subscriptions fetch and ingest the feed's first document, with or without the polling loops.
        app.state.ingestor = service.ingestor
        app.state.delivery = service.delivery
        app.state.poller = service.ingestor if settings.poller_enabled else None
        stop = asyncio.Event()
        tasks = []
        if service.delivery is not None:
            tasks.append(asyncio.create_task(service.delivery.run(stop), name="webhook delivery"))
        if app.state.poller is not None:
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
            await app.state.reader.close()
            try:
                released = await release_leases(service.sessions, service.owners)
                log.info("shutdown: released leases: %s", ", ".join(f"{n} {c}" for n, c in released.items()))
            except Exception:
                log.exception("shutdown: releasing leases failed; they expire after %s s", settings.lease_seconds)


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
    app.state.queue_gauges = metrics.QueueGauges(queues.depths)
    problems.install(app, ui.ERRORS)
    app.add_middleware(RequestContext, max_body_bytes=settings.max_body_bytes, pages=ui.ERRORS)
    # Open: liveness and readiness probes. /metrics needs a read key; /v1 needs read or admin (see security.py).
    app.include_router(health.router)
    app.include_router(metrics_route.router, dependencies=[Depends(authorize_read)])
    api = [Depends(authorize), Depends(reject_empty_query_parameters)]
    app.include_router(feeds.router, dependencies=api)
    app.include_router(articles.router, dependencies=api)
    app.include_router(stories.router, dependencies=api)
    app.include_router(subscriptions.router, dependencies=api)
    docs.install(app)  # Swagger UI at /docs, its assets included
    ui.install(app)  # the story browser at /ui/ (its key check is the API's)
    webhook_docs.document(app)
    problems.document_errors(app)
    return app
