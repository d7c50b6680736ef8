"""The rewrites of trafilatura's XPath expressions (``service.ingest.pages.xpath_rewrites``): the
text of each rewrite, where it is not made, and that each rewritten expression selects what
trafilatura's does, on a page made to hit every case (attribute missing, empty, matching, not
matching; a pattern that matches the empty string; nested and sibling elements of the names a
union takes, which a positional predicate would tell apart)."""

from __future__ import annotations

import lxml.html
import pytest
from lxml.etree import XPath
from trafilatura import xpaths

from service.ingest.pages import xpath_rewrites
from service.ingest.pages.xpath_rewrites import (
    REGEXP_NS,
    guard_regex_tests,
    rewritten,
    selects_elements_only,
    tags_by_name,
)

PAGE = lxml.html.fromstring("""<html><body>
<div>no attributes</div>
<div class="">empty class</div>
<div class="site-footer">footer</div>
<div id="comments" class="x">comments by id</div>
<div class="comments-title" id="">both</div>
<section id="sidebar-left"><p class="share-buttons">share</p></section>
<span style="display:none" id="hidden-thing">hidden</span>
<aside class="cookie-banner">cookies</aside>
<div class="COOKIEBOT">upper case</div>
<article class="post"><section class="entry-content"><div class="article-body"><p>one</p></div></section>
<div class="article-body"><p>two</p></div></article>
<main><div id="main-content" class="page-content"><h1 class="entry-title">Title</h1></div></main>
</body></html>""")


def test_a_test_is_guarded_by_its_attributes():
    path = ".//div[re:test(@id|@class, 'footer|comments') or @role='nav']"
    assert guard_regex_tests(path) == ".//div[((@id|@class) and re:test(@id|@class, 'footer|comments')) or @role='nav']"


def test_a_pattern_that_matches_the_empty_string_is_left_alone():
    path = ".//div[re:test(@class, '^|footer')]"
    assert guard_regex_tests(path) == path
    expression = XPath(path, namespaces={"re": REGEXP_NS})
    assert len(expression(PAGE)) == len(PAGE.findall(".//div"))  # every div, class or not
    assert rewritten(expression)(PAGE) == expression(PAGE)


def test_a_pattern_python_cannot_compile_is_left_alone():
    path = ".//div[re:test(@class, 'a(b')]"
    assert guard_regex_tests(path) == path


def test_parentheses_and_quotes_inside_the_call_are_skipped():
    path = """.//*[re:test(@class, '(a|b)\\)x', 'i') and contains(@id, ")")]"""
    assert guard_regex_tests(path) == """.//*[((@class) and re:test(@class, '(a|b)\\)x', 'i')) and contains(@id, ")")]"""


@pytest.mark.parametrize(("path", "elements"), [
    (".//*[re:test(@class, 'x')]", True),
    ("//div[@id='a'][re:test(@class, 'x')]//p", True),
    (".//div[re:test(@class, 'x')]/@class", False),
    (".//p[re:test(@class, 'x')]/text()", False),
    ("string(.//p[re:test(@class, 'x')])", False),
])
def test_plain_strings_only_for_expressions_that_select_elements(path, elements):
    assert selects_elements_only(path) is elements


@pytest.mark.parametrize(("path", "union"), [
    (".//*[self::div or self::section][@id='a']", "(.//div|.//section)[@id='a']"),
    ("//*[self::h1 or self::h2]", "(//h1|//h2)"),
    ("\n  .//*[self::div or self::list or self::section][\n re:test(@id, 'x')]", "(.//div|.//list|.//section)[\n re:test(@id, 'x')]"),
    (".//*[self::div or self::section][@id='a'][1]", None),  # first among its siblings, not in the page
    (".//*[self::div or self::p][position() < 3]", None),
    (".//*[self::div or self::p][count(.//a) > 2]", None),  # numbers are not told from positions
    (".//*[self::div or @role='main']", None),  # not only names
    ("(.//*[self::div or self::section])[1]", None),  # not leading
])
def test_a_leading_disjunction_of_names_becomes_a_union_where_no_position_counts(path, union):
    assert tags_by_name(path) == (union if union is not None else path)


def test_every_rewritten_trafilatura_expression_selects_what_the_shipped_one_does():
    from trafilatura import settings

    shipped = [expression for name in dir(xpaths) if isinstance(getattr(xpaths, name), list)
               for expression in getattr(xpaths, name) if isinstance(expression, XPath)]
    shipped.append(settings.BASIC_CLEAN_XPATH)
    rewrites = [(expression, rewritten(expression)) for expression in shipped]
    changed = [(expression, rewrite) for expression, rewrite in rewrites if rewrite is not expression]
    assert len(changed) > 20 and sum("re:test(" in e.path for e, _ in changed) > 15
    assert sum(r.path.lstrip().startswith("(.//") for _, r in changed) > 10  # unions made
    assert any(e.path.rstrip().endswith("[1]") for e, r in rewrites if r is e)  # and not made
    selected = 0
    for expression, rewrite in changed:
        assert rewrite.path != expression.path
        assert rewrite(PAGE) == expression(PAGE), expression.path
        selected += len(expression(PAGE))
    assert selected > 10  # the page hits the expressions, not only misses them


