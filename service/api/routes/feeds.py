"""``/v1/feeds``: subscribe, list, inspect, change, refresh and remove feeds."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.encoders import jsonable_encoder

from service.api.deps import PollerDep, SessionDep
from service.api.problems import Problem
from service.api.schemas import MAX_ID, FeedCreate, FeedPublic, FeedUpdate, ImportedOutline, ImportReport, Page
from service.api.security import sees_credentials
from service.feeds import import_outlines, subscribe
from service.ingest.feeds.opml import OPMLFeed, parse_opml, write_opml
from service.models import Feed, FeedState, utcnow
from service.net.urls import redact_password
from service.storage import feeds

router = APIRouter(prefix="/v1/feeds", tags=["feeds"])


def _public(feed: Feed, outlet: str | None, article_count: int, pages_pending: int, *, credentials: bool = True) -> FeedPublic:
    """The API view of a feed; without ``credentials`` a password in its URL shows as ``***``."""
    data = {**feed.model_dump(exclude={"state"}), "next_poll_at": feed.next_poll()}
    if not credentials:  # the URL, and what may quote it: errors, and a site URL stored before links lost credentials
        for name in ("url", "site_url", "last_error"):
            data[name] = data[name] and redact_password(data[name])
    return FeedPublic.model_validate({**data, "state": str(feed.state), "outlet": outlet, "article_count": article_count,
                                      "pages_pending": pages_pending})


async def _one(session, feed_id: int, *, credentials: bool = True) -> FeedPublic:
    rows = await feeds.listed(session, feed_id)
    if not rows:
        raise Problem(404, f"no feed with id {feed_id}")
    return _public(*rows[0], credentials=credentials)


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
    first poll. A page that links no feed is a 422 saying so. A URL that differs from a subscribed
    feed's only by credentials (``https://user:password@…``, kept to fetch a private feed) or by
    its canonical form is that feed: a 409, nothing fetched."""
    feed, created = await subscribe(session, request.app.state.ingestor, str(body.url))  # SubscribeError: a 422
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
    seconds. A feed already subscribed keeps its title and category; when the outline's URL carries
    another password, the feed takes it (``credentials_updated``). URLs with a refused scheme, a literal refused address, or that cannot be fetched
    (bad host, port out of range, too long) are skipped and listed with the reason. When no feed
    is subscribed (every outline refused, or none with an ``xmlUrl``) the answer is a 422 problem
    whose ``refused`` and ``outlines`` list each outline and why, as ``newsloom feeds import``
    exits 1."""
    outlines = parse_opml(await request.body())  # OPMLError: a 422
    outcomes = await import_outlines(session, outlines, request.app.state.settings)
    refused = [f"{o.url}: {o.reason}" for o in outcomes if o.status == "refused"]
    results = [ImportedOutline(url=o.url, status=o.status, feed_id=o.feed.id if o.feed else None, reason=o.reason,
                               credentials_updated=o.credentials_updated) for o in outcomes]
    if len(refused) == len(outcomes):
        detail = (f"no feed imported: each of its {len(outcomes)} feeds was refused (see refused)" if outcomes
                  else "no feed imported: the document has no outline with an xmlUrl")
        raise Problem(422, detail, refused=refused, outlines=jsonable_encoder(results))
    if poller is not None:
        poller.wake()
    return ImportReport(added=sum(o.status == "added" for o in outcomes),
                        existing=sum(o.status == "existing" for o in outcomes), refused=refused, outlines=results)


@router.get("/export", response_class=Response, responses={200: {"content": {"text/x-opml": {}}}})
async def export_feeds(request: Request, session: SessionDep) -> Response:
    """Every subscription as an OPML 2.0 document, with titles, site URLs and categories. Passwords
    in feed URLs are kept for ``admin`` keys (a restorable backup) and shown as ``***`` to ``read`` keys."""
    rows = await feeds.listed(session)
    shown = (lambda url: url) if sees_credentials(request) else redact_password
    document = write_opml([OPMLFeed(shown(f.url), f.title, f.category, f.site_url and shown(f.site_url))
                           for f, *_counts in rows])
    return Response(document, media_type="text/x-opml; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="newsloom.opml"'})


@router.get("", response_model=Page[FeedPublic])
async def list_feeds(request: Request, session: SessionDep) -> Page[FeedPublic]:
    """Every subscribed feed, oldest subscription first (one page: feeds number in the thousands at
    most). A password in a feed URL is shown as ``***`` to ``read`` keys."""
    show = sees_credentials(request)
    return Page(items=[_public(*row, credentials=show) for row in await feeds.listed(session)], next_cursor=None)


@router.get("/{feed_id}", response_model=FeedPublic)
async def get_feed(feed_id: Annotated[int, Path(ge=1, le=MAX_ID)], request: Request, session: SessionDep) -> FeedPublic:
    """One feed with its state, last status, last error, next poll time, article count and how many
    of its articles' pages are still to fetch (a password in its URL shown as ``***`` to ``read`` keys)."""
    return await _one(session, feed_id, credentials=sees_credentials(request))


