"""Extraction bug cases (BL-27, BL-28, BL-30, BL-32 from ../shared/bug-cases) and walls, through the
real poller over HTTP where the case has a feed, checked through the API."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.ingest.pages.extractor import ExtractionError, extract_article
from tests.corpus_feeds import rss
from tests.pipeline import api_articles, poll_once, rehost


def _serve_page_feed(server, page: bytes, path: str, title: str) -> str:
    url = server.add(path, page, Content_Type="text/html; charset=utf-8")
    return server.add(path + ".xml", rss([{"title": title, "link": url}]), Content_Type="application/rss+xml")


# -- BL-27: comments ---------------------------------------------------------------------------


def test_bl27_comments_are_not_article_text(bug_cases):
    text = extract_article((bug_cases / "BL-27.html").read_bytes(), "https://blog.example.org/k").text
    assert "The new scheduler replaces the old fairness heuristics with explicit deadlines." in text
    assert "Benchmarks show lower latency for interactive tasks without hurting throughput." in text
    assert "COMMENT-TEXT-1" not in text and "COMMENT-TEXT-2" not in text


async def test_bl27_through_the_poller(bug_cases, server, poller, sessions, settings):
    feed = _serve_page_feed(server, (bug_cases / "BL-27.html").read_bytes(), "/bl27", "Kernel scheduler changes explained")
    await poll_once(poller, sessions, feed)
    [article] = await api_articles(settings, sessions)
    assert article["extraction_status"] == "ok" and article["text_source"] == "page"
    assert "explicit deadlines" in article["text"] and "COMMENT-TEXT" not in article["text"]


# -- BL-28: lists, headings, tables -------------------------------------------------------------


@pytest.mark.parametrize("formatting", [False, True])
def test_bl28_lists_headings_and_cells_survive(bug_cases, formatting):
    text = extract_article((bug_cases / "BL-28.html").read_bytes(), "https://money.example.org/p", formatting=formatting).text
    for marker in ("LIST-ITEM-1", "LIST-ITEM-2", "LIST-ITEM-3", "CELL-BOLD-PLAN-A", "CELL-BOLD-PLAN-B",
                   "Option A: employer-funded", "Comparison", "Mon 10:00-18:00", "Wed 09:00-17:00", "1.1%"):
        assert marker in text, (marker, text)


# -- BL-30: publication date --------------------------------------------------------------------


async def test_bl30_date_comes_from_dc_date_not_history_or_issue_line(bug_cases, server, poller, sessions, settings):
    hosts = ["journal.example.org"]
    server.add("/articles/10.9999/example-2136-8", (bug_cases / "BL-30.html").read_bytes(), Content_Type="text/html; charset=utf-8")
    feed = server.add("/bl30.xml", rehost((bug_cases / "BL-30.feed.xml").read_bytes(), hosts, server.base),
                      Content_Type="application/rss+xml")
    await poll_once(poller, sessions, feed)
    [article] = await api_articles(settings, sessions)
    assert article["extraction_status"] == "ok"
    assert article["published_at"].startswith("2023-01-02"), article["published_at"]
    assert datetime.fromisoformat(article["published_at"]) <= datetime.now(UTC)


# -- BL-32: language ----------------------------------------------------------------------------


async def test_bl32_text_language_beats_lang_attribute_and_feed(bug_cases, server, poller, sessions, settings):
    hosts = ["local.example.org"]
    server.add("/es/movilidad", (bug_cases / "BL-32a.html").read_bytes(), Content_Type="text/html; charset=utf-8")
    server.add("/en/boardroom", (bug_cases / "BL-32b.html").read_bytes(), Content_Type="text/html; charset=utf-8")
    feed = server.add("/bl32.xml", rehost((bug_cases / "BL-32.feed.xml").read_bytes(), hosts, server.base),
                      Content_Type="application/rss+xml")
    await poll_once(poller, sessions, feed)
    by_title = {a["title"]: a for a in await api_articles(settings, sessions)}
    spanish = by_title["Nuevo plan de movilidad"]
    assert spanish["language"] == "es" and spanish["language_confidence"] >= 0.9
    short = by_title["Change in Boardroom"]
    assert short["language"] in ("en", None)  # the feed's <language>, never a guess from three words
    assert short["language_confidence"] is None


# -- walls ----------------------------------------------------------------------------------------

PAYWALL_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Budget talks collapse</title>
<meta property="og:title" content="Budget talks collapse"></head><body><article><h1>Budget talks collapse</h1>
<p>Negotiators walked out on Tuesday after</p>
<div class="paywall"><p>Subscribe to continue reading. Already a subscriber? Sign in.</p></div>
</article></body></html>"""

