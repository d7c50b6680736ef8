"""``/v1/subscriptions``: webhook subscriptions, their secrets and their deliveries."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from service.api.deps import DeliveryDep, SessionDep
from service.api.pagination import decode_id_cursor, encode_id_cursor, query_digest
from service.api.problems import Problem
from service.api.schemas import (
    MAX_ID,
    DeliveryPublic,
    Page,
    SubscriptionCreate,
    SubscriptionPublic,
    SubscriptionSecret,
    SubscriptionUpdate,
)
from service.api.security import sees_credentials
from service.models import DeliveryStatus, Subscription, SubscriptionState, utcnow
from service.net.ssrf import check_url
from service.net.urls import check_fetchable
from service.storage import deliveries, feeds, subscriptions
from service.webhooks import outbox, signing
from service.webhooks.matching import SubscriptionFilter

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])


async def _target(url: object, settings) -> str:
    """The target URL if the SSRF guard accepts it (scheme, and every address its host resolves
    to); else a 422 problem naming the rule. Each delivery is checked again when it connects."""
    target = check_fetchable(str(url))  # InvalidURL and BlockedAddress (below) answer as 422s
    try:
        await check_url(target, allow_private=settings.allow_private_networks)
    except OSError as exc:
        raise Problem(422, f"cannot resolve the host of {target}: {exc}") from exc
    return target


async def _filter(session, body_filter: SubscriptionFilter) -> dict:
    """The filter as stored, if every feed it names exists; else a 422 problem naming the field
    (``filter.feeds``) and each unknown id in ``errors``."""
    unknown = await feeds.missing(session, body_filter.feeds)
    if unknown:
        errors = [{"location": ["body", "filter", "feeds", body_filter.feeds.index(i)], "message": f"no feed with id {i}",
                   "type": "unknown_feed"} for i in unknown]
        raise Problem(422, f"filter.feeds: no feed with id {', '.join(map(str, unknown))}", errors=errors)
    return body_filter.model_dump()


async def _get(session, subscription_id: int) -> Subscription:
    subscription = await subscriptions.get(session, subscription_id)
    if subscription is None:
        raise Problem(404, f"no subscription with id {subscription_id}")
    return subscription


@router.post("", status_code=201, response_model=SubscriptionSecret)
async def create_subscription(
    body: SubscriptionCreate, request: Request, session: SessionDep, response: Response
) -> SubscriptionSecret:
    """Subscribe an endpoint. The answer holds the signing secret: it is not shown again."""
    subscription = await subscriptions.add(session, Subscription(
        url=await _target(body.url, request.app.state.settings), description=body.description, secret=signing.generate_secret(),
        event_types=sorted(set(body.event_types)), filter=await _filter(session, body.filter),
    ))
    response.headers["Location"] = f"/v1/subscriptions/{subscription.id}"
    return SubscriptionSecret(**SubscriptionPublic.from_row(subscription).model_dump(), secret=subscription.secret)


@router.get("", response_model=Page[SubscriptionPublic])
async def list_subscriptions(request: Request, session: SessionDep) -> Page[SubscriptionPublic]:
    """Every subscription, oldest first (a password in an endpoint URL shown as ``***`` to ``read`` keys)."""
    show = sees_credentials(request)
    return Page(items=[SubscriptionPublic.from_row(s, credentials=show) for s in await subscriptions.every(session)], next_cursor=None)


@router.get("/{subscription_id}", response_model=SubscriptionPublic)
async def get_subscription(
    subscription_id: Annotated[int, Path(ge=1, le=MAX_ID)], request: Request, session: SessionDep
) -> SubscriptionPublic:
    """One subscription, with its state and why it was disabled, if it was (a password in its URL
    shown as ``***`` to ``read`` keys)."""
    subscription = await _get(session, subscription_id)
    return SubscriptionPublic.from_row(subscription, credentials=sees_credentials(request))


@router.patch("/{subscription_id}", response_model=SubscriptionPublic)
async def update_subscription(
    subscription_id: Annotated[int, Path(ge=1, le=MAX_ID)], body: SubscriptionUpdate, request: Request, session: SessionDep
) -> SubscriptionPublic:
    """Change the target, events, filter, description or state."""
    subscription = await _get(session, subscription_id)
    if body.url is not None:
        subscription.url = await _target(body.url, request.app.state.settings)
    if body.event_types is not None:
        subscription.event_types = sorted(set(body.event_types))
    if body.filter is not None:
        subscription.filter = await _filter(session, body.filter)
    if body.description is not None:
        subscription.description = body.description
    if body.state == "active" and subscription.state != SubscriptionState.active:
        subscriptions.enable(subscription)
    elif body.state == "disabled" and subscription.state != SubscriptionState.disabled:
        await session.run_sync(subscriptions.disable, subscription, "disabled through the API")
    return SubscriptionPublic.from_row(await subscriptions.save(session, subscription))


@router.delete("/{subscription_id}", status_code=204)
async def delete_subscription(subscription_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep) -> Response:
    """Remove the subscription and its deliveries."""
    await subscriptions.remove(session, await _get(session, subscription_id))
    return Response(status_code=204)


@router.post("/{subscription_id}/rotate-secret", response_model=SubscriptionSecret)
async def rotate_secret(subscription_id: Annotated[int, Path(ge=1, le=MAX_ID)], request: Request, session: SessionDep) -> SubscriptionSecret:
    """Issue a new secret. Deliveries are signed with both the new and the previous secret for
    ``NEWSLOOM_WEBHOOK_SECRET_OVERLAP`` seconds, so receivers can switch without losing events."""
    subscription = await _get(session, subscription_id)
    overlap = request.app.state.settings.webhook_secret_overlap
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_expires_at = utcnow() + timedelta(seconds=overlap)
    subscription.secret = signing.generate_secret()
    subscription = await subscriptions.save(session, subscription)
    return SubscriptionSecret(**SubscriptionPublic.from_row(subscription).model_dump(), secret=subscription.secret)


@router.post("/{subscription_id}/test", status_code=202, response_model=DeliveryPublic)
async def send_test(subscription_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep, delivery: DeliveryDep) -> DeliveryPublic:
    """Queue a ``ping`` event for the subscription; follow it in its deliveries."""
    subscription = await _get(session, subscription_id)
    if subscription.state != SubscriptionState.active:
        raise Problem(409, f"subscription {subscription_id} is disabled: {subscription.disabled_reason}")
    event_id = await session.run_sync(outbox.enqueue_ping, subscription)
    await session.commit()
    if delivery is not None:
        delivery.wake()
    return DeliveryPublic.from_row(await deliveries.by_event_id(session, event_id))


@router.get("/{subscription_id}/deliveries", response_model=Page[DeliveryPublic])
async def list_deliveries(
    subscription_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: SessionDep,
    status: Annotated[DeliveryStatus | None, Query(description="Only deliveries in this status.")] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=512, description="next_cursor of the previous page of this query "
                                        "(same subscription and status; the limit may change)")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[DeliveryPublic]:
    """The subscription's deliveries, newest first."""
    await _get(session, subscription_id)
    query = query_digest(subscription=subscription_id, status=status and status.value)
    before = decode_id_cursor("deliveries", query, cursor) if cursor else None
    rows = await deliveries.of_subscription(session, subscription_id, status, before, limit + 1)
    next_cursor = encode_id_cursor("deliveries", query, rows[limit - 1].id) if len(rows) > limit else None
    return Page(items=[DeliveryPublic.from_row(d) for d in rows[:limit]], next_cursor=next_cursor)


@router.post("/{subscription_id}/deliveries/{delivery_id}/retry", status_code=202, response_model=DeliveryPublic)
async def retry_delivery(subscription_id: Annotated[int, Path(ge=1, le=MAX_ID)], delivery_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep, delivery: DeliveryDep) -> DeliveryPublic:
    """Send a delivery again now, with the same ``webhook-id`` (its attempt count goes on)."""
    subscription = await _get(session, subscription_id)
    row = await deliveries.get(session, delivery_id)
    if row is None or row.subscription_id != subscription_id:
        raise Problem(404, f"no delivery {delivery_id} in subscription {subscription_id}")
    if subscription.state != SubscriptionState.active:
        raise Problem(409, f"subscription {subscription_id} is disabled: {subscription.disabled_reason}; re-enable it first")
    if row.status == DeliveryStatus.pending and row.lease_owner is not None:
        raise Problem(409, f"delivery {delivery_id} is being sent right now")
    row = await deliveries.retry_now(session, row)
    if delivery is not None:
        delivery.wake()
    return DeliveryPublic.from_row(row)
