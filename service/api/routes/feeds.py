"""``/v1/feeds``: subscribe, list, inspect and remove feeds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.encoders import jsonable_encoder

from service.api.deps import PollerDep, SessionDep
from service.api.problems import Problem
from service.api.schemas import MAX_ID, FeedCreate, FeedPublic, ImportReport, Page
from service.feeds import SubscribeError, add_feed, feed_rows, subscribe
from service.ingest.opml import OPMLError, OPMLFeed, parse_opml, write_opml
from service.ingest.schedule import first_poll_offset
from service.ingest.ssrf import BlockedAddress, check_scheme, refused_rule
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
    """Subscribe to a feed, or to the feed a site's page links with ``<link rel="alternate">``.

    The URL is checked by the SSRF guard (422 naming the rule for loopback, private, link-local,
    metadata addresses and non-http(s) schemes), fetched once, and that document is the feed's
    first poll. A page that links no feed is a 422 saying so."""
    try:
        feed, created = await subscribe(session, request.app.state.ingestor, str(body.url))
    except SubscribeError as exc:
        raise Problem(422, str(exc)) from exc
    public = await _one(session, feed.id)
    location = f"/v1/feeds/{feed.id}"
    if not created:
        raise Problem(409, f"already subscribed to {feed.url}", headers={"Location": location}, feed=jsonable_encoder(public))
    if poller is not None:
        poller.wake()
    response.headers["Location"] = location
    return public


@router.post("/import", response_model=ImportReport)
async def import_feeds(request: Request, session: SessionDep, poller: PollerDep) -> ImportReport:
    """Subscribe to every feed of an OPML document (the request body), keeping titles and
    categories. Feeds are not fetched now: their first polls are spread over ``poll_spread``
    seconds. URLs with a refused scheme or a literal refused address are skipped and listed."""
    settings = request.app.state.settings
    try:
        outlines = parse_opml(await request.body())
    except OPMLError as exc:
        raise Problem(422, str(exc)) from exc
    report = ImportReport(added=0, existing=0, refused=[])
    for outline in outlines:
        reason = _refusal(outline.url, settings.allow_private_networks)
        if reason:
            report.refused.append(f"{outline.url}: {reason}")
            continue
        _feed, created = await add_feed(session, outline.url, settings.poll_interval, title=outline.title,
                                        category=outline.category, delay=first_poll_offset(settings))
        if created:
            report.added += 1
        else:
            report.existing += 1
    if poller is not None:
        poller.wake()
    return report


def _refusal(url: str, allow_private: bool) -> str | None:
    from ipaddress import ip_address
    from urllib.parse import urlsplit

    try:
        check_scheme(url)
        if allow_private:
            return None
        host = (urlsplit(url).hostname or "").strip("[]")
        try:
            rule = refused_rule(ip_address(host))
        except ValueError:
            return None  # a name: judged on its resolved address at every connection
        return f"address is {rule} (SSRF guard)" if rule else None
    except BlockedAddress as exc:
        return f"{exc} [rule: {exc.rule}]"


@router.get("/export", response_class=Response, responses={200: {"content": {"text/x-opml": {}}}})
async def export_feeds(session: SessionDep) -> Response:
    """Every subscription as an OPML 2.0 document, with titles, site URLs and categories."""
    rows = await feed_rows(session)
    document = write_opml([OPMLFeed(f.url, f.title, f.category, f.site_url) for f, _o, _n in rows])
    return Response(document, media_type="text/x-opml; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="newsloom.opml"'})


@router.get("", response_model=Page[FeedPublic])
async def list_feeds(session: SessionDep) -> Page[FeedPublic]:
    """Every subscribed feed, oldest subscription first (one page: feeds number in the thousands at most)."""
    return Page(items=[_public(*row) for row in await feed_rows(session)], next_cursor=None)


@router.get("/{feed_id}", response_model=FeedPublic)
async def get_feed(feed_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep) -> FeedPublic:
    """One feed with its state, last status, last error, next poll time and article count."""
    return await _one(session, feed_id)


@router.delete("/{feed_id}", status_code=204)
async def delete_feed(feed_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep) -> Response:
    """Unsubscribe. Articles already stored stay; they no longer list this feed."""
    feed = await session.get(Feed, feed_id)
    if feed is None:
        raise Problem(404, f"no feed with id {feed_id}")
    await session.delete(feed)
    await session.commit()
    return Response(status_code=204)
