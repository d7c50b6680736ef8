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
import functools
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from service import metrics
from service.config import Settings
from service.db import Writer
from service.jobs import Runner, Step
from service.models import Delivery, DeliveryStatus, Subscription, SubscriptionState, utcnow
from service.net.fetcher import create_client
from service.net.ssrf import BlockedAddress
from service.net.urls import InvalidURL, check_fetchable
from service.storage import deliveries
from service.webhooks import signing

log = logging.getLogger(__name__)

# Relative jitter applied to each retry delay: uniformly within ±20 %.
JITTER = 0.2

_fetchable = functools.lru_cache(maxsize=1024)(check_fetchable)
"""``check_fetchable`` remembered per endpoint URL (every delivery checks its target again; a URL
that fails raises each time, as failures are not cached)."""


def create_webhook_client(settings: Settings, **kwargs) -> httpx.AsyncClient:
    """The HTTP client for deliveries: the SSRF-guarded client of ``fetcher.create_client`` (every
    connection's address is checked, so a target that resolves to a refused address fails the
    delivery with the rule named), no redirects followed, ``webhook_timeout`` for every phase.
    ``kwargs`` go to ``create_client`` (tests pass a resolver)."""
    return create_client(settings, timeout=settings.webhook_timeout, **kwargs)


def decide(settings: Settings, attempt: int, failing_since: datetime | None, now: datetime, status: int | None,
           error: str | None) -> deliveries.Outcome:
    """What attempt number ``attempt`` (1 for the first) of a delivery, made at ``now`` and answered
    with HTTP ``status`` (None without an answer) and ``error`` (None for a 2xx), leads to, for a
    subscription failing since ``failing_since`` (None: it was not): see the module docstring."""
    if error is None:
        return deliveries.Outcome(DeliveryStatus.succeeded, None, None)
    if status == 410:
        return deliveries.Outcome(DeliveryStatus.dead, None, failing_since, "the endpoint answered 410 Gone")
    failing_since = failing_since or now
    schedule = settings.webhook_retry_schedule
    if (now - failing_since).total_seconds() >= settings.webhook_disable_after:
        reason = f"failing continuously since {failing_since:%Y-%m-%dT%H:%M:%SZ}: {error}"
        return deliveries.Outcome(DeliveryStatus.dead, None, failing_since, reason)
    if attempt <= len(schedule):
        delay = schedule[attempt - 1] * random.uniform(1 - JITTER, 1 + JITTER)
        return deliveries.Outcome(DeliveryStatus.pending, now + timedelta(seconds=delay), failing_since)
    return deliveries.Outcome(DeliveryStatus.failed, None, failing_since)


def _book_attempt(session: Session, settings: Settings, delivery_id: int, status: int | None, error: str | None
                  ) -> tuple[Delivery, deliveries.Outcome] | None:
    """One transaction (on the worker's ``db.Writer``): book an attempt of ``delivery_id`` with its
    outcome (``decide``); returns the delivery as booked and the outcome (None: deleted meanwhile)."""
    found = deliveries.attempted(session, delivery_id)
    if found is None:
        return None
    delivery, subscription = found
    now = utcnow()
    outcome = decide(settings, delivery.attempts + 1, subscription.failing_since, now, status, error)
    deliveries.book_attempt(session, delivery, subscription, now, status, error, outcome)
    return delivery, outcome


def _book_and_claim(
    session: Session, successes: dict[int | None, list[int]], now: datetime, owner: str, lease_seconds: float,
    claim: tuple[int, Callable[[str], int] | None] | None,
) -> tuple[list[Delivery], dict[int, Subscription | None]]:
    """One transaction (on the worker's ``db.Writer``): book ``successes`` (HTTP status -> delivery
    ids) as of ``now``, then, when ``claim`` = ``(limit, room)`` is given, claim for ``owner``."""
    if successes:
        deliveries.book_successes(session, successes, now)
    return deliveries.claim_due(session, owner, lease_seconds, *claim) if claim is not None else ([], {})


