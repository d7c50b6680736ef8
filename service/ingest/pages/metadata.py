"""Article metadata from the page's own markup: JSON-LD (schema.org), OpenGraph, ``<meta>`` tags,
``<link rel=canonical>``, with trafilatura's metadata and htmldate as fallbacks.

Parsing is done by maintained libraries (lxml for the tree, ``json`` for JSON-LD, trafilatura's
``extract_metadata`` and htmldate's ``find_date``); the code here only gathers candidates and
chooses among them. Sources: schema.org ``NewsArticle`` (https://schema.org/NewsArticle), the Open
Graph protocol (https://ogp.me/), HTML Living Standard ``link rel=canonical`` (RFC 6596).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml.html import HtmlElement

from service.ingest.feeds.dates import plausible
from service.ingest.text import normalize_text

# schema.org types whose ``headline``/``author``/``datePublished`` describe the article itself.
ARTICLE_TYPES = {
    "article", "newsarticle", "reportagenewsarticle", "analysisnewsarticle", "opinionnewsarticle",
    "backgroundnewsarticle", "reviewnewsarticle", "blogposting", "socialmediaposting", "liveblogposting",
    "scholarlyarticle", "techarticle", "report", "webpage", "medicalwebpage", "creativework",
}


@dataclass
class Candidates:
    """Everything the page says about itself, before choosing. ``meta`` maps lower-cased
    ``property``/``name``/``itemprop`` to the contents in document order (then the ``datetime``
    of ``<time itemprop=…>`` elements); ``articles`` are the
    JSON-LD objects of an article type (``ARTICLE_TYPES``), outermost first."""

    meta: dict[str, list[str]] = field(default_factory=dict)
    articles: list[dict] = field(default_factory=list)
    organizations: list[str] = field(default_factory=list)
    html_title: str | None = None
    h1: list[str] = field(default_factory=list)
    canonical: str | None = None
    html_lang: str | None = None

    def first_meta(self, *names: str) -> str | None:
        """The first non-empty content among the ``meta`` ``names``, in the order given."""
        for name in names:
            for value in self.meta.get(name, []):
                if value and value.strip():
                    return value.strip()
        return None

    def first_ld(self, key: str):
        """The first JSON-LD article object's value for ``key`` (None when absent)."""
        for obj in self.articles:
            value = obj.get(key)
            if value not in (None, "", []):
                return value
        return None


def _types(obj: dict) -> set[str]:
    kind = obj.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return {k.lower() for k in kinds if isinstance(k, str)}


def _walk_ld(node, out: list[dict], orgs: list[str], depth: int = 0) -> None:
    if depth > 6:
        return
    if isinstance(node, list):
        for item in node:
            _walk_ld(item, out, orgs, depth + 1)
    elif isinstance(node, dict):
        kinds = _types(node)
        if kinds & ARTICLE_TYPES:
            out.append(node)
        if kinds & {"organization", "newsmediaorganization", "website"} and isinstance(node.get("name"), str):
            orgs.append(node["name"])
        for key in ("@graph", "mainEntity", "mainEntityOfPage", "itemListElement"):
            if key in node:
                _walk_ld(node[key], out, orgs, depth + 1)


def read_candidates(tree: HtmlElement) -> Candidates:
    """Collect metadata candidates from a parsed page (``tree`` is not modified). JSON-LD blocks
    that are not valid JSON are skipped."""
    found = Candidates()
    title = None
    times: dict[str, list[str]] = {}
    # One walk over the elements that carry metadata, in document order.
    for el in tree.iter("meta", "time", "script", "title", "h1", "link"):
        tag = el.tag
        if tag == "meta":
            content = el.get("content")
            if content is None:
                continue
            for attr in ("property", "name", "itemprop"):
                key = el.get(attr)
                if key:
                    found.meta.setdefault(key.strip().lower(), []).append(content)
        elif tag == "time":
            # schema.org microdata ("<time itemprop=datePublished datetime=…>"): a declared date,
            # like the <meta> tags, read before htmldate's search would guess one.
            key, value = el.get("itemprop"), el.get("datetime")
            if key and value:
                times.setdefault(key.strip().lower(), []).append(value)
        elif tag == "script":
            raw = (el.text or "").strip() if el.get("type") == "application/ld+json" else ""
            if not raw:
                continue
            try:
                data = json.loads(raw, strict=False)
            except ValueError:
                continue
            _walk_ld(data, found.articles, found.organizations)
        elif tag == "title":
            if title is None:
                title = el
        elif tag == "h1":
            if len(found.h1) < 3 and (text := " ".join(el.text_content().split())):
                found.h1.append(text)
        elif found.canonical is None and el.get("href") and "canonical" in (el.get("rel") or "").lower().split():
            found.canonical = el.get("href").strip()
    for key, values in times.items():  # after the <meta> tags of the same name
        found.meta.setdefault(key, []).extend(values)
    # Articles before generic WebPage objects: the article's own headline wins.
    found.articles.sort(key=lambda obj: "webpage" in _types(obj) or "creativework" in _types(obj))
    if title is not None and title.text_content().strip():
        found.html_title = " ".join(title.text_content().split())
    root = tree if tree.tag == "html" else tree.getroottree().getroot()
    found.html_lang = root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang")
    return found


