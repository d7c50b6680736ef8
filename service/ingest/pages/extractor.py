"""Article extraction: page HTML in, clean text and metadata out.

``extract_article`` is CPU-bound and runs in worker processes (``service.ingest.workers``), never on
the event loop: lxml is not safe to drive from several threads of one process.

Method (chosen with ``bench/extraction.py``; figures in ``docs/benchmarks.md``):

1. The page is parsed once (trafilatura's ``load_html``, which also decodes bytes); trafilatura
   works on a copy, our metadata reader and wall detector on the original (where lists in table
   cells are flattened, embedded tweets unwrapped from their widgets and pop-up link cards
   dropped first).
2. ``trafilatura.bare_extraction`` in its default balanced mode (which already falls back to
   readability/jusText-style extraction when its own result covers little of the page), with
   ``include_comments=False`` (reader comments are not the article: BL-27, and +0.012 precision on
   the benchmark), ``include_tables=True`` (tables are content: BL-28; dropping them costs 0.008
   recall) and no link or image markup. ``favor_precision`` was measured and rejected (+P, -R, lower
   F1); so was ``favor_recall``.
3. Paragraph filters (``service.ingest.pages.boilerplate``): headline and standfirst (``standfirst``)
   repeated at the top, short newsletter/share/copyright lines, all-capitals promotion links, the
   trailing block of related links.
4. Metadata chosen from JSON-LD / OpenGraph / meta tags, with trafilatura's byline search and
   htmldate as fallbacks, called only when the markup lacks authors or a date
   (``service.ingest.pages.metadata``); language from the text (``service.ingest.pages.language``).
5. Walls (paywall, consent, script-only shell) are detected (``service.ingest.pages.walls``) and
   reported in ``ExtractedArticle.access``; their wording is removed and the rest (a teaser) kept.
6. A second route before concluding a page has no article: when the text (without wall wording)
   is under ``walls.SHORT_WORDS // 3`` words (``walls.is_short``), trafilatura runs again with ``favor_recall=True``
   on a copy of the page without consent dialogs and paywall overlays (``walls.without_walls``);
   the longer text wins. An article inside an ``<aside>`` next to a cookie dialog is found so.
"""

from __future__ import annotations

import functools
import re
from copy import deepcopy
from types import SimpleNamespace

import justext.core
import trafilatura
from justext.utils import get_stoplist, get_stoplists
from lxml.etree import XPath
from trafilatura import external
from trafilatura.htmlprocessing import prune_unwanted_nodes
from trafilatura.json_metadata import normalize_authors
from trafilatura.settings import Document
from trafilatura.utils import load_html, trim
from trafilatura.xpaths import AUTHOR_DISCARD_XPATHS, AUTHOR_XPATHS

from service.ingest.pages import metadata
from service.ingest.pages.boilerplate import clean_paragraphs, word_key
from service.ingest.pages.extracted import ExtractedArticle, ExtractionError, content_hash
from service.ingest.pages.language import choose_language, identify, load_model
from service.ingest.pages.shortcuts import exact_shortcuts
from service.ingest.pages.walls import detect_wall, is_full_article, is_short, strip_wall_wording, without_walls
from service.ingest.text import html_to_text, normalize_text, word_count


class AllStopWords:
    """jusText's stop words of every language, lower-cased, as a set that only answers ``in``:
    ``word in AllStopWords()`` is ``word in frozenset(w.lower() for w in every stop list)``.

    trafilatura's jusText fallback, for a page whose language it is not told, classifies paragraphs
    by these words (``trafilatura.external.JT_STOPLIST``), 154,484 of them. jusText would keep them
    as a frozenset of ``str`` (``justext.core.define_stoplist``, cached): 18 MiB of a worker, most
    of it the 154,484 string objects. Here they are ``BUCKETS`` strings (hash table with chaining:
    the words of a bucket joined by newlines, which no stop word holds), about 3 MiB, built by
    ``load`` (a worker's warm-up: ``preload``) or the first lookup; ``define_stoplist`` hands this set to jusText as it
    is. The answers are the same as the frozenset's, so is the extraction (``tests/test_extraction.py``)."""

    BUCKETS = 16384

    @functools.cached_property
    def _buckets(self) -> list[str]:
        buckets = ["\n"] * self.BUCKETS
        for language in get_stoplists():
            for word in get_stoplist(language):
                word = word.lower()
                i = hash(word) % self.BUCKETS
                if f"\n{word}\n" not in buckets[i]:
                    buckets[i] += f"{word}\n"
        return buckets

    def __contains__(self, word: str) -> bool:
        return "\n" not in word and f"\n{word}\n" in self._buckets[hash(word) % self.BUCKETS]

    def load(self) -> None:
        """Build the buckets now rather than at the first lookup (about 0.2 s of CPU)."""
        self._buckets  # noqa: B018  # the cached property, computed


