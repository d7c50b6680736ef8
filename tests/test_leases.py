"""Claims with a lease take turns between hosts, so one host's backlog cannot starve the others."""

from __future__ import annotations

from datetime import timedelta

from service.ingest import store
from service.models import Feed, utcnow


async def test_a_busy_host_does_not_fill_every_claim(sessions):
    now = utcnow()
    async with sessions() as session:
        # 40 feeds on one host, all due before the two feeds of two other hosts.
        session.add_all(Feed(url=f"https://busy.example.org/feed/{i}", next_poll_at=now - timedelta(hours=2, seconds=i))
                        for i in range(40))
        session.add_all([Feed(url="https://quiet.example.net/feed", next_poll_at=now - timedelta(hours=1)),
                         Feed(url="https://calm.example.com/rss", next_poll_at=now - timedelta(minutes=1))])
        await session.commit()
    async with sessions() as session:
        claimed = await store.claim_due_feeds(session, "test-owner", 60, 4)
    hosts = [f.url.split("/")[2] for f in claimed]
    assert len(claimed) == 4
    assert {"quiet.example.net", "calm.example.com"} <= set(hosts)
    assert hosts.count("busy.example.org") == 2
    # The busy host's oldest feeds come first among its own.
    busy = [f.url for f in claimed if "busy" in f.url]
    assert busy == ["https://busy.example.org/feed/39", "https://busy.example.org/feed/38"]
    async with sessions() as session:  # the rest stay claimable by others
        again = await store.claim_due_feeds(session, "other-owner", 60, 100)
    assert len(again) == 38 and not {f.id for f in again} & {f.id for f in claimed}
