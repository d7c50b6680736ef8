"""Paragraph filters applied after trafilatura: lines trafilatura keeps but that are not the
article (the headline and standfirst repeated at the top, newsletter and share prompts, copyright
lines, promotion links, the trailing block of related links).

Measured with ``bench/extraction.py`` on the ScrapingHub benchmark pages: precision +0.013,
recall -0.0008. The phrases are generic page furniture found on news sites in general (the kind
jusText and boilerpipe treat as boilerplate: Pomikálek 2011, Kohlschütter et al. 2010), not
site-specific strings; only short paragraphs (``MAX_WORDS``) are candidates, so an article
paragraph that happens to quote such a phrase is kept.
"""

from __future__ import annotations

import re
from functools import cache

# Paragraphs longer than this are never dropped as boilerplate.
MAX_WORDS = 40

_BOILERPLATE = re.compile(
    r"(?i)^(?:read more|related|see more|see also|also on|more:|don'?t miss|you may also like|advertisement|"
    r"sign up|subscribe|follow (?:us|him|her|them|@)|click here|share this|thanks for signing up|"
    r"listen:|download:|copyright|©|\(c\) \d{4}|lesen sie auch|mehr zum thema|anzeige$|werbung$)"
    r"|all rights reserved|alle rechte vorbehalten|newsletter"
    r"|(?:write to|email|e-mail) [\w .'-]{2,40} at \S+@|may be reached at \S+@"
)
_WORD = re.compile(r"\w+")


def word_key(text: str) -> str:
    """``text`` as its lower-cased words joined by single spaces (punctuation and spacing
    ignored), for comparing a paragraph with a headline or a description."""
    return " ".join(_WORD.findall(text.lower()))


def drop_leading_title(paragraphs: list[str], titles: list[str | None]) -> list[str]:
    """``paragraphs`` without leading ones that repeat one of ``titles`` (the headline as chosen,
    the page's ``<h1>``, its standfirst), or a longer part of one: the headline is stored as
    ``title`` and the standfirst as ``description``, the body should not start with them again."""
    wanted = [word_key(t) for t in titles if t]
    if not wanted:
        return paragraphs
    start = 0
    while start < len(paragraphs):
        words = word_key(paragraphs[start])
        if words and any(words == w or (len(words) > 15 and words in w) for w in wanted):
            start += 1
            continue
        break
    return paragraphs[start:]


# Pieces of a byline/date block at the top of an article ("Von: Anna Muster", "Veröffentlicht am
# 12.03.2024, 10:15 Uhr", "3 Minuten Lesezeit", "By Jane Roe, AFP", "Updated May 2, 2024 5 min read").
_BYLINE_PIECE = re.compile(
    r"^(?:(?i:by|von|text|autor(?:in)?|author|written by|par|di|por|door)\s*:?\s+"
    r"(?:[A-ZÄÖÜÉ][\w.'’-]*|(?i:and|und|&|de|van|von|der|la))(?:[\s,]+(?:[A-ZÄÖÜÉ][\w.'’-]*|(?i:and|und|&|de|van|von|der|la))){0,7}"
    r"|(?i:(?:veröffentlicht|aktualisiert|erschienen|zuletzt aktualisiert|stand|published|updated|posted|last updated)"
    r"(?:\s+(?:am|on|at|um))?\s*:?\s*[\w .,:/-]*\d[\w .,:/-]*)"
    r"|(?i:\d+\s*(?:min(?:\.|uten?|s)?|minutes?)\.?\s*(?:lesezeit|lesedauer|read(?:ing time)?))"
    r"|(?i:(?:lesezeit|lesedauer|reading time)\s*:?\s*\d+\s*(?:min(?:\.|uten?)?|minutes?)))$"
)
_PIECE_SEPARATOR = re.compile(r"\s*(?:[|·•—]|\s-\s|\n)\s*")
# Only this many leading paragraphs are looked at for a byline block, each at most this long.
BYLINE_PARAGRAPHS, BYLINE_MAX_WORDS = 4, 25


def is_byline_block(paragraph: str) -> bool:
    """True for a short paragraph made only of byline, date and reading-time pieces (see
    ``_BYLINE_PIECE``), separated by ``|``, ``·``, ``•`` or `` - ``: the author and the date are
    stored as ``authors`` and ``published_at``, not as text."""
    if len(paragraph.split()) > BYLINE_MAX_WORDS:
        return False
    pieces = [p.strip(" ,") for p in _PIECE_SEPARATOR.split(paragraph.strip()) if p.strip(" ,")]
    return bool(pieces) and all(_BYLINE_PIECE.match(p) for p in pieces)