def _define_stoplist(stoplist, _lower_cased=justext.core.define_stoplist):
    """``justext.core.define_stoplist`` (a frozenset of the lower-cased words), except that
    ``AllStopWords``, lower-cased already, is used as it is."""
    return stoplist if isinstance(stoplist, AllStopWords) else _lower_cased(stoplist)


external.JT_STOPLIST = AllStopWords()  # type: ignore[assignment]  # trafilatura declares it None until it loads one
justext.core.define_stoplist = _define_stoplist


def flatten_lists_in_cells(tree) -> None:
    """Replace each list inside a table cell by its items' text joined with ``"; "``, in place.

    trafilatura drops lists nested in ``<td>``/``<th>`` (BL-28: opening hours listed in a cell);
    as plain text in the cell they survive with and without formatting.
    """
    root = tree.getroottree().getroot()
    for lst in tree.xpath("//td//ul | //td//ol | //th//ul | //th//ol"):
        if lst.getroottree().getroot() is not root:  # inside a list already flattened
            continue
        items = [" ".join(li.text_content().split()) for li in lst.iter("li")]
        span = lst.makeelement("span")
        span.text = "; ".join(item for item in items if item)
        span.tail = lst.tail
        lst.getparent().replace(lst, span)


# Twitter's embed code (publish.twitter.com): <blockquote class="twitter-tweet"> holding the post.
_EMBEDDED_TWEETS = XPath("//blockquote[contains(concat(' ', normalize-space(@class), ' '), ' twitter-tweet ')]")


def unwrap_embedded_tweets(tree) -> None:
    """Make each embedded tweet a plain ``<blockquote>`` in place of its widget wrappers, in place.

    trafilatura drops the wrappers ("social", "embed" and "tweet" classes) and with them posts the
    article quotes ("a whole lot of people on Twitter pointed it out:" followed by the tweets);
    the ScrapingHub annotation counts them as article text. A wrapper is an ancestor whose text is
    the tweet's text alone; the blockquote loses its attributes and replaces the outermost one.
    """
    for quote in _EMBEDDED_TWEETS(tree):
        text = " ".join(quote.text_content().split())
        top = quote
        while (parent := top.getparent()) is not None and parent.tag not in ("body", "article") \
                and " ".join(parent.text_content().split()) == text:
            top = parent
        quote.attrib.clear()
        if top is not quote:
            quote.tail = top.tail
            top.getparent().replace(top, quote)


# Inline elements of a paragraph that hold an image and two or more links: link-card candidates.
_CARD_CANDIDATES = XPath("//p//span[.//img and count(.//a) >= 2]")
_INNER_CARD_CANDIDATES = XPath(".//span[.//img and count(.//a) >= 2]")
# Share of a card's characters (whitespace ignored) that is anchor text.
LINK_CARD_SHARE = 0.9


def _is_link_card(span) -> bool:
    text = "".join(span.text_content().split())
    linked = sum(len("".join(a.text_content().split())) for a in span.iter("a"))
    return bool(text) and linked >= LINK_CARD_SHARE * len(text)