CONSENT_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Privacy</title></head><body>
<div class="consent"><h2>We value your privacy</h2><p>We and our partners use cookies to store and access information
on your device. Click Accept all cookies to continue, or manage your privacy settings.</p>
<button>Accept all</button></div></body></html>"""

SHELL_PAGE = """<!doctype html><html><head><title>News</title><script>window.__APP__={};""" + "var x=1;" * 400 + """</script></head>
<body><div id="root"></div><noscript>Please enable JavaScript to read this article.</noscript></body></html>"""

FULL_CONTENT = "".join(
    f"<p>Paragraph {i} of the whole article as the publisher syndicates it in the feed, with enough words "
    "to stand on its own as a real paragraph of reporting about the budget negotiations.</p>"
    for i in range(8)
)


def _feed_with_content(items: list[dict]) -> str:
    body = "".join(
        f"<item><title>{i['title']}</title><link>{i['link']}</link><guid>{i['link']}</guid>"
        f"<description>{i.get('summary', 'Short summary.')}</description>"
        + (f"<content:encoded><![CDATA[{i['content']}]]></content:encoded>" if i.get("content") else "")
        + "</item>"
        for i in items
    )
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
            f"<channel><title>Walls</title><link>http://127.0.0.1/</link><description>d</description>{body}</channel></rss>")


# A short free article whose page carries a newsletter sign-up box (with "Subscribe" and
# "Already a subscriber?") inside the article element.
NIGHT_BUSES = "".join(
    f"<p>{sentence}</p>" for sentence in (
        "The city council voted on Monday to extend the night bus network to the northern districts, after two "
        "years of complaints from shift workers who said the last connections left far too early.",
        "The new lines will run every thirty minutes between midnight and five in the morning, starting in March.",
        "Transport officials said the extension would cost about four million euros a year.",
    )
)
NEWSLETTER_PAGE = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Night buses extended</title></head>
<body><main><article><h1>Night buses extended</h1>{NIGHT_BUSES}
<div class="newsletter-signup piano-inline"><h3>The Morning Briefing</h3><p>Subscribe to read the day's top stories in
your inbox. Already a subscriber? Manage your newsletter.</p><form><input type="email"><button>Subscribe</button></form>
</div></article></main></body></html>"""

