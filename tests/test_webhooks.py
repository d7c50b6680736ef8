"""Webhook subscriptions over real HTTP: signatures checked by the independent `standardwebhooks`
package, retries, disabling, filters, the outbox through the real poller, and a SIGKILL."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from service.config import Settings
from service.models import Delivery, DeliveryStatus, Subscription, utcnow
from service.webhooks import signing
from service.webhooks.delivery import DeliveryWorker, create_webhook_client
from service.webhooks.matching import Candidate, SubscriptionFilter, matches
from tests.corpus_feeds import rss
from tests.test_api import assert_problem

FAST_RETRIES = [0.2] * 7


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Retries a fifth of a second apart so a test sees the whole schedule."""
    return Settings(database_url=database_url, extract_workers=1, poll_tick=0.1, total_timeout=20,
                    webhook_retry_schedule=FAST_RETRIES, webhook_timeout=5,
                    allow_private_networks=True, host_min_gap=0, poll_spread=0, auth=False)


def verify(secret: str, post) -> dict:
    """Verify a received POST with standardwebhooks; return the decoded body."""
    return Webhook(secret).verify(post.body, post.headers)


def test_signature_matches_the_standard_webhooks_reference():
    secret = signing.generate_secret()
    assert secret.startswith("whsec_")
    body = b'{"type":"ping"}'
    now = int(datetime.now(UTC).timestamp())
    headers = signing.headers([secret], "msg_1", now, body)
    assert Webhook(secret).verify(body, headers) == {"type": "ping"}
    # During a rotation both secrets sign; a receiver with either one verifies.
    old, new = signing.generate_secret(), signing.generate_secret()
    rotated = signing.headers([new, old], "msg_2", now, body)
    assert len(rotated["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(body, rotated) and Webhook(new).verify(body, rotated)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.generate_secret()).verify(body, rotated)


ARTICLE = Candidate(
    title="Hochwasser in Zürich: Straßen gesperrt",
    text="Die Behörden in der Schweiz melden Überschwemmungen. Keine Verletzten.",
    languages={"de"}, outlets={"nzz.ch"}, feed_ids={7}, outlet_count=2,
)


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({}, True),
        ({"terms": ["zurich"]}, True),  # accents folded
        ({"terms": ["STRASSEN"]}, True),  # ß folds to ss, case ignored
        ({"terms": ["uberschwemmungen"]}, True),  # matched in the text, not only the title
        ({"terms": ["zur"]}, False),  # whole words only
        ({"terms": ["keine verletzten"]}, True),  # phrase
        ({"terms": ["verletzten keine"]}, False),
        ({"terms": ["zurich", "paris"]}, False),  # all by default
        ({"terms": ["zurich", "paris"], "match": "any"}, True),
        ({"languages": ["de"]}, True),
        ({"languages": ["en", "fr"]}, False),
        ({"outlets": ["nzz.ch", "welt.de"]}, True),
        ({"outlets": ["welt.de"]}, False),
        ({"outlets": ["WWW.NZZ.ch"]}, True),  # an outlet named as users write it: its key, nzz.ch
        ({"outlets": ["https://www.nzz.ch/zuerich/hochwasser-ld.1"]}, True),
        ({"feeds": [7]}, True),
        ({"feeds": [8]}, False),
        ({"min_outlets": 2}, True),
        ({"min_outlets": 3}, False),
        ({"terms": ["zurich"], "languages": ["en"]}, False),  # every set field must match
    ],
)
def test_filter_matrix(flt, expected):
    assert matches(SubscriptionFilter(**flt), ARTICLE) is expected


def test_subscription_api(api, server):
    hook = server.url("/hook")
    created = httpx.post(f"{api}/v1/subscriptions", json={"url": hook, "event_types": ["article.created"],
                                                           "filter": {"terms": ["flood"], "languages": ["EN"]}})
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["secret"].startswith("whsec_") and sub["state"] == "active"
    assert sub["filter"]["languages"] == ["en"]
    outlets = httpx.patch(f"{api}/v1/subscriptions/{sub['id']}", json={"filter": {"outlets": ["www.welt.de", "https://www.nzz.ch/x"]}})
    assert outlets.json()["filter"]["outlets"] == ["welt.de", "nzz.ch"]  # the keys articles' outlets have
    httpx.patch(f"{api}/v1/subscriptions/{sub['id']}", json={"filter": {"terms": ["flood"], "languages": ["en"]}})
    shown = httpx.get(f"{api}/v1/subscriptions/{sub['id']}").json()
    assert "secret" not in shown and shown["url"] == hook

    patched = httpx.patch(f"{api}/v1/subscriptions/{sub['id']}", json={"event_types": ["story.created", "article.created"]})
    assert patched.json()["event_types"] == ["article.created", "story.created"]
    assert patched.json()["filter"]["terms"] == ["flood"]  # untouched

    rotated = httpx.post(f"{api}/v1/subscriptions/{sub['id']}/rotate-secret").json()
    assert rotated["secret"] != sub["secret"] and rotated["previous_secret_expires_at"]

    for bad in ({"url": hook}, {"url": "ftp://x/y", "event_types": ["article.created"]}, {"url": "http://a..b/hook", "event_types": ["article.created"]},
                {"url": hook, "event_types": ["article.deleted"]}, {"url": hook, "event_types": ["article.created"], "filter": {"nope": 1}},
                {"url": hook, "event_types": ["article.created"], "filter": {"terms": [" "]}}):
        assert_problem(httpx.post(f"{api}/v1/subscriptions", json=bad), 422)
    assert_problem(httpx.get(f"{api}/v1/subscriptions/999"), 404)
    assert [s["id"] for s in httpx.get(f"{api}/v1/subscriptions").json()["items"]] == [sub["id"]]
    assert httpx.delete(f"{api}/v1/subscriptions/{sub['id']}").status_code == 204
    assert httpx.get(f"{api}/v1/subscriptions").json()["items"] == []


