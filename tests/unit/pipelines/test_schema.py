"""The transaction contract's datetime range: naive is UTC, a zoned value is the instant it
names, and no value, however far, makes the check fail instead of answering."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.config import Validate
from pipelines.schema import DatetimeRange, naive_utc

ALLOWED = DatetimeRange.of(
    Validate(max_quarantine_share=0.01, min_datetime="2000-01-01", max_datetime="2100-01-01")
)


def _zone(hours: int) -> dt.timezone:
    return dt.timezone(dt.timedelta(hours=hours))


@pytest.mark.parametrize(
    ("when", "inside"),
    [
        (dt.datetime(2000, 1, 1), True),  # both ends are in
        (dt.datetime(2100, 1, 1), True),
        (dt.datetime(1999, 12, 31, 23, 59, 59, 999999), False),
        (dt.datetime(2100, 1, 1, 0, 0, 0, 1), False),
        (dt.datetime(2000, 1, 1, 0, 30, tzinfo=_zone(1)), False),  # 1999-12-31T23:30Z
        (dt.datetime(2099, 12, 31, 23, 30, tzinfo=_zone(-1)), False),  # 2100-01-01T00:30Z
        (dt.datetime(2099, 12, 31, 23, 30, tzinfo=_zone(-0)), True),
        (dt.datetime(1, 1, 1, tzinfo=_zone(1)), False),  # before year 1 in UTC
        (dt.datetime(9999, 12, 31, 23, tzinfo=_zone(-2)), False),  # after year 9999 in UTC
        (dt.datetime.min, False),
        (dt.datetime.max, False),
    ],
)
def test_the_range_is_inclusive_and_compares_instants(when: dt.datetime, inside: bool) -> None:
    assert (when in ALLOWED) is inside


def test_zoned_limits_are_read_as_utc() -> None:
    limits = Validate(
        max_quarantine_share=0,
        min_datetime="2000-01-01T01:00:00+01:00",
        max_datetime="2000-01-02T00:00:00Z",
    )
    allowed = DatetimeRange.of(limits)
    assert (allowed.low, allowed.high) == (dt.datetime(2000, 1, 1), dt.datetime(2000, 1, 2))
    assert str(allowed) == "from 2000-01-01T00:00:00 to 2000-01-02T00:00:00 UTC"
    assert naive_utc(dt.datetime(2018, 5, 1, 12, tzinfo=_zone(2))) == dt.datetime(2018, 5, 1, 10)
