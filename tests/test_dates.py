"""Date helpers: strict parsing, one-step shifts, study day, appointment times at DST changes."""

from __future__ import annotations

import calendar
import datetime as dt

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visitplan.dates import (
    Span,
    Spans,
    local_datetime,
    next_day,
    parse_date,
    shift,
    study_day,
)
from visitplan.errors import VisitplanError


def test_shift_applies_months_once_from_the_anchor():
    jan31 = pendulum.date(2026, 1, 31)
    assert shift(jan31, Span(1)) == pendulum.date(2026, 2, 28)
    assert shift(jan31, Span(2)) == pendulum.date(2026, 3, 31)  # not 28 March (chained)
    assert shift(jan31, Span(1, 3)) == pendulum.date(2026, 3, 3)  # months first, then days


def test_study_day_has_no_day_zero():
    d1 = pendulum.date(2022, 8, 31)
    assert [study_day(d1.add(days=n), d1) for n in (-2, -1, 0, 1)] == [-2, -1, 1, 2]


@pytest.mark.parametrize(
    "text", ["2023-02-29", "2022-13-01", "2022-7-27", "20220727", "2022-W30-1", ""]
)
def test_parse_date_is_strict(text):
    with pytest.raises(VisitplanError):
        parse_date(text)


def test_parse_date_returns_a_date_not_a_datetime():
    value = parse_date("2026-03-29")
    assert type(value) is pendulum.Date


@pytest.mark.parametrize(
    ("day", "time", "utc"),
    [
        ((2026, 7, 15), "09:30", "2026-07-15T07:30:00+00:00"),  # summer: UTC+2
        ((2026, 1, 15), "09:30", "2026-01-15T08:30:00+00:00"),  # winter: UTC+1
        ((2026, 3, 29), "03:00", "2026-03-29T01:00:00+00:00"),  # just after the gap
        ((2026, 10, 25), "03:00", "2026-10-25T02:00:00+00:00"),  # just after the overlap
    ],
)
def test_local_datetime_is_zone_aware(day, time, utc):
    got = local_datetime(pendulum.date(*day), time, "Europe/Paris")
    assert got.in_timezone("UTC").isoformat() == utc
    assert got.timezone_name == "Europe/Paris"


@pytest.mark.parametrize(
    ("day", "time", "rule"),
    [
        ((2026, 3, 29), "02:30", "does not exist"),
        ((2026, 10, 25), "02:30", "happens twice"),
        ((2026, 10, 25), "02:00", "happens twice"),
    ],
)
def test_local_datetime_refuses_dst_gap_and_overlap(day, time, rule):
    with pytest.raises(VisitplanError, match=rule):
        local_datetime(pendulum.date(*day), time, "Europe/Paris")


def test_local_datetime_refuses_bad_time_and_zone():
    with pytest.raises(VisitplanError, match="HH:MM"):
        local_datetime(pendulum.date(2026, 1, 1), "25:00", "Europe/Paris")
    with pytest.raises(VisitplanError, match="IANA"):
        local_datetime(pendulum.date(2026, 1, 1), "09:00", "Europe/Brest")


# shift() computes with ordinals instead of pendulum.Date.add (for speed, see
# docs/performance.md); it must give pendulum's results exactly, month ends and leap days too.
_month_ends = st.builds(
    lambda y, m: pendulum.date(y, m, calendar.monthrange(y, m)[1]),
    st.integers(1896, 2204),
    st.integers(1, 12),
)
_any_dates = st.dates(dt.date(1800, 1, 1), dt.date(2300, 12, 31)).map(
    lambda d: pendulum.date(d.year, d.month, d.day)
)


@settings(max_examples=2000, deadline=None)
@given(
    day=_any_dates | _month_ends | st.sampled_from([pendulum.date(2024, 2, 29)]),
    months=st.integers(-600, 600) | st.sampled_from([0, 1, -1, 12, 24, 48]),
    days=st.integers(-20_000, 20_000) | st.sampled_from([0, 1, -1, 28, 365, 366]),
)
def test_shift_matches_pendulum_add(day, months, days):
    expected = day.add(months=months) if months else day
    expected = expected.add(days=days) if days else expected
    got = shift(day, Span(months, days))
    assert got == expected
    assert type(got) is pendulum.Date


_spans = st.builds(
    Span,
    st.integers(-30, 30) | st.just(0),
    st.integers(-3_000_000, 3_000_000) | st.integers(-400, 400),
)


@given(day=_any_dates | _month_ends, spans=st.tuples(_spans, _spans, _spans))
def test_spans_give_the_dates_and_errors_of_three_shifts(day, spans):
    # Spans is the engine's one-call form of three shifts of a visit's anchor; the days-only
    # fast path adds to the ordinal, so results beyond the calendar must fail the same way.
    fields = ("a.offset", "a.window.before", "a.window.after")
    try:
        expected = tuple(shift(day, s, f) for s, f in zip(spans, fields, strict=True))
    except VisitplanError as exc:
        with pytest.raises(VisitplanError) as got:
            Spans(spans, fields).apply(day)
        assert str(got.value) == str(exc)
    else:
        got_dates = Spans(spans, fields).apply(day)
        assert got_dates == expected
        assert all(type(d) is pendulum.Date for d in got_dates)


def test_shift_clamps_to_month_end_and_leap_day():
    assert shift(pendulum.date(2024, 2, 29), Span(12)) == pendulum.date(2025, 2, 28)
    assert shift(pendulum.date(2024, 2, 29), Span(48)) == pendulum.date(2028, 2, 29)
    assert shift(pendulum.date(2023, 3, 31), Span(-1)) == pendulum.date(2023, 2, 28)
    assert shift(pendulum.date(2023, 12, 31), Span(2, -1)) == pendulum.date(2024, 2, 28)
    assert shift(pendulum.date(2000, 1, 31), Span(1)) == pendulum.date(2000, 2, 29)
    assert shift(pendulum.date(1900, 1, 31), Span(1)) == pendulum.date(1900, 2, 28)


def test_next_day_crosses_months_years_and_leap_days():
    assert next_day(pendulum.date(2024, 2, 28)) == pendulum.date(2024, 2, 29)
    assert next_day(pendulum.date(2023, 2, 28)) == pendulum.date(2023, 3, 1)
    assert next_day(pendulum.date(2023, 12, 31)) == pendulum.date(2024, 1, 1)
    with pytest.raises(VisitplanError, match="falls outside the calendar"):
        next_day(pendulum.date(9999, 12, 31))
