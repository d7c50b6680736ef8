"""URL canonicalisation: tracking parameters, case, ports, fragments and AMP markers go; query
parameters that name the article stay (merging two articles would lose one)."""

from __future__ import annotations

import pytest

from service.net.urls import (
    MAX_URL_LENGTH,
    InvalidURL,
    canonicalize,
    check_fetchable,
    redact_password,
    without_userinfo,
)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("HTTPS://WWW.Example.org:443/a/b/?utm_medium=x&id=3#comments", "https://www.example.org/a/b/?id=3"),
        ("https://example.com/news?story=5&utm_source=rss&fbclid=abc", "https://example.com/news?story=5"),
        ("https://example.com/view?articleid=77&gclid=1", "https://example.com/view?articleid=77"),
        ("https://www.heise.de/news/x.html?seite=2", "https://www.heise.de/news/x.html?seite=2"),
        ("https://example.org/world/amp/?amp=1", "https://example.org/world/"),
        ("https://www.heise.de/news/Neue-Chips-9912345.html?wt_mc=rss.red.ho.ho.atom.beitrag.beitrag",
         "https://www.heise.de/news/Neue-Chips-9912345.html"),
        ("https://www.spiegel.de/a-1.html?seite=2&wt_zmc=nl.int.zonaudev&ns_campaign=x", "https://www.spiegel.de/a-1.html?seite=2"),
    ],
)
def test_canonical_forms(given, canonical):
    assert canonicalize(given) == canonical


def test_articles_named_by_a_query_parameter_stay_distinct():
    assert canonicalize("https://example.com/news?story=5") != canonicalize("https://example.com/news?story=6")


def test_urls_too_long_for_the_url_columns_are_refused():
    check_fetchable("https://example.org/" + "a" * (MAX_URL_LENGTH - 20))
    with pytest.raises(InvalidURL, match="longer than 2048"):
        check_fetchable("https://example.org/" + "a" * MAX_URL_LENGTH)
    # percent-encoding makes the canonical form of this one (≈ 6 × 400 characters) too long
    with pytest.raises(InvalidURL, match="longer than 2048"):
        check_fetchable("https://example.org/" + "ж" * 400)


@pytest.mark.parametrize("url", ["http://a..b/", "https://.example.com/x", "http://" + "a" * 64 + ".com/", "http://[::1/x",
                                 "http://example.com:99999/", "http://0177.0.0.1:8733/f", "http://1.2.3.04/x"])
def test_urls_whose_host_or_port_cannot_be_used_are_refused(url):
    with pytest.raises(InvalidURL, match="not a valid"):
        check_fetchable(url)


def test_fully_qualified_international_and_literal_hosts_are_accepted():
    for url in ("http://example.com./x", "https://bücher.de/", "http://[2001:db8::1]:8080/x", "http://" + "a" * 63 + ".com/"):
        assert check_fetchable(url) == url


async def test_entries_whose_link_is_not_http_keep_the_feed_text(server, poller, sessions):
    from sqlmodel import select

    from service.feeds import add_feed
    from service.models import Article

    feed = server.add("/odd.xml", """<?xml version="1.0"?><rss version="2.0"><channel><title>Odd</title>
<item><title>Script link</title><link>javascript:alert(1)</link><description>Kept as text.</description></item>
<item><title>Mail link</title><link>mailto:desk@example.org</link><description>Also kept.</description></item>
<item><title>Long link</title><link>https://example.org/?q=""" + "x" * MAX_URL_LENGTH + """</link><description>Kept too.</description></item>
<item><title>Empty label</title><link>http://news..example.org/a</link><description>And this.</description></item>
</channel></rss>""", Content_Type="application/rss+xml")
    async with sessions() as session:
        await add_feed(session, feed, 900)
    report = await poller.poll_due_feeds()
    assert report.articles_new == 4 and report.feeds_failed == 0
    async with sessions() as session:
        articles = (await session.exec(select(Article).order_by(Article.id))).all()
    assert [(a.url, str(a.extraction_status), a.text) for a in articles] == [
        (None, "skipped", "Kept as text."), (None, "skipped", "Also kept."), (None, "skipped", "Kept too."), (None, "skipped", "And this.")]
    errors = [a.extraction_error for a in articles]  # each says why its link was not used
    assert errors[0].startswith("the entry's link cannot be fetched: not an absolute http(s) URL")
    assert "longer than 2048 characters" in errors[2] and "not a valid host name" in errors[3]


