"""Feed HTML made safe to serve: one sanitiser for every HTML field of every feed format; and
titles, which are plain text, without their markup.

Feeds carry HTML (RSS ``description``/``content:encoded``, Atom ``summary``/``content``, JSON Feed
``content_html``/``summary``) that the API and webhooks hand on to clients, which may render it.
Every such field goes through ammonia's allow-list (``nh3``, a maintained Rust sanitiser): only
formatting tags and safe attributes stay; ``<script>``/``<style>`` lose their content, event
handlers (``onerror=``) and ``javascript:`` URLs go, links get ``rel="noopener noreferrer"``.

A title is plain text in every format, yet publishers put markup in it: an RSS or RDF
``<title><![CDATA[<b>Breaking</b>: …]]>``, Atom ``type="html"``/``"xhtml"``, a JSON Feed title
written as HTML. ``plain_title`` drops the tags and keeps their text, entities decoded.
"""

from __future__ import annotations

import html
import re

import nh3

from service.ingest.text import html_to_text

_TAGS = "|".join(sorted(nh3.ALLOWED_TAGS | {"font", "script", "style"}, key=len, reverse=True))
# Markup, not text: a closing tag of an HTML element, or a void element (<br/>, <img …>). An opening
# tag alone is not enough: "Why <div> soup is bad", "if a<b then" and "I <3 NY" are headlines.
_MARKUP = re.compile(rf"</(?:{_TAGS})\s*>|<(?:br|hr|img|wbr)\b[^<>]*>", re.IGNORECASE)


def clean_html(html: str | None) -> str | None:
    """``html`` with everything but ammonia's default allow-list removed; None for None or when
    nothing but whitespace is left."""
    if html is None:
        return None
    cleaned = nh3.clean(html).strip()
    return cleaned or None


def plain_title(title: str | None, markup: bool = False) -> str | None:
    """``title`` as plain text: on one line without its HTML tags (their text kept, scripts and
    styles dropped, block elements as spaces) when the feed says it is HTML (``markup``: Atom
    ``type="html"``/``"xhtml"``, feedparser's guess for RSS) or it holds markup (a closing tag of
    an HTML element, or a void element); character references decoded either way. None for None or
    when nothing is left."""
    if not title:
        return None
    if markup or _MARKUP.search(title):
        return " ".join(html_to_text(title).split()) or None
    return (html.unescape(title) if "&" in title else title).strip() or None
