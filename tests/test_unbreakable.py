"""Hostile servers: compression bombs, trickling bodies, huge documents, and the SSRF guard on
the first request and on every redirect hop. Each test runs the real poller against real sockets."""

from __future__ import annotations

import gzip
import itertools
import json
import zlib

import brotli
import pytest
import sqlalchemy as sa

from service.config import Settings
from service.ingest.poller import Poller
from service.models import Article
from service.net.fetcher import create_client
from service.net.ssrf import BlockedAddress, check_url, refused_rule
from tests.ingest_helpers import count, feed_row, subscribe
from tests.server import Route

RSS = "application/rss+xml"
FEED = ('<?xml version="1.0"?><rss version="2.0"><channel><title>ok</title>'
        '<item><title>one</title><link>https://ok.example.org/1</link></item></channel></rss>')


def _bomb_rss(size: int) -> bytes:
    return b'<?xml version="1.0"?><rss version="2.0"><channel><title>' + b"A" * size + b"</title></channel></rss>"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
async def test_compression_bombs_stop_at_the_decompressed_cap(encoding, server, poller, sessions):
    cap = poller.settings.max_feed_bytes
    raw = _bomb_rss(cap * 20)  # 200 MB of text once decoded
    packed = {"gzip": gzip.compress, "deflate": zlib.compress, "br": lambda b: brotli.compress(b, quality=5)}[encoding](raw)
    assert len(packed) < cap // 10
    server.add("/bomb.xml", packed, host="bomb.example.org", Content_Type=RSS, Content_Encoding=encoding)
    feed_id = await subscribe(sessions, "https://bomb.example.org/bomb.xml")
    await poller.poll_due_feeds()
    feed = await feed_row(sessions, feed_id)
    assert feed.last_error.startswith(f"body exceeds the {cap}-byte cap once decoded ({encoding})"), feed.last_error


async def test_an_endless_body_without_length_stops_at_the_cap(server, poller, sessions):
    """No Content-Length, no encoding, a body that never ends: cut off at the cap, said plainly."""
    cap = poller.settings.max_feed_bytes
    server.add("/endless.xml", lambda request: Route(itertools.repeat(b"<!-- more -->" * 5000), 200, {"Content-Type": RSS}),
               host="endless.example.org")
    feed_id = await subscribe(sessions, "https://endless.example.org/endless.xml")
    await poller.poll_due_feeds()
    feed = await feed_row(sessions, feed_id)
    assert feed.last_error == f"body exceeds the {cap}-byte cap"


async def test_a_page_bomb_is_given_up_at_once(server, poller, sessions):
    """An article page that decodes past the page cap would do so again: it is not retried (as a
    timeout is) but keeps the feed's text at once, saying why."""
    cap = poller.settings.max_page_bytes
    server.add("/bomb.html", gzip.compress(b"<html><body>" + b"a" * cap * 2), host="pages.example.org",
               Content_Type="text/html", Content_Encoding="gzip")
    server.add("/f.xml", FEED.replace("https://ok.example.org/1", "https://pages.example.org/bomb.html"), host="pages.example.org",
               Content_Type=RSS)
    await subscribe(sessions, "https://pages.example.org/f.xml")
    await poller.poll_due_feeds()
    report = await poller.process_pages()
    assert (report.pages_failed, report.pages_retrying) == (1, 0), report
    async with sessions() as session:
        (article,) = (await session.exec(sa.select(Article))).scalars().all()
    assert article.extraction_status == "failed" and article.fetch_attempts == 1, article
    assert article.extraction_error == f"page: body exceeds the {cap}-byte cap once decoded (gzip)"


async def test_compressed_feed_under_the_cap_is_read(server, poller, sessions):
    server.add("/f.xml", brotli.compress(FEED.encode()), host="br.example.org", Content_Type=RSS, Content_Encoding="br")
    await subscribe(sessions, "https://br.example.org/f.xml")
    report = await poller.poll_due_feeds()
    assert report.articles_new == 1


async def test_a_trickling_server_is_cut_off_by_the_total_timeout(server, settings, sessions, workers):
    def trickle(request):
        return Route(iter([FEED[i:i + 1].encode() for i in range(len(FEED))] * 1000), 200,
                     {"Content-Type": RSS}, chunk_delay=0.05)

    server.add("/slow.xml", trickle, host="slow.example.org")
    quick = settings.model_copy(update={"total_timeout": 1.0, "read_timeout": 5.0})
    async with create_client(quick, resolver=server.resolver, verify=server.client_ssl) as client:
        poller = Poller(quick, sessions, client, workers)
        feed_id = await subscribe(sessions, "https://slow.example.org/slow.xml")
        await poller.poll_due_feeds()
    feed = await feed_row(sessions, feed_id)
    assert feed.last_error == "no complete response within the 1 s total timeout"


async def test_the_client_returns_no_cookie_a_server_set(server, settings):
    """The one client serves every user's feeds and webhook subscriptions: a cookie set in one
    response must not go back with the next request to that host (another subscription's)."""
    server.add("/set", "x", host="cookies.example.org", Set_Cookie="session=secret; Path=/")
    server.add("/next", "y", host="cookies.example.org")
    async with create_client(settings, resolver=server.resolver, verify=server.client_ssl) as client:
        first = await client.get("https://cookies.example.org/set")
        assert first.headers["set-cookie"] == "session=secret; Path=/"
        await client.get("https://cookies.example.org/next")
    [later] = server.hits("/next", host="cookies.example.org")
    assert "cookie" not in {name.lower() for name in later.headers}


