"""Production readiness over real HTTP on 127.0.0.1: API keys and scopes, rate limits, the bind
guard, metrics, request ids in JSON logs, request size limits, readiness, and a SIGTERM in the
middle of a poll that loses nothing and leaves no lease held."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from service.config import Settings
from service.db import create_engine
from service.models import Feed, Subscription
from tests.conftest import ROOT, running_app
from tests.corpus_feeds import rss
from tests.ingest_helpers import make_due, subscribe
from tests.server import Route
from tests.test_api import assert_problem

ARTICLE_HTML = """<html><head><title>{title}</title></head><body><nav>Home | World</nav><article><h1>{title}</h1>
<p>{title}. Officials confirmed the details on Monday morning after a long night of talks in the capital.</p>
<p>The agreement covers trade, energy and the long-running dispute over fishing rights in the northern waters.</p>
<p>Critics said the deal came too late, while supporters called it the best outcome that could be reached.</p>
</article><footer>Copyright</footer></body></html>"""


def cli(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``newsloom ARGS`` against ``database_url``."""
    import os

    return subprocess.run([sys.executable, "-m", "service.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, env={**os.environ, "NEWSLOOM_DATABASE_URL": database_url, **env})


def create_key(database_url: str, scope: str) -> str:
    done = cli(database_url, "keys", "create", "--scope", scope, "--name", f"test {scope}")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- auth --------------------------------------------------------------------------------------


def test_api_keys_scopes_and_revocation(settings: Settings, database_url: str):
    read, admin = create_key(database_url, "read"), create_key(database_url, "admin")
    assert read.startswith("nlk_") and len(read) >= 40 and read != admin
    listing = cli(database_url, "keys", "list")
    assert listing.returncode == 0 and "read" in listing.stdout and "admin" in listing.stdout
    assert read not in listing.stdout and admin not in listing.stdout  # shown once, never listed

    with running_app(settings.model_copy(update={"auth": True, "poller_enabled": False})) as base:
        for path in ("/healthz", "/readyz", "/openapi.json"):
            assert httpx.get(base + path).status_code == 200, path  # probes and the schema are open
        missing = assert_problem(httpx.get(f"{base}/v1/feeds"), 401)
        assert "Bearer" in httpx.get(f"{base}/v1/feeds").headers["www-authenticate"]
        assert missing["detail"]
        wrong = httpx.get(f"{base}/v1/feeds", headers=bearer("nlk_" + "x" * 43))
        assert_problem(wrong, 401)
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        assert_problem(httpx.get(f"{base}/v1/feeds", headers={"Authorization": f"Basic {read}"}), 401)

        assert httpx.get(f"{base}/v1/feeds", headers=bearer(read)).status_code == 200
        assert httpx.get(f"{base}/v1/articles", headers=bearer(read)).status_code == 200
        assert httpx.get(f"{base}/metrics", headers=bearer(read)).status_code == 200
        assert_problem(httpx.get(f"{base}/metrics"), 401)
        forbidden = httpx.delete(f"{base}/v1/feeds/12345", headers=bearer(read))
        assert_problem(forbidden, 403)
        assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]
        # admin implies read, and may write (the 404 comes from the route, past authorisation)
        assert httpx.get(f"{base}/v1/feeds", headers=bearer(admin)).status_code == 200
        assert_problem(httpx.delete(f"{base}/v1/feeds/12345", headers=bearer(admin)), 404)

        key_id = next(line.split("\t")[0] for line in cli(database_url, "keys", "list").stdout.splitlines()
                      if line.split("\t")[1:2] == ["read"])
        assert cli(database_url, "keys", "revoke", key_id).returncode == 0
        assert_problem(httpx.get(f"{base}/v1/feeds", headers=bearer(read)), 401)
        assert httpx.get(f"{base}/v1/feeds", headers=bearer(admin)).status_code == 200
    assert cli(database_url, "keys", "revoke", "999999").returncode == 1


async def test_keys_are_stored_as_sha256_digests_only(settings: Settings, sessions, database_url: str):
    key = await asyncio.to_thread(create_key, database_url, "read")
    async with sessions() as session:
        rows = (await session.exec(sa.text("SELECT prefix, key_hash FROM api_keys"))).all()
    assert [row[1] for row in rows] == [hashlib.sha256(key.encode()).hexdigest()]
    assert key.startswith(rows[0][0]) and len(rows[0][0]) < 16


async def test_read_keys_see_no_passwords_in_feed_and_webhook_urls(settings: Settings, sessions, database_url: str):
    """A private feed's and a webhook's credentials (``user:password@``) are shown to admin keys
    (a restorable OPML backup) and as ``***`` to read keys, in every place that lists the URL."""
    read = await asyncio.to_thread(create_key, database_url, "read")
    admin = await asyncio.to_thread(create_key, database_url, "admin")
    feed_url = "https://reader:S3cret@private.example.org/feed.xml"  # credentials keep their case
    hook_url = "https://hooks:t0ken@receiver.example.org/in"
    feed_id = await subscribe(sessions, feed_url)
    async with sessions() as session:  # what an older version stored, and an error quoting the URL
        feed = await session.get(Feed, feed_id)
        feed.site_url = "https://reader:S3cret@private.example.org/"
        feed.last_error = f"redirect loop after 1 hops: {feed_url} → {feed_url}"
        hook = Subscription(url=hook_url, secret="whsec_dGVzdA==", event_types=["article.created"])
        session.add(hook)
        await session.commit()
        hook_id = hook.id
    views = {read: ("https://reader:***@private.example.org/feed.xml", "https://hooks:***@receiver.example.org/in"),
             admin: (feed_url, hook_url)}
    with running_app(settings.model_copy(update={"auth": True, "poller_enabled": False})) as base:
        for key, (shown_feed, shown_hook) in views.items():
            headers = bearer(key)
            assert httpx.get(f"{base}/v1/feeds", headers=headers).json()["items"][0]["url"] == shown_feed
            shown = httpx.get(f"{base}/v1/feeds/{feed_id}", headers=headers).json()
            assert shown["url"] == shown_feed and shown["last_error"] == f"redirect loop after 1 hops: {shown_feed} → {shown_feed}"
            assert shown["site_url"] == shown_feed.removesuffix("feed.xml")
            export = httpx.get(f"{base}/v1/feeds/export", headers=headers)
            assert export.status_code == 200 and f'xmlUrl="{shown_feed}"' in export.text
            assert ("S3cret" in export.text) == (key == admin)
            assert httpx.get(f"{base}/v1/subscriptions", headers=headers).json()["items"][0]["url"] == shown_hook
            assert httpx.get(f"{base}/v1/subscriptions/{hook_id}", headers=headers).json()["url"] == shown_hook
    with running_app(settings.model_copy(update={"poller_enabled": False})) as base:  # auth off: loopback, all shown
        assert httpx.get(f"{base}/v1/feeds/{feed_id}").json()["url"] == feed_url


def test_rate_limit_answers_429_with_retry_after(settings: Settings, database_url: str):
    first, second = create_key(database_url, "read"), create_key(database_url, "read")
    limited = settings.model_copy(update={"auth": True, "poller_enabled": False, "rate_burst": 3, "rate_limit": 0.001})
    with running_app(limited) as base:
        statuses = [httpx.get(f"{base}/v1/feeds", headers=bearer(first)).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        refused = httpx.get(f"{base}/v1/feeds", headers=bearer(first))
        assert_problem(refused, 429)
        assert int(refused.headers["retry-after"]) >= 1  # RFC 9110 delay-seconds
        assert httpx.get(f"{base}/v1/feeds", headers=bearer(second)).status_code == 200  # per key
        assert httpx.get(f"{base}/healthz").status_code == 200  # probes are not limited


def test_serve_refuses_a_public_address_with_auth_off(database_url: str):
    done = cli(database_url, "serve", "--host", "0.0.0.0", "--port", "1", NEWSLOOM_AUTH="off")
    assert done.returncode == 1
    assert "NEWSLOOM_AUTH=off" in done.stderr and "NEWSLOOM_ALLOW_INSECURE_BIND" in done.stderr


# -- limits and validation ---------------------------------------------------------------------


def test_request_size_limits_and_unknown_fields(settings: Settings):
    with running_app(settings.model_copy(update={"poller_enabled": False, "max_body_bytes": 4096})) as base:
        big = b"<opml>" + b" " * 5000 + b"</opml>"
        assert_problem(httpx.post(f"{base}/v1/feeds/import", content=big), 413)

        def chunks():  # no Content-Length: counted while it streams in
            for _ in range(10):
                yield b" " * 1000

        assert_problem(httpx.post(f"{base}/v1/feeds/import", content=chunks()), 413)
        assert_problem(httpx.get(f"{base}/v1/articles", params={"cursor": "a" * 5000}), 414)
        assert_problem(httpx.get(f"{base}/v1/articles", params={"limit": 201}), 422)
        assert_problem(httpx.get(f"{base}/v1/articles", params={"limit": 0}), 422)
        body = assert_problem(httpx.post(f"{base}/v1/feeds", json={"url": "https://a.example.org/f", "extra": 1}), 422)
        assert any(error["type"] == "extra_forbidden" for error in body["errors"])
        assert_problem(httpx.get(f"{base}/v1/feeds/99999999999"), 422)  # beyond a 32-bit id: not a 500
        # NUL characters (PostgreSQL text cannot hold them) are refused up front, not a 500
        assert_problem(httpx.get(f"{base}/v1/articles", params={"lang": "e\x00"}), 422)
        assert_problem(httpx.get(f"{base}/v1/articles", params={"until": "\x00"}), 422)
        assert_problem(httpx.patch(f"{base}/v1/subscriptions/1", json={"description": "a\x00b"}), 422)


def _raw_request(port: int, request: bytes) -> tuple[int, str, bytes]:
    """Send ``request`` as is; the answer's status, content type and body (the server may close
    the connection before it has read everything: what it answered is still read)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(request)
        response = b""
        try:
            while chunk := sock.recv(65536):
                response += chunk
        except ConnectionResetError:
            pass
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers.get("content-type", ""), body


def test_requests_the_http_parser_refuses_get_problem_details(service_factory):
    """What uvicorn refused itself with a plain-text 400 (a URL over httptools' 64 KiB, bytes that
    are not HTTP) and what it did not limit at all (the header block) are problem documents."""
    from service.api.http11 import MAX_HEAD_BYTES, MAX_URL_BYTES

    with service_factory() as svc:
        def ask(request: bytes, status: int) -> dict:
            got, content_type, body = _raw_request(svc.port, request)
            assert (got, content_type) == (status, "application/problem+json"), body[:300]
            problem = json.loads(body)
            assert problem["status"] == status and problem["detail"]
            return problem

        for size in (MAX_URL_BYTES + 1, 100_000):
            problem = ask(b"GET /healthz?q=" + b"a" * size + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)
            assert problem["instance"] == "/healthz" and str(MAX_URL_BYTES) in problem["detail"]
        for headers in (b"X-Big: " + b"a" * 100_000 + b"\r\n", b"X-A: b\r\n" * 10_000):
            problem = ask(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n", 431)
            assert str(MAX_HEAD_BYTES) in problem["detail"]
        ask(b"NOT HTTP AT ALL\r\n\r\n", 400)
        # under the limits, a long URL and header block are the application's to answer
        ok = httpx.get(f"{svc.base}/healthz", headers={"X-Big": "a" * (MAX_HEAD_BYTES // 2)})
        assert ok.status_code == 200
        assert_problem(httpx.get(f"{svc.base}/healthz", params={"q": "a" * (MAX_URL_BYTES // 2)}), 414)


def test_readyz_reports_what_is_not_ready(settings: Settings):
    with running_app(settings.model_copy(update={"poller_enabled": False})) as base:
        assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
        asyncio.run(_set_schema_version(settings.database_url, "0000"))
        body = assert_problem(httpx.get(f"{base}/readyz"), 503)
        assert "schema" in body["checks"][0]
        assert httpx.get(f"{base}/healthz").status_code == 200  # alive, just not ready


async def _set_schema_version(url: str, version: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": version})
    await engine.dispose()


# -- metrics and logs --------------------------------------------------------------------------


def scrape(base: str) -> dict[tuple[str, tuple], float]:
    """Every sample of ``/metrics`` as {(name, sorted labels): value}."""
    response = httpx.get(f"{base}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


async def test_metrics_count_polls_fetches_extractions_and_requests(api, server, poller, sessions, settings):
    titles = [f"Harbour reopens after storm {i}" for i in range(2)]
    items = [{"title": t, "link": server.add(f"/m/{i}.html", ARTICLE_HTML.format(title=t), Content_Type="text/html")}
             for i, t in enumerate(titles)]
    feed_url = server.add("/m/feed.xml", rss(items), Content_Type="application/rss+xml")
    before = await asyncio.to_thread(scrape, api)
    feed_id = await subscribe(sessions, feed_url)
    await make_due(sessions, feed_id)
    await poller.poll_due_feeds()
    await poller.process_pages()
    assert (await asyncio.to_thread(httpx.get, f"{api}/v1/feeds/{feed_id}")).status_code == 200
    after = await asyncio.to_thread(scrape, api)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("newsloom_polls_total", outcome="ok") == 1
    assert delta("newsloom_articles_created_total") == 2
    assert delta("newsloom_fetch_responses_total", kind="feed", host="127.0.0.1", status_class="2xx") == 1
    assert delta("newsloom_fetch_responses_total", kind="page", host="127.0.0.1", status_class="2xx") == 2
    assert delta("newsloom_fetched_bytes_total", kind="page") > 0
    assert delta("newsloom_extractions_total", outcome="ok") == 2
    assert delta("newsloom_extraction_duration_seconds_count") == 2
    assert delta("newsloom_story_size_articles_count") == 2  # both articles linked
    assert delta("newsloom_stories_created_total") >= 1
    assert delta("newsloom_http_request_duration_seconds_count", method="GET", route="/v1/feeds/{feed_id}",
                 status="200") == 1
    # The queue gauges are read from the database at scrape time, cached 5 s per app: a new app reads them now.
    with running_app(settings.model_copy(update={"poller_enabled": False})) as fresh:
        gauges = await asyncio.to_thread(scrape, fresh)
    assert gauges[("newsloom_feeds", (("state", "active"),))] == 1
    assert gauges[("newsloom_feeds_due", ())] == 0 and gauges[("newsloom_pages_pending", ())] == 0
    assert gauges[("newsloom_webhook_deliveries_pending", ())] == 0


def test_json_logs_carry_the_request_id(service_factory):
    with service_factory(NEWSLOOM_LOG_FORMAT="json", NEWSLOOM_POLLER_ENABLED="false") as svc:
        echoed = httpx.get(f"{svc.base}/v1/articles", headers={"X-Request-ID": "req-abc.123"})
        assert echoed.headers["x-request-id"] == "req-abc.123"
        generated = httpx.get(f"{svc.base}/v1/feeds").headers["x-request-id"]
        assert len(generated) == 32 and generated != "req-abc.123"
        bogus = httpx.get(f"{svc.base}/v1/feeds", headers={"X-Request-ID": "bad id with spaces"})
        assert bogus.headers["x-request-id"] != "bad id with spaces"  # replaced, not echoed into logs
        line = svc.wait_for_log(r'"request_id": "req-abc\.123"')[0]
        entry = json.loads(line)
        assert entry["level"] == "INFO" and "/v1/articles" in entry["message"]
        svc.wait_for_log(generated)
    lines = [line for line in svc.lines if line.strip() and line != "<exited>"]
    for line in lines:
        json.loads(line)  # every line is one JSON object
    assert any("Application startup complete" in json.loads(line)["message"] for line in lines)


# -- graceful shutdown -------------------------------------------------------------------------


async def _held_leases(url: str) -> list[tuple]:
    engine = create_engine(url)
    async with engine.connect() as conn:
        rows = []
        for table in ("feeds", "articles", "deliveries"):
            result = await conn.execute(sa.text(f"SELECT id, lease_owner FROM {table} WHERE lease_owner IS NOT NULL "
                                                "OR lease_until IS NOT NULL"))
            rows += [(table, *row) for row in result.all()]
    await engine.dispose()
    return rows


def _feed_with_a_held_page(server, prefix: str, titles: list[str]) -> tuple[str, threading.Event, threading.Event]:
    """A news feed of two items on the test server under ``prefix``: the first page served at once,
    the second held open until the returned ``let_page_go`` is set (``page_requested`` is set when
    it is asked for). Returns (feed URL, page_requested, let_page_go)."""
    page_requested, let_page_go = threading.Event(), threading.Event()

    def held_page(request) -> Route:
        page_requested.set()
        let_page_go.wait(120)
        return Route(ARTICLE_HTML.format(title=titles[1]).encode(), 200, {"Content-Type": "text/html"})

    links = [server.add(f"{prefix}/0.html", ARTICLE_HTML.format(title=titles[0]), Content_Type="text/html"),
             server.url(f"{prefix}/1.html")]
    server.add(f"{prefix}/1.html", held_page)
    feed = rss([{"title": t, "link": link} for t, link in zip(titles, links, strict=True)],
               start=datetime.now(UTC) + timedelta(hours=4))  # dated after the subscription: news
    return server.add(f"{prefix}/feed.xml", feed, Content_Type="application/rss+xml"), page_requested, let_page_go


def _titles_received(posts) -> set[str]:
    return {json.loads(p.body)["data"]["title"] for p in posts if p.path == "/sink"}


def _subscribe_until_page_and_delivery_are_in_flight(svc, server, feed_url: str, page_requested: threading.Event) -> None:
    """A webhook subscription to the test server's /sink (held open: ``server.release`` cleared)
    and the feed subscribed; returns once the held page is being fetched and the first article's
    event is being delivered."""
    sub = httpx.post(f"{svc.base}/v1/subscriptions", json={"url": server.url("/sink"), "event_types": ["article.created"]})
    assert sub.status_code == 201, sub.text
    assert httpx.post(f"{svc.base}/v1/feeds", json={"url": feed_url}, timeout=60).status_code == 201
    assert page_requested.wait(120), "the second page was never requested"
    server.wait_for_posts(1, "/sink", timeout=120)  # the first article's event is in flight


def test_sigterm_mid_poll_releases_leases_and_loses_nothing(server, service_factory, database_url: str):
    """SIGTERM while a page fetch and a webhook delivery are held open by the test server: the
    process shuts down within its grace period, no feed, page or delivery stays leased (with the
    default 300 s lease, a held lease would stall the restart), and after a restart the page is
    extracted and every event arrives."""
    titles = ["Bridge opens after ten years", "Council approves new budget"]
    feed_url, page_requested, let_page_go = _feed_with_a_held_page(server, "/s", titles)
    env = {"NEWSLOOM_SHUTDOWN_GRACE": "1", "NEWSLOOM_WEBHOOK_RETRY_SCHEDULE": "[1, 1, 1, 1]"}

    server.release.clear()  # the receiver holds every POST open
    with service_factory(**env) as svc:
        _subscribe_until_page_and_delivery_are_in_flight(svc, server, feed_url, page_requested)
        svc.proc.send_signal(signal.SIGTERM)
        # uvicorn finishes its shutdown, then re-raises the signal: the exit status says "terminated by SIGTERM"
        assert svc.proc.wait(60) == -signal.SIGTERM
        svc.wait_for_log(r"shutdown: released leases: feeds \d+, pages 1, deliveries 1")
    assert asyncio.run(_held_leases(database_url)) == []

    let_page_go.set()
    server.release.set()
    with service_factory(**env) as svc:
        server.wait_until(lambda posts: _titles_received(posts) == set(titles), timeout=120)
        articles = httpx.get(f"{svc.base}/v1/articles").json()["items"]
    assert sorted(a["title"] for a in articles) == sorted(titles)
    assert {a["extraction_status"] for a in articles} == {"ok"}


def test_after_sigkill_the_successor_takes_the_dead_process_leases_at_once(server, service_factory, database_url: str):
    """SIGKILL while a page fetch and a webhook delivery are held open: the leases stay behind (the
    default 300 s), and the next process on this machine releases them at start-up, because their
    owner is provably dead; the page is extracted and every event arrives well within the lease."""
    titles = ["Harbour reopens after storm", "Museum announces new wing"]
    feed_url, page_requested, let_page_go = _feed_with_a_held_page(server, "/k", titles)
    env = {"NEWSLOOM_WEBHOOK_RETRY_SCHEDULE": "[1, 1, 1, 1]"}  # NEWSLOOM_LEASE_SECONDS: the default 300

    server.release.clear()  # the receiver holds every POST open
    with service_factory(**env) as svc:
        _subscribe_until_page_and_delivery_are_in_flight(svc, server, feed_url, page_requested)
        svc.proc.kill()  # SIGKILL: no shutdown, the leases stay behind
        svc.proc.wait(60)
    held = asyncio.run(_held_leases(database_url))
    assert {table for table, *_ in held} >= {"articles", "deliveries"}, held

    let_page_go.set()
    server.release.set()
    with service_factory(**env) as svc:
        svc.wait_for_log(r"start-up: released the leases of dead processes: feeds \d+, pages 1, deliveries 1")
        server.wait_until(lambda posts: _titles_received(posts) == set(titles), timeout=120)
        articles = httpx.get(f"{svc.base}/v1/articles").json()["items"]
    assert sorted(a["title"] for a in articles) == sorted(titles)
    assert {a["extraction_status"] for a in articles} == {"ok"}


async def test_postgres_plans_each_statement_for_its_parameters(database_url):
    """A generic plan cached while ``articles`` was empty would scan the table for every stored
    entry (service.db.create_engine); PostgreSQL connections must plan each statement afresh."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            if engine.dialect.name != "postgresql":
                assert (await conn.execute(sa.text("PRAGMA foreign_keys"))).scalar_one() == 1
                return
            assert (await conn.execute(sa.text("SHOW plan_cache_mode"))).scalar_one() == "force_custom_plan"
    finally:
        await engine.dispose()
