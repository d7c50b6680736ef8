"""Claims with a lease take turns between hosts, so one host's backlog cannot starve the others;
leases are kept alive while their claimer works and lapse once it stops."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import timedelta

import sqlalchemy as sa

from service.db import create_engine, session_factory
from service.ingest.poller import PageStep
from service.models import Feed, utcnow
from service.storage import leases
from tests.ingest_helpers import claim_due_feeds, subscribe


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
        claimed = await claim_due_feeds(session, "test-owner", 60, 4)
    hosts = [f.url.split("/")[2] for f in claimed]
    assert len(claimed) == 4
    assert {"quiet.example.net", "calm.example.com"} <= set(hosts)
    assert hosts.count("busy.example.org") == 2
    # The busy host's oldest feeds come first among its own.
    busy = [f.url for f in claimed if "busy" in f.url]
    assert busy == ["https://busy.example.org/feed/39", "https://busy.example.org/feed/38"]
    async with sessions() as session:  # the rest stay claimable by others
        again = await claim_due_feeds(session, "other-owner", 60, 100)
    assert len(again) == 38 and not {f.id for f in again} & {f.id for f in claimed}


def _rss(host: str, posts: int) -> str:
    items = "".join(f"<item><title>Post {i}</title><link>https://{host}/post/{i}</link><guid>{host}/{i}</guid></item>"
                    for i in range(posts))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{host}</title><link>https://{host}/</link>{items}</channel></rss>'


async def test_a_new_page_behind_another_hosts_page_backlog_is_claimed_by_the_next_claim(server, poller, sessions):
    # trial14: 500 pages of host A due, fetched a few at a time (its per-host slots); a new entry of
    # host B waited minutes, until A's backlog fell below the claim's ordered read.
    for host, posts in (("a.example.org", 500), ("b.example.org", 1), ("c.example.org", 1)):
        server.add("/feed.xml", _rss(host, posts), host=host, Content_Type="application/rss+xml")
    await subscribe(sessions, "https://a.example.org/feed.xml")
    await poller.poll_due_feeds()
    step = PageStep(poller)  # claims as the runner does: free slots, and the room each host has left
    in_flight: Counter[str] = Counter()

    def room(host: str) -> int:
        return step.per_key - in_flight[host]

    async def next_claim() -> list[str]:
        claimed = await step.claim(step.concurrency - in_flight.total(), room)
        in_flight.update(step.key(article) for article in claimed)
        return [article.url for article in claimed]

    assert await next_claim() == [f"https://a.example.org/post/{i}" for i in range(step.per_key)]
    assert 500 - step.per_key > leases.SPREAD_FACTOR * step.concurrency  # more than the ordered read reaches

    await subscribe(sessions, "https://b.example.org/feed.xml")
    await poller.poll_due_feeds()
    assert await next_claim() == ["https://b.example.org/post/0"]  # A is full

    in_flight["a.example.org"] -= 1  # one of A's pages is done: A has room for one more
    await subscribe(sessions, "https://c.example.org/feed.xml")
    await poller.poll_due_feeds()
    assert await next_claim() == [f"https://a.example.org/post/{step.per_key}", "https://c.example.org/post/0"]


async def _lease_until(sessions, feed_id: int):
    async with sessions() as session:
        return (await session.get(Feed, feed_id, populate_existing=True)).lease_until


async def _wait_for(predicate, timeout: float = 30):
    """Ask ``predicate()`` (async) until it returns something true; return it."""
    deadline = time.monotonic() + timeout
    while not (result := await predicate()):
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)  # the interval between two looks
    return result


async def test_renew_extends_only_the_leases_still_held(sessions):
    now = utcnow()
    async with sessions() as session:
        session.add_all(Feed(url=f"https://a.example.org/{i}", next_poll_at=now - timedelta(minutes=1)) for i in range(3))
        await session.commit()
    async with sessions() as session:
        released, taken, lapsed = await claim_due_feeds(session, "owner-a", 60, 3)
    ids = [released.id, taken.id, lapsed.id]
    async with sessions() as session:
        await session.exec(sa.update(Feed).where(Feed.id == released.id).values(lease_owner=None, lease_until=None))
        await session.exec(sa.update(Feed).where(Feed.id == taken.id).values(lease_owner="owner-b"))
        await session.exec(sa.update(Feed).where(Feed.id == lapsed.id).values(lease_until=now - timedelta(seconds=5)))
        await session.commit()
    taken_until = await _lease_until(sessions, taken.id)
    async with sessions() as session:
        assert await leases.renew(session, Feed, ids, "owner-a", 600) == 1
    assert await _lease_until(sessions, released.id) is None  # a released row stays released
    assert await _lease_until(sessions, taken.id) == taken_until  # another claimer's lease is left alone
    assert await _lease_until(sessions, lapsed.id) > now + timedelta(seconds=500)  # still ours: extended


async def test_a_kept_lease_outlives_its_period_and_lapses_after_the_block(sessions):
    """A 0.3 s lease renewed every 0.1 s: while the block runs, nobody else can claim the feed
    however long it takes; after the block, the lease lapses and another owner takes it."""
    async with sessions() as session:
        session.add(Feed(url="https://a.example.org/feed", next_poll_at=utcnow() - timedelta(minutes=1)))
        await session.commit()
    async with sessions() as session:
        (feed,) = await claim_due_feeds(session, "owner-a", 0.3, 1)
    first_until = feed.lease_until
    async with leases.kept(sessions, Feed, [feed], "owner-a", 0.3):
        # Renewed again and again, past three lease periods after the claim ...
        async def renewed_past_three_periods():
            until = await _lease_until(sessions, feed.id)
            return until > first_until + timedelta(seconds=0.9)
        await _wait_for(renewed_past_three_periods)
        async with sessions() as session:  # ... so it is still held
            assert await claim_due_feeds(session, "owner-b", 60, 1) == []

    async def claimed_by_b():
        async with sessions() as session:
            return await claim_due_feeds(session, "owner-b", 60, 1)
    (taken,) = await _wait_for(claimed_by_b)
    assert taken.id == feed.id and taken.lease_owner == "owner-b"


async def test_a_failing_renewal_is_logged_and_does_not_stop_the_work(tmp_path, caplog):
    """The database goes away during the work: each beat logs a warning, the block still finishes."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'gone.db'}")
    broken = session_factory(engine)
    (tmp_path / "missing").rmdir()  # the file can no longer be created: every renewal fails
    feed = Feed(id=1, url="https://a.example.org/feed")
    caplog.set_level(logging.WARNING, logger="service.storage.leases")
    finished = False
    async with leases.kept(broken, Feed, [feed], "owner-a", 0.3):

        async def warned_twice():
            return sum("renewing the leases of 1 Feed rows failed" in r.getMessage() for r in caplog.records) >= 2
        await _wait_for(warned_twice)
        finished = True
    assert finished
    await engine.dispose()


