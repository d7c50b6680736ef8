"""``service.ingest.feeds.dates``: RFC 822 / RFC 3339 feed dates and their real-world variants to UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.ingest.feeds.dates import EARLIEST, LATEST_AHEAD, UnknownDate, parse_date, parse_date_strict, plausible


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(("value", "expected"), [
    # RFC 822 / RFC 2822 with named zones (RFC 822 §5.1 and common abbreviations)
    ("Tue, 10 Jun 2003 04:00:00 GMT", utc(2003, 6, 10, 4)),
    ("Tue, 10 Jun 2003 04:00:00 UT", utc(2003, 6, 10, 4)),
    ("Tue, 10 Jun 2003 04:00:00 EDT", utc(2003, 6, 10, 8)),
    ("Tue, 10 Jun 2003 04:00:00 est", utc(2003, 6, 10, 9)),
    ("Tue, 10 Jun 2003 04:00:00 CEST", utc(2003, 6, 10, 2)),
    ("Tue, 10 Jun 2003 04:00:00 ACST", utc(2003, 6, 9, 18, 30)),
    # numeric zones, with and without a colon, half-hour offsets, crossing midnight
    ("Tue, 10 Jun 2003 04:00:00 +0200", utc(2003, 6, 10, 2)),
    ("Tue, 10 Jun 2003 04:00:00 +02:30", utc(2003, 6, 10, 1, 30)),
    ("Tue, 10 Jun 2003 23:30:00 -0130", utc(2003, 6, 11, 1)),
    # two-digit years (RFC 822): below 50 is 20xx, else 19xx
    ("10 Jun 03 04:00 GMT", utc(2003, 6, 10, 4)),
    ("Thu, 10 Jun 99 04:00:00 GMT", utc(1999, 6, 10, 4)),
    # no seconds, no time, odd spacing and a day name without comma
    ("Tue 10 Jun 2003 04:00 GMT", utc(2003, 6, 10, 4)),
    ("  10   Jun\t2003  ", utc(2003, 6, 10)),
    # German, French, Spanish, Dutch, Finnish month and day names; dotted day; umlaut abbreviations
    ("Di, 10 Mär 2020 04:00:00 MESZ", utc(2020, 3, 10, 2)),
    ("10. Dezember 2020 10:00 MEZ", utc(2020, 12, 10, 9)),
    ("Mo, 02 Mrz 2020 08:00:00 +0100", utc(2020, 3, 2, 7)),
    ("10 Okt. 2021 12:00 +0200", utc(2021, 10, 10, 10)),
    ("mer., 10 juil. 2020 10:00 +02:00", utc(2020, 7, 10, 8)),
    ("10 ago 2022 10:00 -0300", utc(2022, 8, 10, 13)),
    ("10 mei 2022 10:00 +0200", utc(2022, 5, 10, 8)),
    ("10 toukokuu 2022 10:00 +0300", utc(2022, 5, 10, 7)),
    # an unambiguous prefix of a full month name
    ("10 Septem 2020 10:00 GMT", utc(2020, 9, 10, 10)),
    # RFC 3339 / ISO 8601 (Atom, JSON Feed), space instead of T, more than microsecond precision
    ("2021-03-04T05:06:07Z", utc(2021, 3, 4, 5, 6, 7)),
    ("2021-03-04T05:06:07.5+01:00", utc(2021, 3, 4, 4, 6, 7, 500000)),
    ("2020-01-10 14:03:00.1234567+01:00", utc(2020, 1, 10, 13, 3, 0, 123456)),
    ("2021-03-04", utc(2021, 3, 4)),
    # year-first numeric dates with one-digit parts (feedparser reads them as 1 November)
    ("2020/1/10 14:03:00", utc(2020, 1, 10, 14, 3)),
    ("2020.01.10", utc(2020, 1, 10)),
    ("2020-1-2 3:04", utc(2020, 1, 2, 3, 4)),
])
def test_readable_dates_become_utc(value: str, expected: datetime) -> None:
    moment = parse_date(value)
    assert moment == expected
    assert moment.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", [
    "Tue, 10 Jun 2003 04:00:00",  # RFC 822 without zone
    "2003-06-10T04:00:00",  # ISO 8601 without zone
    "2003/06/10 04:00",
])
def test_missing_zone_is_taken_as_utc(value: str) -> None:
    assert parse_date(value) == utc(2003, 6, 10, 4)


@pytest.mark.parametrize(("value", "reason"), [
    ("Tue, 10 Jun 2003 04:00:00 XYZ", "unknown time zone 'XYZ'"),  # never silently UTC
    ("Tue, 10 Jun 2003 04:00:00 +2500", "offset out of range"),
    ("10 Foo 2020 10:00 GMT", "unknown month name 'foo'"),
    ("10 Ju 2020 10:00 GMT", "unknown month name 'ju'"),  # June or July: never a guessed month
    ("10 Ma 2020", "unknown month name 'ma'"),
    ("Tue, 31 Feb 2020 00:00:00 GMT", "impossible date"),
    ("10 Jun 2003 24:00:00 GMT", "impossible date"),
    ("2020-13-01T00:00:00Z", "unreadable ISO 8601 date"),
    ("0001-01-01T00:00:00+01:00", "impossible date"),  # before year 1 once in UTC
    ("0001-01-01T00:00:00Z", "implausible date"),  # placeholders
    ("9999-12-31", "implausible date"),
    ("01 Jan 1970 00:00:00 GMT", "implausible date"),  # epoch zero: before EARLIEST
    ("10 Jun 49 GMT", "implausible date"),  # two-digit 49 is 2049: too far ahead
])
def test_dates_we_refuse_raise_in_strict_mode_and_are_none_otherwise(value: str, reason: str) -> None:
    with pytest.raises(UnknownDate, match=reason):
        parse_date_strict(value)
    assert parse_date(value) is None


@pytest.mark.parametrize("value", [None, "", "   ", "next tuesday", "10/01/2020", "01.02.2020 10:00", "1617235200"])
def test_missing_shapeless_or_ambiguous_values_are_no_date(value: str | None) -> None:
    """Day-first and month-first numeric dates are ambiguous; epoch seconds are no feed date."""
    assert parse_date_strict(value) is None


def test_plausible_window() -> None:
    now = utc(2024, 6, 1)
    assert plausible(EARLIEST, now)
    assert not plausible(EARLIEST - timedelta(seconds=1), now)
    assert plausible(now + LATEST_AHEAD, now)  # a wrong zone or a scheduled post: taken, clamped by the caller
    assert not plausible(now + LATEST_AHEAD + timedelta(seconds=1), now)
    assert not plausible(None, now)


def test_a_date_a_few_hours_ahead_is_kept() -> None:
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=5)
    assert parse_date(soon.strftime("%a, %d %b %Y %H:%M:%S GMT")) == soon
