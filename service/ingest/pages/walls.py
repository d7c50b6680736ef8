"""Walls in front of the article: paywalls, consent walls and script-only shells.

A wall is a flag on the article (``access`` = ``paywall`` or ``consent``, with the signal as
reason), never a reason to drop text: the wall's own wording ("Subscribe to continue reading", a
cookie dialog) is removed (``strip_wall_wording``) and the best text available is kept, the
page's teaser or the feed's content (``store.record_extraction``). A script-only shell has no
text at all; the feed's text is kept.

Signals, strongest first:

* schema.org paywall markup: ``"isAccessibleForFree": false`` on the article (Google Search
  Central, "Subscription and paywalled content"; https://schema.org/isAccessibleForFree);
* a short extraction (under ``SHORT_WORDS`` words) that is mostly wall wording (paywall or
  consent phrases below, English and German, the languages of our corpus);
* a script-only shell: the body holds almost no text outside ``<script>``/``<noscript>`` while
  scripts make up most of the page, or a ``<noscript>`` asks for JavaScript.
"""

from __future__ import annotations

import re
from copy import deepcopy
from dataclasses import dataclass

from lxml.html import HtmlElement

from service.ingest.text import word_count

# Extractions at least this long (``text.word_count``: a Chinese character or kana is a word) are
# articles even if they mention subscriptions or cookies.
SHORT_WORDS = 150

_PAYWALL = re.compile(
    r"(?i)subscribe to (?:continue|read)|to continue reading|already a subscriber|subscribers only|"
    r"this (?:article|content|story) is (?:only )?(?:available|reserved) (?:to|for) (?:subscribers|members)|"
    r"sign in to read|create a free account to (?:continue|read)|unlock (?:this|the full) (?:article|story)|"
    r"jetzt (?:weiterlesen|abonnieren|testen)|mit (?:[\w+-]+ )?abo weiterlesen|artikel ist (?:nur )?für abonnenten|"
    r"zugang zu allen (?:artikeln|inhalten)|bereits abonnent"
)
_CONSENT = re.compile(
    r"(?i)we (?:and our partners )?use cookies|cookie (?:settings|preferences|policy)|accept (?:all )?cookies|"
    r"manage (?:your )?(?:consent|privacy) (?:settings|preferences|choices)|your privacy choices|"
    r"we value your privacy|(?:cookies|datenschutz)einstellungen|alle akzeptieren|zustimmen und weiter|"
    r"wir (?:und unsere partner )?(?:verwenden|nutzen) cookies|einwilligung"
)
_NEEDS_JS = re.compile(r"(?i)enable javascript|javascript (?:is )?(?:disabled|required)|javascript aktivieren")


@dataclass(frozen=True)
class Wall:
    """Why a page is not the article: ``kind`` is ``paywall``, ``consent`` or ``script-shell``;
    ``reason`` says which signal fired."""

    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.reason}"


# A prompt to subscribe to a newsletter is not a paywall.
_NEWSLETTER = re.compile(r"(?i)newsletter|inbox|e-?mail|posteingang")
# Longest paragraph taken for wall wording; longer ones are article text that mentions cookies.
PROMPT_WORDS = 60


def _is_prompt(paragraph: str, pattern: re.Pattern) -> bool:
    # the word count first: it is cheaper than the case-insensitive search
    return word_count(paragraph) < PROMPT_WORDS and bool(pattern.search(paragraph)) and not (
        pattern is _PAYWALL and _NEWSLETTER.search(paragraph)
    )


def _wall_wording(text: str, pattern: re.Pattern) -> bool:
    """True when ``pattern`` matches a paragraph of ``text`` that is a sizeable share of it."""
    words = word_count(text) or 1
    hits = [p for p in text.split("\n\n") if _is_prompt(p, pattern)]
    return bool(hits) and (words < 60 or sum(word_count(p) for p in hits) * 4 >= words)


def strip_wall_wording(text: str) -> str:
    """``text`` (paragraphs separated by blank lines) without its paywall and consent prompts:
    paragraphs under ``PROMPT_WORDS`` words with paywall or consent wording. What is left of a
    walled page is its teaser."""
    return "\n\n".join(p for p in text.split("\n\n") if p and not _is_wall_prompt(p))


def _is_wall_prompt(paragraph: str) -> bool:
    return _is_prompt(paragraph, _PAYWALL) or _is_prompt(paragraph, _CONSENT)


