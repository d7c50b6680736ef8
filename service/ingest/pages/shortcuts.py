"""Shortcuts through trafilatura's extraction that give the same result for less CPU, each in force
only within ``extract_article`` (``exact_shortcuts``); elsewhere in the process trafilatura runs as
shipped. Each is exact by an argument written in its docstring, and checked on every corpus and
bug-case page by ``tests/test_extraction.py`` (the extraction is the same with and without it);
figures in ``docs/benchmarks.md``.

- ``elements_in_c``: lxml's class lookup in C instead of lxml.html's in Python.
- ``readability_only_where_it_can_win``: readability is not run where its text could not replace
  trafilatura's own (``readability_cannot_win``).
- ``escalation_page_text_only_where_it_counts``: the page's text is not made for trafilatura's
  recall escalation where a bound on its length already decides that there is none
  (``page_text_bound``).
- ``xpath_rewrites.rewritten_xpaths``: trafilatura's XPath expressions rewritten to select the
  same elements with fewer calls into Python and fewer walks of the whole page.

trafilatura's modules are the process's: these are for one thread at a time, as everywhere lxml
runs here (``service.ingest.workers``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from lxml.etree import ElementDefaultClassLookup, XPath
from lxml.html import HtmlComment, HtmlElement, HtmlElementClassLookup, HtmlEntity, HtmlProcessingInstruction
from trafilatura import core, external
from trafilatura.baseline import _BLOCK_ELEMS, html2txt
from trafilatura.utils import HTML_PARSER

from service.ingest.pages.xpath_rewrites import rewritten_xpaths

ELEMENT_LOOKUP = ElementDefaultClassLookup(element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction,
                                           entity=HtmlEntity)
"""Every element an ``HtmlElement``, chosen by lxml in C (``elements_in_c``)."""


@contextlib.contextmanager
def elements_in_c() -> Iterator[None]:
    """Within the block, the parser trafilatura's ``load_html`` uses (for the page, and for
    readability's result) gives every element the class ``HtmlElement`` by ``ELEMENT_LOOKUP``;
    after it, lxml.html's own lookup again, so trafilatura called elsewhere in the process is as
    shipped.

    lxml.html's lookup (``HtmlElementClassLookup``, which gives form controls classes of their own)
    runs in Python, once for every element object made: about 960,000 calls over the corpus's 240
    pages, which trafilatura copies and walks several times, about 1 ms of a page's 20. Nothing
    here or in trafilatura, htmldate and justext uses the form classes, and the extraction is the
    same (``tests/test_extraction.py``). lxml asks the parser's lookup whenever it makes an element
    object, so a tree parsed here and read after the block gets lxml.html's classes again. The
    parser is the process's: one thread at a time, as everywhere lxml runs here (module docstring)."""
    HTML_PARSER.set_element_class_lookup(ELEMENT_LOOKUP)
    try:
        yield
    finally:
        HTML_PARSER.set_element_class_lookup(HtmlElementClassLookup())  # what lxml.html.HTMLParser sets


_TEXT = XPath("string()", smart_strings=False)


def readability_cannot_win(raw_tree: HtmlElement, body, text: str) -> bool:
    """Whether trafilatura's comparison with readability (``external.compare_extraction``, balanced
    mode) would keep trafilatura's own extraction ``body`` / ``text`` whatever readability returned
    for ``raw_tree``, so that readability need not run.

    ``external._prefer_readability`` takes readability's text only when the own text is empty, when
    readability's is more than twice as long, or when the own body has no paragraph text or more
    tables than paragraphs. Readability only drops elements (first every ``<script>`` and
    ``<style>``, their tails kept), moves them in document order and wraps text in new ``<p>``
    elements, and writes "VIDEO" into each video ``<iframe>`` it keeps; trafilatura then collapses
    its whitespace (``trim``), which never lengthens it. So readability's text is at most as long
    as the page's text less what is inside its ``<script>`` and ``<style>`` elements, plus
    " VIDEO" for each ``<iframe>``: when twice the own text reaches that bound and the own body is
    not deficient, readability cannot win. About 0.35 ms of CPU a page; it holds for 71 of the
    corpus's 240 pages, each saving readability's pass (about 2.8 ms); the extraction is the same
    either way (``tests/test_extraction.py``)."""
    if not text or not body.xpath(".//p//text()") or len(body.findall(".//table")) > len(body.findall(".//p")):
        return False
    bound = len(_TEXT(raw_tree))
    for element in raw_tree.iter("script", "style", "iframe"):
        bound += len(" VIDEO") if element.tag == "iframe" else -len(element.text or "")
    return bound <= 2 * len(text)


