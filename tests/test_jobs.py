"""The leased-step runner (``service.jobs``) claiming ahead: a claim takes more rows than there are
free slots, so a busy step claims once per batch; the rows wait ready, at most ``per_key`` of a key
run at once, a ready row whose key is full waits while the others start, and the rows not started
when the runner stops are released at once. Real leases on feed rows; the work itself is a stub
that the test holds and releases with events (no sleeps, no timing)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from sqlmodel import select

from service.ingest import store
from service.ingest.hosts import host_key
from service.jobs import Runner, Step
from service.models import Feed, utcnow


class HeldStep(Step[Feed, str]):
    """Feeds of ``slow.example.org`` wait for ``release``; the others finish at once."""

    name, model, owner = "held", Feed, "test-owner"
    concurrency, per_key, claim_ahead = 2, 1, 2

    def __init__(self, sessions) -> None:
        self.sessions = sessions
        self.release = asyncio.Event()
        self.fast_done = asyncio.Event()
        self.running: Counter[str] = Counter()
        self.most: Counter[str] = Counter()  # the most rows of each host running at once
        self.started: list[str] = []
        self.claims = 0

    def key(self, feed: Feed) -> str:
        return host_key(feed.url)

    async def claim(self, limit, room):
        self.claims += 1
        async with self.sessions() as session:
            return await store.claim_due_feeds(session, self.owner, 300, limit, room)

    async def handle(self, feed: Feed) -> str:
        host = self.key(feed)
        self.started.append(feed.url)
        self.running[host] += 1
        self.most[host] = max(self.most[host], self.running[host])
        try:
            if host == "slow.example.org":
                await self.release.wait()
            elif sum(url.startswith("https://fast.") for url in self.started) == 2:
                self.fast_done.set()
            return feed.url
        finally:
            self.running[host] -= 1

    async def failed(self, feed: Feed, reason: str) -> str:
        raise AssertionError(f"{feed.url} failed: {reason}")


async def test_claiming_ahead_keeps_per_key_limits_lets_other_keys_pass_and_releases_unstarted_rows(sessions):
    names = ["slow/1", "fast/1", "slow/2", "fast/2", "slow/3"]  # oldest due first
    now = utcnow()
    async with sessions() as session:
        for age, name in enumerate(reversed(names)):
            host, number = name.split("/")
            session.add(Feed(url=f"https://{host}.example.org/{number}.xml", next_poll_at=now - timedelta(seconds=age + 1)))
        await session.commit()

    step = HeldStep(sessions)
    stop = asyncio.Event()
    drained = asyncio.create_task(Runner(step, sessions, 300).drain(stop=stop))
    await step.fast_done.wait()  # both fast feeds ran while the first slow one was still held
    stop.set()
    step.release.set()
    results = await drained

    assert step.started == ["https://slow.example.org/1.xml", "https://fast.example.org/1.xml", "https://fast.example.org/2.xml"]
    assert sorted(results) == sorted(step.started)
    assert step.most == {"slow.example.org": 1, "fast.example.org": 1}
    # One claim of four rows filled both slots and two ready ones; after that only empty claims
    # (the slow host is full): slow/2 was claimed ahead but never started, slow/3 never claimed.
    assert step.claims >= 1
    async with sessions() as session:
        leases = dict((await session.exec(select(Feed.url, Feed.lease_until))).all())
    assert leases["https://slow.example.org/2.xml"] is None  # released when the runner stopped
    assert leases["https://slow.example.org/3.xml"] is None