# The article sits in an <aside> after a consent-platform dialog.
CONSENT_NEXT_TO_ARTICLE = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Night buses</title></head>
<body><div id="cmp-banner" class="cookie-consent"><h2>We value your privacy</h2><p>We and our partners use cookies to
store and access information on your device. Click Accept all cookies to continue, or manage your privacy settings.</p>
<button>Accept all</button></div><aside class="story"><h1>Night buses extended</h1>{NIGHT_BUSES * 3}</aside></body></html>"""


@pytest.mark.parametrize(("page", "kind"), [(PAYWALL_PAGE, "paywall"), (CONSENT_PAGE, "consent")])
def test_walls_are_flags_and_their_wording_is_not_text(page, kind):
    extracted = extract_article(page.encode(), "https://news.example.org/a")
    assert extracted.access == kind and extracted.access_reason
    assert "Subscribe" not in extracted.text and "cookies" not in extracted.text


def test_a_paywall_teaser_is_kept_as_text():
    extracted = extract_article(PAYWALL_PAGE.encode(), "https://news.example.org/a")
    assert extracted.text == "Negotiators walked out on Tuesday after"


def test_a_script_shell_is_no_article():
    with pytest.raises(ExtractionError, match="script-shell"):
        extract_article(SHELL_PAGE.encode(), "https://news.example.org/a")


def test_a_newsletter_box_is_not_a_paywall():
    extracted = extract_article(NEWSLETTER_PAGE.encode(), "https://news.example.org/a")
    assert extracted.access == "free", extracted.access_reason
    assert extracted.text.startswith("The city council voted on Monday")
    assert "Transport officials said" in extracted.text


def test_an_article_next_to_a_consent_dialog_is_found_by_the_second_route():
    extracted = extract_article(CONSENT_NEXT_TO_ARTICLE.encode(), "https://news.example.org/a")
    assert extracted.access == "free"
    assert extracted.text.startswith("The city council voted on Monday") and extracted.word_count > 150
    assert "cookies" not in extracted.text


def test_a_real_article_is_not_a_wall(corpus):
    import gzip

    html = gzip.decompress((corpus / "extraction-fundus/html/uk/BBC_2026_04_25.html.gz").read_bytes())
    assert extract_article(html, "https://www.bbc.com/news/articles/clymn8zyrp9o").access == "free"


def test_wsj_pages_keep_their_teaser_with_the_paywall_flag(corpus):
    import gzip

    for key in ("042bb7b5fedab6eac7db576522b89b93904c237d344bcbe14a6a5ab7f7335856",
                "7ab16ade32386ece353b8d31fc3bb7e660189efd5bf3c8549aaba101ad3f5ef5"):
        html = gzip.decompress((corpus / f"extraction/html/{key}.html.gz").read_bytes())
        extracted = extract_article(html, "https://www.wsj.com/articles/x")
        assert extracted.access == "paywall" and "isAccessibleForFree" in extracted.access_reason
        assert extracted.word_count > 50


async def test_walled_pages_keep_the_best_text_and_say_where_it_came_from(server, poller, sessions, settings):
    paywalled = server.add("/paywalled", PAYWALL_PAGE, Content_Type="text/html; charset=utf-8")
    teaser = server.add("/teaser", PAYWALL_PAGE.replace("/paywalled", "/teaser"), Content_Type="text/html; charset=utf-8")
    consent = server.add("/consent", CONSENT_PAGE, Content_Type="text/html; charset=utf-8")
    shell = server.add("/shell", SHELL_PAGE, Content_Type="text/html; charset=utf-8")
    newsletter = server.add("/newsletter", NEWSLETTER_PAGE, Content_Type="text/html; charset=utf-8")
    aside = server.add("/aside", CONSENT_NEXT_TO_ARTICLE, Content_Type="text/html; charset=utf-8")
    feed = server.add("/walls.xml", _feed_with_content([
        {"title": "Budget talks collapse", "link": paywalled, "content": FULL_CONTENT},
        {"title": "Teaser only", "link": teaser, "summary": "Talks"},
        {"title": "Consent only", "link": consent},
        {"title": "Shell only", "link": shell, "content": "<p>Only a teaser…</p>"},
        {"title": "Night buses", "link": newsletter},
        {"title": "Night buses next to a dialog", "link": aside},
    ]), Content_Type="application/rss+xml")
    await poll_once(poller, sessions, feed)
    by_title = {a["title"]: a for a in await api_articles(settings, sessions)}

    full = by_title["Budget talks collapse"]
    assert full["extraction_status"] == "ok" and full["text_source"] == "feed"
    assert full["access"] == "paywall" and full["access_reason"]
    assert full["text"].startswith("Paragraph 0 of the whole article") and "Subscribe" not in full["text"]
    assert full["text"].count("\n\n") == 7 and full["word_count"] > 150

    teaser = by_title["Teaser only"]  # the page's teaser is more than the feed's one-word summary
    assert teaser["access"] == "paywall" and teaser["text_source"] == "page"
    assert teaser["text"] == "Negotiators walked out on Tuesday after" and teaser["extraction_status"] == "ok"

    consent = by_title["Consent only"]  # nothing but the dialog: the feed's summary stays
    assert consent["access"] == "consent" and consent["text"] == "Short summary." and consent["text_source"] == "feed"

    shell = by_title["Shell only"]
    assert shell["extraction_status"] == "failed" and "script-shell" in shell["extraction_error"]
    assert shell["text"] == "Only a teaser…" and shell["text_source"] == "feed"

    for title in ("Night buses", "Night buses next to a dialog"):
        free = by_title[title]
        assert free["access"] == "free" and free["text_source"] == "page" and free["extraction_status"] == "ok"
        assert free["text"].startswith("The city council voted on Monday"), free["text"]


# -- a hanging or crashing extraction does not stop ingestion ----------------------------------


async def test_hanging_and_crashing_pages_fail_and_the_rest_is_ingested(corpus, server, sessions, settings):
    from service.net.fetcher import create_client
    from service.ingest.poller import Poller
    from service.ingest.workers import WorkerPool
    from tests import worker_functions as wf

    page = server.url("/corpus/extraction-fundus/html/uk/BBC_2026_04_25.html")
    hang = server.add("/hang", b"<html><body><p>" + wf.HANG_MARKER + b"</p></body></html>", Content_Type="text/html")
    crash = server.add("/crash", b"<html><body><p>" + wf.CRASH_MARKER + b"</p></body></html>", Content_Type="text/html")
    feed = server.add("/mixed.xml", rss([{"title": "Hangs", "link": hang}, {"title": "Crashes", "link": crash},
                                         {"title": "Fine", "link": page}]), Content_Type="application/rss+xml")
    pool = WorkerPool(workers=1, timeout=10)
    try:
        async with create_client(settings) as client:
            poller = Poller(settings, sessions, client, pool)
            poller.extract = wf.extract_or_misbehave
            await poll_once(poller, sessions, feed)
    finally:
        pool.close()
    by_title = {a["title"]: a for a in await api_articles(settings, sessions)}
    assert by_title["Hangs"]["extraction_status"] == "failed"
    assert "time limit" in by_title["Hangs"]["extraction_error"]
    assert by_title["Crashes"]["extraction_status"] == "failed"
    assert "worker process died" in by_title["Crashes"]["extraction_error"]
    assert by_title["Fine"]["extraction_status"] == "ok" and by_title["Fine"]["word_count"] > 100


# -- bylines and publishers are not text or authors ------------------------------------------------

GERMAN_BODY = "".join(
    f"<p>{s}</p>" for s in (
        "Das Bundesverfassungsgericht hat am Dienstag über die Reform des Wahlrechts entschieden und wesentliche "
        "Teile des Gesetzes für mit dem Grundgesetz vereinbar erklärt.",
        "Die Richterinnen und Richter beanstandeten allein die Streichung der Grundmandatsklausel, die bis zu einer "
        "Neuregelung weiter gelten soll.",
        "Mehrere Landesregierungen und eine Bundestagsfraktion hatten gegen die Reform geklagt.",
    )
)
BYLINE_BLOCK_PAGE = f"""<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Wahlrechtsreform | Legal Tribune Online</title>
<meta property="og:site_name" content="Legal Tribune Online">
<script type="application/ld+json">{{"@context": "https://schema.org", "@type": "NewsArticle",
"headline": "Karlsruhe billigt Wahlrechtsreform weitgehend", "datePublished": "2024-07-30T10:15:00+02:00",
"author": [{{"@type": "Organization", "name": "Legal Tribune Online"}}],
"publisher": {{"@type": "Organization", "name": "Legal Tribune Online"}}}}</script></head>
<body><article><h1>Karlsruhe billigt Wahlrechtsreform weitgehend</h1>
<p>Von: Anna Muster | Veröffentlicht am 30.07.2024, 10:15 Uhr | 3 Minuten Lesezeit</p>{GERMAN_BODY}</article></body></html>"""

AGENCY_PAGE = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Night buses extended</title>
<script type="application/ld+json">{{"@context": "https://schema.org", "@type": "NewsArticle", "headline": "Night buses extended",
"author": {{"@type": "Organization", "name": "AFP"}}, "publisher": {{"@type": "Organization", "name": "AFP"}}}}</script></head>
<body><article><h1>Night buses extended</h1><p>By Jane Roe</p>{NIGHT_BUSES}</article></body></html>"""


def test_a_byline_and_date_block_is_not_text_and_the_publisher_is_no_author():
    extracted = extract_article(BYLINE_BLOCK_PAGE.encode(), "https://www.lto.de/recht/nachrichten/n/wahlrecht")
    assert extracted.text.startswith("Das Bundesverfassungsgericht hat am Dienstag"), extracted.text
    assert "Lesezeit" not in extracted.text and "Veröffentlicht" not in extracted.text
    assert "Legal Tribune Online" not in extracted.authors


def test_an_agency_named_as_author_is_the_publisher_and_the_byline_line_is_not_text():
    extracted = extract_article(AGENCY_PAGE.encode(), "https://www.afp.com/en/news/night-buses")
    assert extracted.text.startswith("The city council voted on Monday"), extracted.text
    assert "AFP" not in extracted.authors


def test_a_label_before_a_capitalised_von_is_not_part_of_the_author():
    from service.ingest.pages.metadata import clean_authors

    assert clean_authors(["Capital Von Jemima Kelly", "Anna von Bismarck", "Von: Anna Muster"]) == [
        "Jemima Kelly", "Anna von Bismarck", "Anna Muster"]