def _subscribe(api: str, url: str, **extra) -> dict:
    body = {"url": url, "event_types": ["article.created"], **extra}
    response = httpx.post(f"{api}/v1/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _deliveries(api: str, sub_id: int) -> list[dict]:
    return httpx.get(f"{api}/v1/subscriptions/{sub_id}/deliveries").json()["items"]


def test_ping_is_retried_with_one_webhook_id_until_it_succeeds(api, server):
    server.post_statuses["/flaky"] = [500, 500, 200]
    sub = _subscribe(api, server.url("/flaky"))
    queued = httpx.post(f"{api}/v1/subscriptions/{sub['id']}/test")
    assert queued.status_code == 202 and queued.json()["status"] == "pending"
    posts = server.wait_for_posts(3, "/flaky")
    assert len({p.headers["webhook-id"] for p in posts}) == 1
    assert posts[0].headers["webhook-id"] == queued.json()["event_id"]
    for post in posts:
        assert verify(sub["secret"], post)["type"] == "ping"
    # The receiver answered the third POST; wait for the worker to book it.
    delivery = _wait_for_delivery(api, sub["id"], "succeeded")
    assert delivery["attempts"] == 3 and delivery["last_response_status"] == 200 and delivery["last_error"] is None


def _wait_for_delivery(api: str, sub_id: int, status: str) -> dict:
    """The delivery once it reaches ``status``: the worker books an outcome right after the
    receiver answers, so this asks the API until it shows (bounded by a 60 s deadline)."""
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=api) as client:
        while time.monotonic() < deadline:
            items = client.get(f"/v1/subscriptions/{sub_id}/deliveries", params={"status": status}).json()["items"]
            if items:
                return items[0]
    raise AssertionError(f"no delivery reached {status}: {_deliveries(api, sub_id)}")


def test_410_disables_the_subscription_and_keeps_deliveries_dead(api, server):
    server.post_statuses["/gone"] = [410]
    sub = _subscribe(api, server.url("/gone"))
    httpx.post(f"{api}/v1/subscriptions/{sub['id']}/test")
    server.wait_for_posts(1, "/gone")
    dead = _wait_for_delivery(api, sub["id"], "dead")
    assert dead["last_response_status"] == 410
    assert dead["next_attempt_at"] is None  # a dead delivery is not tried again by itself
    shown = httpx.get(f"{api}/v1/subscriptions/{sub['id']}").json()
    assert shown["state"] == "disabled" and "410" in shown["disabled_reason"]
    assert_problem(httpx.post(f"{api}/v1/subscriptions/{sub['id']}/test"), 409)
    assert_problem(httpx.post(f"{api}/v1/subscriptions/{sub['id']}/deliveries/{dead['id']}/retry"), 409)

    # Re-enabled, a manual retry re-sends the same event.
    server.post_statuses["/gone"] = [200]
    assert httpx.patch(f"{api}/v1/subscriptions/{sub['id']}", json={"state": "active"}).json()["state"] == "active"
    retried = httpx.post(f"{api}/v1/subscriptions/{sub['id']}/deliveries/{dead['id']}/retry")
    assert retried.status_code == 202
    posts = server.wait_for_posts(2, "/gone")
    assert posts[0].headers["webhook-id"] == posts[1].headers["webhook-id"]
    assert _wait_for_delivery(api, sub["id"], "succeeded")["attempts"] == 2


async def test_an_endpoint_failing_for_the_whole_period_is_disabled(api, server, sessions):
    server.post_statuses["/down"] = [503]
    sub = _subscribe(api, server.url("/down"))
    async with sessions() as session:
        row = await session.get(Subscription, sub["id"])
        row.failing_since = utcnow() - timedelta(days=6)  # failing since before the 5-day limit
        await session.commit()
    httpx.post(f"{api}/v1/subscriptions/{sub['id']}/test")
    server.wait_for_posts(1, "/down")
    assert _wait_for_delivery(api, sub["id"], "dead")["last_response_status"] == 503
    shown = httpx.get(f"{api}/v1/subscriptions/{sub['id']}").json()
    assert shown["state"] == "disabled" and "failing continuously" in shown["disabled_reason"]


async def test_a_stored_url_that_cannot_be_used_fails_attempts_instead_of_stalling(api, server, sessions):
    """A subscription whose URL cannot be resolved at all (here an empty host label, stored before
    URLs were checked for it) counts attempts and ends failed, like any other failing endpoint."""
    sub = _subscribe(api, server.url("/fine"))
    async with sessions() as session:
        row = await session.get(Subscription, sub["id"])
        row.url = "http://hooks..example.org/in"
        await session.commit()
    httpx.post(f"{api}/v1/subscriptions/{sub['id']}/test")
    failed = _wait_for_delivery(api, sub["id"], "failed")
    assert failed["attempts"] == len(FAST_RETRIES) + 1 and "not a valid host name" in failed["last_error"]


def test_retry_schedule_ends_failed(api, server):
    server.post_statuses["/always500"] = [500]
    sub = _subscribe(api, server.url("/always500"))
    httpx.post(f"{api}/v1/subscriptions/{sub['id']}/test")
    server.wait_for_posts(len(FAST_RETRIES) + 1, "/always500")
    failed = _wait_for_delivery(api, sub["id"], "failed")
    assert failed["attempts"] == len(FAST_RETRIES) + 1
    assert failed["last_error"] == "HTTP 500: receiver says no"
    assert len(server.posts_to("/always500")) == len(FAST_RETRIES) + 1


def _wire_feed(server, items: list[tuple[str, str, datetime]]) -> str:
    body = "".join(
        f"<item><title>{title}</title><link>{server.url('/wire/' + slug)}</link><guid>{slug}</guid>"
        f"<pubDate>{format_datetime(published)}</pubDate><description>About {title}.</description></item>"
        for slug, title, published in items
    )
    return server.add("/wire/feed.xml", f'<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>{body}</channel></rss>',
                      Content_Type="application/rss+xml")


async def _poll_and_deliver(poller, sessions, settings) -> None:
    from sqlalchemy import update

    from service.models import Feed

    async with sessions() as session:  # make the feed due now, as the next interval would
        await session.exec(update(Feed).values(next_poll_at=utcnow()))
        await session.commit()
    await poller.poll_due_feeds()
    await poller.process_pages()
    async with create_webhook_client(settings) as client:
        await DeliveryWorker(settings, sessions, client).deliver_due()


