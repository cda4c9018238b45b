"""The site calendar: real French holidays 2022-2028, weekends, closures, site files, policies."""

from __future__ import annotations

import datetime as dt

import attrs
import pendulum
import pytest
from dateutil.easter import easter

from visitplan.errors import VisitplanError
from visitplan.model import VisitKind
from visitplan.participant import Participant
from visitplan.site import (
    Closure,
    MovePolicy,
    builtin_site,
    capacity_kinds,
    check_visit,
    choose,
    loads_site,
    site_for,
)

BREST = builtin_site("BREST")
YEARS = range(2022, 2029)


def _d(day: dt.date) -> pendulum.Date:
    return pendulum.date(day.year, day.month, day.day)


def expected_french_holidays(year: int) -> dict[pendulum.Date, str]:
    """Metropolitan French public holidays computed independently (dateutil's Easter)."""
    e = easter(year)  # Western Easter Sunday
    return {
        _d(dt.date(year, 1, 1)): "New Year",
        _d(e + dt.timedelta(days=1)): "Easter Monday",
        _d(dt.date(year, 5, 1)): "Labour Day",
        _d(dt.date(year, 5, 8)): "Victory in Europe Day",
        _d(e + dt.timedelta(days=39)): "Ascension",
        _d(e + dt.timedelta(days=50)): "Whit Monday",
        _d(dt.date(year, 7, 14)): "14 July",
        _d(dt.date(year, 8, 15)): "Assumption",
        _d(dt.date(year, 11, 1)): "All Saints",
        _d(dt.date(year, 11, 11)): "Armistice",
        _d(dt.date(year, 12, 25)): "Christmas",
    }


@pytest.mark.parametrize("year", YEARS)
def test_french_holidays_match_an_independent_computation(year):
    expected = expected_french_holidays(year)
    found = {d for d in BREST.days(pendulum.date(year, 1, 1), pendulum.date(year, 12, 31))
             if BREST.holiday(d)}  # fmt: skip
    assert found == set(expected)
    for day in expected:
        assert BREST.closed_reason(day) is not None
        assert not BREST.is_working_day(day)


@pytest.mark.parametrize(
    ("day", "name"),
    [
        ("2022-04-18", "Easter Monday"),
        ("2023-05-18", "Ascension Day"),
        ("2024-04-01", "Easter Monday"),
        ("2025-06-09", "Pentecost Monday"),
        ("2026-05-14", "Ascension Day"),
        ("2027-07-14", "National Day"),
        ("2027-08-15", "Assumption Day"),
        ("2028-06-05", "Pentecost Monday"),
        ("2028-11-01", "All Saints' Day"),
        ("2028-11-11", "Armistice Day"),
    ],
)
def test_specific_holiday_dates(day, name):
    d = pendulum.parse(day, exact=True)
    assert BREST.holiday(d) == name
    assert BREST.closed_reason(d) == f"public holiday: {name}"


def test_days_around_holidays_are_open():
    # The Tuesday after Easter Monday 2024 and the Wednesday before Ascension 2026.
    assert BREST.is_working_day(pendulum.date(2024, 4, 2))
    assert BREST.is_working_day(pendulum.date(2026, 5, 13))
    assert BREST.holiday(pendulum.date(2026, 5, 13)) is None


def test_weekends_are_closed_and_weekdays_open():
    week = list(BREST.days(pendulum.date(2026, 6, 1), pendulum.date(2026, 6, 7)))  # Mon..Sun
    assert [BREST.is_working_day(d) for d in week] == [True] * 5 + [False] * 2
    assert BREST.closed_reason(week[5]) == "clinic closed on Saturdays"
    assert BREST.closed_reason(week[6]) == "clinic closed on Sundays"
    # 2026: 261 weekdays, 8 of the 11 holidays on a weekday (1 Nov is a Sunday, 15 Aug a
    # Saturday, 14 Jul a Tuesday ...): count them independently.
    year = list(BREST.days(pendulum.date(2026, 1, 1), pendulum.date(2026, 12, 31)))
    weekday_holidays = [d for d in expected_french_holidays(2026) if d.isoweekday() <= 5]
    weekdays = [d for d in year if d.isoweekday() <= 5]
    assert len(BREST.working_days(year[0], year[-1])) == len(weekdays) - len(weekday_holidays)


