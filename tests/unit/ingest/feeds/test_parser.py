"""``service.ingest.feeds.parser``: links resolved against the document URL and ``xml:base``."""

from __future__ import annotations

from service.ingest.feeds.parser import parse_feed

ATOM = b"""<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://a.example.org/blog/">
  <title>Bases</title>
  <entry xml:base="https://b.example.org/news/"><id>urn:1</id><title>One</title><link href="one"/></entry>
  <entry><id>urn:2</id><title>Two</title><link href="two"/></entry>
  <entry xml:base="/other/"><id>urn:3</id><title>Three</title><link href="three"/></entry>
  <entry xml:base="https://b.example.org/news/"><id>urn:4</id><title>Four</title><link href="../four"/></entry>
</feed>"""


def test_each_entry_resolves_against_its_own_xml_base_in_every_document():
    """The base of an element is its ``xml:base`` joined with its parent's (feedparser's join is
    memoised per pair of strings: a base met before must not leak into later elements or documents)."""
    for url in ("https://feeds.example.org/x.atom", "https://mirror.example.net/y.atom"):
        entries = parse_feed(ATOM, url, "application/atom+xml").entries
        assert [e.link for e in entries] == [
            "https://b.example.org/news/one", "https://a.example.org/blog/two", "https://a.example.org/other/three",
            "https://b.example.org/four",
        ]
    rss = b'<rss version="2.0"><channel><title>R</title><item><title>T</title><link>p/1</link></item></channel></rss>'
    for url, link in (("https://c.example.org/feeds/r.xml", "https://c.example.org/feeds/p/1"),
                      ("https://d.example.org/r.xml", "https://d.example.org/p/1")):
        assert [e.link for e in parse_feed(rss, url, "application/rss+xml").entries] == [link]