def test_an_owner_is_dead_only_when_its_process_provably_is_gone():
    """``owners.dead``: a finished process of this machine and PID namespace is dead; this process,
    an owner of another boot or PID namespace, and an owner without the Linux part are not."""
    import subprocess
    import sys

    from service import owners
    from tests.conftest import ROOT

    mine = owners.lease_owner()
    finished = subprocess.run([sys.executable, "-c", "from service import owners; print(owners.lease_owner())"],
                              capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    name, _, identity = finished.partition("/")
    boot, pidns, start = identity.split(":")
    assert owners.dead(finished) and not owners.dead(mine)
    assert not owners.dead(f"{name}/{'0' * 8}-{boot[9:]}:{pidns}:{start}")  # another boot
    assert not owners.dead(f"{name}/{boot}:{int(pidns) + 1}:{start}")  # another PID namespace (another container)
    assert not owners.dead(name)  # written without the Linux part
    assert not owners.dead(f"other-host{name[name.index(':'):]}/{identity}")  # another host with this boot and namespace (a cloned VM)
    my_name, _, my_identity = mine.partition("/")
    my_start = int(my_identity.rsplit(":", 1)[1])
    assert owners.dead(f"{my_name}/{boot}:{pidns}:{my_start + 1}")  # this pid, started at another time: reused