def drop_link_cards(tree) -> None:
    """Remove pop-up link cards from paragraphs, in place: a ``<span>`` inside a ``<p>`` that
    holds an image and two or more links and whose text is at least 90 % anchor text (a person's
    photo, name and latest headlines shown on hover over a linked name). Left in, their text runs
    into the sentence ("Rep. Ilhan OmarIlhan OmarHillicon Valley: …"). The innermost such span
    goes, so the linked name in the sentence stays."""
    for span in _CARD_CANDIDATES(tree):
        if _is_link_card(span) and not any(_is_link_card(inner) for inner in _INNER_CARD_CANDIDATES(span)):
            span.drop_tree()


def prepare(tree) -> None:
    """Fix up ``tree`` in place before extraction: lists in table cells flattened, embedded tweets
    unwrapped, link cards dropped."""
    flatten_lists_in_cells(tree)
    unwrap_embedded_tweets(tree)
    drop_link_cards(tree)


def _paragraphs(tree, url: str | None, formatting: bool = False, recall: bool = False) -> list[str]:
    """trafilatura's main text of ``tree`` (copied by trafilatura, so ``tree`` keeps its
    metadata; ``prepare`` it first), normalised, as a list of paragraphs; ``formatting`` keeps
    emphasis and headings as Markdown; ``recall`` is trafilatura's ``favor_recall``."""
    document = trafilatura.bare_extraction(
        tree, url=url, with_metadata=False, include_comments=False, include_tables=True, include_formatting=formatting,
        include_links=False, include_images=False, favor_precision=False, favor_recall=recall,
    )
    text = document.text if isinstance(document, Document) else None  # None: nothing extracted
    if not text or not text.strip():
        return []
    return [p for p in normalize_text(text, paragraph_per_line=True).split("\n\n") if p]


def anchor_texts(tree) -> set[str]:
    """The whitespace-collapsed texts of the ``<a href>`` elements of ``tree`` (the page before
    extraction), for the link-density filter (``boilerplate.drop_trailing_links``)."""
    out = set()
    for a in tree.iter("a"):
        if a.get("href") is not None:
            text = " ".join(a.text_content().split())
            if text:
                out.add(text)
    return out


def standfirst(tree, descriptions: list[str]) -> str | None:
    """The page's standfirst (dek): a sub-heading (``<h2>``-``<h6>``) of ``tree`` whose words are
    those of one of ``descriptions`` (the page's meta descriptions), as on pages that show their
    summary under the headline. It introduces the article but is not part of its text (the
    ScrapingHub annotation leaves it out); a first paragraph in ``<p>`` that repeats the
    description is article text and is not matched. None when there is none."""
    wanted = {word_key(d) for d in descriptions if d}
    wanted.discard("")
    if not wanted:
        return None
    for heading in tree.iter("h2", "h3", "h4", "h5", "h6"):
        text = " ".join(heading.text_content().split())
        if word_key(text) in wanted:
            return text
    return None


# trafilatura's AUTHOR_DISCARD_XPATHS (trafilatura.xpaths, Apache-2.0) as a predicate: comment
# lists, sidebars, quotes, date lines, <time> and <figure> hold no byline.
_DISCARDED = """[self::a or self::div or self::section or self::span][
    @id='comments' or @class='comments' or @class='title' or @class='date' or
    re:test(@id, '^comments|comment-?list|ProductReviews') or
    re:test(@class, '^[Cc]omments|commentlist|comments-list|sidebar|is-hidden|quote|embedly-instagram|article-(?:share|support)|print|category|meta-date|meta-reviewer') or
    contains(@data-component, 'Figure')]"""
_REGEX_NS = {"re": "http://exslt.org/regular-expressions"}
# The element is inside a discarded region / holds one.
_IN_DISCARDED = XPath(f"ancestor-or-self::*{_DISCARDED} | ancestor-or-self::time | ancestor-or-self::figure", namespaces=_REGEX_NS)
_HOLDS_DISCARDED = XPath(f"descendant::*{_DISCARDED} | descendant::time | descendant::figure", namespaces=_REGEX_NS)