async def test_bl34_only_news_after_subscribing_fires_article_created(server, poller, sessions, settings):
    """BL-34: T0 subscribe; T1 first fetch with 20 backlog items and one dated after T0; T2 one new
    item and one edited title; T3 the same document again. Policy: 1, 1 and 0 events."""
    from service.feeds import add_feed

    async with sessions() as session:
        session.add(Subscription(url=server.url("/bl34"), secret=signing.generate_secret(), event_types=["article.created"]))
        await session.commit()
    t0 = utcnow()
    backlog = [(f"old-{i}", f"Backlog item {i}", t0 - timedelta(days=30 - i)) for i in range(20)]
    first = [*backlog, ("fresh", "Fresh item", t0 + timedelta(minutes=1))]
    feed_url = _wire_feed(server, first)
    async with sessions() as session:
        await add_feed(session, feed_url, 900)

    await _poll_and_deliver(poller, sessions, settings)
    t1 = [json.loads(p.body)["data"]["title"] for p in server.posts_to("/bl34")]
    assert t1 == ["Fresh item"]

    second = [*first, ("brand-new", "Brand-new item", t0 + timedelta(minutes=2))]
    second[5] = (second[5][0], "Backlog item 5 (edited)", second[5][2])
    _wire_feed(server, second)
    await _poll_and_deliver(poller, sessions, settings)
    t2 = [json.loads(p.body)["data"]["title"] for p in server.posts_to("/bl34")][len(t1):]
    assert t2 == ["Brand-new item"]

    await _poll_and_deliver(poller, sessions, settings)
    assert len(server.posts_to("/bl34")) == 2
    payload = json.loads(server.posts_to("/bl34")[0].body)
    assert payload["type"] == "article.created" and payload["data"]["extraction_status"] == "failed"
    assert payload["data"]["text"] == "About Fresh item."


async def test_with_stories_off_a_linkless_item_is_announced_with_its_feed_document(server, sessions, settings, workers):
    """Stories off: an item without a link is complete once stored, so its ``article.created`` is
    written in the transaction that stores it (on SQLite the feed step then books the document in a
    session that can announce, not on its writer thread); an item with a link waits for its page.
    The same document for a feed nobody subscribed to fires nothing and stores the same."""
    import sqlalchemy as sa

    from service.feeds import add_feed
    from service.models import Article, Delivery, Feed
    from service.wiring import assemble

    def document(name: str) -> str:
        items = "".join(
            f"<item><title>{name} note {n}</title><guid isPermaLink=\"false\">{name}-note-{n}</guid>"
            f"<pubDate>{format_datetime(utcnow() + timedelta(minutes=n))}</pubDate><description>Note {n}.</description></item>"
            for n in (1, 2))
        linked = (f"<item><title>{name} story</title><link>{server.url(f'/{name}/story')}</link>"
                  f"<pubDate>{format_datetime(utcnow())}</pubDate></item>")
        return server.add(f"/{name}/feed.xml", f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>'
                          f"{items}{linked}</channel></rss>", Content_Type="application/rss+xml")

    quiet = settings.model_copy(update={"stories_enabled": False})
    async with sessions() as session:
        await add_feed(session, document("plain"), 900)  # polled before anyone subscribes
    async with assemble(quiet, sessions=sessions, workers=workers, deliveries=False, resolver=server.resolver,
                        verify=server.client_ssl) as service:  # stories off: the outbox announces
        poller = service.ingestor
        assert (await poller.poll_due_feeds()).articles_new == 3
        async with sessions() as session:
            session.add(Subscription(url=server.url("/notes-hook"), secret=signing.generate_secret(),
                                     event_types=["article.created"]))
            await session.commit()
            await add_feed(session, document("notes"), 900)
        assert (await poller.poll_due_feeds()).articles_new == 3
    async with sessions() as session:
        notes = (await session.exec(sa.select(Feed.id).where(Feed.title == "notes"))).one()[0]
        rows = (await session.exec(sa.select(Article.title, Article.extraction_status).where(Article.feed_id == notes))).all()
        payloads = (await session.exec(sa.select(Delivery.payload).where(Delivery.event_type == "article.created"))).all()
    assert sorted(rows) == [("notes note 1", "skipped"), ("notes note 2", "skipped"), ("notes story", "pending")]
    assert sorted(json.loads(p)["data"]["title"] for (p,) in payloads) == ["notes note 1", "notes note 2"]



async def test_with_stories_off_an_extracted_page_is_announced_once_and_a_late_failure_keeps_it(server, sessions, settings, workers):
    """Stories off, a subscriber to ``article.created``: the page's booking (on SQLite first tried on
    the poller's writer thread, which cannot announce) writes exactly one event with the page's text,
    and processing the pages again writes none. A failure booked after it (a page step cancelled at
    its deadline once its booking committed) changes nothing. Without a subscriber the page is
    booked the same, with no event."""
    import sqlalchemy as sa

    from service.feeds import add_feed
    from service.ingest.poller import PageStep, PollReport
    from service.models import Article, Delivery
    from service.wiring import assemble

    def feed(name: str) -> str:  # dated ahead (stored as now): news to a subscription made before it
        title = f"Summit agreement in {name}"
        page = server.add(f"/{name}/page.html", ARTICLE_HTML.format(title=title), Content_Type="text/html")
        return server.add(f"/{name}/feed.xml", rss([{"title": title, "link": page}], start=utcnow() + timedelta(hours=1)),
                          Content_Type="application/rss+xml")

    quiet = settings.model_copy(update={"stories_enabled": False})
    async with assemble(quiet, sessions=sessions, workers=workers, deliveries=False, resolver=server.resolver,
                        verify=server.client_ssl) as service:  # stories off: the outbox announces
        poller = service.ingestor
        async with sessions() as session:
            await add_feed(session, feed("quiet"), 900)  # extracted before anyone subscribes
        await poller.poll_due_feeds()
        assert (await poller.process_pages()).pages_ok == 1
        async with sessions() as session:
            session.add(Subscription(url=server.url("/hook"), secret=signing.generate_secret(), event_types=["article.created"]))
            await session.commit()
            await add_feed(session, feed("heard"), 900)
        await poller.poll_due_feeds()
        assert (await poller.process_pages()).pages_ok == 1
        assert (await poller.process_pages()).pages_ok == 0
        async with sessions() as session:
            heard = (await session.exec(sa.select(Article).where(Article.title == "Summit agreement in heard"))).one()[0]
        assert await PageStep(poller).failed(heard, "no outcome within 1 s") == PollReport()
    async with sessions() as session:
        rows = (await session.exec(sa.select(Article.title, Article.extraction_status, Article.text_source,
                                              Article.fetch_attempts).order_by(Article.id))).all()
        payloads = (await session.exec(sa.select(Delivery.payload).where(Delivery.event_type == "article.created"))).all()
    assert [tuple(row) for row in rows] == [("Summit agreement in quiet", "ok", "page", 0),
                                            ("Summit agreement in heard", "ok", "page", 0)]
    assert len(payloads) == 1
    data = json.loads(payloads[0][0])["data"]
    assert data["id"] == heard.id and data["extraction_status"] == "ok" and "best outcome" in data["text"]


