"""Webhook delivery benchmark: Newsloom's delivery worker against a bare httpx loop, same machine,
same run, same receiver, same bodies, same concurrency.

1. Throughput: 2,000 deliveries spread over 1, 10 and 100 subscriptions; deliveries per second of
   ``DeliveryWorker.deliver_due`` (claim with lease, sign, POST, book the outcome in SQLite) and of
   a plain ``httpx`` loop POSTing the same signed bodies with the same concurrency; the ratio.
   Also the CPU time of this process (every thread: the SQLite writer's too) per delivery, ours and
   the loop's: steadier than deliveries/s on a loaded machine, whose other work slows both.
2. Lag: articles announced one by one (outbox row committed, worker woken) while the worker runs;
   the time from the commit to the receiver's arrival, median and p99.

Run: ``python bench/webhooks.py`` (about a minute). Prints a Markdown table.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import httpx
import sqlalchemy as sa
from sqlmodel import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.config import Settings  # noqa: E402
from service.db import create_engine, migrate_async, session_factory  # noqa: E402
from service.models import Article, Delivery, DeliveryStatus, ExtractionStatus, Subscription, utcnow  # noqa: E402
from service.webhooks import outbox, signing  # noqa: E402
from service.webhooks.delivery import DeliveryWorker, create_webhook_client  # noqa: E402

TOTAL = 2000
CONCURRENCY = 32


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _setup(url: str, receiver: str, subscriptions: int, events: int):
    await migrate_async(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as session:
        subs = [Subscription(url=receiver, secret=signing.generate_secret(), event_types=["article.created"]) for _ in range(subscriptions)]
        session.add_all(subs)
        await session.commit()
        articles = [Article(canonical_url=f"https://example.org/{i}", title=f"Article {i}", text="Body " * 200,
                            extraction_status=ExtractionStatus.ok, language="en") for i in range(events)]
        session.add_all(articles)
        await session.flush()
        await session.run_sync(outbox.announce_articles, [a.id for a in articles])
        await session.commit()
    return engine, sessions


async def _bare_loop(receiver: str, bodies: list[bytes], secret: str) -> float:
    semaphore = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(timeout=15) as client:

        async def post(i: int, body: bytes) -> None:
            async with semaphore:
                headers = signing.headers([secret], f"msg_{i}", int(time.time()), body)
                response = await client.post(receiver, content=body, headers=headers)
                response.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(post(i, b) for i, b in enumerate(bodies)))
        return time.perf_counter() - start


class Rates(NamedTuple):
    """Deliveries per second and CPU milliseconds per delivery, ours and the bare loop's."""

    ours: float
    bare: float
    ours_cpu_ms: float
    bare_cpu_ms: float


async def throughput(receiver: str, subscriptions: int) -> Rates:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        engine, sessions = await _setup(url, receiver, subscriptions, TOTAL // subscriptions)
        async with sessions() as session:
            bodies = [d.payload.encode() for d in (await session.exec(select(Delivery))).all()]
        settings = Settings(database_url=url, webhook_concurrency=CONCURRENCY, webhook_endpoint_concurrency=CONCURRENCY,
                            allow_private_networks=True)  # the receiver is on loopback
        async with create_webhook_client(settings) as client:
            worker = DeliveryWorker(settings, sessions, client)
            start, cpu_start = time.perf_counter(), time.process_time()
            sent = await worker.deliver_due()
            ours, ours_cpu = time.perf_counter() - start, time.process_time() - cpu_start
        async with sessions() as session:  # only successful deliveries count
            succeeded = (await session.exec(
                select(sa.func.count()).select_from(Delivery).where(Delivery.status == DeliveryStatus.succeeded)
            )).one()
        if sent != len(bodies) or succeeded != len(bodies):
            raise RuntimeError(f"{subscriptions} subscriptions: {sent} attempted, {succeeded} of {len(bodies)} succeeded")
        cpu_start = time.process_time()
        baseline = await _bare_loop(receiver, bodies, signing.generate_secret())
        baseline_cpu = time.process_time() - cpu_start
        await engine.dispose()
    n = len(bodies)
    return Rates(n / ours, n / baseline, ours_cpu / n * 1000, baseline_cpu / n * 1000)


async def lag(receiver: str, port: int, count: int = 200) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/lag.db"
        engine, sessions = await _setup(url, receiver, 1, 0)
        settings = Settings(database_url=url, poll_tick=1.0, allow_private_networks=True)
        committed: dict[str, float] = {}
        # The receiver's statistics are read with an async client: a blocking read would hold up the
        # delivery worker on this loop and add to the lag measured.
        async with create_webhook_client(settings) as client, httpx.AsyncClient() as receiver_stats:
            worker = DeliveryWorker(settings, sessions, client)
            stop = asyncio.Event()
            task = asyncio.create_task(worker.run(stop))
            await receiver_stats.get(f"http://127.0.0.1:{port}/stats")  # reset
            for i in range(count):
                async with sessions() as session:
                    article = Article(canonical_url=f"https://example.org/lag/{i}", title="t", text="b",
                                      extraction_status=ExtractionStatus.ok, first_seen_at=utcnow())
                    session.add(article)
                    await session.flush()
                    await session.run_sync(outbox.announce_articles, [article.id])
                    await session.commit()
                    event_id = (await session.exec(select(Delivery.event_id).order_by(Delivery.id.desc()))).first()
                committed[event_id] = time.time()
                worker.wake()
                await asyncio.sleep(0.01)  # pacing of the synthetic load, not synchronisation
            deadline = time.time() + 30
            arrivals: dict[str, float] = {}
            while len(arrivals) < count and time.time() < deadline:
                arrivals.update(dict((await receiver_stats.get(f"http://127.0.0.1:{port}/stats")).json()))
                await asyncio.sleep(0.1)
            stop.set()
            await task
        await engine.dispose()
    lags = sorted(arrivals[k] - committed[k] for k in committed if k in arrivals)
    return statistics.median(lags) * 1000, lags[int(len(lags) * 0.99) - 1] * 1000


async def report(receiver: str, port: int) -> None:
    """Print the throughput table and the lag line (Markdown) for the receiver at ``port``."""
    print(f"Webhook delivery, {TOTAL} deliveries per row, concurrency {CONCURRENCY}, SQLite outbox\n")
    print("| subscriptions | Newsloom deliveries/s | bare httpx loop deliveries/s | ratio | CPU ms/delivery ours / bare | CPU ratio bare/ours |")
    print("|---|---|---|---|---|---|")
    for subscriptions in (1, 10, 100):
        r = await throughput(receiver, subscriptions)
        print(f"| {subscriptions} | {r.ours:.0f} | {r.bare:.0f} | {r.ours / r.bare:.2f} | {r.ours_cpu_ms:.2f} / {r.bare_cpu_ms:.2f} "
              f"| {r.bare_cpu_ms / r.ours_cpu_ms:.2f} |")
    median, p99 = await lag(receiver, port)
    print(f"\nLag from the committed outbox row to arrival (200 events, one at a time): median {median:.1f} ms, p99 {p99:.1f} ms")


def main() -> None:
    """Start bench/receiver.py, wait until it answers (up to 10 s), report, stop it."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "receiver.py"), str(port)])
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/stats")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        asyncio.run(report(f"http://127.0.0.1:{port}/hook", port))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
