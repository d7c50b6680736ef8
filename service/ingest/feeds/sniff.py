"""What a fetched body is, from its first bytes: a feed, JSON, HTML or unknown.

A module of its own, importing only ``re``: feed discovery in the service's main process sniffs
each body a subscription fetches, and must not import the feed parser (feedparser, lxml, nh3) that
only the workers run."""

from __future__ import annotations

import re

_FEED_ROOT = re.compile(rb"^(?:\s|<\?[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)*<(?:[\w.-]+:)?(rss|feed|RDF|channel)\b", re.DOTALL | re.IGNORECASE)
_HTML_ROOT = re.compile(rb"^(?:\s|<!--.*?-->)*<(?:!DOCTYPE\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL)


def sniff(body: bytes) -> str:
    """What a body is, judged from its first bytes (after a BOM and whitespace): ``json``, ``feed``
    (root ``<rss``, ``<feed``, ``<rdf:RDF``), ``html``, or ``unknown``. The Content-Type is not
    consulted: servers mislabel feeds as text/html and HTML as XML. A UTF-16 body (told by its BOM,
    as XML 1.0 §4.3.3 requires of UTF-16 documents) is judged on its first characters."""
    head = body[:4096]
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        head = head.decode("utf-16", errors="ignore").encode("utf-8")
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{"):
        return "json"
    if _FEED_ROOT.match(head):
        return "feed"
    if _HTML_ROOT.match(head):
        return "html"
    return "unknown"
