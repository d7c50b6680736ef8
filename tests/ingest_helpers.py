"""Helpers for tests that drive the real poller against the test server and read results through
the API (the FastAPI app in-process over ASGI, on the same database)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import sqlalchemy as sa
from sqlmodel import select

from service.api.app import create_app
from service.db import Reader
from service.feeds import add_feed
from service.models import Feed, utcnow
from service.storage import feeds
from service.wiring import assemble


def api_client(settings, sessions) -> httpx.AsyncClient:
    """An API client on the app's routes, sharing the test's sessions (no lifespan, no poller)."""
    app = create_app(settings)
    app.state.sessions = sessions
    app.state.reader = Reader(sessions)
    app.state.poller = None
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def subscribe(sessions, url: str, interval: int = 900) -> int:
    async with sessions() as session:
        feed, _created = await add_feed(session, url, interval)
        return feed.id


async def claim_due_feeds(session, owner: str, lease_seconds: float, limit: int) -> list[Feed]:
    """``feeds.lease_due_feeds`` in an async session, committed: the feeds a poller would claim."""
    claimed = await session.run_sync(feeds.lease_due_feeds, owner, lease_seconds, limit)
    await session.commit()
    return claimed


async def make_due(sessions, *feed_ids: int, by: float | None = None) -> None:
    """Time passes: the feeds become due now (or their next poll moves ``by`` seconds earlier)."""
    async with sessions() as session:
        for feed_id in feed_ids:
            feed = await session.get(Feed, feed_id)
            feed.next_poll_at = feed.next_poll_at - timedelta(seconds=by) if by is not None else utcnow()
        await session.commit()


async def feed_row(sessions, feed_id: int) -> Feed:
    async with sessions() as session:
        return (await session.exec(select(Feed).where(Feed.id == feed_id))).one()


async def articles(api: httpx.AsyncClient, feed_id: int | None = None) -> list[dict]:
    params = {"limit": 200} | ({"feed_id": feed_id} if feed_id else {})
    response = await api.get("/v1/articles", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def feed_api(api: httpx.AsyncClient, feed_id: int) -> dict:
    response = await api.get(f"/v1/feeds/{feed_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def count(sessions, table) -> int:
    async with sessions() as session:
        return (await session.exec(select(sa.func.count()).select_from(table))).one()


async def poll_outlets_in_order(server, settings, sessions, workers, hosts: list[str]) -> None:
    """Each outlet's feed (``http://HOST/feed.xml`` on the test server, ``hosts`` resolved to it by
    ``TestServer.outlet_resolver``) subscribed, polled and its pages extracted and linked, one
    outlet after the other in the order of ``hosts`` (the real poller, no webhook deliveries)."""
    async with assemble(settings, sessions=sessions, workers=workers, deliveries=False,
                        resolver=server.outlet_resolver(set(hosts)), verify=server.client_ssl) as service:
        for host in hosts:
            async with sessions() as session:
                await add_feed(session, f"http://{host}/feed.xml", 900)
            await service.ingestor.poll_due_feeds()
            await service.ingestor.process_pages()
