"""The delivery worker: claims due outbox rows with a lease and POSTs them, signed, to their
subscription's endpoint; retries failures on a schedule; disables endpoints that are gone or keep
failing.

Policy (documented in the README):
- Any 2xx is success. Anything else — another status, a timeout, a refused connection, a redirect
  (redirects are not followed) — is a failure.
- Retries follow Svix's published schedule (after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h:
  eight attempts over about 27.6 hours; ``NEWSLOOM_WEBHOOK_RETRY_SCHEDULE``), each delay with
  ±20 % jitter. Stripe retries for up to three days with its own backoff; we follow Svix because
  its schedule is published exactly. After the last attempt the delivery is ``failed``.
- Every attempt of one delivery carries the same ``webhook-id``.
- 410 Gone disables the subscription at once. An endpoint failing continuously for
  ``NEWSLOOM_WEBHOOK_DISABLE_AFTER`` seconds is disabled too. Its pending deliveries become
  ``dead`` (kept, and retryable through the API after re-enabling).
- At most ``NEWSLOOM_WEBHOOK_ENDPOINT_CONCURRENCY`` deliveries are in flight per subscription, and a
  receiver's response body is read only up to ``NEWSLOOM_WEBHOOK_MAX_RESPONSE_BYTES``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service import metrics
from service.config import Settings
from service.jobs import Runner, Step
from service.models import Delivery, DeliveryStatus, Subscription, SubscriptionState, utcnow
from service.net.fetcher import create_client
from service.net.ssrf import BlockedAddress
from service.net.urls import InvalidURL, check_fetchable
from service.storage import leases
from service.webhooks import signing

log = logging.getLogger(__name__)

# Relative jitter applied to each retry delay: uniformly within ±20 %.
JITTER = 0.2


def create_webhook_client(settings: Settings, **kwargs) -> httpx.AsyncClient:
    """The HTTP client for deliveries: the SSRF-guarded client of ``fetcher.create_client`` (every
    connection's address is checked, so a target that resolves to a refused address fails the
    delivery with the rule named), no redirects followed, ``webhook_timeout`` for every phase.
    ``kwargs`` go to ``create_client`` (tests pass a resolver)."""
    return create_client(settings, timeout=settings.webhook_timeout, **kwargs)


async def disable_subscription(session: AsyncSession, subscription: Subscription, reason: str) -> None:
    """Disable ``subscription`` with ``reason`` and mark its pending deliveries ``dead``. Does not commit."""
    subscription.state = SubscriptionState.disabled
    subscription.disabled_reason = reason
    subscription.updated_at = utcnow()
    await session.exec(
        sa.update(Delivery)
        .where(col(Delivery.subscription_id) == subscription.id, col(Delivery.status) == DeliveryStatus.pending)
        .values(status=DeliveryStatus.dead, next_attempt_at=None, lease_owner=None, lease_until=None)
    )


class DeliveryWorker:
    """Sends due deliveries from one process; several processes may run one each (work is leased)."""

    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.sessions = sessions
        self.client = client
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._due = asyncio.Event()
        self._stop: asyncio.Event | None = None  # set by ``run``: once set, no new delivery is claimed
        # Successes waiting to be booked, with the future each sender awaits (group commit).
        self._succeeded: list[tuple[int, int | None, asyncio.Future[None]]] = []
        self._booking = asyncio.Lock()

    def wake(self) -> None:
        """Look for due deliveries now (called after an event is written in this process)."""
        self._due.set()

    async def deliver_due(self) -> int:
        """Send every due delivery (``DeliveryStep``) until none is due and none is in flight;
        returns how many were attempted."""
        return len(await Runner(DeliveryStep(self), self.sessions, self.settings.lease_seconds).drain(stop=self._stop))

    async def _post(self, url: str, delivery: Delivery, secrets_: list[str]) -> tuple[int | None, str | None]:
        """POST one attempt; returns (HTTP status or None, error text or None)."""
        body = delivery.payload.encode()
        headers = signing.headers(secrets_, delivery.event_id, int(time.time()), body)
        headers["Content-Type"] = "application/json"
        try:
            check_fetchable(url)
            async with self.client.stream("POST", url, content=body, headers=headers) as response:
                received = b""
                async for chunk in response.aiter_raw():
                    received += chunk
                    if len(received) >= self.settings.webhook_max_response_bytes:
                        break
                received = received[: self.settings.webhook_max_response_bytes]
                if 200 <= response.status_code < 300:
                    return response.status_code, None
                detail = received.decode("utf-8", "replace").strip()
                return response.status_code, f"HTTP {response.status_code}" + (f": {detail}" if detail else "")
        except InvalidURL as exc:
            return None, str(exc)
        except BlockedAddress as exc:
            return None, f"refused by the SSRF guard ({exc.rule}): {exc}"
        except httpx.TimeoutException:
            return None, f"no response within {self.settings.webhook_timeout:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except Exception as exc:  # counted as a failed attempt, so it is retried and ends
            log.exception("delivery %s: unexpected error", delivery.id)
            return None, f"internal error: {type(exc).__name__}: {exc}"

    async def deliver(self, delivery: Delivery, subscription: Subscription | None) -> None:
        """Send one claimed delivery to ``subscription`` (as read when the delivery was claimed;
        None: deleted since) and record the outcome (see the module docstring)."""
        if subscription is None:
            return
        if subscription.state != SubscriptionState.active:
            async with self.sessions() as session:
                current = await session.get(Delivery, delivery.id)
                if current is not None:  # else deleted with its subscription meanwhile
                    current.status, current.next_attempt_at = DeliveryStatus.dead, None
                    leases.release(current)
                    await session.commit()
            return
        now = utcnow()
        secrets_ = [subscription.secret]
        if subscription.previous_secret and subscription.previous_secret_expires_at and subscription.previous_secret_expires_at > now:
            secrets_.append(subscription.previous_secret)
        status, error = await self._post(subscription.url, delivery, secrets_)
        if error is None and subscription.failing_since is None:
            await self._record_success(delivery, status)
        else:
            await self.record_attempt(delivery, status, error)

    async def _record_success(self, delivery: Delivery, status: int | None) -> None:
        """``record_attempt`` for a success to a subscription that was not failing, booked by group
        commit: the successes that arrive while one booking transaction runs are booked together by
        the next (one UPDATE per response status, one commit), and each sender returns once its own
        delivery is committed. A crash before that commit leaves the delivery leased and pending, so
        it is sent again after the lease (at least once, as before). Raises what its own booking
        raised; the others of a failed batch are booked again by their senders."""
        booked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._succeeded.append((delivery.id, status, booked))
        async with self._booking:
            if not booked.done():  # else an earlier holder of the lock booked it with its batch
                batch, self._succeeded = self._succeeded, []
                try:
                    await self._book_successes(batch)
                except BaseException:  # failed or cancelled: the others stay pending, each booked by its own sender
                    self._succeeded[:0] = [entry for entry in batch if entry[2] is not booked]
                    raise
                for _id, _status, future in batch:
                    future.set_result(None)
        now = utcnow()
        metrics.DELIVERY_ATTEMPTS.labels("succeeded").inc()
        metrics.DELIVERY_LAG.observe(max(0.0, (now - delivery.created_at).total_seconds()))
        log.info("delivery %s (%s) attempt %d: HTTP %s", delivery.id, delivery.event_id, delivery.attempts + 1, status)

    async def _book_successes(self, batch: list[tuple[int, int | None, asyncio.Future[None]]]) -> None:
        """One transaction: the deliveries of ``batch`` (id, HTTP status) succeeded now."""
        now = utcnow()
        by_status: dict[int | None, list[int]] = {}
        for delivery_id, status, _future in batch:
            by_status.setdefault(status, []).append(delivery_id)
        async with self.sessions() as session:
            for status, ids in by_status.items():
                await session.exec(
                    sa.update(Delivery).where(col(Delivery.id).in_(ids)).values(
                        attempts=Delivery.attempts + 1, last_attempt_at=now, last_response_status=status, last_error=None,
                        status=DeliveryStatus.succeeded, delivered_at=now, next_attempt_at=None, lease_owner=None,
                        lease_until=None,
                    )
                )
            await session.commit()

    async def record_attempt(self, delivery: Delivery, status: int | None, error: str | None) -> None:
        """Book one attempt of ``delivery``: HTTP ``status`` (None without a response) and ``error``
        (None for success); schedule the retry, or end the delivery, and release its lease."""
        async with self.sessions() as session:
            current = await session.get(Delivery, delivery.id)
            subscription = await session.get(Subscription, delivery.subscription_id)
            if current is None or subscription is None:
                return
            now = utcnow()
            current.attempts += 1
            current.last_attempt_at = now
            current.last_response_status = status
            current.last_error = error
            leases.release(current)
            if error is None:
                current.status = DeliveryStatus.succeeded
                current.delivered_at = now
                metrics.DELIVERY_ATTEMPTS.labels("succeeded").inc()
                metrics.DELIVERY_LAG.observe(max(0.0, (now - current.created_at).total_seconds()))
                current.next_attempt_at = None
                subscription.failing_since = None
            elif status == 410:
                metrics.DELIVERY_ATTEMPTS.labels("gone").inc()
                current.status, current.next_attempt_at = DeliveryStatus.dead, None
                await disable_subscription(session, subscription, "the endpoint answered 410 Gone")
            else:
                metrics.DELIVERY_ATTEMPTS.labels("failed").inc()
                subscription.failing_since = subscription.failing_since or now
                failing_for = (now - subscription.failing_since).total_seconds()
                schedule = self.settings.webhook_retry_schedule
                if failing_for >= self.settings.webhook_disable_after:
                    current.status, current.next_attempt_at = DeliveryStatus.dead, None
                    await disable_subscription(
                        session, subscription, f"failing continuously since {subscription.failing_since:%Y-%m-%dT%H:%M:%SZ}: {error}"
                    )
                elif current.attempts <= len(schedule):
                    delay = schedule[current.attempts - 1] * random.uniform(1 - JITTER, 1 + JITTER)
                    current.next_attempt_at = now + timedelta(seconds=delay)
                else:
                    current.status = DeliveryStatus.failed
                    current.next_attempt_at = None
            await session.commit()
        log.info("delivery %s (%s) attempt %d: %s", delivery.id, delivery.event_id, current.attempts, error or f"HTTP {status}")

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; once it is, no new delivery is claimed. A retry is
        claimed as soon as it falls due (the runner waits for the earliest ``next_attempt_at``)."""
        self._stop = stop
        await Runner(DeliveryStep(self), self.sessions, self.settings.lease_seconds).run(stop, self._due, self.settings.poll_tick)


