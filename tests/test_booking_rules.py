"""Issue 17, items 6-9: bookings a coordinator can trust after a re-plan.

6. An appointment a re-plan leaves outside its visit's window (or on a closed day) is flagged
   by ``agenda``, ``due``, ``deviations`` and the calendar.
7. ``agenda --propose`` never proposes a day before today.
8. ``ics --appointment`` applies the rules of ``book``, with its messages.
9. A timed event ends ``duration`` after its start in elapsed time; one bad booking never
   blocks the site's export (the parsers' reading of the DST cases: tests/interop).

Through the real commands (CliRunner) on a real SQLite roster, dates as the issue gives them.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import icalendar
import pendulum
import pytest
from click.testing import CliRunner

import visitplan
from visitplan import Participant
from visitplan.booking import book, propose_dates
from visitplan.cli import cli
from visitplan.errors import VisitplanError
from visitplan.export.ics import to_ical, uid
from visitplan.schedule import FindingKind
from visitplan.site import builtin_site

BREST = builtin_site("BREST")
STAMP = ("--dtstamp", "2026-01-01T00:00:00Z")
#: Brest's zone and holidays, open every day around the clock: only DST can refuse a time.
ALWAYS_OPEN = """[site]
code = "BREST"
name = "Brest, open every day"
timezone = "Europe/Paris"
country = "FR"

