"""Which event a text reports, as far as its figures tell: the numbers it states, and whether two
texts' figures contradict each other (``contradict``).

Two reports of one topic share their names and their subject; what tells "another event" apart
is often what they count: the death toll of another day, another score, other poll results.
Digits are written alike in every language once normalised, so this evidence needs no
translation:

- figures (``figures``): numbers of at least two digits, or with a decimal fraction, with
  thousands separators of either convention read as such ("1.234" and "1,234" are 1234; "3,5"
  and "3.5" are 3.5), times the scale word after them where there is one ("1,2 Millionen" and
  "1.2 million" are 1,200,000; Turkish "32 bin 692" is 32,692). Not figures: years (1900–2099
  written as four digits), times of day ("12:30", "18.30 Uhr"), the day of a date ("15 March",
  "15. März", "15 de marzo", "March 15", "15.03.2020") and numbers inside a name ("Covid-19",
  "F-35");
- agreement (``agrees``): a round figure stands for the range its last significant digit spans,
  since retellings round: "about 1,200" or "more than 1,200" covers 1,150 to 1,299, so it agrees
  with "1,234" and not with "1,310".

Two texts contradict when both state at least ``MIN_FIGURES`` figures and not one figure of
either agrees with one of the other's. Absence is not contradiction: a text that states fewer
figures contradicts nothing. ``clustering.signals`` turns this into the combiner's
``contradicted`` signal.

Why "not one agrees": two reports of one event share at least one of the figures they give (the
toll, the score, the share of the vote), rounded or not, even across languages; two events of one
topic (two days of one epidemic, two matches of one team) share none. On the SemEval-2022 Task 8
training pairs with two or more figures on both sides, 36 % of the pairs judged another story
share no figure, against 6 % of those judged the same story (docs/benchmarks.md, "Branch
quality8").

Cost: a few regular-expression passes over the text the names are read from (title + lead, 2,000
characters), about 0.25 ms of CPU per article; no model; CLDR month names (``babel``) once per
process.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from functools import lru_cache

from service.stories import names

MIN_FIGURES = 2
"""Figures each side must state before they can contradict: one figure alone is too often an
incidental age, count or page number (with 1, the grouped CV of the SemEval pairs lost F1; see
docs/benchmarks.md)."""

Figure = tuple[float, float]
"""(value, unit): the number and the place value of its last significant digit (1 for "1,234",
100 for "1,200", 0.1 for "3.5", 100,000 for "1.2 million")."""

_SCALES = {
    "thousand": 1e3, "tausend": 1e3, "bin": 1e3, "mil": 1e3, "tys": 1e3, "tysiecy": 1e3, "tysiace": 1e3,
    "million": 1e6, "millions": 1e6, "millionen": 1e6, "mio": 1e6, "millones": 1e6, "milyon": 1e6, "mln": 1e6,
    "milion": 1e6, "miliony": 1e6, "milionow": 1e6, "m": 1e6,
    "billion": 1e9, "billions": 1e9, "milliarde": 1e9, "milliarden": 1e9, "mrd": 1e9, "milyar": 1e9, "mld": 1e9,
    "miliard": 1e9, "miliardy": 1e9, "miliardow": 1e9, "bn": 1e9,
}
"""Scale words after a number (folded; English, German, Spanish, Turkish, Polish, French)."""

_NUMBER = re.compile(
    r"(?<![\w.,:/])(?<![^\W\d_]-)(\d{1,3}(?:[.,\u00a0\u202f]\d{3})+|\d+(?:[.,]\d+)?)(?![\w:/]|[.,]\d)(?:\s*([^\W\d_]+\.?))?", re.UNICODE
)
_THOUSANDS_WORD = re.compile(r"(?<![\d.,])(\d{1,3})\s+(?:bin|tys\.?)\s+(\d{1,3})(?![\d.,]\d)", re.IGNORECASE)
"""A number written with the word for thousand inside it: Turkish "32 bin 692", Polish "8 tys. 600"."""
_CLOCK = re.compile(r"\b\d{1,2}[:.]\d{2}\s*(?:uhr|h|am|pm|a\.m\.|p\.m\.)\b|\b\d{1,2}:\d{2}\b", re.IGNORECASE)
_NUMERIC_DATE = re.compile(r"(?<![\d.,/])(\d{1,2})([./])(\d{1,2})\2(\d{4}|\d{2})(?![\d,/]|\.\d)")
_DAY_MONTH = re.compile(r"(?<!\d)(\d{1,2})(?:\.|st|nd|rd|th)?\s+(?:de\s+)?([^\W\d_]{3,})", re.UNICODE)
_MONTH_DAY = re.compile(r"\b([^\W\d_]{3,})\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?!\d|[.,]\d)", re.UNICODE)
_TURKISH_MONTHS = ("ocak", "subat", "mart", "nisan", "mayis", "haziran", "temmuz", "agustos", "eylul", "ekim", "kasim", "aralik")


@lru_cache(maxsize=1)
def _months() -> frozenset[str]:
    """Folded month names: CLDR's wide and abbreviated names in ``names.LOCALES``, and Turkish
    (not among them). From the per-user cache (``stories.cache``) as ``names.gazetteer``, since
    loading babel's data for eleven locales costs a worker about 0.4 s."""
    from service.stories import cache

    key = cache.key(("babel",), (__file__, names.__file__))
    return frozenset(cache.cached_json("month-names", key, _build_months, list))