# -- titles ------------------------------------------------------------------------------------

# Separators between a headline and the site name in <title>/og:title ("Headline | Site",
# "Headline - Site", "Headline – Site", "Headline · Site", "Headline * Site").
_SEPARATOR = re.compile(r"\s+(?:\||-|–|—|·|\*|::|»)\s+")
_WORD = re.compile(r"\w+")
_DATE_SEGMENT = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")


def _words(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _looks_like_site(segment: str, site_names: list[str], host: str | None) -> bool:
    """True when ``segment`` names the site: equal to a known site name (ignoring case and
    punctuation), the host's main label ("TechCrunch" for techcrunch.com, "MDR.DE"), or a byline
    ("by Jane Doe")."""
    words = _words(segment)
    if not words:
        return True
    if any(words == _words(name) for name in site_names if name):
        return True
    squashed = words.replace(" ", "")
    if host:
        labels = [label for label in host.lower().split(".") if label not in ("www", "m", "amp")]
        if labels and (squashed == "".join(labels) or squashed == labels[0] or squashed == labels[0] + labels[-1]):
            return True
    if _DATE_SEGMENT.fullmatch(segment.strip()):
        return True
    return words.startswith("by ") and len(words.split()) <= 5


def strip_site_name(title: str, site_names: list[str], host: str | None) -> str:
    """``title`` without trailing (or leading) segments that name the site.

    Only a segment separated by ``" | "``, ``" - "``, ``" – "``, ``" — "``, ``" · "``, ``" * "``,
    ``" :: "`` or ``" » "`` and recognised by ``_looks_like_site`` is removed, so a headline that
    itself contains a dash ("Bericht: Aktivistin getötet - Irans Justiz dementiert") is kept whole.
    """
    parts = _SEPARATOR.split(title)
    if len(parts) < 2:
        return title
    seps = _SEPARATOR.findall(title)
    while len(parts) > 1 and _looks_like_site(parts[-1], site_names, host):
        parts.pop()
        seps.pop()
    while len(parts) > 1 and _looks_like_site(parts[0], site_names, host):
        parts.pop(0)
        seps.pop(0)
    out = parts[0]
    for sep, part in zip(seps, parts[1:], strict=True):
        out += sep + part
    return out.strip()


# Typographic quotes folded to their ASCII forms when comparing spellings of one title.
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u201c": '"', "\u201d": '"',
                         "\u201e": '"', "\u201f": '"'})


def choose_title(titles: list[str]) -> str | None:
    """The headline among ``titles``, the page's candidates (site names already stripped) in order
    of preference (``og:title``, JSON-LD ``headline``, ``twitter:title``, ``<h1>``, ``<title>``).

    The first is taken, with two corrections that need at least two sources to agree:
    a longer form that adds a leading kicker ("Bei Protesten 2022: " + the first) and that two or
    more of the other candidates share is the full headline (``og:title`` often drops the kicker);
    and of the spellings of the chosen title that differ only in quote marks (' against ’), the
    one most candidates use is kept (ties: order of preference). None when ``titles`` is empty.
    """
    if not titles:
        return None
    folded = [t.translate(_QUOTES) for t in titles]
    chosen = folded[0]
    longer = [f for f in folded if f.endswith(": " + chosen)]
    if longer:
        best = max(longer, key=longer.count)
        if longer.count(best) >= 2:
            chosen = best
    spellings = [t for t, f in zip(titles, folded, strict=True) if f == chosen]
    return max(spellings, key=spellings.count)