def _podcast_feed(server, episodes: list[int]) -> str:
    """An undated podcast feed (no pubDate: real feeds omit it) with an audio enclosure per episode."""
    body = "".join(
        f"<item><title>Episode {n}</title><link>{server.url(f'/cast/{n}')}</link><guid>episode-{n}</guid>"
        f"<description>Notes for episode {n}.</description>"
        f'<enclosure url="https://cdn.example.org/cast/episode-{n}.mp3" length="{n}2345678" type="audio/mpeg"/></item>'
        for n in episodes
    )
    return server.add("/cast/feed.xml", f'<?xml version="1.0"?><rss version="2.0"><channel><title>Cast</title>{body}</channel></rss>',
                      Content_Type="application/rss+xml")


async def test_an_undated_first_fetch_is_backlog_and_later_items_carry_their_enclosures(server, poller, sessions, settings):
    from service.feeds import add_feed

    async with sessions() as session:
        session.add(Subscription(url=server.url("/cast-hook"), secret=signing.generate_secret(), event_types=["article.created"]))
        await session.commit()
    feed_url = _podcast_feed(server, list(range(1, 31)))
    async with sessions() as session:
        await add_feed(session, feed_url, 900)
    await _poll_and_deliver(poller, sessions, settings)
    assert server.posts_to("/cast-hook") == []  # 30 undated items of a first fetch: backlog

    _podcast_feed(server, list(range(1, 32)))
    await _poll_and_deliver(poller, sessions, settings)
    [post] = server.posts_to("/cast-hook")
    data = json.loads(post.body)["data"]
    assert data["title"] == "Episode 31"
    assert data["enclosures"] == [{"url": "https://cdn.example.org/cast/episode-31.mp3", "type": "audio/mpeg", "length": 312345678}]


ARTICLE_HTML = """<html><head><title>{title}</title></head><body><nav>Home | World</nav><article><h1>{title}</h1>
<p>{title}. Officials confirmed the details on Monday morning after a long night of talks in the capital.</p>
<p>The agreement covers trade, energy and the long-running dispute over fishing rights in the northern waters.</p>
<p>Critics said the deal came too late, while supporters called it the best outcome that could be reached.</p>
</article><footer>Copyright</footer></body></html>"""


def test_sigkill_with_deliveries_in_flight_loses_no_event(server, service_factory):
    """Deliveries held open by the receiver when the service is killed are sent again, with the
    same webhook-id, after a restart; every event arrives."""
    titles = [f"Summit agreement number {i}" for i in range(3)]
    items = [{"title": t, "link": server.add(f"/news/{i}.html", ARTICLE_HTML.format(title=t), Content_Type="text/html")}
             for i, t in enumerate(titles)]
    # Dated after the subscription (future dates are clamped to the fetch time), so they are news.
    feed = rss(items, start=datetime.now(UTC) + timedelta(hours=4))
    feed_url = server.add("/news/feed.xml", feed, Content_Type="application/rss+xml")
    env = {"NEWSLOOM_LEASE_SECONDS": "10", "NEWSLOOM_WEBHOOK_TIMEOUT": "3", "NEWSLOOM_TOTAL_TIMEOUT": "3",
           "NEWSLOOM_EXTRACT_TIMEOUT": "5", "NEWSLOOM_WEBHOOK_RETRY_SCHEDULE": "[1, 1, 1, 1]"}

    def titles_received(posts) -> set[str]:
        return {json.loads(p.body)["data"]["title"] for p in posts if p.path == "/sink"}

    server.release.clear()  # the receiver holds every POST open
    with service_factory(**env) as svc:
        sub = _subscribe(svc.base, server.url("/sink"))
        assert httpx.post(f"{svc.base}/v1/feeds", json={"url": feed_url}, timeout=60).status_code == 201
        in_flight = server.wait_for_posts(1, "/sink")[0].headers["webhook-id"]
        svc.proc.kill()  # SIGKILL: no shutdown, leases and unsent rows left behind
        svc.proc.wait()
    server.release.set()
    with service_factory(**env) as svc:
        # Done when every event arrived and the one in flight at the kill came again once its lease expired.
        posts = server.wait_until(
            lambda posts: titles_received(posts) == set(titles)
            and sum(p.headers["webhook-id"] == in_flight for p in posts) >= 2,
            timeout=120,
        )
    sink = [p for p in posts if p.path == "/sink"]
    for post in sink:
        assert verify(sub["secret"], post)["type"] == "article.created"
    assert len({p.headers["webhook-id"] for p in sink}) == len(titles)  # one id per event