def drop_byline_blocks(paragraphs: list[str]) -> list[str]:
    """``paragraphs`` without byline blocks (``is_byline_block``) among the first
    ``BYLINE_PARAGRAPHS``."""
    head = [p for p in paragraphs[:BYLINE_PARAGRAPHS] if not is_byline_block(p)]
    return head + paragraphs[BYLINE_PARAGRAPHS:]


def is_boilerplate(paragraph: str) -> bool:
    """True for a short paragraph that is page furniture (see module docstring)."""
    return len(paragraph.split()) <= MAX_WORDS and bool(_BOILERPLATE.search(paragraph.strip()))


# Trailing paragraphs at most this long are candidates for the link-block filter.
TRAILING_MAX_WORDS = 30
# Share of a trailing paragraph's characters that must be anchor text for it to count as a link;
# lower for list items ("- …"), since teaser lists pair a linked headline with an unlinked summary.
LINK_SHARE = 0.5
LINK_SHARE_ITEM = 0.3


def link_share(paragraph: str, anchors: set[str]) -> float:
    """Share (0-1) of the characters of ``paragraph`` (a leading list dash ignored) covered by the
    anchor texts in ``anchors`` (whitespace-collapsed ``<a>`` texts of the original page) that
    occur in it."""
    text = paragraph[2:] if paragraph.startswith("- ") else paragraph
    if not text:
        return 0.0
    if text in anchors:
        return 1.0
    covered = sum(len(a) for a in anchors if len(a) > 3 and a in text)
    return min(1.0, covered / len(text))


def drop_trailing_links(paragraphs: list[str], anchors) -> list[str]:
    """``paragraphs`` without the run of short, mostly-link paragraphs at the end ("related
    stories", "more from", teaser lists): link density measured against the ORIGINAL page's
    anchors, since the extracted text has lost its markup (Kohlschütter et al. 2010: link density
    is the strongest single boilerplate feature). ``anchors`` is the set of anchor texts or a
    function of no arguments returning it (called only when the last paragraph is short). At most
    half of the paragraphs are dropped, so a page that is a list of links keeps its content."""
    if not paragraphs or len(paragraphs[-1].split()) > TRAILING_MAX_WORDS:
        return paragraphs
    links = anchors() if callable(anchors) else anchors
    end = len(paragraphs)
    while end > 0 and len(paragraphs[end - 1].split()) <= TRAILING_MAX_WORDS \
            and link_share(paragraphs[end - 1], links) >= (
                LINK_SHARE_ITEM if paragraphs[end - 1].startswith("- ") else LINK_SHARE):
        end -= 1
    return paragraphs[:end] if end >= len(paragraphs) / 2 else paragraphs


# An all-capitals paragraph of this many words, mostly anchor text, is a promotion link.
PROMO_MIN_WORDS, PROMO_MAX_WORDS = 3, 20
PROMO_LINK_SHARE = 0.9


def is_promo_link(paragraph: str, anchors: set[str]) -> bool:
    """True for a cross-promotion line inside the article: 3-20 words, all in capitals, at least
    90 % anchor text of the original page ("SEAN SPICER ELIMINATED FROM 'DANCING WITH THE STARS'",
    "GET FOX BUSINESS ON THE GO BY CLICKING HERE"). A linked acronym ("[CNBC]") is a source credit
    and too short; a linked sentence in normal case is article text."""
    return (paragraph.isupper() and PROMO_MIN_WORDS <= len(paragraph.split()) <= PROMO_MAX_WORDS
            and link_share(paragraph, anchors) >= PROMO_LINK_SHARE)


def clean_paragraphs(paragraphs: list[str], titles: list[str | None], anchors=frozenset()) -> list[str]:
    """All filters: leading headline repeats, byline blocks, boilerplate paragraphs, promotion links and the
    trailing link block (``anchors``: see ``drop_trailing_links``; a function is called at most
    once) removed. When that would leave nothing (a page whose only text is its headline),
    ``paragraphs`` is returned unchanged."""
    links = cache(anchors) if callable(anchors) else (lambda: anchors)
    kept = [p for p in drop_byline_blocks(drop_leading_title(paragraphs, titles)) if not is_boilerplate(p)]
    if any(p.isupper() for p in kept):
        kept = [p for p in kept if not is_promo_link(p, links())]
    kept = drop_trailing_links(kept, links)
    return kept or paragraphs
