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
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from service import metrics, owners
from service.config import Settings
from service.db import Writer
from service.jobs import Runner, Step
from service.models import Delivery, DeliveryStatus, SubscriptionState, utcnow
from service.net.fetcher import create_client
from service.net.ssrf import BlockedAddress
from service.net.urls import InvalidURL, check_fetchable
from service.storage import deliveries
from service.storage.deliveries import ClaimedDelivery
from service.storage.subscriptions import Endpoint
from service.webhooks import signing

log = logging.getLogger(__name__)

# Relative jitter applied to each retry delay: uniformly within ±20 %.
JITTER = 0.2


@functools.lru_cache(maxsize=1024)
def _target(url: str) -> httpx.URL:
    """The endpoint ``url`` checked (``check_fetchable``: raises ``InvalidURL``) and parsed, once per
    URL: every delivery posts to its subscription's URL again. Failures are not cached (a URL that
    fails raises each time)."""
    check_fetchable(url)
    return httpx.URL(url)


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


_Claimed = tuple[list[ClaimedDelivery], dict[int, Endpoint | None]]
"""Claimed deliveries, in claim order, and the endpoints of their subscriptions by id (None: deleted)."""


def _book_and_claim(
    session: Session, successes: dict[int | None, list[int]], now: datetime, owner: str, lease_seconds: float,
    claim: tuple[int, Callable[[str], int] | None] | None,
) -> _Claimed:
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
        self.owner = owners.lease_owner()
        self._due = asyncio.Event()
        self._stop: asyncio.Event | None = None  # set by ``run``: once set, no new delivery is claimed
        # The work waiting for the next transaction (group commit): successes to book, with the
        # future each sender awaits, and the runners' claims (limit, room, future); one claim a transaction.
        self._succeeded: list[tuple[int, int | None, asyncio.Future[None]]] = []
        self._claims: list[tuple[int, Callable[[str], int] | None, asyncio.Future[_Claimed]]] = []
        self._asked = asyncio.Event()  # set while a claim waits
        self._runners = 0  # runners sending (``deliver_due``, ``run``): a finished sender's slot is claimed again
        self._committer: asyncio.Task[None] | None = None  # runs those transactions while work waits

    def wake(self) -> None:
        """Look for due deliveries now (called after an event is written in this process)."""
        self._due.set()

    async def deliver_due(self) -> int:
        """Send every due delivery (``DeliveryStep``) until none is due and none is in flight;
        returns how many were attempted."""
        self._runners += 1
        try:
            return len(await Runner(DeliveryStep(self), self.sessions, self.settings.lease_seconds).drain(stop=self._stop))
        finally:
            self._runners -= 1

    async def _post(self, url: str, delivery: ClaimedDelivery, secrets_: list[str]) -> tuple[int | None, str | None]:
        """POST one attempt; returns (HTTP status or None, error text or None)."""
        body = delivery.payload.encode()
        headers = signing.headers(secrets_, delivery.event_id, int(time.time()), body)
        headers["Content-Type"] = "application/json"
        try:
            async with self.client.stream("POST", _target(url), content=body, headers=headers) as response:
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

    async def deliver(self, delivery: ClaimedDelivery, subscription: Endpoint | None) -> None:
        """Send one claimed delivery to the endpoint of its ``subscription`` (as read when the
        delivery was claimed; None: deleted since) and record the outcome (see the module docstring)."""
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

    async def _record_success(self, delivery: ClaimedDelivery, status: int | None) -> None:
        """``record_attempt`` for a success to a subscription that was not failing, booked by group
        commit (``_commit_waiting``): the successes that arrive while one transaction runs are
        booked together by the next (one UPDATE per response status, one commit), with the runner's
        next claim when it asked meanwhile. Each sender awaits its own future, resolved once its
        delivery is committed, so the senders of a batch return in the same turn of the loop. A
        crash before that commit leaves the delivery leased and pending, so it is sent again after
        the lease (at least once, as before). If the batch's transaction fails, the sender books its
        success alone (``record_attempt``) and raises what that raises."""
        booked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._succeeded.append((delivery.id, status, booked))
        self._commit_soon()
        try:
            await booked
        except Exception:
            log.warning("delivery %s: its group commit failed; booking it alone", delivery.id, exc_info=True)
            await self.record_attempt(delivery, status, None)
            return
        now = utcnow()
        metrics.DELIVERY_ATTEMPTS.labels("succeeded").inc()
        metrics.DELIVERY_LAG.observe(max(0.0, (now - delivery.created_at).total_seconds()))
        log.info("delivery %s (%s) attempt %d: HTTP %s", delivery.id, delivery.event_id, delivery.attempts + 1, status)

    async def claim(self, limit: int, room: Callable[[str], int] | None) -> _Claimed:
        """Lease up to ``limit`` due deliveries (``deliveries.claim_due``) and return them with their
        subscriptions, in the next group-commit transaction: the successes waiting are booked in
        the same one (one commit instead of two). One claim a transaction, in the order asked."""
        claimed: asyncio.Future[_Claimed] = asyncio.get_running_loop().create_future()
        self._claims.append((limit, room, claimed))
        self._asked.set()
        self._commit_soon()
        return await claimed

    def _commit_soon(self) -> None:
        """Start ``_commit_waiting`` unless it runs (it then takes the new work in its next transaction)."""
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_waiting(), name="delivery group commit")

    async def _commit_waiting(self) -> None:
        """While successes or claims wait: take the successes and one claim and run them as one
        transaction on the writer (``_book_and_claim``), then resolve their futures: the senders'
        with None once committed, the claim's with its rows; each with the error if the
        transaction failed or was cancelled. When the transaction released senders and a runner
        sends, the successes that arrived meanwhile wait for that runner's claim, which follows
        (the senders' slots are free) unless it stops: one transaction for both."""
        try:
            while self._succeeded or self._claims:
                batch, self._succeeded = self._succeeded, []
                by_status: dict[int | None, list[int]] = {}
                for delivery_id, answered, _future in batch:
                    by_status.setdefault(answered, []).append(delivery_id)
                claim = self._claims.pop(0) if self._claims else None
                if not self._claims:
                    self._asked.clear()
                futures: list[asyncio.Future] = [future for _id, _status, future in batch]
                if claim is not None:
                    futures.append(claim[2])
                try:
                    result = await self.writer.run(_book_and_claim, by_status, utcnow(), self.owner, self.settings.lease_seconds,
                                                   claim[:2] if claim is not None else None)
                except BaseException as exc:
                    error = exc if isinstance(exc, Exception) else RuntimeError("the group-commit transaction was cancelled")
                    for future in futures:
                        if not future.done():  # else its awaiter was cancelled
                            future.set_exception(error)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                released = [future for future in futures[: len(batch)] if not future.done()]  # else its sender was cancelled
                for future in released:
                    future.set_result(None)
                if claim is not None and not claim[2].done():
                    claim[2].set_result(result)
                if released and self._succeeded and not self._claims and self._runners:
                    await self._claim_or_stop()
        finally:
            self._committer = None

    async def _claim_or_stop(self) -> None:
        """Wait until a runner claims, or ``stop`` is set (a stopping runner claims nothing more)."""
        if self._stop is not None and self._stop.is_set():
            return
        waiters = {asyncio.ensure_future(self._asked.wait())}
        if self._stop is not None:
            waiters.add(asyncio.ensure_future(self._stop.wait()))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def record_attempt(self, delivery: ClaimedDelivery, status: int | None, error: str | None) -> None:
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
        self._runners += 1
        try:
            await Runner(DeliveryStep(self), self.sessions, self.settings.lease_seconds).run(stop, self._due, self.settings.poll_tick)
        finally:
            self._runners -= 1


class DeliveryStep(Step[ClaimedDelivery, None]):
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
        self.subscriptions: dict[int, Endpoint | None] = {}
        """The endpoints of the claimed deliveries' subscriptions (None: deleted), read with each claim (one query per claim)."""

    def key(self, delivery: ClaimedDelivery) -> str:
        return str(delivery.subscription_id)

    async def claim(self, limit: int, room: Callable[[str], int] | None) -> list[ClaimedDelivery]:
        claimed, subscriptions = await self.worker.claim(limit, room)
        self.subscriptions.update(subscriptions)
        return claimed

    async def handle(self, delivery: ClaimedDelivery) -> None:
        await self.worker.deliver(delivery, self.subscriptions.get(delivery.subscription_id))

    async def failed(self, delivery: ClaimedDelivery, reason: str) -> None:
        await self.worker.record_attempt(delivery, None, reason)

    async def next_due(self) -> datetime | None:
        async with self.worker.sessions() as session:
            return await deliveries.next_due(session)
