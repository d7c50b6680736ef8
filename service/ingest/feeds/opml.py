"""OPML 2.0 (http://opml.org/spec2.opml) subscription lists: read (with defusedxml: no entity
expansion, no external entities) and write. Categories are the folder path of nested
``<outline>`` elements, '/'-separated, or an outline's own ``category`` attribute."""

from __future__ import annotations

from dataclasses import astuple, dataclass
from xml.etree.ElementTree import Element, SubElement, tostring

import defusedxml.ElementTree as safe_xml
from defusedxml import DefusedXmlException

from service.errors import InputError
from service.ingest.text import storable


class OPMLError(InputError):
    """The document is not OPML we can read (ill-formed XML, entity declarations, no body)."""


@dataclass(frozen=True)
class OPMLFeed:
    url: str
    title: str | None = None
    category: str | None = None
    site_url: str | None = None


# Limits on an imported document: outlines in all, and folder depth.
MAX_OUTLINES = 10_000
MAX_DEPTH = 32


def parse_opml(data: bytes) -> list[OPMLFeed]:
    """The feed outlines (those with ``xmlUrl``) of an OPML document, in document order.

    Raises ``OPMLError`` for ill-formed XML, a document declaring entities or DTDs, more than
    ``MAX_OUTLINES`` outlines or folders deeper than ``MAX_DEPTH``, or one with no
    ``<body>``."""
    try:
        root = safe_xml.fromstring(data, forbid_dtd=True)
    except (DefusedXmlException, safe_xml.ParseError) as exc:
        raise OPMLError(f"not a readable OPML document: {type(exc).__name__}: {exc}") from exc
    body = root.find("body")
    if root.tag != "opml" or body is None:
        raise OPMLError("not an OPML document (no <opml><body>)")
    feeds: list[OPMLFeed] = []
    # Depth-first without recursion (a hostile document may nest thousands of folders), in
    # document order; folders deeper than MAX_DEPTH and outlines past MAX_OUTLINES are refused.
    stack: list[tuple[Element, list[str]]] = [(outline, []) for outline in reversed(body.findall("outline"))]
    seen = 0
    while stack:
        outline, path = stack.pop()
        seen += 1
        if seen > MAX_OUTLINES:
            raise OPMLError(f"too many outlines (more than {MAX_OUTLINES}); split the file")
        if len(path) > MAX_DEPTH:
            raise OPMLError(f"folders nested deeper than {MAX_DEPTH} levels")
        title = (outline.get("title") or outline.get("text") or "").strip() or None
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if url:
            category = (outline.get("category") or "").strip().strip("/") or "/".join(path) or None
            feeds.append(OPMLFeed(url, title, category, (outline.get("htmlUrl") or "").strip() or None))
        else:
            inner = [*path, title] if title else path
            stack.extend((child, inner) for child in reversed(outline.findall("outline")))
    return feeds


def write_opml(feeds: list[OPMLFeed], title: str = "Newsloom subscriptions") -> bytes:
    """An OPML 2.0 document listing ``feeds``, grouped in folder outlines by category (UTF-8, ending
    with a newline, as a text file does).
    Characters XML cannot carry (``text.storable``) are left out, so the document always parses."""
    feeds = [OPMLFeed(*(storable(v) if isinstance(v, str) else v for v in astuple(f))) for f in feeds]
    root = Element("opml", version="2.0")
    SubElement(SubElement(root, "head"), "title").text = title
    body = SubElement(root, "body")
    folders: dict[str, Element] = {}
    for feed in feeds:
        parent = body
        if feed.category:
            path = ""
            for part in feed.category.split("/"):
                path = f"{path}/{part}" if path else part
                if path not in folders:
                    folders[path] = SubElement(parent, "outline", text=part, title=part)
                parent = folders[path]
        attributes = {"type": "rss", "text": feed.title or feed.url, "xmlUrl": feed.url}
        if feed.title:
            attributes["title"] = feed.title
        if feed.site_url:
            attributes["htmlUrl"] = feed.site_url
        SubElement(parent, "outline", attributes)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="utf-8", xml_declaration=False) + b"\n"
