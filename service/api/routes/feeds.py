"""``/v1/feeds``: subscribe, list, inspect and remove feeds."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.encoders import jsonable_encoder

from service.api.deps import PollerDep, SessionDep
from service.api.problems import Problem
from service.api.schemas import FeedCreate, FeedPublic, Page
from service.feeds import add_feed, feed_rows
from service.ingest.urls import InvalidURL
from service.models import Feed

router = APIRouter(prefix="/v1/feeds", tags=["feeds"])


def _public(feed: Feed, outlet: str | None, article_count: int) -> FeedPublic:
    return FeedPublic.model_validate(
        {**feed.model_dump(exclude={"state"}), "state": str(feed.state), "outlet": outlet, "article_count": article_count}
    )


async def _one(session, feed_id: int) -> FeedPublic:
    rows = await feed_rows(session, feed_id)
    if not rows:
        raise Problem(404, f"no feed with id {feed_id}")
    return _public(*rows[0])


@router.post(
    "",
    status_code=201,
    response_model=FeedPublic,
    responses={409: {"description": "Already subscribed; the problem document's `feed` member is the existing feed."}},
)
async def create_feed(body: FeedCreate, request: Request, response: Response, session: SessionDep, poller: PollerDep) -> FeedPublic:
    """Subscribe to a feed. It is due at once: its first poll starts within seconds."""
    try:
        feed, created = await add_feed(session, str(body.url), request.app.state.settings.poll_interval)
    except InvalidURL as exc:
        raise Problem(422, str(exc)) from exc
    public = await _one(session, feed.id)
    location = f"/v1/feeds/{feed.id}"
    if not created:
        raise Problem(409, f"already subscribed to {feed.url}", headers={"Location": location}, feed=jsonable_encoder(public))
    if poller is not None:
        poller.wake()
    response.headers["Location"] = location
    return public


@router.get("", response_model=Page[FeedPublic])
async def list_feeds(session: SessionDep) -> Page[FeedPublic]:
    """Every subscribed feed, oldest subscription first (one page: feeds number in the thousands at most)."""
    return Page(items=[_public(*row) for row in await feed_rows(session)], next_cursor=None)


@router.get("/{feed_id}", response_model=FeedPublic)
async def get_feed(feed_id: int, session: SessionDep) -> FeedPublic:
    """One feed with its state, last status, last error, next poll time and article count."""
    return await _one(session, feed_id)


@router.delete("/{feed_id}", status_code=204)
async def delete_feed(feed_id: int, session: SessionDep) -> Response:
    """Unsubscribe. Articles already stored stay; they no longer list this feed."""
    feed = await session.get(Feed, feed_id)
    if feed is None:
        raise Problem(404, f"no feed with id {feed_id}")
    await session.delete(feed)
    await session.commit()
    return Response(status_code=204)