def test_closures_are_closed_with_their_reason():
    site = attrs.evolve(
        BREST,
        closures=(Closure(pendulum.date(2026, 12, 21), pendulum.date(2027, 1, 1), "Christmas"),),
    )
    assert site.closed_reason(pendulum.date(2026, 12, 22)) == "closure: Christmas"
    assert site.closed_reason(pendulum.date(2026, 12, 25)) == "public holiday: Christmas Day"
    assert site.is_working_day(pendulum.date(2026, 12, 18))
    assert site.is_working_day(pendulum.date(2027, 1, 4))


def test_brest_file_agrees_with_the_protocol(study):
    site = site_for(None, study.site)
    assert (site.code, site.timezone, site.country) == ("BREST", "Europe/Paris", "FR")
    assert site.capacity == {VisitKind.BIOPSY: 2}
    assert site.hours == "08:30-17:00"
    assert site.weekdays == frozenset({1, 2, 3, 4, 5})
    wrong = attrs.evolve(study.site, timezone="Europe/London")
    with pytest.raises(VisitplanError, match=r"site BREST\.timezone 'Europe/Paris': disagrees"):
        site_for(None, wrong)


def test_biopsy_visits_are_those_with_a_biopsy_procedure(study):
    s = study.plan(Participant("1001", "2022-07-27"))
    assert VisitKind.BIOPSY in capacity_kinds(s.visit("SCR"))
    assert VisitKind.BIOPSY in capacity_kinds(s.visit("EOT"))
    assert VisitKind.BIOPSY in capacity_kinds(s.visit("EOS"))
    assert capacity_kinds(s.visit("W4")) == {VisitKind.DOSING}


def test_a_target_on_a_holiday_gets_its_open_days_nearest_first(study):
    # 1003's W8 falls on 1 May 2023 (Labour Day, a Monday); its window is 28 Apr to 4 May.
    s = study.plan(Participant("1003", "2023-01-31", records={"D1": "2023-03-06"}))
    w8 = s.visit("W8")
    assert (w8.target, w8.earliest, w8.latest) == (
        pendulum.date(2023, 5, 1), pendulum.date(2023, 4, 28), pendulum.date(2023, 5, 4),
    )  # fmt: skip
    check = check_visit(BREST, "1003", w8)
    assert not check.ok and check.reason == "public holiday: Labor Day"
    # 2 May (+1), 3 May (+2), then 28 Apr and 4 May (both 3 days off: the earlier first).
    assert [d.isoformat() for d in check.alternatives] == [
        "2023-05-02", "2023-05-03", "2023-04-28", "2023-05-04",
    ]  # fmt: skip
    days = check.alternatives
    assert choose(w8.target, days, MovePolicy.NEAREST) == pendulum.date(2023, 5, 2)
    assert choose(w8.target, days, MovePolicy.NEAREST_LATER) == pendulum.date(2023, 5, 2)
    assert choose(w8.target, days, MovePolicy.NEAREST_EARLIER) == pendulum.date(2023, 4, 28)
    assert check_visit(BREST, "1003", s.visit("W4")).ok  # 3 Apr 2023, a Monday


def test_nearest_tie_goes_earlier_and_a_policy_may_find_nothing():
    target = pendulum.date(2026, 7, 14)
    both = [pendulum.date(2026, 7, 13), pendulum.date(2026, 7, 15)]
    assert choose(target, both, MovePolicy.NEAREST) == pendulum.date(2026, 7, 13)
    assert choose(target, both[1:], MovePolicy.NEAREST_EARLIER) is None
    assert choose(target, [target, *both], MovePolicy.NEAREST_LATER) == target


GOOD = """
[site]
code = "TEST"
timezone = "Europe/Paris"
country = "FR"
"""