# -- choosing ----------------------------------------------------------------------------------


@dataclass
class PageMetadata:
    """Metadata chosen for one page; times are timezone-aware UTC, ``authors`` in page order."""

    title: str | None = None
    authors: list[str] = field(default_factory=list)
    published_at: datetime | None = None
    published_guessed: bool = False
    """True when ``published_at`` was found by htmldate's search of the page text rather than
    declared in its markup (JSON-LD, ``<meta>``)."""
    updated_at: datetime | None = None
    canonical_url: str | None = None
    site_name: str | None = None
    image: str | None = None
    description: str | None = None
    html_lang: str | None = None


def _clean(value) -> str | None:
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str) and v.strip()), None)
    if not isinstance(value, str):
        return None
    text = normalize_text(value).replace("\n\n", " ")
    return text or None


def _person_names(value) -> list[str]:
    """Names in a schema.org ``author`` value: a string, a Person/Organization object, or a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        name = value.get("name")
        if isinstance(name, list):
            return [n for n in name if isinstance(n, str)]
        if isinstance(name, str):
            return [name]
        given, family = value.get("givenName"), value.get("familyName")
        return [f"{given} {family}"] if isinstance(given, str) and isinstance(family, str) else []
    if isinstance(value, list):
        return [name for item in value for name in _person_names(item)]
    return []


# "Anna Muster und Max Beispiel, dpa": several names in one author string.
_JOINER = re.compile(r"\s+(?:und|and|&|y|et)\s+|\s*[,;]\s+")
_BYLINE = re.compile(r"^(?:by|von|par|di|por|door)\s*:?\s+", re.IGNORECASE)
# "Capital Von Jemima Kelly": a label before a capitalised "Von"/"By" inside the byline (a
# lower-case "von" is part of a name: "Anna von Bismarck").
_LABELLED_BYLINE = re.compile(r"^[^,;]*?\s(?:Von|By|VON|BY)\s*:?\s+(?=[A-ZÄÖÜ])")


def clean_authors(names: list[str]) -> list[str]:
    """Author names tidied: whitespace collapsed, a leading "By"/"Von" (and a label before a
    capitalised "Von"/"By": "Capital Von Jemima Kelly") dropped, URLs and empty
    names removed, duplicates (ignoring case) removed, order kept."""
    out: list[str] = []
    seen: set[str] = set()
    for raw in names:
        whole = _clean(raw)
        if not whole or "://" in whole or whole.startswith("www."):
            continue
        for part in _JOINER.split(_BYLINE.sub("", _LABELLED_BYLINE.sub("", whole))):
            name = part.strip(" ,;")
            if name and name.lower() not in seen:
                seen.add(name.lower())
                out.append(name)
    return out


def without_publishers(authors: list[str], site_names: list[str], host: str | None) -> list[str]:
    """``authors`` without the publisher's own name: a name whose words are those of one of
    ``site_names`` (og:site_name, the JSON-LD publisher and organisations) or of the host's
    name without ``www.`` and suffix (``heise`` for www.heise.de). JSON-LD often names the
    publisher as the author of staff pieces; it is the site, not a byline."""
    from service.ingest.pages.boilerplate import word_key

    names = {word_key(n) for n in site_names if n}
    if host:
        labels = host.lower().removeprefix("www.").split(".")
        names |= {labels[0], ".".join(labels)}
    names.discard("")
    return [a for a in authors if word_key(a) not in names and a.lower() not in names]


def parse_time(value) -> datetime | None:
    """An ISO 8601 / RFC 3339 string (as in JSON-LD and ``article:published_time``) as UTC; a
    value without a zone is taken as UTC, a date alone as midnight UTC. None when unreadable or
    implausible (``dates.plausible``: a ``0001-01-01T00:00:00Z`` placeholder falls through to the
    next source)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if re.fullmatch(r".*[+-]\d{4}", text):  # +0200 → +02:00
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    try:
        moment = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset
        return None
    return moment if plausible(moment) else None


_PUBLISHED_META = ("article:published_time", "og:article:published_time", "og:published_time", "datepublished",
                   "dc.date.issued", "dc.date", "dcterms.date", "dcterms.issued", "citation_publication_date",
                   "parsely-pub-date", "sailthru.date", "pubdate", "publish-date", "date")
