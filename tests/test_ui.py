"""The story browser (``service.ui``) in headless Chromium: Debian's ``/usr/bin/chromium``, driven
by Playwright's Python package. The story is built by the real pipeline from the bilingual
scenario of ``test_stories_pipeline.py`` (feeds and pages served on 127.0.0.1, polled, extracted
and linked), then read through the service served by uvicorn; SQLite, and PostgreSQL when
configured. Every wait is on a page condition (Playwright's ``expect``), never a sleep.

Screenshots of the list and of a story at desktop and phone width go to ``docs/screenshots/`` with
``NEWSLOOM_UPDATE_SCREENSHOTS=1``, else to the test's temporary folder."""

from __future__ import annotations

import os
import re
import struct
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa
from playwright.async_api import Browser, Page, async_playwright, expect

from service.api.app import create_app
from service.auth import create_key
from service.db import Reader
from tests import story_texts as st
from tests.conftest import ROOT, running_app
from tests.test_stories_pipeline import _poll, _serve_outlets  # the bilingual scenario, reused as it is

CHROMIUM = Path(os.environ.get("NEWSLOOM_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
expect.set_options(timeout=20_000)  # a shared, busy machine: generous, and only ever a ceiling on a wait


@pytest.fixture
async def browser() -> Browser:
    """Headless Chromium (a fresh profile: Playwright gives each launch its own user-data-dir)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM}: .ci/run installs it")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver; .ci/run does)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield launched
        await launched.close()


@pytest.fixture
def shots(tmp_path, database_url) -> Path:
    """Where screenshots go: docs/screenshots with NEWSLOOM_UPDATE_SCREENSHOTS=1 (SQLite run only), else tmp."""
    if os.environ.get("NEWSLOOM_UPDATE_SCREENSHOTS") == "1" and database_url.startswith("sqlite"):
        return ROOT / "docs" / "screenshots"
    return tmp_path


@asynccontextmanager
async def open_page(browser: Browser, viewport: dict) -> Page:
    """A page in a fresh browser context; on leaving, no script error, no refused asset (a CSP
    violation is a console error) and no request to any other origin than the service's."""
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # An error page's own status (401, 404, 422) is logged as "Failed to load resource": expected here.
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Failed to load resource" not in m.text else None)
    origins: set[str] = set()
    page.on("request", lambda r: origins.add("{0.scheme}://{0.netloc}".format(urlsplit(r.url))))
    try:
        yield page
        assert errors == []
        assert len(origins) == 1, origins  # everything from the service itself: no CDN
    finally:
        await context.close()


async def screenshot(page: Page, path: Path, width: int) -> None:
    """A full-page PNG at ``path``, checked to be a PNG of the viewport's width."""
    await page.screenshot(path=str(path), full_page=True)
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">I", head[16:20])[0] == width


async def fits_width(page: Page) -> bool:
    """No horizontal scrolling: the page is no wider than the window."""
    return await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_list_filter_and_a_bilingual_story_in_the_browser(server, poller, sessions, api, browser, shots):
    await _poll(poller, sessions, _serve_outlets(server))

    async with open_page(browser, DESKTOP) as page:
        await page.goto(f"{api}/")
        await expect(page).to_have_url(f"{api}/ui/")  # the service's front page is the browser
        rows = page.locator("li.story")
        await expect(rows).to_have_count(2)
        bridge = rows.filter(has_text=st.WELT_TITLE)
        await expect(bridge.locator(".lang")).to_have_text(["de", "en"])
        await expect(bridge.locator(".outlets")).to_have_text("bloomberg.com, dailyglobe.com, welt.de")
        await expect(bridge.locator(".meta")).to_contain_text("3 articles")
        await expect(bridge.locator(".age")).to_contain_text("years ago")  # the scenario's reports are of May 2024
        await expect(rows.filter(has_text=st.ORCHARD_TITLE).locator(".lang")).to_have_text(["en"])
        await screenshot(page, shots / "ui-stories-desktop.png", DESKTOP["width"])

        # Filter by language: the form's blank fields are dropped, the URL is the API's parameters.
        await page.get_by_label("Language", exact=True).fill("de")
        await page.get_by_role("button", name="Show stories").click()
        await expect(page).to_have_url(f"{api}/ui/?lang=de")
        await expect(rows).to_have_count(1)
        await expect(rows.locator(".title")).to_have_text(st.WELT_TITLE)
        await expect(page.get_by_label("Language", exact=True)).to_have_value("de")
        # More of the API's filters, and an honest empty state.
        await page.goto(f"{api}/ui/?min_languages=2")
        await expect(rows.locator(".title")).to_have_text([st.WELT_TITLE])
        await page.goto(f"{api}/ui/?q=apple+harvest")
        await expect(rows.locator(".title")).to_have_text([st.ORCHARD_TITLE])
        await page.goto(f"{api}/ui/?lang=fr")
        await expect(rows).to_have_count(0)
        await expect(page.locator(".empty")).to_contain_text("No story matches these filters")
        # A filter the API refuses is a page that says why, not JSON.
        response = await page.goto(f"{api}/ui/?lang=x")
        assert response.status == 422
        await expect(page.locator("h1")).to_have_text("These filters cannot be used")
        await expect(page.locator(".error")).to_contain_text("lang")
        # Keyset paging with the API's cursor, one story a page, in the API's order.
        newest, older = (s["title"] for s in httpx.get(f"{api}/v1/stories").json()["items"])
        await page.goto(f"{api}/ui/?limit=1")
        await expect(rows.locator(".title")).to_have_text([newest])
        await page.get_by_role("link", name="Older stories").click()
        await expect(rows.locator(".title")).to_have_text([older])
        await expect(page).to_have_url(re.compile(r"\?limit=1&cursor="))
        await expect(page.get_by_role("link", name="Older stories")).to_have_count(0)
        await page.get_by_role("link", name="First page").click()
        await expect(rows.locator(".title")).to_have_text([newest])

        # Open the story from the list, with the keyboard only.
        await page.goto(f"{api}/ui/")
        await page.keyboard.press("Tab")
        await expect(page.locator(".skip")).to_be_focused()
        link = page.get_by_role("link", name=st.WELT_TITLE)
        for _ in range(20):
            if await link.evaluate("el => el === document.activeElement"):
                break
            await page.keyboard.press("Tab")
        await expect(link).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(page.locator("h1")).to_have_text(st.WELT_TITLE)

        # Both languages, the first report, the citation edges, the timeline.
        await expect(page.locator("main > .meta .lang")).to_have_text(["de", "en"])
        cards = page.locator("article.card")
        await expect(cards).to_have_count(3)
        await expect(cards.locator("h4[lang=de]")).to_have_count(1)
        await expect(cards.locator("h4[lang=en]")).to_have_count(2)
        await expect(page.locator(".first-report")).to_contain_text("welt.de")
        first_card = page.locator("article.card.first")
        await expect(first_card).to_have_count(1)
        await expect(first_card.locator("h4")).to_have_text(st.WELT_TITLE)
        await expect(first_card.locator(".badge")).to_have_text("First report")
        await expect(page.locator(".outlet-group h3")).to_have_text(["welt.de", "bloomberg.com", "dailyglobe.com"])
        await expect(cards.filter(has_text=st.GLOBE_TITLE).locator(".after")).to_have_text("+5 h after the first report")
        await expect(page.locator("li.edge")).to_have_text(
            ["dailyglobe.com → cites → welt.de", "dailyglobe.com → cites → bloomberg.com"]
        )
        await expect(page.locator("figure.timeline > svg .cite-edge")).to_have_count(2)  # the edges drawn between the marks
        await expect(page.locator("figure.timeline > svg .cite-edge title")).to_have_text(
            ["dailyglobe.com cites welt.de", "dailyglobe.com cites bloomberg.com"]
        )
        await expect(page.locator("figure.timeline > svg circle.mark")).to_have_count(3)
        await expect(page.locator("figure.timeline > svg circle.mark.first")).to_have_count(1)
        source = first_card.locator("h4 a")
        await expect(source).to_have_attribute("href", re.compile(r"/welt/ostbruecke\.html$"))
        # The stored text, opened in place (fetched with the page's own key check).
        await first_card.get_by_text("Read the stored text").click()
        await expect(first_card.locator(".stored .text")).to_contain_text("Stadtverwaltung")
        # An edge links to the cited article's card.
        await page.locator("li.edge a", has_text="welt.de").click()
        await expect(page).to_have_url(re.compile(r"#article-\d+$"))
        assert await fits_width(page)
        await screenshot(page, shots / "ui-story-desktop.png", DESKTOP["width"])
        story_url = page.url.split("#")[0]
        welt_id = (await first_card.get_attribute("id")).removeprefix("article-")

        # The stored text as a page of its own (the link the details hold without script).
        await page.goto(f"{api}/ui/articles/{welt_id}")
        await expect(page.locator("h1")).to_have_text(st.WELT_TITLE)
        await expect(page.locator(".reading .text")).to_contain_text("Bürgermeisterin Hanna Kessler")
        await page.get_by_role("link", name="Its story").click()
        await expect(page).to_have_url(f"{story_url}#article-{welt_id}")
        await page.goto(f"{api}/ui/articles/999999")
        await expect(page.locator("h1")).to_have_text("Not found")
        await page.goto(f"{api}/ui/stories/999999")
        await expect(page.locator(".error")).to_have_text("no story with id 999999")

    async with open_page(browser, PHONE) as page:
        await page.goto(f"{api}/ui/")
        await expect(page.locator("li.story")).to_have_count(2)
        assert await fits_width(page)
        await screenshot(page, shots / "ui-stories-phone.png", PHONE["width"])
        await page.goto(story_url)
        await expect(page.locator("li.edge")).to_have_count(2)
        assert await fits_width(page)
        await screenshot(page, shots / "ui-story-phone.png", PHONE["width"])


def test_every_error_under_ui_is_a_page(api):
    """An id that is not a number names no article (404, not "These filters cannot be used"), and
    what is refused before a page's route runs (a NUL or an oversized query string, a method the
    pages do not take, a missing static file) is a page too, never the API's JSON."""
    cases = {
        "/ui/articles/abc": (404, "there is no article abc: article ids are whole numbers"),
        "/ui/stories/0": (404, "there is no story 0: story ids are whole numbers"),
        "/ui/articles/12/text?x=1": (422, "unknown query parameter"),
        "/ui/?q=a%00b": (422, "NUL character"),
        "/ui/?lang=" + "x" * 5000: (414, "the query string exceeds"),
        "/ui/static/missing.css": (404, "Not Found"),
    }
    for path, (status, words) in cases.items():
        response = httpx.get(api + path)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"].startswith("text/html"), (path, response.headers["content-type"])
        assert words in response.text and "<h1>" in response.text, (path, response.text)
        assert "These filters cannot be used" not in response.text or status == 422, path
    for method in ("POST", "DELETE"):
        response = httpx.request(method, api + "/ui/")
        assert response.status_code == 405 and response.headers["content-type"].startswith("text/html"), response.text
        assert "GET" in response.headers["allow"]
    assert httpx.get(api + "/v1/articles?q=a%00b").headers["content-type"].startswith("application/problem+json")


async def test_with_auth_on_nothing_is_readable_without_a_read_key(server, poller, sessions, settings, browser, shots):
    await _poll(poller, sessions, _serve_outlets(server))
    async with sessions() as session:
        _, read = await create_key(session, "read")
    with running_app(settings.model_copy(update={"poller_enabled": False, "auth": True})) as base:
        for path in ("/ui/", "/ui/stories/1", "/ui/articles/1", "/ui/articles/1/text", "/ui/nowhere"):
            refused = httpx.get(base + path)
            assert refused.status_code == 401, path
            assert "Lindenfurt" not in refused.text and "Ostbrücke" not in refused.text, path
        assert httpx.get(f"{base}/ui/", headers={"Authorization": f"Bearer {read}"}).status_code == 200  # as the API takes it
        assert httpx.get(f"{base}/ui/", cookies={"newsloom_key": "nlk_wrong"}).status_code == 401

        async with open_page(browser, DESKTOP) as page:
            response = await page.goto(f"{base}/ui/?lang=de")
            assert response.status == 401
            await expect(page.locator("h1")).to_have_text("An API key is needed")
            await expect(page.locator(".error")).to_contain_text("a key with the read scope")
            await expect(page.locator("li.story")).to_have_count(0)
            await screenshot(page, shots / "ui-key-desktop.png", DESKTOP["width"])
            await page.get_by_label(re.compile("read scope")).fill("nlk_not_a_key")
            await page.get_by_role("button", name="Open stories").click()
            await expect(page.locator(".error")).to_have_text("the API key is unknown or revoked")
            await expect(page.locator("li.story")).to_have_count(0)

            await page.get_by_label(re.compile("read scope")).fill(read)
            await page.get_by_role("button", name="Open stories").click()
            await expect(page).to_have_url(f"{base}/ui/?lang=de")  # what was asked for, and no key in any URL
            await expect(page.locator("li.story .title")).to_have_text([st.WELT_TITLE])
            cookie = next(c for c in await page.context.cookies() if c["name"] == "newsloom_key")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/ui"
            assert await page.evaluate("document.cookie") == ""  # no script can read the key

            await page.get_by_role("button", name="Forget key").click()
            await expect(page.locator("h1")).to_have_text("An API key is needed")
            await expect(page.locator("li.story")).to_have_count(0)


async def test_a_story_page_costs_the_statements_of_the_api_call(server, poller, sessions, settings):
    """No N+1: the story page runs the API's statements for the story, whatever its size."""
    app = create_app(settings)
    app.state.sessions = sessions
    app.state.reader = reader = Reader(sessions)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ui") as client:
        empty = await client.get("/ui/")  # before any story: an honest empty state
        assert empty.status_code == 200 and "No stories yet" in empty.text and 'class="story"' not in empty.text
    await _poll(poller, sessions, _serve_outlets(server))
    statements: list[str] = []
    engine = reader.engine  # the API's reads and the pages' run on the reader's engine

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    async def run(client: httpx.AsyncClient, path: str) -> int:
        statements.clear()
        response = await client.get(path)
        assert response.status_code == 200, response.text
        return len(statements)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ui") as client:
            stories = (await client.get("/v1/stories")).json()["items"]
            bridge = next(s["id"] for s in stories if s["article_count"] == 3)
            apples = next(s["id"] for s in stories if s["article_count"] == 1)
            api = await run(client, f"/v1/stories/{bridge}")
            assert await run(client, f"/ui/stories/{bridge}") == api
            assert await run(client, f"/ui/stories/{apples}") == api  # one article or three: the same statements
            assert 3 <= api <= 4  # the story, its articles with their outlets, their citations, the story's outlets
            assert await run(client, "/ui/?lang=de") == await run(client, "/v1/stories?lang=de")
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def test_timeline_layout_and_wording():
    """The pure parts: marks placed by time in lanes per outlet, arrows only between marks, words for times."""
    from datetime import UTC, datetime, timedelta

    from service.shapes import CitationEdge, StoryArticle, StoryPublic
    from service.ui.pages import after, age
    from service.ui.timeline import LEFT, RIGHT, lay_out

    start = datetime(2024, 5, 6, 7, tzinfo=UTC)

    def article(id_: int, outlet: str | None, hours: float, lang: str | None, published: bool = True) -> StoryArticle:
        at = start + timedelta(hours=hours)
        return StoryArticle(id=id_, title=f"a{id_}", url=None, outlet=outlet, language=lang, published_at=at if published else None,
                            first_seen_at=at, duplicate_of=None, similarity=None)

    articles = [article(1, "welt.de", 0, "de"), article(2, None, 2, None, published=False), article(3, "welt.de", 4, "en")]
    edges = [CitationEdge(article_id=3, outlet="welt.de", cited_name="Welt", cited_outlet="welt.de", cited_article_id=1),
             CitationEdge(article_id=2, outlet=None, cited_name="Reuters", cited_outlet=None, cited_article_id=None)]
    story = StoryPublic(id=1, title="a1", first_seen_at=start, last_updated_at=start, article_count=3, outlet_count=1,
                        languages=["de", "en"], outlets=["welt.de"], first_reported=articles[0], articles=articles, citations=edges)
    timeline = lay_out(story)
    assert [(lane.outlet, [m.article.id for m in lane.marks]) for lane in timeline.lanes] == [("welt.de", [1, 3]), (None, [2])]
    marks = {m.article.id: m for lane in timeline.lanes for m in lane.marks}
    assert (marks[1].x, marks[2].x, marks[3].x) == (LEFT, (LEFT + RIGHT) / 2, RIGHT)
    assert [marks[i].first for i in (1, 2, 3)] == [True, False, False]
    assert (marks[1].tone, marks[3].tone, marks[2].tone) == (0, 1, 2)  # de, en, then no language
    assert len(timeline.arrows) == 1 and timeline.arrows[0].mid_y < marks[1].y  # within a lane: bent above it
    assert timeline.languages == ["de", "en", None]
    single = lay_out(story.model_copy(update={"articles": articles[:1], "citations": []}))
    assert [m.x for m in single.lanes[0].marks] == [LEFT] and single.arrows == []

    assert after(timedelta(minutes=45)) == "+45 min" and after(timedelta(hours=2, minutes=30)) == "+2 h 30 min"
    assert after(timedelta(days=3, hours=4)) == "+3 d 4 h" and after(timedelta(hours=5)) == "+5 h"
    now = start + timedelta(days=800)
    assert age(now - timedelta(seconds=5), now) == "just now" and age(now - timedelta(hours=3), now) == "3 h ago"
    assert age(now - timedelta(days=4), now) == "4 days ago" and age(start, now) == "2 years ago"