# Every AUTHOR_XPATHS expression selects elements by the values of these attributes (or the <author>
# tag), and every value it accepts contains one of the words of BYLINE_HINT (checked against
# trafilatura's expressions in tests/test_extraction.py). The elements holding such a value are the
# candidates; each expression is then tested on them alone (``self::`` for ``//``), which yields its
# matches in the same document order without evaluating its predicates on every element of the page.
_HINT_WORDS = (r"author|byl|bbl|username|writer|screenname|channel-name|submitted-by|posted-by"
               r"|journalist-name|zuozhe|bianji|xiaobian")
BYLINE_HINT = re.compile("(?i)" + _HINT_WORDS)
# The same words for lower-cased ASCII text, where a case-sensitive search answers as BYLINE_HINT
# does at a fraction of its cost. Not for other text: case-insensitive matching differs from
# lower-casing there (the long s, U+017F, matches "s"), so it is searched with BYLINE_HINT.
_HINT_IN_LOWER_ASCII = re.compile(_HINT_WORDS)
# The values of those attributes (lxml's strings, which know their element) and the <author>
# elements, in document order: one evaluation of the union.
_HINT_NODES = XPath("//@rel | //@id | //@class | //@itemprop | //@data-testid | //@data-component | //author")
_AUTHOR_TESTS = [XPath(x.path.replace("//", "self::"), namespaces=_REGEX_NS) for x in AUTHOR_XPATHS]


def byline_candidates(tree) -> list:
    """The elements of ``tree`` that can match an ``AUTHOR_XPATHS`` expression, in document order:
    those with a rel/id/class/itemprop/data-testid/data-component value containing a
    ``BYLINE_HINT`` word, and ``<author>`` elements. The distinct ASCII values are searched as
    one lower-cased string (NUL-separated: no attribute holds NUL), one scan instead of one per
    value; the others (few) one by one."""
    nodes = _HINT_NODES(tree)
    values = {node for node in nodes if isinstance(node, str)}
    ascii_values = [value for value in values if value.isascii()]
    joined = "\0".join(ascii_values).lower()
    hits = {ascii_values[joined.count("\0", 0, match.start())] for match in _HINT_IN_LOWER_ASCII.finditer(joined)}
    hits.update(value for value in values if not value.isascii() and BYLINE_HINT.search(value))
    found: dict = {}
    for node in nodes:
        if not isinstance(node, str):  # an <author> element
            found.setdefault(node, None)
        elif node in hits:
            found.setdefault(node.getparent(), None)  # type: ignore[attr-defined]  # lxml's attribute values (smart strings) have getparent()
    return list(found)


def byline_author(tree) -> str | None:
    """trafilatura's byline search (``trafilatura.metadata.extract_author``: its ``AUTHOR_XPATHS``
    in order, the first match of 3-119 characters, after pruning ``AUTHOR_DISCARD_XPATHS``) with
    the same result at a fraction of the cost: the expressions are tested on ``byline_candidates``
    only, matches inside a discarded region are skipped, and only a match that contains a
    discarded element is copied and pruned (trafilatura copies and prunes the whole page). Not
    reproduced: trafilatura's ``rel='me'``, which tests a child element named ``rel``, absent
    from HTML. Returns trafilatura's normalised author string ("A; B") or None."""
    candidates = byline_candidates(tree)
    for test in _AUTHOR_TESTS:
        for elem in candidates:
            if not test(elem) or _IN_DISCARDED(elem):
                continue
            if _HOLDS_DISCARDED(elem):
                elem = prune_unwanted_nodes(deepcopy(elem), AUTHOR_DISCARD_XPATHS)
            content = trim(" ".join(elem.itertext()))
            if content and 2 < len(content) < 120:
                return normalize_authors(None, content)
    return None


def _byline(tree):
    """The byline search alone (``byline_author``), shaped like the ``Document``
    ``metadata.choose`` takes as fallback."""
    return SimpleNamespace(author=byline_author(tree), date=None)