def test_a_minimal_site_file_takes_the_defaults():
    site = loads_site(GOOD)
    assert site.hours == "08:30-17:00" and site.policy is MovePolicy.NEAREST
    assert site.capacity == {} and site.closures == ()


def test_site_file_closures_and_capacity():
    site = loads_site(
        GOOD + 'policy = "nearest-later"\n[clinic]\ndays = ["mon", "wed"]\nopens = "09:00"\n'
        'closes = "12:30"\n[capacity]\nbiopsy = 1\nall = 6\n'
        '[[closures]]\ndate = 2026-06-03\nreason = "Inventory"\n'
        '[[closures]]\nfrom = "2026-08-01"\nto = "2026-08-23"\n'
    )
    assert site.weekdays == frozenset({1, 3}) and site.hours == "09:00-12:30"
    assert site.policy is MovePolicy.NEAREST_LATER
    assert site.capacity == {VisitKind.BIOPSY: 1} and site.daily_limit == 6
    assert site.closed_reason(pendulum.date(2026, 6, 3)) == "closure: Inventory"
    assert site.closed_reason(pendulum.date(2026, 8, 10)) == "closure: site closed"
    assert site.closed_reason(pendulum.date(2026, 6, 2)) == "clinic closed on Tuesdays"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[clinic]\nopens = "8h30"\n', "clinic.opens '8h30': must be a wall-clock time"),
        ('[clinic]\nopens = "17:00"\ncloses = "08:00"\n', "clinic.closes '08:00': must be after"),
        ('[clinic]\ndays = ["monday"]\n', "clinic.days 'monday': must be one of: mon, tue"),
        ("[capacity]\nbiopsy = -1\n", "capacity.biopsy -1: must be a whole number"),
        ("[capacity]\nbiopsies = 2\n", "capacity.biopsies 2: unknown field"),
        ('[[closures]]\nfrom = "2026-08-10"\nto = "2026-08-01"\n', "closures[0].to '2026-08-01'"),
        ('[[closures]]\ndate = "2026-02-30"\n', "closures[0].date '2026-02-30': is not a day"),
        ("[clinic]\nhours = 8\n", "clinic.hours 8: unknown field"),
    ],
)
def test_bad_site_files_are_refused_in_one_line(extra, message):
    with pytest.raises(VisitplanError) as err:
        loads_site(GOOD + extra, source="x.toml")
    assert str(err.value).startswith(f"x.toml: {message}"), str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("site", "message"),
    [
        ('code = "T"\ntimezone = "Europe/Brest"\ncountry = "FR"',
         "site.timezone 'Europe/Brest': is not a known IANA time zone"),
        ('code = "T"\ntimezone = "Europe/Paris"\ncountry = "XX"',
         "site.country 'XX': has no public-holiday calendar"),
        ('code = "T"\ntimezone = "Europe/Paris"\ncountry = "FR"\nsubdivision = "ZZ"',
         "site.subdivision 'ZZ': is not a subdivision of FR"),
        ('code = "T"\ntimezone = "Europe/Paris"\ncountry = "FR"\npolicy = "soonest"',
         "site.policy 'soonest': must be one of: nearest-earlier, nearest-later, nearest"),
        ('timezone = "Europe/Paris"\ncountry = "FR"', "site.code None: is required"),
    ],
)  # fmt: skip
def test_bad_site_settings_are_refused(site, message):
    with pytest.raises(VisitplanError) as err:
        loads_site(f"[site]\n{site}\n", source="x.toml")
    assert str(err.value).startswith(f"x.toml: {message}"), str(err.value)


def test_a_subdivision_brings_its_own_holidays():
    # Alsace-Moselle (57) keeps Good Friday and St Stephen's Day; Brest does not.
    moselle = loads_site(GOOD + 'subdivision = "57"\n')
    good_friday = pendulum.date(2026, 4, 3)
    assert moselle.holiday(good_friday) is not None
    assert BREST.holiday(good_friday) is None