def is_short(text: str, words: int = SHORT_WORDS // 3) -> bool:
    """True when ``text`` (paragraphs separated by blank lines) has fewer than ``words`` words
    once its wall wording is gone: ``word_count(strip_wall_wording(text)) < words``, read only
    until that many words are found (an article's first paragraphs), not through the whole text."""
    found = 0
    for paragraph in text.split("\n\n"):
        if paragraph and not _is_wall_prompt(paragraph):
            found += word_count(paragraph)
            if found >= words:
                return False
    return True


# class/id names publishers and paywall vendors give the element that hides the article.
_PAYWALL_MARKUP = re.compile(r"(?i)paywall|regwall|piano-|subscriber-only|premium-(?:content|article|wall)|meter-?wall|tp-modal")


# Elements that hold a wall rather than the article: consent-platform dialogs and paywall overlays.
WALL_ELEMENTS = re.compile(_PAYWALL_MARKUP.pattern + r"|cookie|consent|gdpr|\bcmp\b|cmp-|didomi|onetrust|usercentrics|sp_message")


def _visible_blocks(tree: HtmlElement) -> list[str]:
    """The visible text of ``tree``'s body, one string per text node's parent element."""
    body = tree.find(".//body")
    if body is None:
        return []
    return [" ".join(node.getparent().text_content().split()) if node.getparent() is not None else str(node)
            for node in body.xpath(".//text()[normalize-space() and not(ancestor::script) and not(ancestor::style) "
                                   "and not(ancestor::noscript)]")]


def _visible_text(tree: HtmlElement) -> str:
    body = tree.find(".//body")
    if body is None:
        return ""
    return " ".join(body.xpath(".//text()[not(ancestor::script) and not(ancestor::style) and not(ancestor::noscript)]"))


def without_walls(tree: HtmlElement) -> HtmlElement:
    """A copy of ``tree`` without the elements whose class or id names a consent dialog or a
    paywall overlay (``WALL_ELEMENTS``) unless they hold an ``<article>``: the page a second
    extraction route reads when the first found no article."""
    copy = deepcopy(tree)
    for element in list(copy.iter("div", "section", "aside", "form", "dialog", "footer")):
        names = (element.get("class") or "") + " " + (element.get("id") or "")
        if WALL_ELEMENTS.search(names) and element.find(".//article") is None and element.getparent() is not None:
            element.drop_tree()
    return copy


def detect_wall(tree: HtmlElement, text: str, accessible_for_free: object = None) -> Wall | None:
    """The wall ``tree`` shows instead of an article, or None.

    ``text`` is what extraction kept (may be empty; trafilatura often drops the wall's own element
    and keeps only a teaser); ``accessible_for_free`` is the JSON-LD ``isAccessibleForFree`` value
    of the article object, if any (bool or "False"/"false"). Only pages whose text is under
    ``SHORT_WORDS`` words are examined, so a long article that mentions cookies is never a wall;
    a short article with a subscription prompt next to it is taken as paywalled. A newsletter
    sign-up ("Subscribe to read the briefing in your inbox") is not a subscription prompt.
    """
    words = word_count(text)
    if words >= SHORT_WORDS:
        return None
    if str(accessible_for_free).strip().lower() == "false":
        return Wall("paywall", "schema.org isAccessibleForFree is false and the free text is short")
    if text and _wall_wording(text, _PAYWALL):
        return Wall("paywall", "the page text is a subscription prompt")
    if text and _wall_wording(text, _CONSENT):
        return Wall("consent", "the page text is a cookie or consent dialog")
    page_text = _visible_text(tree)
    visible = len(page_text.strip())
    scripts = sum(len(s.text or "") for s in tree.iter("script"))
    noscript = " ".join(n.text_content() for n in tree.iter("noscript"))
    if words < SHORT_WORDS // 3 and (_NEEDS_JS.search(noscript) or (visible < 200 and scripts > 5 * max(visible, 1))):
        return Wall("script-shell", "the page has no text without JavaScript")
    marked = any(_PAYWALL_MARKUP.search((el.get("class") or "") + " " + (el.get("id") or ""))
                 for el in tree.iter("div", "section", "aside", "article"))
    prompt = any(_is_prompt(block, _PAYWALL) for block in _visible_blocks(tree))
    if prompt and (marked or words < SHORT_WORDS // 3):
        return Wall("paywall", "a short teaser next to a subscription prompt")
    if words < SHORT_WORDS // 3 and _CONSENT.search(page_text):
        return Wall("consent", "no article text besides a cookie or consent dialog")
    return None


# Endings of a feed text that was cut short by the publisher ("…", "[...]", "Read more").
_TRUNCATED = re.compile(r"(?i)(?:\.\.\.|…|\[\s*(?:\.\.\.|…)\s*\]|read more|continue reading|weiterlesen|mehr lesen|the post .+ appeared first on .+)\W*$")


def is_full_article(text: str | None) -> bool:
    """True when a feed's own content (``content:encoded``, Atom ``content``, as plain text) is
    clearly the whole article: at least ``SHORT_WORDS`` words in at least two paragraphs, and not
    ending in a truncation marker ("…", "[...]", "Read more", "Continue reading")."""
    if not text:
        return False
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return word_count(text) >= SHORT_WORDS and len(paragraphs) >= 2 and not _TRUNCATED.search(text.strip())
