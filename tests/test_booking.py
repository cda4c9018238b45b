"""Booking inside the window, clinic hours, capacity and DST; capacity-safe proposals; agenda."""

from __future__ import annotations

from collections import Counter

import attrs
import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visitplan.booking import (
    agenda,
    book,
    dump_bookings,
    index_visits,
    load_bookings,
    propose_dates,
    read_bookings,
    save_bookings,
)
from visitplan.errors import VisitplanError
from visitplan.model import VisitKind
from visitplan.participant import Participant
from visitplan.site import MovePolicy, builtin_site, capacity_kinds

BREST = builtin_site("BREST")
ZONE = "Europe/Paris"
#: A site open every day around the clock, so only the DST rule can refuse a time.
ALWAYS_OPEN = attrs.evolve(
    BREST,
    weekdays=frozenset(range(1, 8)),
    opens=pendulum.time(0, 0),
    closes=pendulum.time(23, 59),
)


def plan(study, code, screening, day1):
    return study.plan(Participant(code, screening, records={"D1": day1}))


# -- DST ---------------------------------------------------------------------------------------


@pytest.fixture
def dst_schedules(study):
    # W4 targets fall on the 2026 spring-forward (29 March) and fall-back (25 October) Sundays.
    spring = plan(study, "2001", "2026-02-01", "2026-03-01")
    autumn = plan(study, "2002", "2026-09-01", "2026-09-27")
    assert spring.visit("W4").target == pendulum.date(2026, 3, 29)
    assert autumn.visit("W4").target == pendulum.date(2026, 10, 25)
    return [spring, autumn]


@pytest.mark.parametrize(
    ("participant", "day", "rule"),
    [
        ("2001", pendulum.date(2026, 3, 29), "does not exist in this zone (clocks go forward)"),
        ("2002", pendulum.date(2026, 10, 25), "happens twice in this zone (clocks go back)"),
    ],
)
def test_a_time_skipped_or_repeated_by_dst_is_refused(dst_schedules, participant, day, rule):
    with pytest.raises(VisitplanError) as err:
        book(ALWAYS_OPEN, dst_schedules, participant, "W4", day, "02:30", {})
    assert str(err.value) == f"appointment time (Europe/Paris) '{day} 02:30': {rule}; " + (
        "pick another time"
    )


@pytest.mark.parametrize(
    ("participant", "day", "offset", "utc_hour"),
    [
        ("2001", pendulum.date(2026, 3, 29), 2 * 3600, 7),  # CEST after the change
        ("2002", pendulum.date(2026, 10, 25), 1 * 3600, 8),  # CET after the change
    ],
)
def test_nine_oclock_on_dst_days_has_the_right_offset(
    dst_schedules, participant, day, offset, utc_hour
):
    held = book(ALWAYS_OPEN, dst_schedules, participant, "W4", day, "09:00", {})
    when = held[(participant, "W4")]
    assert when.utcoffset().total_seconds() == offset
    assert when.in_timezone("UTC").hour == utc_hour
    assert (when.date(), when.hour, when.minute) == (day, 9, 0)
    assert when.timezone_name == ZONE


def test_brest_refuses_the_dst_sunday_itself(dst_schedules):
    with pytest.raises(VisitplanError, match="clinic closed on Sundays"):
        book(BREST, dst_schedules, "2001", "W4", pendulum.date(2026, 3, 29), "09:00", {})


# -- booking checks ----------------------------------------------------------------------------


@pytest.fixture
def sample(study):
    # The shipped roster's participants (1001: EOT 15 Feb 2023, window 8-22 Feb).
    return [
        study.plan(Participant("1001", "2022-07-27")),
        plan(study, "1002", "2022-09-12", "2022-10-10"),
        plan(study, "1003", "2023-01-31", "2023-03-06"),
    ]


def test_booking_inside_window_and_hours(sample):
    held = book(BREST, sample, "1001", "EOT", pendulum.date(2023, 2, 15), "08:30", {})
    assert held[("1001", "EOT")] == pendulum.datetime(2023, 2, 15, 8, 30, tz=ZONE)
    held = book(BREST, sample, "1001", "W20", pendulum.date(2023, 1, 19), "16:59", held)
    assert len(held) == 2


@pytest.mark.parametrize(
    ("visit", "day", "time", "message"),
    [
        ("EOT", "2023-02-07", "09:00", "date '2023-02-07': is outside EOT's window 2023-02-08"),
        ("EOT", "2023-02-18", "09:00", "date '2023-02-18': is not bookable at BREST: clinic"),
        ("EOT", "2023-02-15", "08:29", "time '08:29': is outside clinic hours at BREST"),
        ("EOT", "2023-02-15", "17:00", "time '17:00': is outside clinic hours"),
        ("EOT", "2023-02-15", "9:00", "time '9:00': must be a wall-clock time written HH:MM"),
        ("W9", "2023-02-15", "09:00", "visit 'W9': is not a planned visit of participant 1001"),
        ("EOS", "2024-06-04", "09:00", "visit 'EOS': is tentative"),
    ],
)
def test_bad_bookings_are_refused_in_one_line(sample, visit, day, time, message):
    held = {("1002", "W4"): pendulum.datetime(2022, 11, 7, 9, tz=ZONE)}
    with pytest.raises(VisitplanError) as err:
        book(BREST, sample, "1001", visit, pendulum.parse(day, exact=True), time, held)
    assert str(err.value).startswith(message), str(err.value)
    assert held == {("1002", "W4"): pendulum.datetime(2022, 11, 7, 9, tz=ZONE)}


