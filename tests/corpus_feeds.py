"""Helpers that turn shared corpus pages into feeds served by the test server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from tests.server import TestServer

# Fundus pages on which extraction recovers the ground truth's first and last paragraphs, from three
# countries and two languages. The end-to-end tests serve them behind a generated RSS feed.
FUNDUS_PAGES = [
    "de/DieWelt_2024_08_27",
    "de/Tagesschau_2023_04_28",
    "de/FAZ_2025_04_15",
    "uk/BBC_2026_04_25",
    "us/Reuters_2024_03_07",
    "us/CNBC_2023_04_28",
]


def fundus_truth(corpus: Path) -> dict:
    return json.loads((corpus / "extraction-fundus" / "ground-truth.json").read_text())


def rss(items: list[dict], title: str = "Test feed", start: datetime | None = None) -> str:
    """An RSS 2.0 document; each item has ``title``, ``link`` and optional ``description``. Items are
    dated an hour apart, newest first, from ``start`` (default 2024-05-01 12:00 UTC)."""
    start = start or datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    body = "".join(
        f"<item><title>{escape(item['title'])}</title><link>{escape(item['link'])}</link>"
        f"<guid isPermaLink=\"false\">{escape(item.get('guid', item['link']))}</guid>"
        f"<pubDate>{format_datetime(start - timedelta(hours=i))}</pubDate>"
        f"<description>{escape(item.get('description', ''))}</description></item>"
        for i, item in enumerate(items)
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{escape(title)}</title>'
            f"<link>http://127.0.0.1/</link><description>d</description>{body}</channel></rss>")


def serve_fundus_feed(server: TestServer, corpus: Path, keys: list[str], path: str = "/feeds/fundus.xml") -> tuple[str, dict]:
    """Serve an RSS feed whose items link to the fundus pages ``keys`` (served by the same server).
    Returns the feed URL and ``{page_url: ground_truth}``."""
    truth = fundus_truth(corpus)
    items, expected = [], {}
    for key in keys:
        url = server.url(f"/corpus/extraction-fundus/html/{key}.html")
        items.append({"title": truth[key]["title"], "link": url, "description": "feed summary of " + key})
        expected[url] = truth[key]
    return server.add(path, rss(items), Content_Type="application/rss+xml; charset=utf-8"), expected


def paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