class DeliveryWorker:
    """Sends due deliveries from one process; several processes may run one each (work is leased).
    Claims and bookings are transactions of its ``db.Writer`` (on a SQLite file, one hand-off to a
    writer thread each)."""

    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.sessions = sessions
        self.client = client
        self.writer = Writer(sessions)
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
            _fetchable(url)
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
            await self.writer.run(deliveries.end, delivery.id, DeliveryStatus.dead)
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
        the next (one UPDATE per response status, one commit), or by the next claim's transaction
        (``claim``) when it starts first; each sender returns once its own delivery is committed.
        A crash before that commit leaves the delivery leased and pending, so it is sent again after
        the lease (at least once, as before). Raises what its own booking raised; the others of a
        failed batch are booked again by their senders."""
        booked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._succeeded.append((delivery.id, status, booked))
        async with self._booking:
            if not booked.done():  # else booked with an earlier batch, or by a claim
                await self._book_successes(None, booked)
        now = utcnow()
        metrics.DELIVERY_ATTEMPTS.labels("succeeded").inc()
        metrics.DELIVERY_LAG.observe(max(0.0, (now - delivery.created_at).total_seconds()))
        log.info("delivery %s (%s) attempt %d: HTTP %s", delivery.id, delivery.event_id, delivery.attempts + 1, status)

    async def _book_successes(self, claim: tuple[int, Callable[[str], int] | None] | None,
                              own: asyncio.Future[None] | None = None) -> tuple[list[Delivery], dict[int, Subscription | None]]:
        """With ``_booking`` held: book every success waiting (``_succeeded``) in one transaction,
        which also claims when ``claim`` = ``(limit, room)`` is given (``deliveries.claim_due``; its
        result is returned), and release their senders. If the transaction fails, the successes
        wait again (each sender books its own), but ``own`` (the caller's) is not put back."""
        batch, self._succeeded = self._succeeded, []
        by_status: dict[int | None, list[int]] = {}
        for delivery_id, answered, _future in batch:
            by_status.setdefault(answered, []).append(delivery_id)
        try:
            result = await self.writer.run(_book_and_claim, by_status, utcnow(), self.owner, self.settings.lease_seconds, claim)
        except BaseException:  # failed or cancelled: the others stay pending, each booked by its own sender
            self._succeeded[:0] = [entry for entry in batch if entry[2] is not own]
            raise
        for _id, _status, future in batch:
            future.set_result(None)
        return result

    async def claim(self, limit: int, room: Callable[[str], int] | None) -> tuple[list[Delivery], dict[int, Subscription | None]]:
        """Lease up to ``limit`` due deliveries (``deliveries.claim_due``) and return them with their
        subscriptions. When no booking runs, the successes waiting are booked in the same
        transaction (one commit instead of two; a claim follows every batch of finished deliveries)."""
        if self._booking.locked() or not self._succeeded:
            return await self.writer.run(_book_and_claim, {}, utcnow(), self.owner, self.settings.lease_seconds, (limit, room))
        async with self._booking:
            return await self._book_successes((limit, room))

    async def record_attempt(self, delivery: Delivery, status: int | None, error: str | None) -> None:
        """Book one attempt of ``delivery``: HTTP ``status`` (None without a response) and ``error``
        (None for success); schedule the retry, or end the delivery (disabling its subscription
        when the endpoint is gone or keeps failing: ``decide``), and release its lease."""
        booked = await self.writer.run(_book_attempt, self.settings, delivery.id, status, error)
        if booked is None:
            return
        current, outcome = booked
        if outcome.status == DeliveryStatus.succeeded:
            metrics.DELIVERY_ATTEMPTS.labels("succeeded").inc()
            metrics.DELIVERY_LAG.observe(max(0.0, (utcnow() - current.created_at).total_seconds()))
        else:
            metrics.DELIVERY_ATTEMPTS.labels("gone" if status == 410 else "failed").inc()
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
        claimed, subscriptions = await self.worker.claim(limit, room)
        self.subscriptions.update(subscriptions)
        return claimed

    async def handle(self, delivery: Delivery) -> None:
        await self.worker.deliver(delivery, self.subscriptions.get(delivery.subscription_id))

    async def failed(self, delivery: Delivery, reason: str) -> None:
        await self.worker.record_attempt(delivery, None, reason)

    async def next_due(self) -> datetime | None:
        async with self.worker.sessions() as session:
            return await deliveries.next_due(session)