def test_holiday_refusal_names_the_holiday(sample):
    # 1003's W8 targets Labour Day 2023.
    with pytest.raises(VisitplanError, match="public holiday: Labor Day"):
        book(BREST, sample, "1003", "W8", pendulum.date(2023, 5, 1), "10:00", {})


def test_done_visits_and_strangers_are_refused(sample):
    with pytest.raises(VisitplanError, match="'D1': is done; only a planned visit"):
        book(BREST, sample, "1002", "D1", pendulum.date(2022, 10, 10), "10:00", {})
    with pytest.raises(VisitplanError, match="participant '9999': is not in the roster"):
        book(BREST, sample, "9999", "EOT", pendulum.date(2023, 2, 15), "10:00", {})


def test_capacity_counts_existing_bookings(study):
    site = attrs.evolve(BREST, capacity={VisitKind.BIOPSY: 2})
    people = [plan(study, f"30{i}", "2026-01-01", "2026-01-05") for i in range(3)]
    day = people[0].visit("EOT").target  # all three EOTs on 22 June 2026
    held = book(site, people, "300", "EOT", day, "09:00", {})
    held = book(site, people, "301", "EOT", day, "10:00", held)
    with pytest.raises(VisitplanError) as err:
        book(site, people, "302", "EOT", day, "11:00", held)
    assert str(err.value) == "date '2026-06-22': is full at BREST (biopsy 3/2 with this visit)"
    # Moving a booked visit to another time of the same day does not count it twice.
    moved = book(site, people, "301", "EOT", day, "14:00", held)
    assert moved[("301", "EOT")].hour == 14 and len(moved) == 2
    # The next day still has room.
    assert book(site, people, "302", "EOT", pendulum.date(2026, 6, 23), "09:00", held)


# -- proposals ---------------------------------------------------------------------------------


def biopsy_load(site, schedules, proposals, held):
    """Biopsy visits per day: appointments held plus accepted proposals."""
    visits = index_visits(schedules)
    load: Counter[pendulum.Date] = Counter()
    for key, when in held.items():
        if VisitKind.BIOPSY in capacity_kinds(visits[key]):
            load[when.date()] += 1
    for p in proposals:
        kinds = capacity_kinds(visits[(p.participant, p.visit)])
        if p.day is not None and VisitKind.BIOPSY in kinds:
            load[p.day] += 1
    return load


def test_one_biopsy_a_day_three_overlapping_eot_windows_never_double_book(study):
    one = attrs.evolve(BREST, capacity={VisitKind.BIOPSY: 1})
    # Same Day 1, so the three EOT windows are the same: 15-29 June 2026, target Mon 22 June.
    people = [plan(study, code, "2026-01-01", "2026-01-05") for code in ("401", "402", "403")]
    eot = [s.visit("EOT") for s in people]
    assert {(v.earliest, v.target, v.latest) for v in eot} == {
        (pendulum.date(2026, 6, 15), pendulum.date(2026, 6, 22), pendulum.date(2026, 6, 29))
    }
    june = dict(start=pendulum.date(2026, 6, 1), end=pendulum.date(2026, 6, 30))
    proposals = [p for p in propose_dates(one, people, {}, **june) if p.visit == "EOT"]
    days = {p.participant: p.day for p in proposals}
    # Target, then the nearest open days with room: Tue 23 (+1), Wed 24 (+2) beats Fri 19 (-3).
    assert days == {
        "401": pendulum.date(2026, 6, 22),
        "402": pendulum.date(2026, 6, 23),
        "403": pendulum.date(2026, 6, 24),
    }
    assert [p.moved for p in proposals] == [False, True, True]
    assert proposals[1].reason == "2026-06-22 is full"
    assert max(biopsy_load(one, people, proposals, {}).values()) == 1
    # With the earlier policy the moved ones go back in the window instead.
    earlier = propose_dates(one, people, {}, MovePolicy.NEAREST_EARLIER, **june)
    assert sorted(p.day for p in earlier if p.visit == "EOT") == [
        pendulum.date(2026, 6, 18), pendulum.date(2026, 6, 19), pendulum.date(2026, 6, 22),
    ]  # fmt: skip
    # Without a limit all three stay on the target: the limit is what spreads them.
    free = attrs.evolve(BREST, capacity={})
    assert {p.day for p in propose_dates(free, people, {}, **june) if p.visit == "EOT"} == {
        pendulum.date(2026, 6, 22)
    }


