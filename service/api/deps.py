"""Dependencies injected into routes: a database session, the running poller and delivery worker.

Each is an ``async def``, also those that only look up ``app.state``: FastAPI runs a plain ``def``
dependency in its thread pool, a hand-off to a thread and back per request (0.45 ms of CPU, a
fifth of what the first page of ``GET /v1/articles`` on PostgreSQL cost, measured in-process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import Reader
from service.ingest.poller import Poller
from service.webhooks.delivery import DeliveryWorker


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, closed when the response is sent."""
    async with request.app.state.sessions() as session:
        yield session


async def get_reader(request: Request) -> Reader:
    """The application's ``db.Reader``: reads run in one hand-off (SQLite) instead of one per step."""
    return request.app.state.reader


async def get_poller(request: Request) -> Poller | None:
    """The poller of this process, or None when it runs without one (``NEWSLOOM_POLLER_ENABLED=false``)."""
    return request.app.state.poller


async def get_delivery(request: Request) -> DeliveryWorker | None:
    """The webhook delivery worker of this process, or None (``NEWSLOOM_WEBHOOKS_ENABLED=false``)."""
    return request.app.state.delivery


SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReaderDep = Annotated[Reader, Depends(get_reader)]
PollerDep = Annotated[Poller | None, Depends(get_poller)]
DeliveryDep = Annotated[DeliveryWorker | None, Depends(get_delivery)]