def test_the_rewrites_are_in_place_only_within_the_block():
    import sys

    from trafilatura import settings
    from trafilatura.xpaths import BODY_XPATH, OVERALL_DISCARD_XPATH

    baseline = sys.modules["trafilatura.baseline"]  # the package's name `baseline` is a function
    before = (list(OVERALL_DISCARD_XPATH), list(BODY_XPATH), baseline.BASIC_CLEAN_XPATH, settings.BASIC_CLEAN_XPATH)
    places = {(id(holder), key) for holder, key, _ in xpath_rewrites.SITES}
    assert (id(OVERALL_DISCARD_XPATH), 0) in places and (id(baseline), "BASIC_CLEAN_XPATH") in places
    with xpath_rewrites.rewritten_xpaths():
        assert OVERALL_DISCARD_XPATH[0] is not before[0][0] and baseline.BASIC_CLEAN_XPATH is not before[2]
        assert OVERALL_DISCARD_XPATH[0](PAGE) == before[0][0](PAGE)
    assert (list(OVERALL_DISCARD_XPATH), list(BODY_XPATH), baseline.BASIC_CLEAN_XPATH, settings.BASIC_CLEAN_XPATH) == before


def _pattern_words() -> list[str]:
    """Words taken from trafilatura's ``re:test`` patterns (their literal runs), so that generated
    attribute values hit the patterns as well as miss them."""
    import re

    from trafilatura import settings

    paths = [e.path for name in dir(xpaths) if isinstance(getattr(xpaths, name), list)
             for e in getattr(xpaths, name) if isinstance(e, XPath)] + [settings.BASIC_CLEAN_XPATH.path]
    patterns = [m for path in paths for m in re.findall(r"re:test\([^,]*,\s*'([^']*)'", path)]
    alternatives = {re.sub(r"\[[^\]]*\][?*]?|[\^$()?:*+{}\\|]|\d", "", a) for p in patterns for a in p.split("|")}
    return sorted({w for p in patterns for w in re.findall(r"[A-Za-z][A-Za-z_-]{2,}", p)} | {a for a in alternatives if len(a) > 2})


_TAGS = ["div", "section", "span", "p", "a", "article", "main", "aside", "ul", "ol", "li", "list", "h1", "h2",
         "h3", "details", "figure", "time", "footer", "header", "nav", "item", "address", "link"]


def _trees():
    """Random HTML bodies: nested elements of the tags trafilatura's expressions name, with
    ``class``/``id``/``style``/``role`` values made of its pattern words (any case, with prefixes
    and suffixes), empty, or absent. Each page draws its few words first, so that values repeat
    across the page, as a site's classes do."""
    from hypothesis import strategies as st

    words = _pattern_words()

    def page(few):
        token = st.one_of(st.sampled_from(few), st.sampled_from(few), st.sampled_from(few).map(str.upper),
                          st.sampled_from(few).map(str.title), st.text(alphabet="abc-_ 0\u017f\u212a", max_size=4))
        value = st.lists(token, max_size=3).map(" ".join) | st.lists(token, min_size=1, max_size=3).map("-".join)
        attributes = st.fixed_dictionaries({}, optional={name: value for name in ("class", "id", "style", "role", "rel")})

        def element(children):
            return st.tuples(st.sampled_from(_TAGS), attributes, children, st.sampled_from(["", "text", "more text here"]))

        return st.lists(st.recursive(element(st.just([])), lambda inner: element(st.lists(inner, max_size=5)), max_leaves=40),
                        min_size=1, max_size=5)

    return st.lists(st.sampled_from(words), min_size=1, max_size=3).flatmap(page)


def _html(nodes) -> str:
    from html import escape

    def one(node):
        tag, attrs, children, text = node
        attributes = "".join(f' {k}="{escape(v)}"' for k, v in attrs.items())
        return f"<{tag}{attributes}>{escape(text)}{''.join(one(c) for c in children)}</{tag}>"

    return "<html><body>" + "".join(one(n) for n in nodes) + "</body></html>"


def test_every_rewrite_selects_what_the_shipped_expression_does_on_generated_pages():
    """Property: on random pages built from trafilatura's own pattern words (nested, sibling and
    repeated elements; attributes absent, empty, in any case; characters Unicode case folding
    treats specially), each rewritten expression selects exactly the elements, in the same order,
    that trafilatura's selects."""
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings
    from trafilatura import settings

    shipped = [e for name in dir(xpaths) if isinstance(getattr(xpaths, name), list)
               for e in getattr(xpaths, name) if isinstance(e, XPath)] + [settings.BASIC_CLEAN_XPATH]
    pairs = [(e, rewritten(e)) for e in shipped]
    pairs = [(e, r) for e, r in pairs if r is not e]
    hits = [0]

    @hypothesis_settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(_trees())
    def check(nodes):
        page = lxml.html.fromstring(_html(nodes))
        for expression, rewrite in pairs:
            selected = expression(page)
            assert rewrite(page) == selected, expression.path
            hits[0] += len(selected)

    check()
    assert hits[0] > 50  # the generated pages are selected from, not only missed
