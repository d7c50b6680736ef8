"""Every fetching/parsing case of ``../shared/bug-cases`` (see its README), served over real HTTP
and HTTPS on 127.0.0.1 under its ``example.org`` host names, ingested by the real poller, and
checked through the API. Extraction cases (BL-27/28/30/32) and webhooks (BL-34) live elsewhere."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from tests.ingest_helpers import api_client, articles, feed_api, make_due, subscribe

RSS = "application/rss+xml"


def _body(bug_cases, name: str) -> bytes:
    return (bug_cases / name).read_bytes()


async def _ingest(poller, sessions, url: str) -> int:
    feed_id = await subscribe(sessions, url)
    report = await poller.poll_due_feeds()
    assert report.feeds_polled >= 1
    return feed_id


async def test_bl01_bad_byte_in_utf8_does_not_turn_the_feed_into_mojibake(bug_cases, server, poller, sessions, settings):
    url = server.add("/feed.xml", _body(bug_cases, "BL-01.feed.xml"), host="bl01.example.org",
                     Content_Type="application/rss+xml; charset=utf-8")
    feed_id = await _ingest(poller, sessions, url)
    async with api_client(settings, sessions) as api:
        rows = await articles(api, feed_id)
    assert len(rows) == 2
    titles = {r["title"] for r in rows}
    assert "Café crème prices rise in Nörderstadt" in titles
    for row in rows:
        for value in (row["title"], row["summary"] or ""):
            assert not re.search("[ÃÅÄ][\u0080-\uffff]", value), value
    assert any("\ufffd" in (r["summary"] or "") for r in rows)


async def test_bl03_latin1_label_is_decoded_as_windows_1252(bug_cases, server, poller, sessions, settings):
    url = server.add("/feed.xml", _body(bug_cases, "BL-03.feed.xml"), host="bl03.example.org",
                     Content_Type="text/xml; charset=ISO-8859-1")
    feed_id = await _ingest(poller, sessions, url)
    async with api_client(settings, sessions) as api:
        (row,) = await articles(api, feed_id)
    assert row["title"] == "\u201cSmart\u201d quotes \u2013 it\u2019s the editor\u2019s pick\u2026"
    assert "€" in row["summary"] and "\u2018single\u2019" in row["summary"] and "\u2014" in row["summary"]
    assert not re.search("[\u0080-\u009f]", str(row))


async def test_bl04_utf8_bom_with_any_content_type(bug_cases, server, poller, sessions, settings):
    body = _body(bug_cases, "BL-04.feed.xml")
    assert body.startswith(b"\xef\xbb\xbf")
    variants = {"a": {"Content_Type": "application/rss+xml; charset=UTF-8"}, "b": {"Content_Type": "text/xml"}, "c": {}}
    async with api_client(settings, sessions) as api:
        for name, headers in variants.items():
            url = server.add(f"/{name}.xml", body, host="bl04.example.org", **headers)
            feed_id = await _ingest(poller, sessions, url)
            rows = await articles(api, feed_id)
            assert sorted(r["title"] for r in rows) == ["Inland: new rail timetable", "Panorama: river levels fall"]
            feed = await feed_api(api, feed_id)
            assert feed["title"] and not feed["title"].startswith("\ufeff")


async def test_bl05_html_entities_in_xml_are_recovered_with_a_warning(bug_cases, server, poller, sessions, settings):
    url = server.add("/feed.atom", _body(bug_cases, "BL-05.feed.xml"), host="bl05.example.org",
                     Content_Type="application/atom+xml")
    feed_id = await _ingest(poller, sessions, url)
    async with api_client(settings, sessions) as api:
        rows = await articles(api, feed_id)
        feed = await feed_api(api, feed_id)
    assert len(rows) == 2
    first = next(r for r in rows if r["title"] == "It\u2019s festival season")
    assert "\u201cLine-up\u201d" in first["summary"] and "\u2026" in first["summary"]
    assert feed["state"] == "active" and feed["last_error"].startswith("recovered with warnings")


async def test_bl07_rss_served_as_text_html_is_sniffed_as_a_feed(bug_cases, server, poller, sessions, settings):
    url = server.add("/feed", _body(bug_cases, "BL-07.feed.xml"), host="bl07.example.org",
                     Content_Type="text/html; charset=utf-8")
    feed_id = await _ingest(poller, sessions, url)
    async with api_client(settings, sessions) as api:
        rows = await articles(api, feed_id)
    assert sorted(r["title"] for r in rows) == ["Minister visits flood area", "New funding round opens"]


async def _published(poller, sessions, settings, server, bug_cases, name: str, content_type: str = RSS) -> dict[str, dict]:
    url = server.add(f"/{name}", _body(bug_cases, name), host="dates.example.org", Content_Type=content_type)
    feed_id = await _ingest(poller, sessions, url)
    async with api_client(settings, sessions) as api:
        return {r["url"]: r for r in await articles(api, feed_id)}


async def test_bl08_non_english_dates_are_right_or_null(bug_cases, server, poller, sessions, settings):
    rows = await _published(poller, sessions, settings, server, bug_cases, "BL-08.feed.xml")
    got = {url.rsplit("/", 2)[-2] + "/" + url.rsplit("/", 1)[-1]: r["published_at"] for url, r in rows.items()}
    assert got["de/1"] == "2019-11-01T03:52:59Z"
    assert got["de/2"] in ("2018-06-25T11:41:36Z", None)
    assert got["fi/1"] in ("2013-10-30T11:34:37Z", None) and (got["fi/1"] is None or got["fi/1"][5:7] != "11")
    assert got["en/1"] == "2019-11-01T03:52:59Z"


async def test_bl10_zone_abbreviations(bug_cases, server, poller, sessions, settings):
    rows = await _published(poller, sessions, settings, server, bug_cases, "BL-10.feed.xml")
    by_title = {r["title"]: r["published_at"] for r in rows.values()}
    assert by_title["MEST"] == "2015-04-30T06:57:00Z"
    assert by_title["EDT"] == "2016-07-15T16:24:00Z"
    assert by_title["CEST"] == by_title["Control numeric offset"] == "2024-07-29T10:00:00Z"


async def test_bl11_timestamps_without_zone_are_utc_in_atom_and_rss(bug_cases, server, poller, sessions, settings):
    atom = await _published(poller, sessions, settings, server, bug_cases, "BL-11.atom.xml", "application/atom+xml")
    rss = await _published(poller, sessions, settings, server, bug_cases, "BL-11.rss.xml")
    by_title = {r["title"]: r["published_at"] for r in [*atom.values(), *rss.values()]}
    assert by_title["Topic without zone"] == by_title["RSS pubDate without zone"] == "2022-12-14T22:02:55Z"
    assert by_title["Topic with zone"] == "2022-12-14T21:30:00Z"
    async with api_client(settings, sessions) as api:
        order = [r["title"] for r in await articles(api) if r["title"].startswith("Topic")]
    assert order == ["Topic without zone", "Topic with zone"]


async def _two_fetches(bug_cases, server, poller, sessions, first: str, second: str, host: str) -> int:
    bodies = [_body(bug_cases, first), _body(bug_cases, second)]
    url = server.add("/feed.xml", bodies[0], host=host, Content_Type=RSS)
    feed_id = await _ingest(poller, sessions, url)
    server.add("/feed.xml", bodies[1], host=host, Content_Type=RSS)
    await make_due(sessions, feed_id)
    await poller.poll_due_feeds()
    return feed_id


async def test_bl13_guid_changing_with_the_headline_updates_the_article(bug_cases, server, poller, sessions, settings):
    feed_id = await _two_fetches(bug_cases, server, poller, sessions, "BL-13.fetch1.xml", "BL-13.fetch2.xml", "bl13.example.org")
    async with api_client(settings, sessions) as api:
        rows = await articles(api, feed_id)
    assert [r["title"] for r in rows] == ["Council rejects budget after late vote"]


async def test_bl15_items_without_guid_are_not_duplicated(bug_cases, server, poller, sessions, settings):
    url = server.add("/feed.xml", _body(bug_cases, "BL-15.fetch1.xml"), host="bl15.example.org", Content_Type=RSS)
    feed_id = await _ingest(poller, sessions, url)
    async with api_client(settings, sessions) as api:
        assert len(await articles(api, feed_id)) == 2
        server.add("/feed.xml", _body(bug_cases, "BL-15.fetch2.xml"), host="bl15.example.org", Content_Type=RSS)
        await make_due(sessions, feed_id)
        await poller.poll_due_feeds()
        assert len(await articles(api, feed_id)) == 3


async def test_a_guid_reused_for_every_item_keeps_every_item(server, poller, sessions, settings):
    from tests.corpus_feeds import rss

    items = [{"title": f"Story {n}", "link": f"https://reused.example.org/news/story-{n}", "guid": "urn:uuid:feed-item"}
             for n in range(3)]
    url = server.add("/reused.xml", rss(items), host="reused.example.org", Content_Type=RSS)
    feed_id = await _ingest(poller, sessions, url)
    async with api_client(settings, sessions) as api:
        assert sorted(r["title"] for r in await articles(api, feed_id)) == ["Story 0", "Story 1", "Story 2"]
        items.insert(0, {"title": "Story 3", "link": "https://reused.example.org/news/story-3", "guid": "urn:uuid:feed-item"})
        server.add("/reused.xml", rss(items[:3]), host="reused.example.org", Content_Type=RSS)
        await make_due(sessions, feed_id)
        await poller.poll_due_feeds()
        assert sorted(r["title"] for r in await articles(api, feed_id)) == ["Story 0", "Story 1", "Story 2", "Story 3"]


async def test_bl16_http_and_https_variants_are_one_item_stored_as_https(bug_cases, server, poller, sessions, settings):
    feed_id = await _two_fetches(bug_cases, server, poller, sessions, "BL-16.fetch1.xml", "BL-16.fetch2.xml", "bl16.example.org")
    async with api_client(settings, sessions) as api:
        rows = await articles(api, feed_id)
    assert len(rows) == 2
    assert all(r["url"].startswith("https://") and r["canonical_url"].startswith("https://") for r in rows)


async def test_bl18_slash_and_amp_variants_from_two_feeds_are_one_article(bug_cases, server, poller, sessions, settings):
    outlet = server.add("/outlet.xml", _body(bug_cases, "BL-18.outlet.xml"), host="feeds.example.org", Content_Type=RSS)
    wire = server.add("/wire.xml", _body(bug_cases, "BL-18.aggregator.xml"), host="feeds.example.org", Content_Type=RSS)
    for path, name in (("/world/2024/05/06/storm-hits-coast/", "BL-18.canonical.html"),
                       ("/world/2024/05/06/storm-hits-coast", "BL-18.canonical.html"),
                       ("/amp/world/2024/05/06/storm-hits-coast/", "BL-18.amp.html")):
        server.add(path, _body(bug_cases, name), host="www.example.org", Content_Type="text/html; charset=utf-8")
    await subscribe(sessions, wire)
    await subscribe(sessions, outlet)
    await poller.poll_due_feeds()
    await poller.process_pages()
    canonical = "https://www.example.org/world/2024/05/06/storm-hits-coast/"
    async with api_client(settings, sessions) as api:
        rows = await articles(api)
    assert len(rows) == 2
    story = next(r for r in rows if r["title"] != "Homepage")
    assert story["canonical_url"] == canonical
    home = next(r for r in rows if r["title"] == "Homepage")
    assert home["url"] == "https://www.example.org/"


async def test_bl19_xml_base_and_relative_links_after_a_redirect(bug_cases, server, poller, sessions, settings):
    atom = server.add("/journal/journal.atom", _body(bug_cases, "BL-19.atom.xml"), host="blog.example.org",
                      Content_Type="application/atom+xml")
    server.add("/en/news/rss", b"", 301, host="games.example.org", Location="https://games.example.org/en/news/rss/")
    server.add("/en/news/rss/", _body(bug_cases, "BL-19.rss.xml"), host="games.example.org",
               Content_Type="application/rss+xml; charset=UTF-8")
    atom_id = await _ingest(poller, sessions, atom)
    rss_id = await _ingest(poller, sessions, "https://games.example.org/en/news/rss")
    async with api_client(settings, sessions) as api:
        (entry,) = await articles(api, atom_id)
        (item,) = await articles(api, rss_id)
        full = (await api.get(f"/v1/articles/{entry['id']}")).json()
    assert entry["url"] == "https://blog.example.org/journal/When/2024/05/14/Tab-Sweep"
    assert "https://blog.example.org/images/chart.png" in entry["summary"] + (full["text"] or "") + str(full)
    assert "https://blog.example.org/journal/When/2024/05/13/Earlier-Post" in str(full)
    assert item["url"] == "https://games.example.org/en/news/item-77"
    assert "https://games.example.org/media/s12.jpg" in item["summary"]


async def test_bl21_entities_are_neither_expanded_nor_resolved(bug_cases, server, poller, sessions, settings):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    external = _body(bug_cases, "BL-21.external.xml").replace(b"127.0.0.1:9", f"127.0.0.1:{port}".encode())
    a = server.add("/expansion.xml", _body(bug_cases, "BL-21.expansion.xml"), host="xml.example.org", Content_Type=RSS)
    b = server.add("/external.xml", external, host="xml.example.org", Content_Type=RSS)
    ids = [await subscribe(sessions, a), await subscribe(sessions, b)]
    await poller.poll_due_feeds()
    hostname = Path("/etc/hostname").read_text().strip()
    async with api_client(settings, sessions) as api:
        rows = [r for feed_id in ids for r in await articles(api, feed_id)]
    assert rows, "the documents are ingested (entities left unexpanded) or rejected with an error"
    for row in rows:
        assert len(row["title"] or "") < 10_000
        assert hostname not in (row["title"] or "") and hostname not in (row["summary"] or "")
    try:
        connection, _ = listener.accept()
        connection.close()
        raise AssertionError("the external DTD was requested")
    except BlockingIOError:
        pass
    finally:
        listener.close()


ARTICLE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Harbour bridge reopens</title></head>
<body><article><h1>Harbour bridge reopens</h1>""" + "".join(
    f"<p>The harbour bridge reopened to traffic on Sunday after eight months of repairs to its deck, paragraph {n}.</p>"
    for n in range(6)) + "</article></body></html>"


