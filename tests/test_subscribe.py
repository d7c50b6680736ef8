"""Subscribing through the API and the CLI, as a user does: `newsloom serve` in a subprocess,
feed discovery from a home page, the SSRF guard's 422, and OPML import/export round trips."""

from __future__ import annotations

import httpx

RSS = ('<?xml version="1.0"?><rss version="2.0"><channel><title>Site news</title>'
       '<item><title>Hello</title><link>{base}/posts/1</link></item></channel></rss>')
OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>mine</title></head><body>
  <outline text="News" title="News">
    <outline text="World" title="World">
      <outline type="rss" text="Site news (mine)" title="Site news (mine)" xmlUrl="{feed}" htmlUrl="{base}/"/>
    </outline>
  </outline>
  <outline type="rss" text="Loose" title="Loose" xmlUrl="{other}" category="Tech/Blogs"/>
  <outline type="rss" text="Bad" xmlUrl="file:///etc/passwd"/>
</body></opml>"""


def test_discovery_ssrf_and_opml_through_the_api_and_cli(server, service_factory):
    feed = server.add("/feed.rss", RSS.format(base=server.base), Content_Type="application/rss+xml")
    home = server.add("/", '<!doctype html><html><head><title>Site</title>'
                           '<link rel="alternate" type="application/rss+xml" title="RSS" href="/feed.rss">'
                           '</head><body>hi</body></html>', Content_Type="text/html")
    bare = server.add("/about", "<!doctype html><html><head><title>About</title></head><body>x</body></html>",
                      Content_Type="text/html")
    other = server.add("/other.rss", RSS.format(base=server.base), Content_Type="application/rss+xml")
    with service_factory(NEWSLOOM_POLLER_ENABLED="false") as svc:
        created = httpx.post(f"{svc.base}/v1/feeds", json={"url": home}, timeout=60)
        assert created.status_code == 201, created.text
        assert created.json()["url"] == feed and created.json()["article_count"] == 1
        assert len([p for p, _ in server.requests if p == "/feed.rss"]) == 1

        again = httpx.post(f"{svc.base}/v1/feeds", json={"url": feed}, timeout=60)
        assert again.status_code == 409

        no_feed = httpx.post(f"{svc.base}/v1/feeds", json={"url": bare}, timeout=60)
        assert no_feed.status_code == 422
        assert "links no feed" in no_feed.json()["detail"]

        imported = httpx.post(f"{svc.base}/v1/feeds/import", content=OPML.format(feed=feed, base=server.base, other=other), timeout=60)
        assert imported.status_code == 200, imported.text
        assert imported.json()["added"] == 1 and imported.json()["existing"] == 1
        assert imported.json()["refused"][0].startswith("file:///etc/passwd")

        exported = httpx.get(f"{svc.base}/v1/feeds/export")
        assert exported.headers["content-type"].startswith("text/x-opml")
        run = svc.run_cli("feeds", "export")
        assert run.returncode == 0, run.stderr
        assert run.stdout.encode() == exported.content

    # With the SSRF guard on (the default), a loopback feed URL is refused at once, naming the rule.
    with service_factory(NEWSLOOM_POLLER_ENABLED="false", NEWSLOOM_ALLOW_PRIVATE_NETWORKS="false") as svc:
        refused = httpx.post(f"{svc.base}/v1/feeds", json={"url": feed}, timeout=60)
        assert refused.status_code == 422
        assert "loopback" in refused.json()["detail"]


def test_opml_round_trip(tmp_path, server, service_factory):
    feed = server.url("/a.rss")
    other = server.url("/b.rss")
    path = tmp_path / "in.opml"
    path.write_text(OPML.format(feed=feed, base=server.base, other=other))
    with service_factory(NEWSLOOM_POLLER_ENABLED="false") as svc:
        run = svc.run_cli("feeds", "import", str(path))
        assert run.returncode == 0, run.stderr
        assert "added: 2" in run.stdout and "refused: 1" in run.stdout
        feeds = {f["url"]: f for f in httpx.get(f"{svc.base}/v1/feeds").json()["items"]}
        exported = svc.run_cli("feeds", "export").stdout
    assert feeds[feed]["title"] == "Site news (mine)" and feeds[feed]["category"] == "News/World"
    assert feeds[other]["title"] == "Loose" and feeds[other]["category"] == "Tech/Blogs"
    from service.ingest.feeds.opml import parse_opml

    again = {f.url: f for f in parse_opml(exported.encode())}
    assert again[feed].title == "Site news (mine)" and again[feed].category == "News/World"
    assert again[other].category == "Tech/Blogs"


def test_opml_export_leaves_out_characters_xml_cannot_carry():
    """Rows stored before feed strings were cleaned may hold C0 controls: the export still parses."""
    from service.ingest.feeds.opml import OPMLFeed, parse_opml, write_opml

    document = write_opml([OPMLFeed("https://a.example.org/f\x01.xml", "Ti\x01t\x0ble\uffff", "News\x1f/World")])
    (feed,) = parse_opml(document)
    assert (feed.url, feed.title, feed.category) == ("https://a.example.org/f.xml", "Title", "News/World")
