"""Text hygiene shared by every text Newsloom stores: Unicode NFC, no zero-width or control
characters, no leftover HTML entities, paragraphs as blank-line-separated blocks.

lxml and ``lxml_html_clean`` are imported by ``html_to_text`` only, on first use: the service's
main process imports this module for ``clip_title`` and ``storable`` and never parses HTML (the
workers do), so it does not carry them (about 4 MiB)."""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import lxml.html
    from lxml_html_clean import Cleaner

# Zero-width and bidi-control characters that leak from CMS templates (U+200B-U+200F, U+202A-U+202E,
# U+2060-U+2064, U+FEFF). Soft hyphen (U+00AD) is dropped too: it only marks hyphenation points.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
# C0/C1 control characters other than tab and newline.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")

_BLOCK_TAGS = {
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre",
    "table", "tr", "section", "article", "header", "footer", "figure", "figcaption", "dd", "dt", "hr",
}


@functools.cache
def _cleaner() -> Cleaner:
    from lxml_html_clean import Cleaner

    return Cleaner(scripts=True, javascript=True, style=True, comments=True, forms=True, embedded=True,
                   frames=True, meta=True, page_structure=False, links=True, safe_attrs_only=True)


def normalize_text(text: str, *, paragraph_per_line: bool = False) -> str:
    """Clean ``text`` for storage.

    NFC-normalises, decodes stray HTML entities (``&amp;``, ``&nbsp;``), drops zero-width and control
    characters, collapses runs of spaces, and separates paragraphs by exactly one blank line. With
    ``paragraph_per_line`` every input line is taken as a paragraph (trafilatura's text output).
    """
    if "&" in text:
        text = html.unescape(text)
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    if paragraph_per_line:
        return "\n\n".join(line for line in lines if line)
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment (a feed summary or ``content:encoded``), block elements
    becoming paragraphs. Scripts, styles and comments are removed with ``lxml_html_clean``.
    Returns ``""`` for empty or unparsable input."""
    if not fragment or not fragment.strip():
        return ""
    if "<" not in fragment:
        return normalize_text(fragment)
    import lxml.html
    from lxml.etree import ParserError

    try:
        root = _cleaner().clean_html(lxml.html.fragment_fromstring(fragment, create_parent="div"))
    except (ParserError, ValueError):
        return normalize_text(fragment)
    parts: list[str] = []
    _walk(root, parts)
    return normalize_text("".join(parts))


def _walk(element: lxml.html.HtmlElement, parts: list[str]) -> None:
    block = isinstance(element.tag, str) and element.tag in _BLOCK_TAGS
    if block:
        parts.append("\n\n")
    if element.text:
        parts.append(element.text)
    for child in element:
        _walk(child, parts)
        if child.tail:
            parts.append(child.tail)
    if block:
        parts.append("\n\n")


MAX_TITLE_LENGTH = 1000
"""Longest title stored (characters); real headlines stay under 300, a longer "title" is a feed or
page that put its text there."""


# Characters XML 1.0 cannot carry (§2.2, Char): the C0 controls but TAB, LF and CR, and U+FFFE and
# U+FFFF; NUL also cannot be stored in PostgreSQL text. Lone surrogates (a JSON "\ud800" escape
# decodes to one) cannot be encoded in UTF-8, so neither database driver can store them.
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(value: str) -> str:
    """``value`` without the characters XML 1.0 cannot carry (NUL and the other C0 controls but
    TAB, LF and CR; U+FFFE, U+FFFF) and with each lone surrogate replaced by U+FFFD: what every
    feed string goes through before it is stored, so that none can fail an insert (NUL on
    PostgreSQL) or make the OPML export unparsable."""
    if value.isascii() and value.isprintable():  # no control character, no surrogate: nothing to drop
        return value
    return _SURROGATE.sub("\ufffd", _NOT_XML_CHAR.sub("", value))


# Letters of the scripts written without spaces between words in which each character is counted
# as a word (the convention of word processors for East Asian text): Hiragana, Katakana (without
# its middle dot and sound marks), Katakana extensions and halfwidth forms, and the CJK ideographs
# (Extension A, the Unified block, compatibility ideographs, Extensions B and later).
_CHARACTER_WORDS = re.compile(
    "[\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]"
)
# The punctuation between them (CJK symbols and punctuation, the Katakana middle dot, fullwidth
# punctuation): separators, as spaces are, not words.
_CHARACTER_SEPARATORS = re.compile("[\u3000-\u303f\u30fb\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]")


def word_count(text: str) -> int:
    """The number of words in ``text``: its whitespace-separated words, where each Chinese
    character and each Japanese kana counts as one word (those scripts put no space between
    words: a Japanese report of 200 characters is about 200 words, not the 1 to 3 runs between
    its spaces). Thai, Lao, Khmer and Burmese, also written without spaces, are counted by their
    spaces (no dictionary here to find their words)."""
    if text.isascii():
        return len(text.split())
    characters = len(_CHARACTER_WORDS.findall(text))
    if not characters:
        return len(text.split())
    return characters + len(_CHARACTER_SEPARATORS.sub(" ", _CHARACTER_WORDS.sub(" ", text)).split())


def clip_title(title: str | None) -> str | None:
    """``title`` cut to ``MAX_TITLE_LENGTH`` characters, ending with "…" when cut; None stays None."""
    if title is None or len(title) <= MAX_TITLE_LENGTH:
        return title
    return title[: MAX_TITLE_LENGTH - 1].rstrip() + "…"