_MODIFIED_META = ("article:modified_time", "og:updated_time", "datemodified", "dcterms.modified", "last-modified")


def choose(tree: HtmlElement, url: str | None, fallback=None, *, date_search: bool = True,
           found: Candidates | None = None) -> PageMetadata:
    """Choose the metadata of the page ``tree`` (fetched from ``url``).

    Order of preference per field: JSON-LD article object, then OpenGraph/``<meta>`` tags, then
    ``fallback`` (anything with ``author`` and ``date`` attributes, such as a trafilatura
    ``Document``, or a function of no arguments returning one, called only when the page's own
    markup lacks authors, since a byline search costs a copy of the whole tree; may be None),
    then, for the
    publication time only, htmldate's ``find_date`` over the page (``original_date=True``, no
    extensive search: a wrong date is worse than none). Titles lose site-name segments
    (``strip_site_name``). ``found`` reuses candidates already read from ``tree``.
    """
    from urllib.parse import urlsplit

    found = found or read_candidates(tree)
    host = urlsplit(url).hostname if url else None
    lazy = fallback if callable(fallback) else (lambda: fallback)
    resolved: list = []

    def fallback_doc():
        if not resolved:
            resolved.append(lazy())
        return resolved[0]

    publisher = found.first_ld("publisher")
    site_name = _clean(found.first_meta("og:site_name", "application-name")) or next(
        iter(_person_names(publisher) if publisher else []), None
    ) or _clean(found.first_meta("twitter:site"))
    if site_name and site_name.startswith("@"):
        site_name = site_name[1:]
    site_names = [n for n in [site_name, *(_person_names(publisher) if publisher else []), *found.organizations] if n]

    titles = [strip_site_name(title, site_names, host) for title in map(_clean, (
        found.first_meta("og:title"), found.first_ld("headline"), found.first_meta("twitter:title"),
        found.h1[0] if found.h1 else None, found.html_title)) if title]
    title = choose_title(titles)

    authors = without_publishers(clean_authors(_person_names(found.first_ld("author") or [])), site_names, host)
    if not authors:
        meta_author = found.first_meta("author", "article:author", "dc.creator", "parsely-author", "sailthru.author")
        if meta_author and "://" not in meta_author:
            authors = clean_authors(re.split(r"\s*(?:;|,|\band\b|\bund\b|&)\s*", meta_author))
    if not authors and fallback_doc() is not None and fallback_doc().author:
        authors = clean_authors(fallback_doc().author.split(";"))
    authors = without_publishers(authors, site_names, host)

    published = parse_time(found.first_ld("datePublished")) or parse_time(found.first_meta(*_PUBLISHED_META))
    declared_date = published is not None
    if published is None and resolved and resolved[0] is not None and resolved[0].date:
        published = parse_time(resolved[0].date)
    if published is None and date_search:
        published = _htmldate(tree, url)
    updated = parse_time(found.first_ld("dateModified")) or parse_time(found.first_meta(*_MODIFIED_META))

    image = found.first_ld("image")
    if isinstance(image, list):
        image = image[0] if image else None
    if isinstance(image, dict):
        image = image.get("url")
    image = found.first_meta("og:image", "og:image:url", "twitter:image", "twitter:image:src") or (
        image if isinstance(image, str) else None
    )

    canonical = found.canonical or found.first_meta("og:url")
    if canonical and url:
        from urllib.parse import urljoin

        canonical = urljoin(url, canonical)
    description = _clean(found.first_meta("description", "og:description", "twitter:description"))
    return PageMetadata(
        title=title, authors=authors, published_at=published, updated_at=updated,
        published_guessed=published is not None and not declared_date,
        canonical_url=canonical if canonical and canonical.startswith(("http://", "https://")) else None,
        site_name=site_name, image=image, description=description, html_lang=found.html_lang,
    )


def _htmldate(tree: HtmlElement, url: str | None) -> datetime | None:
    from htmldate import find_date

    try:
        found = find_date(tree, url=url, original_date=True, extensive_search=False, outputformat="%Y-%m-%d")
    except Exception:  # htmldate raises assorted errors on odd markup; no date is the safe answer
        return None
    return parse_time(found) if found else None