def _no_readability(htmlinput: HtmlElement) -> HtmlElement:
    """``external.try_readability``'s answer when readability finds nothing: an empty element."""
    return HtmlElement()


def _compare_extraction(cleaned_tree, raw_tree, body, text, options, compare=external.compare_extraction):
    """``external.compare_extraction`` without running readability where ``readability_cannot_win``
    (balanced mode; the justext check that follows runs as before)."""
    if options.focus != "balanced" or not readability_cannot_win(raw_tree, body, text):
        return compare(cleaned_tree, raw_tree, body, text, options)
    readability, external.try_readability = external.try_readability, _no_readability
    try:
        return compare(cleaned_tree, raw_tree, body, text, options)
    finally:
        external.try_readability = readability


@contextlib.contextmanager
def readability_only_where_it_can_win() -> Iterator[None]:
    """Within the block, trafilatura's extraction compares its own result with readability's only
    where readability could win (``readability_cannot_win``): its text and metadata are the same,
    and a page where it cannot saves readability's pass. After the block,
    trafilatura is as shipped. The module is the process's: one thread at a time (module
    docstring)."""
    shipped, core.compare_extraction = core.compare_extraction, _compare_extraction
    try:
        yield
    finally:
        core.compare_extraction = shipped


def page_text_bound(tree: HtmlElement) -> int:
    """An upper bound, in characters, on ``len(trafilatura.baseline.html2txt(tree))``, the page
    text trafilatura's recall escalation measures its own text against. ``html2txt`` copies the
    tree, deletes elements (``BASIC_CLEAN_XPATH``: every ``<script>`` and ``<style>`` among them,
    their tails kept), writes a space before the text and the tail of each block element
    (``_spaced_text``; control characters dropped) and joins the words of the body's text by single
    spaces, which never lengthens it. So its length is at most that of the body's text less what
    is inside its ``<script>`` and ``<style>`` elements, plus two for each block element. About
    0.2 ms of CPU a page against about 3 ms for ``html2txt``."""
    body = tree.find(".//body")
    body = tree if body is None else body
    bound = len(_TEXT(body))
    for element in body.iter("script", "style"):
        bound -= len(element.text or "")
    return bound + 2 * sum(1 for _ in body.iter(*_BLOCK_ELEMS))


_ESCALATION_CHECK = core.trafilatura_sequence.__code__
"""The code of the one caller of ``html2txt`` in trafilatura's extraction: its recall escalation."""


def _page_text(tree: HtmlElement, clean: bool = True, *, exact=html2txt) -> str:
    """``html2txt`` as trafilatura's recall escalation calls it: "" (which gives the same decision)
    when the caller's own text is already at least ``ESCALATION_PAGE_SHARE`` of ``page_text_bound``."""
    caller = sys._getframe(1)
    own = caller.f_locals.get("temp_text") if caller.f_code is _ESCALATION_CHECK else None
    if clean and isinstance(own, str) and len(own) >= core.ESCALATION_PAGE_SHARE * page_text_bound(tree):
        return ""
    return exact(tree, clean)


@contextlib.contextmanager
def escalation_page_text_only_where_it_counts() -> Iterator[None]:
    """Within the block, trafilatura's recall escalation makes the page's text only where it can
    decide something: with ``page_text_bound`` its decision is the same, and on 52 of the 88 corpus
    pages that reach the check ``html2txt`` (about 3 ms) is not run.

    trafilatura escalates a balanced extraction to a recall retry when its own text ``temp_text`` is
    under ``ESCALATION_MAX_LENGTH`` characters and ``len(temp_text) < ESCALATION_PAGE_SHARE *
    len(html2txt(tree))`` (``core.trafilatura_sequence``). Where ``len(temp_text)`` already reaches
    that share of the bound, it reaches it of the text's real length too, and there is no escalation
    either way; returning "" keeps that decision. ``html2txt``'s result serves nothing else there.
    The caller's ``temp_text`` is read from its frame; called from anywhere else, or where the name
    is missing (another trafilatura), ``html2txt`` runs as shipped."""
    shipped, core.html2txt = core.html2txt, _page_text  # type: ignore[assignment]  # called with a tree only
    try:
        yield
    finally:
        core.html2txt = shipped


@contextlib.contextmanager
def exact_shortcuts() -> Iterator[None]:
    """All of this module's shortcuts at once (``extract_article``)."""
    with (elements_in_c(), readability_only_where_it_can_win(), escalation_page_text_only_where_it_counts(),
          rewritten_xpaths()):
        yield