async def test_an_entry_behind_a_redirecting_feed_proxy_is_stored_under_the_article_url(server, poller, sessions, settings):
    server.add("/news/harbour-bridge-reopens", ARTICLE_PAGE, host="www.example.org", Content_Type="text/html; charset=utf-8")
    server.add("/~r/example/~3/abc123/harbour-bridge-reopens", b"", 302, host="feeds.example.org",
               Location="https://www.example.org/news/harbour-bridge-reopens?utm_source=feedburner&utm_medium=feed")
    from tests.corpus_feeds import rss

    proxied = server.add("/proxied.xml", rss([{"title": "Harbour bridge reopens",
                                               "link": "https://feeds.example.org/~r/example/~3/abc123/harbour-bridge-reopens"}]),
                         host="feeds.example.org", Content_Type=RSS)
    await _ingest(poller, sessions, proxied)
    await poller.process_pages()
    clean = server.add("/clean.xml", rss([{"title": "Harbour bridge reopens",
                                           "link": "https://www.example.org/news/harbour-bridge-reopens"}]),
                       host="www.example.org", Content_Type=RSS)
    await _ingest(poller, sessions, clean)
    async with api_client(settings, sessions) as api:
        [article] = await articles(api)  # one article, seen in both feeds
        assert article["canonical_url"] == "https://www.example.org/news/harbour-bridge-reopens"
        assert "harbour bridge reopened" in (await api.get(f"/v1/articles/{article['id']}")).json()["text"]
