"""End to end, as a user runs it: `newsloom serve` in a subprocess, feeds added through the API,
feed documents and real news pages served over HTTP on 127.0.0.1, results read through the API."""

from __future__ import annotations

import httpx

from tests.corpus_feeds import FUNDUS_PAGES, paragraphs, serve_fundus_feed


def _all_articles(base: str) -> list[dict]:
    items, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = httpx.get(f"{base}/v1/articles", params=params).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_poll_once_stores_extracted_articles_served_by_the_api(corpus, server, service_factory):
    feed_url, expected = serve_fundus_feed(server, corpus, FUNDUS_PAGES)
    with service_factory(NEWSLOOM_POLLER_ENABLED="false") as svc:
        created = httpx.post(f"{svc.base}/v1/feeds", json={"url": feed_url}, timeout=60)
        assert created.status_code == 201, created.text
        feed_id = created.json()["id"]
        # Subscribing fetched the feed once and stored its entries (its first poll).
        assert created.json()["article_count"] == len(FUNDUS_PAGES)
        assert len([p for p, _h in server.requests if feed_url.endswith(p)]) == 1

        run = svc.run_cli("poll", "--once")
        assert run.returncode == 0, run.stderr
        assert "feeds polled: 0" in run.stdout
        assert f"pages: {len(FUNDUS_PAGES)} (extracted: {len(FUNDUS_PAGES)}, failed: 0," in run.stdout

        listed = _all_articles(svc.base)  # walks the keyset pages, two items at a time
        assert sorted(a["url"] for a in listed) == sorted(expected)
        for summary in listed:
            truth = expected[summary["url"]]
            article = httpx.get(f"{svc.base}/v1/articles/{summary['id']}").json()
            assert article["title"] == truth["title"]
            assert article["extraction_status"] == "ok" and article["text_source"] == "page"
            text = " ".join(article["text"].split())
            truth_paragraphs = paragraphs(truth["articleBody"])
            assert truth_paragraphs[-1] in text, summary["url"]
            assert truth_paragraphs[1] in text, summary["url"]
            assert article["word_count"] > 100
            assert "\n\n" in article["text"]

        feed = httpx.get(f"{svc.base}/v1/feeds/{feed_id}").json()
        assert feed["article_count"] == len(FUNDUS_PAGES)
        assert feed["last_status"] == 200 and feed["state"] == "active" and feed["last_error"] is None

        # A second run finds nothing due and stores nothing twice.
        again = svc.run_cli("poll", "--once")
        assert "feeds polled: 0" in again.stdout
        assert len(_all_articles(svc.base)) == len(FUNDUS_PAGES)


def test_serve_polls_a_new_feed_at_once_and_keeps_feed_text_for_dead_pages(corpus, server, service_factory):
    feed_url, expected = serve_fundus_feed(server, corpus, FUNDUS_PAGES[:2])
    server.add("/broken.html", "boom", status=500, Content_Type="text/html")
    dead = server.add("/feeds/dead.xml", (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Dead links</title>'
        f"<item><title>Gone page</title><link>{server.url('/missing.html')}</link>"
        "<description>&lt;p&gt;The feed&amp;#8217;s own summary.&lt;/p&gt;</description></item>"
        "</channel></rss>"), Content_Type="application/rss+xml")
    with service_factory(NEWSLOOM_PAGE_MAX_ATTEMPTS="1") as svc:
        assert httpx.post(f"{svc.base}/v1/feeds", json={"url": feed_url}, timeout=60).status_code == 201
        assert httpx.post(f"{svc.base}/v1/feeds", json={"url": dead}, timeout=60).status_code == 201
        svc.wait_for_log(r"article \d+ extracted", count=2)
        svc.wait_for_log(r"article \d+ page failed \(final\): page: HTTP 404")

        articles = _all_articles(svc.base)
        assert len(articles) == 3
        by_title = {a["title"]: a for a in articles}
        gone = httpx.get(f"{svc.base}/v1/articles/{by_title['Gone page']['id']}").json()
        assert gone["extraction_status"] == "failed"
        assert gone["extraction_error"] == "page: HTTP 404"
        assert gone["text_source"] == "feed"
        assert gone["text"] == "The feed\u2019s own summary."
        for truth in expected.values():
            assert by_title[truth["title"]]["extraction_status"] == "ok"