async def test_entries_per_document_are_capped_with_a_warning(server, poller, sessions, settings):
    items = "".join(f"<item><title>{i}</title><link>https://many.example.org/{i}</link></item>" for i in range(30))
    server.add("/many.xml", f'<rss version="2.0"><channel><title>m</title>{items}</channel></rss>',
               host="many.example.org", Content_Type=RSS)
    small = settings.model_copy(update={"max_feed_entries": 10})
    poller.settings = small
    feed_id = await subscribe(sessions, "https://many.example.org/many.xml")
    await poller.poll_due_feeds()
    assert await count(sessions, Article) == 10
    assert "20 entries beyond the cap of 10 ignored" in (await feed_row(sessions, feed_id)).last_error


async def test_json_feed_and_unknown_bodies_never_crash_the_poller(server, poller, sessions):
    server.add("/j.json", json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "j",
                                      "items": [{"id": "1", "url": "/a", "title": "A"}]}), host="j.example.org")
    server.add("/junk", b"\x00\xff" * 1000, host="j.example.org", Content_Type="application/octet-stream")
    server.add("/local", b"/etc/hostname", host="j.example.org", Content_Type="application/xml")
    ids = [await subscribe(sessions, f"https://j.example.org/{p}") for p in ("j.json", "junk", "local")]
    report = await poller.poll_due_feeds()
    assert report.feeds_polled == 3 and report.articles_new == 1
    assert (await feed_row(sessions, ids[1])).last_error.startswith("not a readable feed")
    # feedparser would read a body that is a file name as a local file: it must be a parse error
    assert (await feed_row(sessions, ids[2])).last_error.startswith("not a readable feed")


# -- SSRF ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("ip", "rule"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"), ("192.168.1.1", "private"),
    ("172.16.0.1", "private"), ("169.254.169.254", "cloud-metadata"), ("169.254.10.10", "link-local"),
    ("fe80::1", "link-local"), ("fd12::1", "unique-local"), ("224.0.0.1", "multicast"), ("0.0.0.0", "unspecified"),
    ("::ffff:127.0.0.1", "loopback"), ("100.64.0.1", "shared-address-space"), ("93.184.215.14", None),
])
def test_address_rules(ip, rule):
    assert refused_rule(ip) == rule


async def test_check_url_refuses_schemes_and_names_resolving_to_private_addresses(server):
    server.dns["intranet.example.org"] = "10.0.0.7"
    cases = {"file:///etc/passwd": "scheme", "gopher://x.example.org/": "scheme",
             "http://127.0.0.1:9/feed": "loopback", "https://intranet.example.org/feed": "private",
             "https://rebind.example.org/feed": "loopback", "http://[::ffff:169.254.169.254]/": "cloud-metadata"}
    for url, rule in cases.items():
        with pytest.raises(BlockedAddress) as caught:
            await check_url(url, allow_private=False, resolver=server.resolver)
        assert caught.value.rule == rule, url
    server.dns["news.example.net"] = "93.184.215.14"
    await check_url("https://news.example.net/feed", allow_private=False, resolver=server.resolver)


async def _guarded_poller(settings: Settings, sessions, workers, server, trusted=()):
    guarded = settings.model_copy(update={"allow_private_networks": False})
    client = create_client(guarded, resolver=server.resolver, verify=server.client_ssl, trusted=trusted)
    return Poller(guarded, sessions, client, workers), client


async def test_the_guard_judges_the_connected_address_on_every_hop(server, settings, sessions, workers):
    """public.example.org stands for a public host (its address is trusted); every other name of the
    test resolver resolves to a loopback or private address and must be refused before connecting."""
    server.dns["metadata.example.org"] = "169.254.169.254"
    server.add("/feed.xml", FEED, host="public.example.org", Content_Type=RSS)
    server.add("/to-loopback", b"", 302, host="public.example.org", Location=f"http://127.0.0.1:{server.port}/feed.xml")
    server.add("/to-metadata", b"", 301, host="public.example.org", Location="http://metadata.example.org/latest/")
    server.add("/to-file", b"", 302, host="public.example.org", Location="file:///etc/passwd")
    server.add("/feed.xml", FEED, host="rebind.example.org", Content_Type=RSS)
    poller, client = await _guarded_poller(settings, sessions, workers, server, trusted=[("127.0.0.1", server.tls_port)])
    async with client:
        ids = {name: await subscribe(sessions, url) for name, url in {
            "ok": "https://public.example.org/feed.xml",
            "loopback": "https://public.example.org/to-loopback",
            "metadata": "https://public.example.org/to-metadata",
            "file": "https://public.example.org/to-file",
            "rebind": f"http://rebind.example.org:{server.port}/feed.xml",
        }.items()}
        await poller.poll_due_feeds()
    errors = {name: (await feed_row(sessions, i)).last_error for name, i in ids.items()}
    assert errors["ok"] is None
    assert errors["loopback"].startswith("refused by the SSRF guard (loopback)")
    assert errors["metadata"].startswith("refused by the SSRF guard (cloud-metadata)")
    assert errors["file"].startswith("refused by the SSRF guard (scheme)")
    assert errors["rebind"].startswith("refused by the SSRF guard (loopback)")
    assert not [r for r in server.log if r.host in ("rebind.example.org", "metadata.example.org") or r.scheme == "http"]