[clinic]
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
opens = "00:00"
closes = "23:59"
"""


def invoke(db: Path, *args: str, code: int = 0) -> str:
    result = CliRunner(env={"COLUMNS": "200", "VISITPLAN_DB": str(db)}).invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return str(result.stdout if code == 0 else result.stderr)


# -- 6. the case: RP1 booked, then Day 1 recorded earlier ---------------------------------
@pytest.fixture
def rp1(tmp_path: Path) -> Path:
    # Screening 4 Jan 2027: Day 1 planned 8 Feb, W4 8 March (booked at 09:30). Day 1 is then
    # given on 25 Jan: W4 moves to 22 Feb, window 19-25 Feb, and the booking is left outside.
    db = tmp_path / "rp.db"
    invoke(db, "enroll", "RP1", "--screening", "2027-01-04", "--today", "2027-01-04")
    invoke(db, "book", "RP1", "W4", "2027-03-08", "09:30", "--today", "2027-01-04")
    invoke(db, "record", "RP1", "D1", "--date", "2027-01-25", "--today", "2027-01-25")
    return db


WINDOW_RULE = "date '2027-03-08': is outside W4's window 2027-02-19 to 2027-02-25"


def test_agenda_flags_the_appointment_left_outside_its_window(rp1):
    out = invoke(
        rp1, "agenda", "--from", "2027-02-15", "--to", "2027-03-10", "--today", "2027-01-25"
    )
    lines = out.splitlines()
    w4 = lines.index(next(line for line in lines if " W4 " in line))
    assert lines[w4].split()[-3:] == ["09:30", "booked", "2027-02-19..2027-02-25"]
    assert lines[w4 + 1] == f"      ! re-book: {WINDOW_RULE}"
    assert lines[-1] == "1 day with visits, 0 closed, 0 over capacity, 1 appointment to re-book"


def test_due_flags_the_appointment_left_outside_its_window(rp1):
    doc = json.loads(
        invoke(rp1, "due", "--days", "30", "--format", "json", "--today", "2027-02-10")
    )
    [w4] = doc["due"]
    assert (w4["visit"], w4["earliest"], w4["latest"]) == ("W4", "2027-02-19", "2027-02-25")
    assert w4["appointment"] == {"date": "2027-03-08", "time": "09:30", "problems": [WINDOW_RULE]}
    table = invoke(rp1, "due", "--days", "30", "--today", "2027-02-10")
    assert f"! RP1 W4: re-book: {WINDOW_RULE}" in table.splitlines()


def test_deviations_lists_the_appointment_left_outside_its_window(rp1):
    doc = json.loads(invoke(rp1, "deviations", "--format", "json", "--today", "2027-02-10"))
    assert doc["deviations"] == [
        {
            "participant": "RP1",
            "site": "BREST",
            "visit": "W4",
            "kind": "appointment",
            "message": f"booked 2027-03-08 09:30: {WINDOW_RULE}",
            "target": "2027-02-22",
            "earliest": "2027-02-19",
            "latest": "2027-02-25",
            "actual": None,
        }
    ]


def test_the_calendar_flags_the_appointment_left_outside_its_window(rp1):
    data = invoke(rp1, "ics", "--db", str(rp1), "--today", "2027-02-10", *STAMP)
    cal = icalendar.Calendar.from_ical(data)
    [w4] = [e for e in cal.walk("VEVENT") if str(e["UID"]) == uid("NCT05124925", "RP1", "W4")]
    assert str(w4["SUMMARY"]) == "RP1 W4 Dose 2 (re-book)"
    assert f"Re-book the appointment: booked 2027-03-08 09:30: {WINDOW_RULE}" in str(
        w4["DESCRIPTION"]
    )
    assert w4.decoded("DTSTART") == pendulum.datetime(2027, 3, 8, 9, 30, tz="Europe/Paris")


def test_a_closed_day_is_flagged_and_a_good_booking_is_not(study):
    from visitplan.booking import appointment_findings, booking_errors

    # 1001's EOT (window 8-22 Feb 2023) booked on a Saturday (possible from a site file that
    # was open then): flagged with book's message; the same visit on Wednesday 15th: nothing.
    s = study.plan(Participant("1001", "2022-07-27"))
    sat = {("1001", "EOT"): pendulum.datetime(2023, 2, 18, 10, 0, tz="Europe/Paris")}
    assert [(f.kind, f.visit, f.message) for f in appointment_findings(s, sat, BREST)] == [
        (
            FindingKind.APPOINTMENT,
            "EOT",
            "booked 2023-02-18 10:00: date '2023-02-18': is not bookable at BREST: "
            "clinic closed on Saturdays",
        )
    ]
    wed = {("1001", "EOT"): pendulum.datetime(2023, 2, 15, 10, 0, tz="Europe/Paris")}
    assert appointment_findings(s, wed, BREST) == ()
    # Book refuses the Saturday with the very same words: one rule, one place.
    with pytest.raises(VisitplanError) as err:
        book(BREST, [s], "1001", "EOT", pendulum.date(2023, 2, 18), "10:00", {})
    assert str(err.value) == str(
        booking_errors(BREST, s.visit("EOT"), pendulum.date(2023, 2, 18), "10:00")[0]
    )


# -- 7. no proposal before today -----------------------------------------------------------------
def test_propose_never_proposes_a_day_before_today(tmp_path: Path):
    # The command: agenda --propose --today 2028-07-19. P1 (screened 1 May 2028, Day 1
    # 5 June): W4 target 3 July, window 30 June-6 July, all past. P2 (screened 16 May, Day 1
    # 20 June): W4 target 18 July, window 15-21 July, its target past. Both were "proposed"
    # on their target (so not even listed as needing another day), which book then refuses.
    db = tmp_path / "p.db"
    for code, screening in (("P1", "2028-05-01"), ("P2", "2028-05-16")):
        invoke(db, "enroll", code, "--screening", screening, "--today", "2028-05-16")
    out = invoke(
        db,
        "agenda",
        "--from",
        "2028-07-01",
        "--to",
        "2028-08-31",
        "--propose",
        "--today",
        "2028-07-19",
    )
    proposals = out.split("proposals (nearest; nothing booked): ")[1].splitlines()
    assert [" ".join(line.split()) for line in proposals] == [
        "3 of 5 visits need another day",
        "Participant Visit Target Proposed Why",
        "P1 W4 2028-07-03 no day with room in window its window closed on 2028-07-06",
        "P2 W4 2028-07-18 2028-07-19 2028-07-18 is past",
        "P2 W8 2028-08-15 2028-08-14 public holiday: Assumption Day",
    ]
    # What is proposed, book takes (on a day to come).
    invoke(db, "book", "P2", "W4", "2028-07-19", "09:00", "--today", "2028-07-19")


def test_propose_dates_today_bounds_the_window(study):
    s = study.plan(Participant("1001", "2022-07-27"))  # EOT target Wed 15 Feb 2023, 8-22 Feb

    def propose(today: pendulum.Date | None = None) -> Any:
        found = propose_dates(BREST, [s], start=pendulum.date(2023, 2, 1),
                              end=pendulum.date(2023, 2, 28), today=today)  # fmt: skip
        return next(p for p in found if p.visit == "EOT")

    assert propose().day == pendulum.date(2023, 2, 15)
    eot = propose(pendulum.date(2023, 2, 16))
    assert (eot.day, eot.reason) == (pendulum.date(2023, 2, 16), "2023-02-15 is past")
    eot = propose(pendulum.date(2023, 2, 23))
    assert (eot.day, eot.reason) == (None, "its window closed on 2023-02-22")


# -- 8. ics --appointment: the rules of book ------------------------------------------------------
ONE = ("--participant", "1001", "--screening", "2022-07-27")


@pytest.mark.parametrize(
    ("appointment", "message"),
    [
        # A year outside W4's window (25 Sep-1 Oct 2022): the issue's first case.
        (
            "W4=2032-10-26T09:30",
            "date '2032-10-26': is outside W4's window 2022-09-25 to 2022-10-01",
        ),
        # A Saturday at 22:30 inside the window: the second case.
        (
            "W4=2022-10-01T22:30",
            "date '2022-10-01': is not bookable at BREST: clinic closed on Saturdays",
        ),
        (
            "W4=2022-09-28T22:30",
            "time '22:30': is outside clinic hours at BREST (08:30-17:00, start times)",
        ),
    ],
)
def test_ics_appointment_is_refused_as_book_refuses_it(tmp_path, appointment, message):
    db = tmp_path / "none.db"  # not used: the facts are on the command line
    err = invoke(db, "ics", *ONE, "--appointment", appointment, *STAMP, code=2)
    assert err == f"error: {message}\n"
    # book says exactly the same of the same booking.
    roster = tmp_path / "roster.csv"
    roster.write_text("participant,site,screening,day1,flags\n1001,BREST,2022-07-27,,\n")
    day, time = appointment.split("=")[1].split("T")
    err = invoke(
        db,
        "book",
        "--roster",
        str(roster),
        "--bookings",
        str(tmp_path / "b.csv"),
        "1001",
        "W4",
        day,
        time,
        code=2,
    )
    assert err == f"error: {message}\n"


def test_ics_appointment_inside_the_rules_is_written_and_dst_is_checked(tmp_path):
    ok = invoke(tmp_path / "x.db", "ics", *ONE, "--appointment", "W4=2022-09-28T09:30", *STAMP)
    assert "DTSTART;TZID=Europe/Paris:20220928T093000" in ok
    # On a site open on Sundays, the repeated hour of 30 Oct 2022 is what refuses the time.
    site = tmp_path / "open.toml"
    site.write_text(ALWAYS_OPEN)
    err = invoke(
        tmp_path / "x.db",
        "ics",
        "--participant",
        "1001",
        "--screening",
        "2022-09-01",
        "--day1",
        "2022-10-02",
        "--site",
        str(site),
        "--appointment",
        "W4=2022-10-30T02:30",
        *STAMP,
        code=2,
    )
    assert err == (
        "error: appointment time (Europe/Paris) '2022-10-30 02:30': happens twice in this zone "
        "(clocks go back); pick another time\n"
    )


# -- 9. absolute end, and one bad booking never blocks the export --------------------------------
def test_a_1_59_booking_on_the_spring_forward_sunday_exports(tmp_path):
    # W4 of a Day 1 on Sunday 28 Feb 2027 is Sunday 28 March 2027, when Paris skips 02:00-03:00.
    # 01:59 exists; an hour later is 03:59 summer time. The wall-clock end (02:59) made the
    # whole site export fail ("falls before the zone's current daylight-saving rule").
    db, site = tmp_path / "dst.db", tmp_path / "open.toml"
    site.write_text(ALWAYS_OPEN)
    invoke(db, "enroll", "S1", "--screening", "2027-02-01", "--today", "2027-02-28")
    invoke(db, "record", "S1", "D1", "--date", "2027-02-28", "--today", "2027-02-28")
    invoke(
        db, "book", "--site", str(site), "S1", "W4", "2027-03-28", "01:59", "--today", "2027-02-28"
    )
    data = invoke(db, "ics", "--db", str(db), "--today", "2027-03-01", *STAMP)
    event = data.split(f"UID:{uid('NCT05124925', 'S1', 'W4')}")[1].split("END:VEVENT")[0]
    assert "DTSTART;TZID=Europe/Paris:20270328T015900" in event
    assert "DTEND;TZID=Europe/Paris:20270328T035900" in event  # one hour later, elapsed


def test_an_end_in_the_repeated_autumn_hour_is_written_in_utc(study):
    # 01:30 summer time on 31 Oct 2027 + 60 minutes is 02:30 summer time (00:30 UTC), a wall
    # time that happens twice: written as a UTC instant, which no client can misread.
    s = study.plan(Participant("A1", "2027-09-01", records={"D1": "2027-10-03"}))
    start = pendulum.datetime(2027, 10, 31, 1, 30, tz="Europe/Paris")
    data = to_ical(study, [s], appointments={("A1", "W4"): start}).decode()
    event = data.split(f"UID:{uid(study.id, 'A1', 'W4')}")[1].split("END:VEVENT")[0]
    assert "DTSTART;TZID=Europe/Paris:20271031T013000" in event
    assert "DTEND:20271031T003000Z" in event


def test_one_bad_stored_booking_does_not_block_the_site_export(tmp_path):
    # A booking stored before the store checked wall times (or by another tool): 02:30 on the
    # spring-forward Sunday does not exist. Every other event is written; that visit is an
    # all-day event, and stderr says why.
    db = tmp_path / "site.db"
    for code in ("G1", "B1"):
        invoke(db, "enroll", code, "--screening", "2027-02-01", "--today", "2027-02-28")
        invoke(db, "record", code, "D1", "--date", "2027-02-28", "--today", "2027-02-28")
    invoke(db, "book", "G1", "W4", "2027-03-30", "09:00", "--today", "2027-02-28")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO appointments (participant, visit, date, time) "
            "VALUES ('B1', 'W4', '2027-03-28', '02:30')"
        )
    result = CliRunner(env={"VISITPLAN_DB": str(db)}).invoke(
        cli, ["ics", "--db", str(db), "--today", "2027-03-01", *STAMP]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "note: appointment B1 W4 on 2027-03-28 02:30 is not written as a timed event "
        "(appointment time (Europe/Paris) '2027-03-28 02:30': does not exist in this zone "
        "(clocks go forward); pick another time); the visit is an all-day event\n"
    )
    cal = icalendar.Calendar.from_ical(result.stdout)
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    good = events[uid("NCT05124925", "G1", "W4")].decoded("DTSTART")
    assert good == pendulum.datetime(2027, 3, 30, 9, 0, tz="Europe/Paris")
    bad = events[uid("NCT05124925", "B1", "W4")].decoded("DTSTART")
    assert bad == pendulum.date(2027, 3, 28)  # its planned date, all day
    assert len(events) == 2 * len(
        visitplan.builtin("NCT05124925")
        .plan(Participant("G1", "2027-02-01", records={"D1": "2027-02-28"}))
        .visits
    )
