"""Helpers for tests that run feeds through the real poller and read the result through the API."""

from __future__ import annotations

import httpx

from service.api.app import create_app
from service.config import Settings
from service.db import Reader
from service.feeds import add_feed
from service.ingest.poller import Poller


async def poll_once(poller: Poller, sessions, feed_url: str) -> None:
    """Subscribe to ``feed_url``, poll it and process its pages, as ``newsloom poll --once`` does."""
    async with sessions() as session:
        feed, _ = await add_feed(session, feed_url, 900)
    await poller.poll_due_feeds()
    await poller.process_pages([feed.id])


async def api_articles(settings: Settings, sessions) -> list[dict]:
    """Every article as ``GET /v1/articles/{id}`` returns it, through the real ASGI app."""
    app = create_app(settings)
    app.state.sessions = sessions
    app.state.reader = Reader(sessions)
    app.state.poller = None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        listed = (await client.get("/v1/articles", params={"limit": 200})).json()["items"]
        return [(await client.get(f"/v1/articles/{a['id']}")).json() for a in listed]


def rehost(body: bytes, hosts: list[str], base: str) -> bytes:
    """``body`` with ``https://<host>`` for each of ``hosts`` replaced by the test server's ``base``
    (the bug cases use example.org hosts; the server answers on 127.0.0.1)."""
    for host in hosts:
        body = body.replace(f"https://{host}".encode(), base.encode())
    return body