async def test_oversized_guid_and_title_are_stored_once(server, poller, sessions):
    """A GUID too long for the (feed, key) index is keyed by its hash; a title is cut to 1,000 characters."""
    from sqlmodel import select

    from service.feeds import add_feed
    from service.ingest.text import MAX_TITLE_LENGTH
    from service.models import Article, Entry
    from tests.ingest_helpers import make_due

    guid, title = "ключ-" * 1000, "Headline " * 400
    feed = server.add("/big.xml", f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Big</title>
<item><title>{title}</title><guid isPermaLink="false">{guid}</guid><description>Body.</description></item>
</channel></rss>""", Content_Type="application/rss+xml")
    async with sessions() as session:
        feed_id = (await add_feed(session, feed, 900))[0].id
    assert (await poller.poll_due_feeds()).articles_new == 1
    await make_due(sessions, feed_id)
    assert (await poller.poll_due_feeds()).articles_new == 0
    async with sessions() as session:
        article = (await session.exec(select(Article))).one()
        entry = (await session.exec(select(Entry))).one()
    assert MAX_TITLE_LENGTH - 10 < len(article.title) <= MAX_TITLE_LENGTH and article.title.endswith("…")
    assert entry.entry_key.startswith("sha256:") and entry.guid == guid


@pytest.mark.parametrize(("url", "shown"), [
    ("https://u:p@news.example.org/feed?x=1", "https://u:***@news.example.org/feed?x=1"),
    ("http://a%40b:p%3Aq@[::1]:8080/x", "http://a%40b:***@[::1]:8080/x"),  # encoded @ and : in the userinfo
    ("https://u:p@h.example.org/q?next=u:p@h", "https://u:***@h.example.org/q?next=u:p@h"),  # only the authority
    ("https://u:@h.example.org/", "https://u:***@h.example.org/"),  # an empty password is not told apart
    ("https://user@h.example.org/feed", "https://user@h.example.org/feed"),  # no password: unchanged
    ("https://h.example.org/feed", "https://h.example.org/feed"),
])
def test_passwords_are_redacted_from_the_authority_only(url, shown):
    assert redact_password(url) == shown
    assert redact_password(f"redirect loop: {url} → {url}") == f"redirect loop: {shown} → {shown}"  # in messages too


def test_credentials_keep_their_case_and_links_lose_them():
    assert canonicalize("http://Jack:MixedPW@News.Example.ORG:80/a?utm_source=x") == "http://Jack:MixedPW@news.example.org/a"
    assert without_userinfo("https://u:p@news.example.org/a?b=1") == "https://news.example.org/a?b=1"
    assert without_userinfo("https://news.example.org/a") == "https://news.example.org/a"


def test_relative_links_of_a_private_feed_do_not_inherit_its_credentials():
    """Links resolve against the feed URL, userinfo included; stored links must not carry it (they
    are shown to every reader and sent in webhook events)."""
    from service.ingest.feeds.parser import parse_feed

    parsed = parse_feed(b'<rss version="2.0"><channel><title>P</title><link>/site/</link>'
                        b"<item><title>One two three</title><link>/art/1</link></item>"
                        b"<item><title>Four five six</title><link>rel2</link></item></channel></rss>",
                        "http://alice:pw@private.example.org/feeds/rel.xml", "application/rss+xml")
    assert parsed.site_url == "http://private.example.org/site/"
    assert [e.link for e in parsed.entries] == ["http://private.example.org/art/1", "http://private.example.org/feeds/rel2"]


@pytest.mark.parametrize("url", [
    "HTTP://Example.org/a/b/?utm_source=x&id=3#top", "https://example.org/", "https://example.org/amp/story/",
    "http://example.org/path", "ftp://example.org/file", "not a url",
])
def test_link_forms_equal_the_three_functions_it_replaces(url):
    from service.net.urls import dedup_key, link_forms, url_variants

    assert link_forms(url) == (canonicalize(url), dedup_key(url), url_variants(url))


@pytest.mark.parametrize(("url", "variants"), [
    ("https://example.org/a/b?id=3", ["https://example.org/a/b?id=3", "https://example.org/a/b/?id=3",
                                      "http://example.org/a/b?id=3", "http://example.org/a/b/?id=3"]),
    ("http://example.org/a/", ["https://example.org/a/", "https://example.org/a", "http://example.org/a/", "http://example.org/a"]),
    ("https://example.org", ["https://example.org/", "http://example.org/"]),
    ("https://u:pw@example.org:8443/x?", ["https://u:pw@example.org:8443/x", "https://u:pw@example.org:8443/x/",
                                          "http://u:pw@example.org:8443/x", "http://u:pw@example.org:8443/x/"]),
    ("http://[2001:db8::1]/p/", ["https://[2001:db8::1]/p/", "https://[2001:db8::1]/p", "http://[2001:db8::1]/p/",
                                 "http://[2001:db8::1]/p"]),
    ("ftp://example.org/file/", ["ftp://example.org/file/"]),
])
def test_url_variants_are_the_http_and_https_forms_with_and_without_a_trailing_slash(url, variants):
    """``url_variants`` joins each form itself (``urls._variants``): the query kept, an empty one
    dropped, credentials, port and an IPv6 host as they are; a non-http URL has one form."""
    from service.net.urls import url_variants

    assert url_variants(url) == variants