@router.patch("/{feed_id}", response_model=FeedPublic)
async def update_feed(
    feed_id: Annotated[int, Path(ge=1, le=MAX_ID)], body: FeedUpdate, request: Request, session: SessionDep, poller: PollerDep
) -> FeedPublic:
    """Change a feed: pause or resume it (``state``), rename it (``title``; ``null`` takes the feed's
    own title again at its next poll or refresh), file it (``category``), or set its poll interval
    (``poll_interval`` seconds; ``null`` returns to the adaptive interval). Only the members given change. Resuming a paused, failing or gone feed
    polls it at once."""
    feed = await feeds.get(session, feed_id)
    if feed is None:
        raise Problem(404, f"no feed with id {feed_id}")
    given = body.model_fields_set
    if "state" in given and body.state is None:
        raise Problem(422, "state must be 'active' or 'paused'")
    if "title" in given:
        feed.title = body.title
        if body.title is None:  # the feed's own title comes with its next parsed document: no conditional GET, no skip of unchanged bytes
            feed.etag = feed.last_modified = feed.content_hash = None
    if "category" in given:
        feed.category = body.category
    if "poll_interval" in given:
        feed.poll_interval_override = body.poll_interval
        if body.poll_interval is not None:
            feed.poll_interval = body.poll_interval
            feed.next_poll_at = min(feed.next_poll_at, (feed.last_polled_at or utcnow()) + timedelta(seconds=body.poll_interval))
    resumed = body.state == "active" and feed.state != FeedState.active
    if body.state == "paused":
        feed.state = FeedState.paused
    elif resumed:
        feed.state, feed.consecutive_failures, feed.next_poll_at = FeedState.active, 0, utcnow()
    await session.commit()
    if resumed and poller is not None:
        poller.wake()
    return await _one(session, feed_id, credentials=sees_credentials(request))


@router.post("/{feed_id}/refresh", response_model=FeedPublic,
             responses={409: {"description": "The feed is being polled right now."}})
async def refresh_feed(feed_id: Annotated[int, Path(ge=1, le=MAX_ID)], request: Request, session: SessionDep) -> FeedPublic:
    """Poll the feed now (paused feeds too; they stay paused) and answer with its state after the
    poll: ``last_status``, ``last_error``, ``article_count``. New articles' pages are fetched
    by the pollers as usual. 409 while another poll of it is under way."""
    if await feeds.get(session, feed_id) is None:
        raise Problem(404, f"no feed with id {feed_id}")
    ingestor = request.app.state.ingestor
    claimed = await feeds.claim_one(session, feed_id, ingestor.owner, request.app.state.settings.lease_seconds)
    if claimed is None:
        raise Problem(409, f"feed {feed_id} is being polled right now")
    await ingestor.poll_feed(claimed)
    session.expire_all()
    return await _one(session, feed_id, credentials=sees_credentials(request))


@router.delete("/{feed_id}", status_code=204)
async def delete_feed(feed_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep) -> Response:
    """Unsubscribe. Articles already stored stay; they no longer list this feed, and an article whose
    ``feed_id`` it was passes to the remaining feed that listed it first (null when none does)."""
    feed = await feeds.get(session, feed_id)
    if feed is None:
        raise Problem(404, f"no feed with id {feed_id}")
    await feeds.remove(session, feed)
    return Response(status_code=204)