def test_payload_schemas_are_in_the_openapi_document(api):
    spec = httpx.get(f"{api}/openapi.json", timeout=60).json()  # built on first request: slow on a busy machine
    assert set(spec["webhooks"]) == {"article.created", "story.created", "story.updated", "story.merged", "ping"}
    schema_ref = spec["webhooks"]["article.created"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    event = spec["components"]["schemas"][schema_ref.rsplit("/", 1)[-1]]
    assert set(event["required"]) == {"type", "timestamp", "data"}


async def test_story_events_follow_outlets_and_languages(server, poller, sessions, settings):
    """A German report starts a story (story.created); an English report from a second outlet and
    a third outlet's retelling grow it (story.updated); article.created with min_outlets=2 fires
    only for articles whose story already had two outlets when they joined."""
    from service.feeds import add_feed
    from tests import story_texts as st

    async with sessions() as session:
        session.add_all([
            Subscription(url=server.url("/stories"), secret=signing.generate_secret(), event_types=["story.created", "story.updated"]),
            Subscription(url=server.url("/wide"), secret=signing.generate_secret(), event_types=["article.created"],
                         filter={"min_outlets": 2}),
            Subscription(url=server.url("/german"), secret=signing.generate_secret(), event_types=["story.created", "story.updated"],
                         filter={"languages": ["de"], "terms": ["ostbrucke"]}),
        ])
        await session.commit()
    soon = format_datetime(datetime.now(UTC) + timedelta(hours=1))  # news: dated after the subscriptions
    pages = {name: server.add(f"/{name}.html", st.page(title, body, lang), Content_Type="text/html; charset=utf-8")
             for name, title, body, lang in [("welt", st.WELT_TITLE, st.WELT, "de"), ("bloomberg", st.BLOOMBERG_TITLE, st.BLOOMBERG, "en"),
                                             ("globe", st.GLOBE_TITLE, st.GLOBE, "en"), ("orchard", st.ORCHARD_TITLE, st.ORCHARD, "en")]}
    feeds = [
        server.add("/f/welt.xml", st.feed("https://www.welt.de/", "WELT", "de", [(st.WELT_TITLE, pages["welt"], soon)]), Content_Type="application/rss+xml"),
        server.add("/f/bloomberg.xml", st.feed("https://www.bloomberg.com/", "Bloomberg", "en", [(st.BLOOMBERG_TITLE, pages["bloomberg"], soon)]), Content_Type="application/rss+xml"),
        server.add("/f/globe.xml", st.feed("https://www.dailyglobe.com/", "Daily Globe", "en",
                   [(st.GLOBE_TITLE, pages["globe"], soon), (st.ORCHARD_TITLE, pages["orchard"], soon)]), Content_Type="application/rss+xml"),
    ]
    for url in feeds:  # one feed at a time: the articles link in this order
        async with sessions() as session:
            await add_feed(session, url, 900)
        await poller.poll_due_feeds()
        await poller.process_pages()
    async with create_webhook_client(settings) as client:
        await DeliveryWorker(settings, sessions, client).deliver_due()

    def events(path: str) -> list[tuple[str, dict]]:
        return [(p.headers["webhook-id"], json.loads(p.body)) for p in server.posts_to(path)]

    story_events = [(body["type"], body["data"]["outlet_count"], body["data"]["languages"]) for _id, body in events("/stories")]
    assert ("story.created", 1, ["de"]) in story_events
    assert ("story.updated", 2, ["de", "en"]) in story_events
    assert ("story.updated", 3, ["de", "en"]) in story_events
    # Up to NEWSLOOM_WEBHOOK_ENDPOINT_CONCURRENCY deliveries are in flight at once: arrival order is not creation order.
    assert sorted(e for e in story_events if e[0] == "story.created") == [("story.created", 1, ["de"]), ("story.created", 1, ["en"])]
    assert len({i for i, _ in events("/stories")}) == len(story_events) == 4  # one webhook-id per event

    wide = sorted(body["data"]["title"] for _id, body in events("/wide"))
    assert wide == sorted([st.BLOOMBERG_TITLE, st.GLOBE_TITLE])
    assert all(body["data"]["story_id"] is not None for _id, body in events("/wide"))

    # The German filter: the bridge story (it has German) matched by the folded term; not the apples.
    german = sorted(body["type"] for _id, body in events("/german"))  # sent concurrently: any order
    assert german == ["story.created", "story.updated", "story.updated"]


@pytest.mark.parametrize("flt", [{"languages": ["zzz"]}, {"min_outlets": 10**20}, {"feeds": [10**20]}, {"outlets": ["a b"]}, {"languages": ["x" * 36]}])
def test_filters_out_of_range_are_refused(api, server, flt):
    body = {"url": server.url("/x"), "event_types": ["article.created"], "filter": flt}
    assert_problem(httpx.post(f"{api}/v1/subscriptions", json=body), 422)


def test_a_filter_naming_a_feed_that_does_not_exist_is_refused(api, server):
    """Creating or changing a subscription whose ``filter.feeds`` names an unknown feed id is a 422
    naming the field and each unknown id; subscribed feeds are accepted."""
    feed_url = server.add("/filtered.xml", rss([{"title": "One", "link": server.url("/one.html")}]), Content_Type="application/rss+xml")
    feed_id = httpx.post(f"{api}/v1/feeds", json={"url": feed_url}, timeout=60).json()["id"]
    body = {"url": server.url("/hook"), "event_types": ["article.created"], "filter": {"feeds": [feed_id, 4242, 4141]}}
    problem = assert_problem(httpx.post(f"{api}/v1/subscriptions", json=body), 422)
    assert problem["detail"] == "filter.feeds: no feed with id 4141, 4242"
    assert [e["location"] for e in problem["errors"]] == [["body", "filter", "feeds", 2], ["body", "filter", "feeds", 1]]
    assert httpx.get(f"{api}/v1/subscriptions").json()["items"] == []

    created = _subscribe(api, server.url("/hook"), filter={"feeds": [feed_id]})
    assert created["filter"]["feeds"] == [feed_id]
    change = httpx.patch(f"{api}/v1/subscriptions/{created['id']}", json={"filter": {"feeds": [feed_id + 1]}})
    assert assert_problem(change, 422)["detail"] == f"filter.feeds: no feed with id {feed_id + 1}"
    assert httpx.get(f"{api}/v1/subscriptions/{created['id']}").json()["filter"]["feeds"] == [feed_id]


async def _leased_pings(sessions, count: int) -> list:
    """``count`` ping deliveries (``msg_0``, …) to one subscription, leased (as claimed), committed."""
    from service.models import Delivery

    async with sessions() as session:
        subscription = Subscription(url="http://127.0.0.1:9/hook", secret="whsec_dGVzdA==", event_types=["ping"])
        session.add(subscription)
        await session.flush()
        rows = [Delivery(subscription_id=subscription.id, event_id=f"msg_{n}", event_key=f"ping:{n}", event_type="ping",
                         payload="{}", lease_owner="test") for n in range(count)]
        session.add_all(rows)
        await session.commit()
    return rows


async def test_successes_are_booked_by_group_commit(sessions, settings):
    """Successes that finish together are booked together: eight senders finishing at once cost one
    UPDATE (each awaits its own future; none books alone), and every delivery ends succeeded with
    its attempt and response status."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlmodel import select

    from service.models import Delivery, DeliveryStatus

    rows = await _leased_pings(sessions, 8)
    updates: list[str] = []

    def count(_conn, _cursor, statement, _params, _context, _many):
        if statement.lstrip().upper().startswith("UPDATE DELIVERIES"):
            updates.append(statement)

    async with create_webhook_client(settings) as client:
        worker = DeliveryWorker(settings, sessions, client)
        # Every engine: on a SQLite file the worker books through a connection of its own (db.Writer).
        event.listen(Engine, "before_cursor_execute", count)
        try:
            await asyncio.gather(*(worker._record_success(row, 204) for row in rows))
        finally:
            event.remove(Engine, "before_cursor_execute", count)
    assert len(updates) == 1
    async with sessions() as session:
        booked = (await session.exec(select(Delivery))).all()
    assert sorted((d.status, d.attempts, d.last_response_status, d.lease_owner) for d in booked) == \
        [(DeliveryStatus.succeeded, 1, 204, None)] * 8


async def test_successes_arriving_while_senders_are_released_wait_for_the_runners_claim(sessions, settings, monkeypatch):
    """A success that arrives while a booking transaction runs, when that transaction releases
    senders of a running runner, is booked by the claim that follows (the released senders' slots
    are free): two commits for two successes and a claim, not three."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlmodel import select

    from service.models import Delivery, DeliveryStatus
    from service.storage import deliveries

    async with sessions() as session:
        subscription = Subscription(url="http://127.0.0.1:9/hook", secret="whsec_dGVzdA==", event_types=["ping"])
        session.add(subscription)
        await session.flush()
        first, second = (Delivery(subscription_id=subscription.id, event_id=f"msg_s{n}", event_key=f"ping:s{n}", event_type="ping",
                                  payload="{}", lease_owner="test", lease_until=utcnow() + timedelta(minutes=5)) for n in range(2))
        due = Delivery(subscription_id=subscription.id, event_id="msg_due", event_key="ping:due", event_type="ping", payload="{}")
        session.add_all([first, second, due])
        await session.commit()
    commits: list[object] = []
    loop = asyncio.get_running_loop()
    later: list[asyncio.Task] = []
    booking = deliveries.book_successes

    async with create_webhook_client(settings) as client:
        worker = DeliveryWorker(settings, sessions, client)

        def book_while_the_second_arrives(session, by_status, now):
            if not later:  # the first transaction: the second success arrives while it runs
                loop.call_soon_threadsafe(lambda: later.append(loop.create_task(worker._record_success(second, 204))))
            booking(session, by_status, now)

        monkeypatch.setattr(deliveries, "book_successes", book_while_the_second_arrives)
        worker._runners = 1  # as while deliver_due or run sends
        def committed(connection) -> None:
            commits.append(connection)

        event.listen(Engine, "commit", committed)
        try:
            await worker._record_success(first, 204)
            assert [entry[0] for entry in worker._succeeded] == [second.id]  # waiting for the claim
            assert not worker._succeeded[0][2].done()
            claimed, _subscriptions = await worker.claim(10, None)
            await later[0]
        finally:
            event.remove(Engine, "commit", committed)
    assert len(commits) == 2
    assert [d.event_id for d in claimed] == ["msg_due"]
    async with sessions() as session:
        rows = {d.event_id: d for d in (await session.exec(select(Delivery))).all()}
    assert [(rows[f"msg_s{n}"].status, rows[f"msg_s{n}"].attempts) for n in range(2)] == [(DeliveryStatus.succeeded, 1)] * 2


async def test_a_failed_group_commit_books_each_success_alone(sessions, settings, monkeypatch):
    """When a group commit's transaction fails, its senders are told and each books its own success
    (``record_attempt``): nothing is left pending, and every delivery counts one attempt."""
    from sqlmodel import select

    from service.models import Delivery, DeliveryStatus
    from service.storage import deliveries

    rows = await _leased_pings(sessions, 4)
    calls = []

    def failing(*args):
        calls.append(args)
        raise ConnectionError("database gone for a moment")

    monkeypatch.setattr(deliveries, "book_successes", failing)
    async with create_webhook_client(settings) as client:
        worker = DeliveryWorker(settings, sessions, client)
        await asyncio.gather(*(worker._record_success(row, 204) for row in rows))
    assert len(calls) == 1 and worker._succeeded == [] and worker._committer is None
    async with sessions() as session:
        booked = (await session.exec(select(Delivery))).all()
    assert sorted((d.status, d.attempts, d.last_response_status, d.lease_owner) for d in booked) == \
        [(DeliveryStatus.succeeded, 1, 204, None)] * 4


async def test_a_claim_books_the_successes_waiting_in_its_own_transaction(sessions, settings):
    """Successes still waiting for their booking when the worker claims are booked by the claim's
    transaction (one commit for both): their senders are released, the deliveries end succeeded,
    and the due ones are claimed with their subscription."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlmodel import select

    from service.models import Delivery, DeliveryStatus

    async with sessions() as session:
        subscription = Subscription(url="http://127.0.0.1:9/hook", secret="whsec_dGVzdA==", event_types=["ping"])
        session.add(subscription)
        await session.flush()
        sent = [Delivery(subscription_id=subscription.id, event_id=f"msg_s{n}", event_key=f"ping:s{n}", event_type="ping",
                         payload="{}", lease_owner="test", lease_until=utcnow() + timedelta(minutes=5)) for n in range(3)]
        due = [Delivery(subscription_id=subscription.id, event_id=f"msg_d{n}", event_key=f"ping:d{n}", event_type="ping",
                        payload="{}") for n in range(2)]
        session.add_all(sent + due)
        await session.commit()
    commits: list[object] = []

    def committed(connection) -> None:
        commits.append(connection)

    async with create_webhook_client(settings) as client:
        worker = DeliveryWorker(settings, sessions, client)
        loop = asyncio.get_running_loop()
        waiting = [(row.id, 204, loop.create_future()) for row in sent]
        worker._succeeded.extend(waiting)
        event.listen(Engine, "commit", committed)
        try:
            claimed, subscriptions = await worker.claim(10, None)
        finally:
            event.remove(Engine, "commit", committed)
    assert len(commits) == 1
    assert all(future.done() and future.exception() is None for _id, _status, future in waiting)
    assert worker._succeeded == []
    assert sorted(d.event_id for d in claimed) == ["msg_d0", "msg_d1"]
    assert subscriptions[subscription.id] is not None and subscriptions[subscription.id].url == subscription.url
    async with sessions() as session:
        rows = {d.event_id: d for d in (await session.exec(select(Delivery))).all()}
    assert [(rows[f"msg_s{n}"].status, rows[f"msg_s{n}"].attempts, rows[f"msg_s{n}"].lease_owner) for n in range(3)] == \
        [(DeliveryStatus.succeeded, 1, None)] * 3
    assert {rows[f"msg_d{n}"].lease_owner for n in range(2)} == {worker.owner}


@pytest.mark.parametrize(
    ("attempt", "failing_for", "status", "error", "expected"),
    [
        (1, None, 204, None, ("succeeded", False, None)),
        (3, 60.0, 200, None, ("succeeded", False, None)),  # a success ends the failing spell
        (1, None, 410, "HTTP 410", ("dead", False, "the endpoint answered 410 Gone")),
        (1, None, 500, "HTTP 500", ("pending", True, None)),
        (8, 10.0, None, "ConnectError", ("failed", False, None)),  # past the last scheduled retry
        (2, 3600.0, 503, "HTTP 503", ("dead", False, "failing continuously since")),
    ],
)
def test_decide_follows_the_retry_and_disable_policy(attempt, failing_for, status, error, expected):
    from service.webhooks.delivery import decide

    settings = Settings(webhook_retry_schedule=[5.0] * 7, webhook_disable_after=3600)
    now = utcnow()
    since = now - timedelta(seconds=failing_for) if failing_for is not None else None
    outcome = decide(settings, attempt, since, now, status, error)
    state, retried, reason = expected
    assert outcome.status == state
    assert (outcome.next_attempt_at is not None) == retried
    if retried:
        assert 4.0 <= (outcome.next_attempt_at - now).total_seconds() <= 6.0  # 5 s ± 20 %
    # A success ends a failing spell, a 410 leaves it as it was, other failures start one or go on.
    assert outcome.failing_since == (None if error is None else since if status == 410 else since or now)
    assert (outcome.disable_reason or "").startswith(reason or "") and (outcome.disable_reason is None) == (reason is None)


async def test_a_success_booked_twice_counts_once_and_is_never_undone(sessions):
    """A group-commit batch whose sender was cancelled mid-commit is booked again by the others:
    the second booking counts no second attempt, and the cancelled sender's failure booking finds
    the delivery no longer pending and leaves its success alone (no second send)."""
    from service.models import Delivery, DeliveryStatus
    from service.storage import deliveries

    async with sessions() as session:
        subscription = Subscription(url="https://receiver.example/hook", secret=signing.generate_secret(),
                                    event_types=["article.created"])
        session.add(subscription)
        await session.commit()
        assert await session.run_sync(deliveries.insert, subscription.id, "msg_twice", "article.created", "article:1", "{}")
        await session.commit()
        delivery_id = (await deliveries.by_event_id(session, "msg_twice")).id
        for _ in range(2):
            await session.run_sync(deliveries.book_successes, {200: [delivery_id]}, utcnow())
            await session.commit()
        assert await session.run_sync(deliveries.attempted, delivery_id) is None
    async with sessions() as session:
        row = await session.get(Delivery, delivery_id)
        assert (row.status, row.attempts) == (DeliveryStatus.succeeded, 1)


async def test_a_deliveries_cursor_resumes_only_its_subscription_and_status(api, sessions):
    """Deliveries page by id under their subscription and ``status``: a cursor of another
    subscription or another status is a 422 problem, not a page of this list below another's id."""
    subs = [_subscribe(api, f"https://hooks{n}.example.org/in") for n in range(2)]
    async with sessions() as session:
        for n in range(5):
            for sub in subs:
                status = DeliveryStatus.dead if n % 2 else DeliveryStatus.succeeded
                session.add(Delivery(subscription_id=sub["id"], event_id=f"msg_{sub['id']}_{n}", event_key=f"k:{n}",
                                     event_type="ping", payload="{}", status=status, next_attempt_at=None))
        await session.commit()
    with httpx.Client(base_url=api) as client:
        def page(sub_id: int, **params) -> httpx.Response:
            return client.get(f"/v1/subscriptions/{sub_id}/deliveries", params=params)

        first = page(subs[0]["id"], limit=2).json()
        rest = page(subs[0]["id"], limit=10, cursor=first["next_cursor"]).json()
        ids = [d["id"] for d in first["items"] + rest["items"]]
        assert len(ids) == 5 and ids == sorted(ids, reverse=True) and rest["next_cursor"] is None
        for other in (page(subs[1]["id"], cursor=first["next_cursor"]), page(subs[0]["id"], status="dead", cursor=first["next_cursor"])):
            problem = other.json()
            assert other.status_code == 422 and "cursor" in problem["detail"], problem
        dead = page(subs[0]["id"], status="dead", limit=1).json()
        assert [d["status"] for d in page(subs[0]["id"], status="dead", cursor=dead["next_cursor"]).json()["items"]] == ["dead"]
        assert_problem(page(subs[0]["id"], cursor="12"), 400)  # an id is not a cursor


@pytest.mark.parametrize("outlet", ["a b", "[", "http://", "-", "under_score.com"])
def test_an_outlet_no_host_can_be_read_from_is_refused_by_lists_and_filters_alike(api, server, outlet):
    """One rule (``urls.outlet_named``) for ``GET /v1/stories?outlet`` and a filter's ``outlets``
    (before: the list answered 200 and empty for ``a b``, the filter refused it; both took ``[``)."""
    listed = assert_problem(httpx.get(f"{api}/v1/stories", params={"outlet": outlet}), 422)
    assert listed["errors"][0]["location"] == ["query", "outlet"] and "names no outlet" in listed["errors"][0]["message"]
    body = {"url": server.url("/x"), "event_types": ["article.created"], "filter": {"outlets": ["welt.de", outlet]}}
    problem = assert_problem(httpx.post(f"{api}/v1/subscriptions", json=body), 422)
    assert problem["errors"][0]["location"] == ["body", "filter", "outlets", 1] and "names no outlet" in problem["errors"][0]["message"]


def test_an_outlet_with_no_article_yet_is_an_empty_list_and_an_accepted_filter(api, server):
    assert httpx.get(f"{api}/v1/stories", params={"outlet": "WWW.nosuch.example"}).json()["items"] == []
    created = _subscribe(api, server.url("/hook"), filter={"outlets": ["WWW.nosuch.example", "https://www.welt.de/x"]})
    assert created["filter"]["outlets"] == ["nosuch.example", "welt.de"]


@pytest.mark.parametrize(("tag", "key"), [("pt-BR", "pt"), ("pt_BR", "pt"), ("zh-Hant-TW", "zh"), ("EN", "en"), ("de-CH-1996", "de"), ("fil", "fil")])
def test_a_bcp47_language_tag_is_one_rule_for_lists_and_filters(api, server, tag, key):
    """``lang`` of ``/v1/articles`` and ``/v1/stories`` and a filter's ``languages`` take the same BCP
    47 tags (``entries.language_named``; before, filters took two letters only); the filter keeps the
    language, as articles carry it."""
    for path in ("/v1/articles", "/v1/stories"):
        assert httpx.get(f"{api}{path}", params={"lang": tag}).status_code == 200
    assert _subscribe(api, server.url("/hook"), filter={"languages": [tag]})["filter"]["languages"] == [key]


@pytest.mark.parametrize("tag", ["xx", "english", "en--US", "deu", "e"])
def test_a_tag_that_is_no_known_language_is_refused_by_lists_and_filters_alike(api, server, tag):
    for path in ("/v1/articles", "/v1/stories"):
        problem = assert_problem(httpx.get(f"{api}{path}", params={"lang": tag}), 422)
        assert problem["errors"][0]["location"] == ["query", "lang"]
    body = {"url": server.url("/x"), "event_types": ["article.created"], "filter": {"languages": ["en", tag]}}
    problem = assert_problem(httpx.post(f"{api}/v1/subscriptions", json=body), 422)
    assert problem["errors"][0]["location"] == ["body", "filter", "languages", 1]


async def test_a_filter_stored_under_older_looser_rules_is_still_read_and_matched(api, server, sessions):
    """A subscription written before the rules above (a language ``xx``, an outlet ``[``) is listed
    and matched as stored (``SubscriptionFilter.stored``), not refused on every read or event."""
    async with sessions() as session:
        session.add(Subscription(url=server.url("/old"), secret="whsec_" + "A" * 32, event_types=["article.created"],
                                 filter={"languages": ["xx"], "outlets": ["[", "WWW.Welt.de"]}))
        await session.commit()
    (listed,) = httpx.get(f"{api}/v1/subscriptions").json()["items"]
    assert listed["filter"]["languages"] == ["xx"] and listed["filter"]["outlets"] == ["[", "welt.de"]
    stored = SubscriptionFilter.stored(listed["filter"])
    assert matches(stored, Candidate(languages={"xx"}, outlets={"welt.de"}))


async def test_a_story_created_after_the_newest_was_merged_away_has_an_id_of_its_own(server, sessions, settings):
    """A story created after the newest story was merged away (its row deleted) gets a new id, not
    the gone story's, and its ``story.created`` reaches the receiver, signed, beside the gone
    story's. Before migration 0014 SQLite gave it the gone story's id, and its event was dropped
    as a repeat of the gone story's (same key, ``story.created:ID``)."""
    from service.models import Article, ExtractionStatus, Story
    from service.storage import stories
    from service.webhooks import outbox

    subscription = Subscription(url=server.url("/stories"), secret=signing.generate_secret(), event_types=["story.created"],
                                created_at=utcnow() - timedelta(hours=1))
    moment = utcnow()
    reports = [Article(canonical_url=f"https://example.org/{n}", title=title, text=f"{title}.", language="en",
                       published_at=moment, sort_at=moment, first_seen_at=moment, extraction_status=ExtractionStatus.ok)
               for n, title in enumerate(["Ski flying record at Vikersund", "Oldest ice core drilled in Antarctica"])]
    story_ids = []
    async with sessions() as session:
        session.add_all([subscription, *reports])
        await session.commit()
        for article in reports:
            def link(sync_session, article=article):
                story = Story(title=article.title, article_count=1, outlet_count=1, language_count=1, languages=["en"])
                stories.save_story(sync_session, story)
                article.story_id = story.id
                written = outbox.announce_linked(sync_session, article.id, story, "story.created", [])
                story_ids.append(story.id)
                stories.delete_story(sync_session, story)  # merged away into an older story
                return written
            assert await session.run_sync(link) == 1
            await session.commit()
    assert story_ids[1] != story_ids[0]
    async with create_webhook_client(settings) as client:
        await DeliveryWorker(settings, sessions, client).deliver_due()
    posts = server.wait_for_posts(2, "/stories")
    events = [verify(subscription.secret, post) for post in posts]
    assert sorted((e["type"], e["data"]["id"], e["data"]["title"]) for e in events) == sorted(
        ("story.created", story_id, article.title) for story_id, article in zip(story_ids, reports, strict=True))
    assert len({post.headers["webhook-id"] for post in posts}) == 2


async def test_a_delivery_behind_another_subscriptions_backlog_is_claimed_by_the_next_claim(sessions, settings):
    """500 due deliveries of a subscription whose slots are all taken, then one of another: the
    claim's ordered read sees only the first's; the second's is claimed all the same (trial14)."""
    async with sessions() as session:
        busy, quiet = (Subscription(url=f"http://127.0.0.1:9/{name}", secret="whsec_dGVzdA==", event_types=["ping"])
                       for name in ("busy", "quiet"))
        session.add_all([busy, quiet])
        await session.flush()
        earlier = utcnow() - timedelta(minutes=10)
        session.add_all(Delivery(subscription_id=busy.id, event_id=f"msg_b{n}", event_key=f"ping:b{n}", event_type="ping",
                                 payload="{}", next_attempt_at=earlier + timedelta(seconds=n)) for n in range(500))
        session.add(Delivery(subscription_id=quiet.id, event_id="msg_q", event_key="ping:q", event_type="ping", payload="{}"))
        await session.commit()
        busy_id = busy.id
    async with create_webhook_client(settings) as client:
        worker = DeliveryWorker(settings, sessions, client)
        claimed, _subscriptions = await worker.claim(4, lambda key: 0 if key == str(busy_id) else 4)
    assert [d.event_id for d in claimed] == ["msg_q"]
