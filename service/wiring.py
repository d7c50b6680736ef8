"""The composition root: the one place that builds the service's parts from its settings.

``newsloom serve`` (``api.app.lifespan``), the CLI commands that fetch (``feeds add``, ``poll
--once``) and the tests all assemble the service here, so each gets the same parts wired the same
way::

    settings ─┬─ engine → sessions (``db``)
              ├─ HTTP client, SSRF-guarded (``net.fetcher.create_client``)
              ├─ worker processes for parsing and extraction (``ingest.workers.service_pool``), and
              │  with stories on a pool for story features (``story_pool``), started at once
              ├─ webhook client and delivery worker (``webhooks.delivery``), when deliveries run here
              ├─ with stories on, the story linker (``stories.linker.Linker``)
              └─ the ingest steps (``ingest.poller.Poller``: feeds, pages), handed what follows a
                 completed article (``ingest.handoff``): the linker, which announces
                 ``article.created`` once it linked the article, or with stories off the outbox
                 (``webhooks.outbox``), in the transaction that completes it; both wake the
                 delivery worker when they write webhook events
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from service.config import Settings
from service.db import create_engine, session_factory
from service.ingest.poller import Poller
from service.ingest.workers import WorkerPool, worker_pools
from service.net.fetcher import create_client
from service.net.ssrf import Resolver
from service.webhooks import outbox
from service.webhooks.delivery import DeliveryWorker, create_webhook_client


@dataclass
class Service:
    """The assembled parts. ``workers`` parse and extract; ``story_workers`` compute story features
    on a core of their own (None with stories off, or when the caller gave ``workers`` without
    them: ``workers`` then do both); ``ingestor`` subscribes and polls, and with stories on links articles into stories (its
    ``linker``); ``delivery`` is None when webhook deliveries do not run in this process."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    client: httpx.AsyncClient
    workers: WorkerPool
    story_workers: WorkerPool | None
    ingestor: Poller
    delivery: DeliveryWorker | None

    @property
    def owners(self) -> list[str]:
        """The lease owner names of this process's steps (to release their leases on shutdown)."""
        return [step.owner for step in (self.ingestor, self.delivery) if step is not None]


@contextlib.asynccontextmanager
async def assemble(
    settings: Settings,
    *,
    sessions: async_sessionmaker[AsyncSession] | None = None,
    workers: WorkerPool | None = None,
    story_workers: WorkerPool | None = None,
    deliveries: bool | None = None,
    resolver: Resolver | None = None,
    verify: ssl.SSLContext | bool = True,
    trusted: Iterable[tuple[str, int]] = (),
) -> AsyncIterator[Service]:
    """Build the service's parts for ``settings`` and close what it built on exit (clients, the
    worker pool, the engine), in the reverse order.

    ``sessions`` and ``workers`` (with ``story_workers``, None: ``workers`` compute the story
    features too), when given, are the caller's and are not closed here (tests share one worker pool
    for a whole run; ``poll --once`` starts ``workers.worker_pools`` before it imports this module);
    without ``workers`` both pools are built here (``workers.worker_pools``). ``deliveries``: run a
    webhook delivery worker (default ``settings.webhooks_enabled``; the CLI writes events to the outbox and leaves delivering them
    to ``newsloom serve``). ``resolver``, ``verify`` and ``trusted`` go to both HTTP clients
    (``net.fetcher.create_client``: tests resolve outlet host names to loopback servers). The
    database is not migrated here: ``serve`` migrates in a process apart first, the CLI in
    ``_database``.
    """
    async with contextlib.AsyncExitStack() as stack:
        if sessions is None:
            engine = create_engine(settings.database_url)
            stack.push_async_callback(engine.dispose)
            sessions = session_factory(engine)
        if workers is None:
            workers, story_workers = stack.enter_context(worker_pools(settings))
        client = await stack.enter_async_context(create_client(settings, resolver=resolver, verify=verify, trusted=trusted))
        delivery = None
        if settings.webhooks_enabled if deliveries is None else deliveries:
            webhook_client = await stack.enter_async_context(create_webhook_client(settings, resolver=resolver, verify=verify,
                                                                                       trusted=trusted))
            delivery = DeliveryWorker(settings, sessions, webhook_client)
        on_events = delivery.wake if delivery else None
        linker = None
        if settings.stories_enabled:
            # Imported only here: with stories off the service never loads it (docs/operations.md, "Memory").
            from service.stories.linker import Linker

            linker = Linker(settings, sessions, story_workers or workers, on_events)
            if story_workers is not None:
                linker.spare = workers  # an idle extraction pool takes text vectors too
        # Who announces ``article.created`` (BL-34), decided here only: with stories on the linker,
        # once the article has its story; with stories off the outbox, as the article completes.
        ingestor = Poller(settings, sessions, client, workers, announcer=None if linker else outbox, linker=linker,
                          on_events=on_events)
        yield Service(settings, sessions, client, workers, story_workers, ingestor, delivery)