def _build_months() -> list[str]:
    """``_months``, sorted, from babel's data."""
    from babel import Locale

    months: set[str] = set(_TURKISH_MONTHS)
    for code in names.LOCALES:
        locale = Locale.parse(code)
        for context in ("format", "stand-alone"):
            for width in ("wide", "abbreviated"):
                months.update(folded for name in locale.months[context][width].values() if len(folded := names.fold(name).rstrip(".")) >= 3)
    return sorted(months)


def _without_dates(text: str) -> str:
    """``text`` with its dates blanked out: a day with a month name, either order, and numeric
    day.month.year or day/month/year dates."""
    months = _months()
    spans = [m.span() for m in _NUMERIC_DATE.finditer(text)]
    for pattern, word in ((_DAY_MONTH, 2), (_MONTH_DAY, 1)):
        spans += [m.span() for m in pattern.finditer(text) if names.fold(m.group(word)) in months]
    for start, end in spans:
        text = text[:start] + " " * (end - start) + text[end:]
    return text


def _value(digits: str) -> Figure:
    """(value, unit) of a number as written: groups of three after a separator are thousands
    (either convention), other digits after one separator a decimal fraction."""
    if re.fullmatch(r"\d{1,3}(?:[.,\u00a0\u202f]\d{3})+", digits):
        whole = re.sub(r"\D", "", digits)
    elif re.fullmatch(r"\d+[.,]\d+", digits):
        head, tail = re.split(r"[.,]", digits)
        return float(f"{head}.{tail}"), 10.0 ** -len(tail)
    else:
        whole = digits
    value = float(whole)
    return value, float(10 ** (len(whole) - len(whole.rstrip("0")))) if value else 1.0


def figures(text: str) -> tuple[Figure, ...]:
    """The figures ``text`` states (see the module docstring), as sorted distinct (value, unit)."""
    text = _THOUSANDS_WORD.sub(lambda m: f"{m.group(1)}{int(m.group(2)):03d}", _CLOCK.sub(" ", _without_dates(text)))
    found: set[Figure] = set()
    for digits, word in _NUMBER.findall(text):
        value, unit = _value(digits)
        scale = _SCALES.get(names.fold(word).rstrip("."), 1.0) if word else 1.0
        if scale == 1.0 and ((value < 10 and unit >= 1) or (len(digits) == 4 and 1900 <= value <= 2099)):
            continue  # a small count or a year
        found.add((value * scale, unit * scale))
    return tuple(sorted(found))


def agrees(one: Figure, other: Figure) -> bool:
    """Whether two figures can report the same quantity: equal, or the more precise one lies in
    the range the rounder one (value ``r``, unit ``u``) stands for, ``[r − u/2, r + u)``: "about
    1,200" (1,150 to 1,249) or "more than 1,200" (up to 1,299)."""
    if one[0] == other[0]:
        return True
    (rounded, unit), precise = (one, other[0]) if one[1] >= other[1] else (other, one[0])
    return -unit / 2 <= precise - rounded < unit


def contradict(one: Iterable[Figure], other: Iterable[Figure]) -> bool:
    """Whether two texts' (or stories') figures contradict: both state at least ``MIN_FIGURES``
    and no figure of one ``agrees`` with one of the other's. False where either says too little
    (absence is not contradiction). Cost: O(n log m) (only figures within the largest unit of
    each other are compared)."""
    one, other = list(one), sorted(other)
    if len(one) < MIN_FIGURES or len(other) < MIN_FIGURES:
        return False
    values = [value for value, _unit in other]
    span = max(unit for _value, unit in (*one, *other))
    for figure in one:
        nearby = other[bisect_left(values, figure[0] - span) : bisect_right(values, figure[0] + span)]
        if any(agrees(figure, candidate) for candidate in nearby):
            return False
    return True
