"""Feed dates to UTC: RFC 3339 / ISO 8601 (Atom, JSON Feed) and RFC 822 / RFC 2822 with their
real-world variants (RSS 2.0 ``pubDate``).

Policy (tested by bug cases BL-08, BL-10, BL-11):
- A value without a time zone is taken as UTC (documented assumption; it is not dropped).
- Month and day names in English, German, French, Spanish, Italian, Dutch, Portuguese, Swedish and
  Finnish are understood; a month name we cannot identify gives None, never a guessed month.
- Zone abbreviations (EST, EDT, CET, CEST, MEST, BST, …) map to their fixed offsets; an unknown
  abbreviation gives None rather than a silent shift to UTC.
- Implausible dates (``plausible``: before 1990, or more than a year ahead: placeholders such as
  ``0001-01-01T00:00:00Z`` or ``9999-12-31``) are no date: the next source is used instead.
- Year-first numeric dates with ``/``, ``.`` or ``-`` and one- or two-digit parts
  (``2020/1/10 14:03:00``) are read here: feedparser's fallback reads every one of them as the
  first of November. Day-first and month-first numeric dates (``10/01/2020``) are ambiguous and
  give None.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from service.errors import InputError


class UnknownDate(InputError):
    """The value has the shape of a date but a part of it (zone, month) is not understood."""


_MONTHS: dict[str, int] = {}
for number, names in enumerate([
    "jan january januar janvier janv enero ene gennaio gen januari janeiro tammikuu tammi",
    "feb february februar février févr fevrier fevr febrero febbraio februari fevereiro fev helmikuu helmi",
    "mar march märz maerz mär mrz mars marzo mrt maart março marco maaliskuu maalis",
    "apr april avril avr abril abr aprile huhtikuu huhti",
    "may mai mayo maggio mag mei maio toukokuu touko",
    "jun june juni juin junio giugno giu junho kesäkuu kesä kesa",
    "jul july juli juillet juil julio luglio lug julho heinäkuu heinä heina",
    "aug august août aout agosto ago augusti elokuu elo",
    "sep sept september septembre septiembre setiembre settembre set setembro syyskuu syys",
    "oct october oktober octobre octubre ottobre ott okt outubro out lokakuu loka lok",
    "nov november novembre noviembre novembro marraskuu marras",
    "dec december dezember décembre decembre déc diciembre dicembre dic dezembro dez joulukuu joulu",
], start=1):
    for name in names.split():
        _MONTHS[name] = number

_ZONES = {
    "UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "WET": 0, "WEST": 1, "BST": 1, "CET": 1, "MET": 1, "MEZ": 1,
    "CEST": 2, "MEST": 2, "MESZ": 2, "EET": 2, "EEST": 3, "MSK": 3, "EST": -5, "EDT": -4, "CST": -6,
    "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7, "AKST": -9, "AKDT": -8, "HST": -10,
    "JST": 9, "KST": 9, "HKT": 8, "SGT": 8, "AWST": 8, "ACST": 9.5, "AEST": 10, "AEDT": 11,
    "NZST": 12, "NZDT": 13,
}

_RFC822 = re.compile(
    r"""^(?:[^\W\d_]+\.?,?\s+)?            # optional day name, any language
        (?P<day>\d{1,2})\.?[\s-]+(?P<month>[^\W\d_]+)\.?[\s-]+(?P<year>\d{2,4})
        (?:[\sT]+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?(?:\.\d+)?)?
        (?:\s*(?P<zone>[+-]\d{2}:?\d{2}|[A-Za-z]{1,5}))?\s*$""",
    re.X,
)

_YEAR_FIRST = re.compile(
    r"""^(?P<year>\d{4})(?P<sep>[/.-])(?P<month>\d{1,2})(?P=sep)(?P<day>\d{1,2})
        (?:[\sT]+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?(?:\.\d+)?)?
        (?:\s*(?P<zone>[+-]\d{2}:?\d{2}|[A-Za-z]{1,5}))?\s*$""",
    re.X,
)


EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
"""Earliest publication time taken as real (before the web; placeholders are ``0001-01-01``)."""
LATEST_AHEAD = timedelta(days=365)
"""How far after now a date may lie and still be taken (and clamped to now) rather than dropped."""


def plausible(moment: datetime | None, now: datetime | None = None) -> bool:
    """True when ``moment`` (timezone-aware) lies between ``EARLIEST`` and ``LATEST_AHEAD`` after
    ``now`` (default: the current time). A date a little in the future (a wrong zone) is plausible
    and is clamped by the caller; one years away is a placeholder."""
    if moment is None:
        return False
    return EARLIEST <= moment <= (now or datetime.now(UTC)) + LATEST_AHEAD


def _month(name: str) -> int:
    name = name.lower().rstrip(".")
    if name in _MONTHS:
        return _MONTHS[name]
    matches = {month for full, month in _MONTHS.items() if len(name) >= 3 and full.startswith(name)}
    if len(matches) == 1:
        return matches.pop()
    raise UnknownDate(f"unknown month name {name!r}")


def _zone(text: str | None) -> timezone:
    if not text:
        return UTC
    if text[0] in "+-":
        digits = text[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if offset >= timedelta(hours=24):
            raise UnknownDate(f"time zone offset out of range {text!r}")
        return timezone(-offset if text[0] == "-" else offset)
    hours = _ZONES.get(text.upper())
    if hours is None:
        raise UnknownDate(f"unknown time zone {text!r}")
    return timezone(timedelta(hours=hours))


def parse_date(value: str | None) -> datetime | None:
    """A feed date string as a timezone-aware UTC datetime, or None when it is missing or cannot be
    read with certainty. See the module docstring for the policy on zones and month names."""
    try:
        return parse_date_strict(value)
    except UnknownDate:
        return None


def parse_date_strict(value: str | None) -> datetime | None:
    """Like ``parse_date`` but raises ``UnknownDate`` when the value looks like a date with a part
    we do not understand or is not ``plausible`` (so callers can tell "no date" from "a date we
    refuse to take"). Returns None for a missing value or one that matches no known shape."""
    moment = _read(value)
    if moment is not None and not plausible(moment):
        raise UnknownDate(f"implausible date {value!r}")
    return moment


def _read(value: str | None) -> datetime | None:
    if not value or not value.strip():
        return None
    text = " ".join(value.split())
    if re.match(r"^\d{4}-\d{2}-\d{2}", text):
        iso = text.replace(" ", "T", 1) if re.match(r"^\d{4}-\d{2}-\d{2} \d", text) else text
        iso = re.sub(r"(\.\d{6})\d+", r"\1", iso)
        try:
            parsed = datetime.fromisoformat(iso.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise UnknownDate(f"unreadable ISO 8601 date {value!r}") from exc
        try:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        except OverflowError as exc:  # year 1 with a positive offset
            raise UnknownDate(f"impossible date {value!r}") from exc
    match = _RFC822.match(text) or _YEAR_FIRST.match(text)
    if not match:
        return None
    year = int(match["year"])
    if len(match["year"]) <= 2:  # a two-digit year; "0001" is year 1
        year += 2000 if year < 50 else 1900
    month = int(match["month"]) if match["month"].isdigit() else _month(match["month"])  # _YEAR_FIRST: digits
    zone = _zone(match["zone"])  # outside the try: an unknown zone keeps its own message
    try:
        moment = datetime(
            year, month, int(match["day"]), int(match["hour"] or 0), int(match["minute"] or 0),
            int(match["second"] or 0), tzinfo=zone,
        )
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise UnknownDate(f"impossible date {value!r}") from exc