def preload() -> None:
    """Load what extraction otherwise loads on its first page: the stop words of every language
    (``AllStopWords``, for trafilatura's jusText fallback, which the first corpus page already
    takes) and the language model (``language.load_model``). A worker's warm-up calls it
    (``workers.EXTRACTION_WARM_UP``), outside any page's time limit and, in ``poll --once``, while
    the main process still imports its stack: its first page took about 0.1–0.4 s longer than the
    others without it."""
    external.JT_STOPLIST.load()  # type: ignore[attr-defined]  # set to an AllStopWords above
    load_model()


def extract_article(html: bytes | str, url: str | None = None, *, formatting: bool = False) -> ExtractedArticle:
    """Extract the main text and metadata of one article page.

    ``html`` is the page as served (bytes are decoded by trafilatura's charset detection); ``url``
    is where it was fetched from and resolves relative links; ``formatting`` keeps emphasis and
    headings as Markdown in ``text`` (off in the service). Raises ``ExtractionError`` when the
    page is not HTML, is a script-only shell, or has no main text and no recognisable wall.
    """
    with exact_shortcuts():
        return _extract_article(html, url, formatting)


def _extract_article(html: bytes | str, url: str | None, formatting: bool) -> ExtractedArticle:
    """``extract_article``'s work (inside ``shortcuts.exact_shortcuts``)."""
    tree = load_html(html)
    if tree is None:
        raise ExtractionError("the page is empty or not HTML")
    prepare(tree)
    paragraphs = _paragraphs(tree, url, formatting)
    found = metadata.read_candidates(tree)
    chosen = metadata.choose(tree, url, lambda: _byline(tree), found=found)
    descriptions = [d for name in ("description", "og:description", "twitter:description") for d in found.meta.get(name, [])]
    leading = [chosen.title, *found.h1[:1], standfirst(tree, descriptions)]
    text = "\n\n".join(clean_paragraphs(paragraphs, leading, lambda: anchor_texts(tree)))
    if is_short(text):  # second route before giving up
        second = _paragraphs(without_walls(tree), url, formatting, recall=True)
        second_text = "\n\n".join(clean_paragraphs(second, leading, lambda: anchor_texts(tree)))
        if word_count(strip_wall_wording(second_text)) > word_count(strip_wall_wording(text)):
            text = second_text
    wall = detect_wall(tree, text, found.first_ld("isAccessibleForFree"))
    if wall is not None:
        text = strip_wall_wording(text)
    if wall is not None and wall.kind == "script-shell":
        raise ExtractionError(str(wall))
    if not text and wall is None:
        raise ExtractionError("no main text found in the page")
    language = choose_language(text, chosen.html_lang)
    return ExtractedArticle(
        text=text,
        title=chosen.title,
        authors=chosen.authors,
        published_at=chosen.published_at,
        published_guessed=chosen.published_guessed,
        updated_at=chosen.updated_at,
        language=language.code if language else None,
        language_confidence=language.confidence if language else None,
        canonical_url=chosen.canonical_url,
        site_name=chosen.site_name,
        image=chosen.image,
        description=chosen.description,
        word_count=word_count(text),
        content_hash=content_hash(text) if text else "",
        access=wall.kind if wall else "free",
        access_reason=wall.reason if wall else None,
    )


def extract_page(html: bytes | str, url: str | None = None, feed_content: str | None = None) -> ExtractedArticle:
    """``extract_article`` as the pipeline runs it in a worker process: for a walled page it also
    turns the entry's ``feed_content`` (HTML) into text, judges whether that text is the whole
    article (``walls.is_full_article``) and, when it is longer than the page's teaser, identifies
    its language, so none of that CPU work runs on the event loop. Sets ``feed_text``,
    ``feed_text_complete`` and then ``language``/``language_confidence``. Raises
    ``ExtractionError`` like ``extract_article``."""
    extracted = extract_article(html, url)
    if extracted.access != "free":
        feed_text = html_to_text(feed_content) if feed_content else ""
        extracted.feed_text = feed_text or None
        extracted.feed_text_complete = is_full_article(feed_text)
        if word_count(feed_text) > extracted.word_count:
            guess = identify(feed_text) if feed_text else None
            extracted.language = guess.code if guess else None
            extracted.language_confidence = guess.confidence if guess else None
    return extracted