def test_proposals_respect_appointments_held(study):
    one = attrs.evolve(BREST, capacity={VisitKind.BIOPSY: 1})
    people = [plan(study, code, "2026-01-01", "2026-01-05") for code in ("401", "402", "403")]
    held = book(one, people, "403", "EOT", pendulum.date(2026, 6, 22), "09:00", {})
    june = dict(start=pendulum.date(2026, 6, 1), end=pendulum.date(2026, 6, 30))
    proposals = [p for p in propose_dates(one, people, held, **june) if p.visit == "EOT"]
    assert [p.participant for p in proposals] == ["401", "402"]  # 403 is booked already
    assert {p.day for p in proposals} == {pendulum.date(2026, 6, 23), pendulum.date(2026, 6, 24)}
    assert max(biopsy_load(one, people, proposals, held).values()) == 1


def test_a_full_window_gives_no_day_rather_than_an_overbooking(study):
    none = attrs.evolve(BREST, capacity={VisitKind.BIOPSY: 0})
    people = [plan(study, "501", "2026-01-01", "2026-01-05")]
    eot = next(p for p in propose_dates(none, people) if p.visit == "EOT")
    assert eot.day is None and eot.moved and eot.reason == "2026-06-22 is full"


@settings(max_examples=25, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 20), min_size=2, max_size=6),
    limit=st.integers(1, 2),
    policy=st.sampled_from(list(MovePolicy)),
)
def test_proposals_never_exceed_capacity(study, offsets, limit, policy):
    site = attrs.evolve(BREST, capacity={VisitKind.BIOPSY: limit})
    people = []
    for i, k in enumerate(offsets):
        d1 = pendulum.date(2026, 1, 5).add(days=k)
        people.append(plan(study, f"P{i}", d1.subtract(days=30).isoformat(), d1.isoformat()))
    proposals = propose_dates(site, people, policy=policy)
    visits = index_visits(people)
    for p in proposals:
        if p.day is not None:
            v = visits[(p.participant, p.visit)]
            assert v.earliest <= p.day <= v.latest
            assert site.is_working_day(p.day)
    load = biopsy_load(site, people, proposals, {})
    assert max(load.values(), default=0) <= limit


# -- agenda ------------------------------------------------------------------------------------


def test_agenda_flags_closed_and_over_capacity_days(study):
    one = attrs.evolve(BREST, capacity={VisitKind.BIOPSY: 1})
    people = [plan(study, code, "2026-01-01", "2026-01-05") for code in ("401", "402")]
    held = book(one, people, "401", "W4", pendulum.date(2026, 2, 3), "09:15", {})
    days = {d.day: d for d in agenda(one, people, held, pendulum.date(2026, 1, 1),
                                     pendulum.date(2026, 6, 30))}  # fmt: skip
    june22 = days[pendulum.date(2026, 6, 22)]
    assert june22.total == 2 and june22.load[VisitKind.BIOPSY] == 2
    assert june22.over == ("biopsy 2/1",)
    assert days[pendulum.date(2026, 2, 3)].entries[0].state == "booked"
    assert days[pendulum.date(2026, 2, 3)].entries[0].when.hour == 9
    assert days[pendulum.date(2026, 2, 2)].total == 1  # 402's W4 stays on its target
    # W20 on 25 May 2026 = Whit Monday: closed, with the open days of the window offered.
    may25 = days[pendulum.date(2026, 5, 25)]
    assert may25.closed == "public holiday: Pentecost Monday"
    assert may25.entries[0].alternatives[:2] == (pendulum.date(2026, 5, 26),
                                                 pendulum.date(2026, 5, 27))  # fmt: skip


# -- the bookings file -------------------------------------------------------------------------


def test_bookings_round_trip_through_csv(tmp_path):
    held = {
        ("1001", "EOT"): pendulum.datetime(2023, 2, 15, 9, 30, tz=ZONE),
        ("1002", "W4"): pendulum.datetime(2022, 11, 7, 14, 0, tz=ZONE),
    }
    text = dump_bookings(held, ZONE)
    assert text.splitlines() == [
        "participant,visit,date,time",
        "1002,W4,2022-11-07,14:00",
        "1001,EOT,2023-02-15,09:30",
    ]
    assert read_bookings(text, ZONE) == held
    path = save_bookings(tmp_path / "b.csv", held, ZONE)
    assert load_bookings(path, ZONE) == held
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("who,visit,date,time\n", "bookings: header 'who,visit,date,time': must be"),
        ("participant,visit,date,time\n1001,EOT,2023-02-30,09:00\n", "bookings:2: date"),
        ("participant,visit,date,time\n=cmd(),EOT,2023-02-15,09:00\n", "bookings:2: participant"),
        ("participant,visit,date,time\n1001,EOT,2023-03-26,02:30\n", "bookings:2: appointment"),
        ("participant,visit,date,time\n1001,EOT,2023-02-15\n", "bookings:2: row 2: must have"),
        (
            "participant,visit,date,time\n1001,EOT,2023-02-15,09:00\n1001,EOT,2023-02-16,09:00\n",
            "bookings:3: booking '1001 EOT': appears twice",
        ),
    ],
)
def test_bad_bookings_files_are_refused_in_one_line(text, message):
    with pytest.raises(VisitplanError) as err:
        read_bookings(text, ZONE)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)
