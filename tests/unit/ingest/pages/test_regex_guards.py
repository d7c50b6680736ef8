"""The rewrite of trafilatura's ``re:test`` predicates (``service.ingest.pages.regex_guards``):
the text of the rewrite, and that each rewritten expression selects what trafilatura's does, on
pages made to hit every case (attribute missing, empty, matching, not matching; a pattern that
matches the empty string)."""

from __future__ import annotations

import lxml.html
import pytest
from lxml.etree import XPath
from trafilatura import xpaths

from service.ingest.pages import regex_guards
from service.ingest.pages.regex_guards import REGEXP_NS, guard_regex_tests, guarded, selects_elements_only

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
</body></html>""")


def test_a_test_is_guarded_by_its_attributes():
    path = ".//div[re:test(@id|@class, 'footer|comments') or @role='nav']"
    assert guard_regex_tests(path) == ".//div[((@id|@class) and re:test(@id|@class, 'footer|comments')) or @role='nav']"


def test_a_pattern_that_matches_the_empty_string_is_left_alone():
    path = ".//div[re:test(@class, '^|footer')]"
    assert guard_regex_tests(path) == path
    expression = XPath(path, namespaces={"re": REGEXP_NS})
    assert len(expression(PAGE)) == len(PAGE.findall(".//div"))  # every div, class or not
    assert guarded(expression)(PAGE) == expression(PAGE)


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


def test_every_rewritten_trafilatura_expression_selects_what_the_shipped_one_does():
    shipped = [expression for name in dir(xpaths) if isinstance(getattr(xpaths, name), list)
               for expression in getattr(xpaths, name) if isinstance(expression, XPath) and "re:test(" in expression.path]
    assert len(shipped) > 15
    selected = 0
    for expression in shipped:
        rewrite = guarded(expression)
        assert rewrite is not expression and rewrite.path != expression.path
        assert rewrite(PAGE) == expression(PAGE), expression.path
        selected += len(expression(PAGE))
    assert selected > 5  # the page hits the expressions, not only misses them


def test_the_rewrites_are_in_place_only_within_the_block():
    import sys

    from trafilatura import settings
    from trafilatura.xpaths import BODY_XPATH, OVERALL_DISCARD_XPATH

    baseline = sys.modules["trafilatura.baseline"]  # the package's name `baseline` is a function
    before = (list(OVERALL_DISCARD_XPATH), list(BODY_XPATH), baseline.BASIC_CLEAN_XPATH, settings.BASIC_CLEAN_XPATH)
    places = {(id(holder), key) for holder, key, _ in regex_guards.SITES}
    assert (id(OVERALL_DISCARD_XPATH), 0) in places and (id(baseline), "BASIC_CLEAN_XPATH") in places
    with regex_guards.regex_tests_only_where_they_can_match():
        assert OVERALL_DISCARD_XPATH[0] is not before[0][0] and baseline.BASIC_CLEAN_XPATH is not before[2]
        assert OVERALL_DISCARD_XPATH[0](PAGE) == before[0][0](PAGE)
    assert (list(OVERALL_DISCARD_XPATH), list(BODY_XPATH), baseline.BASIC_CLEAN_XPATH, settings.BASIC_CLEAN_XPATH) == before
