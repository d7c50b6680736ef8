"""trafilatura's XPath expressions with their regular-expression tests run only where they can
match (``regex_tests_only_where_they_can_match``): the same elements, about 0.9 ms less CPU a page.

trafilatura (2.3) picks the elements it drops and the containers of the main text with XPath
expressions whose predicates call the EXSLT function ``re:test(@class, 'pattern')``
(https://exslt.org/regexp/functions/test/). lxml implements EXSLT's regular expressions in Python
(``lxml.etree``'s ``_ExsltRegExp.test``, Python's ``re``), so libxml2 calls back into Python for
every element such a predicate reaches: also for an element without the attribute, which is then
tested as the empty string, and, with lxml's default "smart" strings, the attribute's value reaches
Python as a string object that records its parent element. Over the corpus's 240 pages these calls
are about a third of trafilatura's XPath time.

Two rewrites, neither of which changes what an expression selects:

1. ``re:test(@a|@b, 'R', …)`` becomes ``((@a|@b) and re:test(@a|@b, 'R', …))`` where ``R``
   matches no empty string. A node-set is true when it is not empty, and ``and`` does not evaluate
   its right operand when the left one is false (XPath 1.0, sections 3.4 and 4.3), so an element
   with neither attribute is not passed to Python; it tested false before too, because ``R`` does
   not match the empty string it was tested as. An element with an empty attribute (``class=""``)
   is tested as before.
2. An expression that selects elements only (no attribute, text or function result in its location
   path outside predicates) is compiled with ``smart_strings=False``, which only changes how string
   values reach Python: ``re.search`` gets the same characters as a plain ``str``.

The rewritten expressions are put in place of trafilatura's, in its modules' globals and lists,
only within ``regex_tests_only_where_they_can_match``; elsewhere in the process trafilatura runs
as shipped. ``tests/test_extraction.py`` checks that every field of the extraction of every corpus
and bug-case page is the same either way.
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


def _call_end(path: str, opening: int) -> int:
    """The index just past the ``)`` that closes the parenthesis at ``path[opening]`` (string
    literals in either quote skipped). Raises ``ValueError`` when it is not closed."""
    depth, quote = 0, ""
    for i in range(opening, len(path)):
        char = path[i]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError(f"unbalanced parentheses in XPath {path!r}")


def guard_regex_tests(path: str) -> str:
    """``path`` (XPath 1.0) with each ``re:test(ATTRIBUTES, 'PATTERN'…)`` whose pattern matches no
    empty string (``re.search(PATTERN, "")`` is None) preceded by ``(ATTRIBUTES) and``: the same
    selection, without a call for an element that lacks the attributes (module docstring)."""
    pieces, done = [], 0
    for found in _REGEX_TEST.finditer(path):
        if found.start() < done or re.search(found.group(2), "") is not None:
            continue
        end = _call_end(path, found.start() + len("re:test"))
        pieces += [path[done:found.start()], f"(({found.group(1)}) and {path[found.start():end]})"]
        done = end
    return "".join(pieces) + path[done:]


def selects_elements_only(path: str) -> bool:
    """Whether the XPath ``path`` can only select elements: outside its predicates (``[…]``) and
    string literals it names no attribute and calls no function or node test (``text()``)."""
    outside, depth, quote = [], 0, ""
    for char in path:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif depth == 0:
            outside.append(char)
    steps = "".join(outside)
    return "@" not in steps and "(" not in steps


def guarded(expression: XPath) -> XPath:
    """``expression`` rewritten as the module docstring says (``guard_regex_tests`` and, where it
    selects elements only, plain strings); ``expression`` itself when its rewrite does not compile."""
    try:
        return XPath(guard_regex_tests(expression.path), namespaces={"re": REGEXP_NS},
                     smart_strings=not selects_elements_only(expression.path))
    except (ValueError, XPathSyntaxError):
        return expression


def _sites() -> list[tuple[Any, str | int, XPath]]:
    """Where trafilatura's loaded modules keep an XPath expression that calls ``re:test``, each
    once: (the module, the global's name, the rewritten expression) or (a list, the index, the
    rewritten expression)."""
    rewritten: dict[int, XPath] = {}
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
                if "re:test(" not in expression.path or (id(holder), key) in seen:
                    continue
                seen.add((id(holder), key))
                if id(expression) not in rewritten:  # one rewrite for an expression found in several places
                    rewritten[id(expression)] = guarded(expression)
                sites.append((holder, key, rewritten[id(expression)]))
    return sites


SITES = _sites()
"""trafilatura's expressions that call ``re:test``, where they are kept, with their rewrites."""


def _get(holder: Any, key: str | int) -> Any:
    return getattr(holder, key) if isinstance(key, str) else holder[key]


def _put(holder: Any, key: str | int, value: Any) -> None:
    if isinstance(key, str):
        setattr(holder, key, value)
    else:
        holder[key] = value


@contextlib.contextmanager
def regex_tests_only_where_they_can_match() -> Iterator[None]:
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
