"""No slow host stalls the rest (issue 14): a feed server that trickles its body (slowloris) and a
webhook receiver that does not answer each hold only their own slots, while the running poller and
delivery worker keep polling every other feed on schedule and delivering to every other receiver,
retries included. The slow ones are held open by the test until the end, so every assertion is
about what arrived while they were still held (server-side events, no wall-clock thresholds)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

from sqlmodel import select

from service.config import Settings
from service.feeds import add_feed
from service.models import Article, Delivery, DeliveryStatus, ExtractionStatus, Subscription
from service.webhooks import outbox, signing
from service.wiring import assemble
from tests.ingest_helpers import make_due, subscribe
from tests.server import Route

EMPTY_FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>'
HEALTHY_HOSTS = ["a.example.org", "b.example.org", "c.example.org"]
SLOW_HOST = "slow.example.org"
EVENTS = 6


class Slowloris:
    """A feed route that sends its headers and then one byte at a time, never finishing, until
    ``release`` is set. Records how many requests it received and whether one is still open."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.lock = threading.Lock()
        self.requests = 0
        self.open = 0

    def route(self, _request) -> Route:
        with self.lock:
            self.requests += 1
        return Route(self._trickle(), 200, {"Content-Type": "application/rss+xml"})

    def _trickle(self):
        with self.lock:
            self.open += 1
        self.started.set()
        try:
            yield b'<?xml version="1.0"?><rss version="2.0"><channel><title>Slow</title>'
            while not self.release.wait(0.2):  # a byte every fifth of a second keeps the read alive
                yield b" "
            yield b"</channel></rss>"
        finally:
            with self.lock:
                self.open -= 1


class Healthy:
    """Counts the requests per feed URL, noting for each whether the slow feed was held open then."""

    def __init__(self, slow: Slowloris) -> None:
        self.slow = slow
        self.changed = threading.Condition()
        self.polls: Counter[str] = Counter()
        self.while_slow_open: Counter[str] = Counter()

    def route(self, request) -> Route:
        url = f"https://{request.host}{request.path}"
        with self.changed:
            self.polls[url] += 1
            if self.slow.open and not self.slow.release.is_set():
                self.while_slow_open[url] += 1
            self.changed.notify_all()
        return Route(EMPTY_FEED, 200, {"Content-Type": "application/rss+xml"})

    def wait_for(self, urls: list[str]) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: all(self.polls[url] for url in urls), 90), self.polls


async def _announce(sessions, receivers: list[str]) -> None:
    """One subscription per receiver, then ``EVENTS`` completed articles announced to them."""
    async with sessions() as session:
        session.add_all([Subscription(url=url, secret=signing.generate_secret(), event_types=["article.created"])
                         for url in receivers])
        await session.commit()
        articles = [Article(canonical_url=f"https://example.org/hol/{i}", title=f"Article {i}", text="Body " * 20,
                            extraction_status=ExtractionStatus.ok, language="en") for i in range(EVENTS)]
        session.add_all(articles)
        await session.flush()
        assert await session.run_sync(outbox.announce_articles, [a.id for a in articles]) == EVENTS * len(receivers)
        await session.commit()


async def test_a_slowloris_feed_and_a_stalled_receiver_hold_only_their_own_slots(server, sessions, workers, database_url):
    # Two slots for feeds, one per host: the slow host may take one, the healthy hosts share the other.
    # Two slots for deliveries, one per subscription; the first POST to the fast receiver fails (a retry).
    settings = Settings(
        database_url=database_url, extract_workers=1, poll_tick=0.1, total_timeout=60, webhook_timeout=60,
        feed_concurrency=2, host_concurrency=1, webhook_concurrency=2, webhook_endpoint_concurrency=1,
        webhook_retry_schedule=[0.2] * 3, allow_private_networks=True, host_min_gap=0, poll_spread=0,
        robots_enabled=False, stories_enabled=False, auth=False,
    )
    slow = Slowloris()
    healthy = Healthy(slow)
    for path in ("/one.xml", "/two.xml"):  # two feeds on the slow host: only one may be in flight
        server.add(path, slow.route, host=SLOW_HOST)
    for host in HEALTHY_HOSTS:
        server.add("/now.xml", healthy.route, host=host)
        server.add("/later.xml", healthy.route, host=host)
    stalled = server.hold("/stalled")
    server.post_statuses["/fast"] = [500, 200]

    slow_ids = [await subscribe(sessions, f"https://{SLOW_HOST}{path}") for path in ("/one.xml", "/two.xml")]
    due_now = [f"https://{host}/now.xml" for host in HEALTHY_HOSTS]
    due_later = [f"https://{host}/later.xml" for host in HEALTHY_HOSTS]
    async with sessions() as session:
        for url in due_now:
            await add_feed(session, url, 900)
    await make_due(sessions, *slow_ids)
    await _announce(sessions, [server.url("/stalled"), server.url("/fast")])

    stop = asyncio.Event()
    async with assemble(settings, sessions=sessions, workers=workers, deliveries=True,
                        resolver=server.resolver, verify=server.client_ssl) as service:
        poller, sender = service.ingestor, service.delivery
        tasks = [asyncio.create_task(poller.run(stop)), asyncio.create_task(sender.run(stop))]
        try:
            assert await asyncio.to_thread(slow.started.wait, 90)
            async with sessions() as session:  # subscribed while the slow feed trickles, due a moment later
                for url in due_later:
                    await add_feed(session, url, 900, delay=0.5)
            # Every healthy feed is polled when it is due, also those falling due later, while the
            # slow one trickles.
            await asyncio.to_thread(healthy.wait_for, due_now + due_later)
            # Every fast delivery (and the retry of the failed first POST) arrives while the stalled
            # receiver still holds its first POST.
            fast = await asyncio.to_thread(server.wait_for_posts, EVENTS + 1, "/fast", 90)
            assert not stalled.is_set() and slow.open == 1 and not slow.release.is_set()
            assert all(healthy.while_slow_open[url] == 1 for url in due_later), healthy.while_slow_open
            assert slow.requests == 1  # the slow host's second feed waited for the host's only slot
            assert len(server.posts_to("/stalled")) == 1  # the stalled receiver's one slot
            assert len({p.headers["webhook-id"] for p in fast}) == EVENTS  # one retry, one id per event
            # Released, the slow ones finish too: nothing was lost.
            slow.release.set()
            stalled.set()
            await asyncio.to_thread(server.wait_for_posts, EVENTS, "/stalled", 90)
        finally:
            slow.release.set()
            stalled.set()
            stop.set()
            await asyncio.gather(*tasks)

    async with sessions() as session:
        deliveries = (await session.exec(select(Delivery))).all()
    assert len(deliveries) == 2 * EVENTS and all(d.status == DeliveryStatus.succeeded for d in deliveries)
    assert sorted(d.attempts for d in deliveries) == [1] * (2 * EVENTS - 1) + [2]