class DeliveryStep(Step[Delivery, None]):
    """Sending due deliveries (``DeliveryWorker.deliver``): ``webhook_concurrency`` in flight, at
    most ``webhook_endpoint_concurrency`` to one subscription (a slow receiver holds only its own
    slots), each within the runner's deadline; one that raised or overran counts as a failed attempt, so
    it follows the retry schedule and ends."""

    name = "delivery"
    model = Delivery

    def __init__(self, worker: DeliveryWorker) -> None:
        s = worker.settings
        self.worker, self.owner = worker, worker.owner
        self.concurrency, self.per_key = s.webhook_concurrency, s.webhook_endpoint_concurrency
        self.subscriptions: dict[int, Subscription | None] = {}
        """The subscriptions of the claimed deliveries (None: deleted), read with each claim (one query per claim)."""

    def key(self, delivery: Delivery) -> str:
        return str(delivery.subscription_id)

    async def claim(self, limit: int, room: Callable[[str], int] | None) -> list[Delivery]:
        due = [Delivery.status == DeliveryStatus.pending, col(Delivery.next_attempt_at) <= utcnow()]
        order = [col(Delivery.next_attempt_at), col(Delivery.id)]
        async with self.worker.sessions() as session:
            claimed = await leases.claim(session, Delivery, due, order, self.owner, self.worker.settings.lease_seconds,
                                         limit, spread_by=(Delivery.subscription_id, str), room=room)
            wanted = {d.subscription_id for d in claimed}
            if wanted:
                found = {sub.id: sub for sub in await session.exec(select(Subscription).where(col(Subscription.id).in_(wanted)))}
                self.subscriptions.update({sub_id: found.get(sub_id) for sub_id in wanted})
        return claimed

    async def handle(self, delivery: Delivery) -> None:
        await self.worker.deliver(delivery, self.subscriptions.get(delivery.subscription_id))

    async def failed(self, delivery: Delivery, reason: str) -> None:
        await self.worker.record_attempt(delivery, None, reason)

    async def next_due(self) -> datetime | None:
        async with self.worker.sessions() as session:
            return await leases.next_due(session, Delivery, [Delivery.status == DeliveryStatus.pending], Delivery.next_attempt_at)
