"""Feed discovery: from a URL a user typed (a feed, or a site's home page) to the feed document.

An HTML page is searched for ``<link rel="alternate">`` elements of type RSS, Atom or JSON Feed
(the RSS autodiscovery convention; WHATWG HTML §4.6.7.1); a body is judged a feed or HTML by
sniffing it (``sniff.sniff``), never by its Content-Type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from service.errors import DocumentError
from service.ingest.feeds.sniff import sniff

if TYPE_CHECKING:  # not at run time: a worker runs feed_links, and needs no pydantic or settings
    from service.net.fetcher import FetchResult

FEED_TYPES = {
    "application/rss+xml": 0, "application/atom+xml": 1, "application/feed+json": 2, "application/json": 3,
    "application/rdf+xml": 4, "application/xml": 5, "text/xml": 5,
}
# Candidate links tried per page.
MAX_CANDIDATES = 3


class NoFeedFound(DocumentError):
    """The URL is neither a feed nor a page that links to one; the message says what it was."""


def feed_links(html: bytes, base_url: str) -> list[str]:
    """Absolute URLs of the feeds an HTML page advertises with ``<link rel="alternate" type=…>``,
    RSS first, then Atom, then JSON Feed, document order within a type. Relative ``href`` values are
    resolved against ``<base href>`` or ``base_url`` (RFC 3986 §5). CPU-bound: run it in a worker."""
    # Imported here: the main process imports this module (``discover``); only workers parse.
    import lxml.html

    try:
        root = lxml.html.fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return []
    base = next((b.get("href") for b in root.iter("base") if b.get("href")), None)
    base = urljoin(base_url, base) if base else base_url
    found: list[tuple[int, int, str]] = []
    for position, link in enumerate(root.iter("link")):
        rel = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").split(";")[0].strip().lower()
        href = (link.get("href") or "").strip()
        if "alternate" in rel and kind in FEED_TYPES and href:
            found.append((FEED_TYPES[kind], position, urljoin(base, href)))
    seen: list[str] = []
    for _rank, _pos, url in sorted(found):
        if url not in seen:
            seen.append(url)
    return seen


async def discover(
    url: str,
    fetch_feed: Callable[[str], Awaitable[FetchResult]],
    run: Callable[..., Awaitable],
    refusal: Callable[[str], Awaitable[str | None]],
) -> tuple[str, FetchResult]:
    """``(feed URL, its fetched document)`` for what the user gave.

    ``fetch_feed(url)`` fetches (raises ``FetchError``); ``run(fn, *args)`` runs CPU-bound work off
    the event loop; ``refusal(url)`` applies the SSRF guard to a discovered link (why it is refused,
    or None). Raises ``FetchError`` when ``url`` cannot be fetched, ``NoFeedFound`` for an empty
    body, an HTML page without feed links, a body that is neither feed nor HTML, or a page none of whose feed links
    (the first ``MAX_CANDIDATES``, each tried in turn: one refused by the guard or that cannot be
    fetched does not stop the next) gives a feed, naming each link and why. The returned document is the
    subscription's first poll: the feed is fetched once.
    """
    from service.net.fetcher import FetchError  # here: workers import this module for feed_links

    result = await fetch_feed(url)
    if not result.body.strip():
        raise NoFeedFound(f"{url} answered HTTP {result.status} with an empty body: no feed there")
    kind = sniff(result.body)
    if kind in ("feed", "json"):
        return url, result
    if kind == "unknown" and result.body.lstrip()[:1] == b"<" and b"<html" not in result.body[:4096].lower():
        return url, result  # some other XML: the parser decides, and records why if it is no feed
    if kind != "html":
        raise NoFeedFound(f"{url} is not a feed or an HTML page (Content-Type {result.headers.get('content-type')!r})")
    links = await run(feed_links, result.body, result.url)
    if not links:
        raise NoFeedFound(
            f"{url} is an HTML page that links no feed (no <link rel=\"alternate\"> of type RSS, Atom or JSON Feed)"
        )
    failures = []
    for link in links[:MAX_CANDIDATES]:
        refused = await refusal(link)
        if refused:
            failures.append(f"{link}: skipped: {refused}")
            continue
        try:
            found = await fetch_feed(link)
        except FetchError as exc:
            failures.append(f"{link}: could not fetch it: {exc.reason}")
            continue
        if sniff(found.body) in ("feed", "json"):
            return link, found
        failures.append(f"{link}: not a feed")
    raise NoFeedFound(f"{url} is an HTML page whose feed links give no feed ({'; '.join(failures)})")
