"""trafilatura's XPath expressions rewritten to select the same elements for less CPU
(``rewritten_xpaths``): about 2.3 ms of a page's 18 (docs/benchmarks.md).

trafilatura (2.3) picks the elements it drops and the containers of the main text with about 50
XPath expressions, most of them of the form ``.//*[self::div or self::section][…]`` with
predicates that call the EXSLT function ``re:test(@class, 'pattern')``
(https://exslt.org/regexp/functions/test/). Two costs follow. lxml implements EXSLT's regular
expressions in Python (``lxml.etree``'s ``_ExsltRegExp.test``, Python's ``re``), so libxml2 calls
back into Python, about 1.5 µs a call, for every element such a predicate reaches: also for one
without the attribute, which is then tested as the empty string. And ``.//*[self::div or …]``
walks every element of the page, testing each name in turn, where libxml2 finds ``.//div`` by name.

Three rewrites, none of which changes what an expression selects:

1. ``re:test(@a|@b, 'R', …)`` becomes ``((@a|@b) and re:test(@a|@b, 'R', …))`` where ``R``
   matches no empty string (``guard_regex_tests``). A node-set is true when it is not empty, and
   ``and`` does not evaluate its right operand when the left one is false (XPath 1.0, sections 3.4
   and 4.3), so an element with neither attribute is not passed to Python; it tested false before
   too, because ``R`` does not match the empty string it was tested as. An element with an empty
   attribute (``class=""``) is tested as before.
2. A leading ``.//*[self::a or self::b …]`` becomes ``(.//a|.//b|…)`` (``tags_by_name``): the same
   node-set (a union is in document order, section 3.3), filtered by the same further predicates.
   Only where nothing in the expression depends on an element's position: a predicate's position
   in a step is among the children of one parent, in a filtered union among all the elements
   (section 2.4), so an expression with ``[1]``, ``position()``, ``last()`` or a function that
   returns a number is left as it is.
3. An expression that selects elements only (no attribute, text or function result in its location
   path outside predicates) is compiled with ``smart_strings=False``, which only changes how string
   values reach Python: ``re.search`` gets the same characters as a plain ``str`` instead of one
   that records its parent element.

The rewritten expressions are put in place of trafilatura's, in its modules' globals and lists,
only within ``rewritten_xpaths``; elsewhere in the process trafilatura runs as shipped.
``tests/test_extraction.py`` checks that every field of the extraction of every corpus and bug-case
page is the same either way, and ``tests/unit/ingest/pages/test_xpath_rewrites.py`` that every
rewritten expression selects what trafilatura's does.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from typing import Any

import trafilatura.baseline
import trafilatura.core
import trafilatura.external
import trafilatura.htmlprocessing
import trafilatura.main_extractor
import trafilatura.xpaths  # noqa: F401  # imported so that their expressions are found (``SITES``)
from lxml.etree import XPath, XPathSyntaxError

REGEXP_NS = "http://exslt.org/regular-expressions"
"""EXSLT's namespace of regular-expression functions, bound to the prefix ``re`` in trafilatura's
expressions."""

_REGEX_TEST = re.compile(r"re:test\(\s*(@[\w-]+(?:\s*\|\s*@[\w-]+)*)\s*,\s*'([^']*)'")
"""The start of an EXSLT ``re:test`` call on attributes: (the attributes, as XPath; the pattern)."""


def _blanked(path: str) -> str:
    """``path`` with the characters inside its string literals (either quote) replaced by spaces:
    the same length, so an index into it is an index into ``path``, and no bracket, parenthesis or
    name of a literal left in it."""
    return re.sub(r"'[^']*'|\"[^\"]*\"", lambda literal: literal[0][0] + " " * (len(literal[0]) - 2) + literal[0][-1], path)


def _call_end(path: str, opening: int) -> int:
    """The index just past the ``)`` that closes the parenthesis at ``path[opening]``. Raises
    ``ValueError`` when it is not closed."""
    depth = 0
    for i, char in enumerate(_blanked(path)[opening:], start=opening):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return i + 1
    raise ValueError(f"unbalanced parentheses in XPath {path!r}")


def _may_match_empty(pattern: str) -> bool:
    """Whether the regular expression ``pattern`` matches the empty string; True when Python's
    ``re`` cannot compile it (lxml could not either: the test is left as it is)."""
    try:
        return re.search(pattern, "") is not None
    except re.error:
        return True


def guard_regex_tests(path: str) -> str:
    """``path`` (XPath 1.0) with each ``re:test(ATTRIBUTES, 'PATTERN'…)`` whose pattern matches no
    empty string (``_may_match_empty``) preceded by ``(ATTRIBUTES) and``: the same
    selection, without a call for an element that lacks the attributes (module docstring)."""
    pieces, done = [], 0
    for found in _REGEX_TEST.finditer(path):
        if found.start() < done or _may_match_empty(found.group(2)):
            continue
        end = _call_end(path, found.start() + len("re:test"))
        pieces += [path[done:found.start()], f"(({found.group(1)}) and {path[found.start():end]})"]
        done = end
    return "".join(pieces) + path[done:]


_LEADING_NAME_TESTS = re.compile(r"\s*(\.?//)\*\[\s*(self::[\w-]+(?:\s+or\s+self::[\w-]+)*)\s*\]")
"""A leading ``.//*[self::a or self::b …]`` (or ``//*[…]``): (the axis, the disjunction)."""

_POSITIONAL = re.compile(r"position\(|last\(|count\(|sum\(|string-length\(|number\(|floor\(|ceiling\(|round\("
                         r"|\[\s*[\d.]+\s*\]|\sdiv\s|\smod\s|[-+]\s*\d")
"""What may make a predicate depend on an element's position or be a number (which XPath compares
with the position), outside string literals."""


def tags_by_name(path: str) -> str:
    """``path`` (XPath 1.0) with a leading ``.//*[self::a or self::b …]`` written as the union
    ``(.//a|.//b|…)`` where nothing in ``path`` depends on an element's position (module
    docstring); else ``path`` itself."""
    found = _LEADING_NAME_TESTS.match(path)
    if found is None or _POSITIONAL.search(_blanked(path)):
        return path
    names = re.findall(r"self::([\w-]+)", found.group(2))
    return "(" + "|".join(f"{found.group(1)}{name}" for name in names) + ")" + path[found.end():]


def selects_elements_only(path: str) -> bool:
    """Whether the XPath ``path`` can only select elements: outside its predicates (``[…]``) and
    string literals it names no attribute and calls no function or node test (``text()``)."""
    outside, depth = [], 0
    for char in _blanked(path):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth == 0 and char != "]":
            outside.append(char)
    steps = "".join(outside)
    return "@" not in steps and "(" not in steps


def rewritten(expression: XPath) -> XPath:
    """``expression`` rewritten as the module docstring says (``guard_regex_tests``,
    ``tags_by_name`` and, where it selects elements only, plain strings); ``expression`` itself
    when neither rewrite changes its text, or when its rewrite does not compile."""
    path = tags_by_name(guard_regex_tests(expression.path))
    if path == expression.path:
        return expression
    try:
        return XPath(path, namespaces={"re": REGEXP_NS}, smart_strings=not selects_elements_only(expression.path))
    except (ValueError, XPathSyntaxError):
        return expression


def _sites() -> list[tuple[Any, str | int, XPath]]:
    """Where trafilatura's loaded modules keep an XPath expression that ``rewritten`` changes, each
    place once: (the module, the global's name, the rewrite) or (a list, the index, the rewrite)."""
    rewrites: dict[int, XPath] = {}
    seen: set[tuple[int, str | int]] = set()
    sites: list[tuple[Any, str | int, XPath]] = []
    modules = [module for name, module in sorted(sys.modules.items())
               if module is not None and (name == "trafilatura" or name.startswith("trafilatura."))]
    for module in modules:
        for name, value in vars(module).items():
            if isinstance(value, XPath):
                places: list[tuple[Any, str | int, XPath]] = [(module, name, value)]
            elif isinstance(value, list):
                places = [(value, i, item) for i, item in enumerate(value) if isinstance(item, XPath)]
            else:
                continue
            for holder, key, expression in places:
                if (id(holder), key) in seen:
                    continue
                seen.add((id(holder), key))
                if id(expression) not in rewrites:  # one rewrite for an expression found in several places
                    rewrites[id(expression)] = rewritten(expression)
                if rewrites[id(expression)] is not expression:
                    sites.append((holder, key, rewrites[id(expression)]))
    return sites


SITES = _sites()
"""trafilatura's expressions that ``rewritten`` changes, where they are kept, with their rewrites."""


def _get(holder: Any, key: str | int) -> Any:
    return getattr(holder, key) if isinstance(key, str) else holder[key]


def _put(holder: Any, key: str | int, value: Any) -> None:
    if isinstance(key, str):
        setattr(holder, key, value)
    else:
        holder[key] = value


@contextlib.contextmanager
def rewritten_xpaths() -> Iterator[None]:
    """Within the block trafilatura's expressions are the rewrites of ``SITES``; after it, what was
    in their places before. trafilatura's modules are the process's: one thread at a time, as
    everywhere lxml runs here (``service.ingest.workers``)."""
    before = [_get(holder, key) for holder, key, _ in SITES]
    for holder, key, rewrite in SITES:
        _put(holder, key, rewrite)
    try:
        yield
    finally:
        for (holder, key, _), value in zip(SITES, before, strict=True):
            _put(holder, key, value)
