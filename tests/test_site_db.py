"""The site calendar on the roster database: `book --db`, `agenda --db`, `chart --db`, and
stored appointments exported as timed iCalendar events. Real SQLite files, the real CLI."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import icalendar
import pendulum
import pytest
from tests import cli as harness
from tests.cli import Result
from tests.storeutil import dump

from visitplan.booking import appointments_from_store
from visitplan.errors import VisitplanError
from visitplan.export.ics import to_ical
from visitplan.store import Roster

BIN = Path(sys.executable).with_name("visitplan")

# Brest's zone and country (so it agrees with the protocol's site), open every day so the
# spring-forward Sunday can be tried, one biopsy a day, and a closure on a visit's target.
SITE = """\
[site]
code = "BREST"
name = "Brest, one biopsy a day"
timezone = "Europe/Paris"
country = "FR"

[clinic]
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
opens = "08:00"
closes = "18:00"

[capacity]
biopsy = 1

[[closures]]
date = 2026-06-21
reason = "Pharmacy audit"
"""


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Result:
    return harness.run(*args, env=env, cwd=cwd, columns=120)


def ok(r: Result) -> str:
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout


def one_line_error(r: Result, start: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith(f"error: {start}"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def copy_db(source: Path, target: Path) -> None:
    """A consistent copy, committed WAL pages included (a plain file copy could miss them)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three participants with the same EOT window (15-29 June 2026, target Mon 22 June), and
    2001 whose W4 target is 29 March 2026, the spring-forward Sunday in Paris."""
    where = tmp_path_factory.mktemp("site-db")
    db = where / "roster.db"
    for code in ("401", "402", "403"):
        ok(
            run(
                "enroll",
                code,
                "--screening",
                "2026-01-01",
                "--db",
                str(db),
                "--today",
                "2026-06-01",
            )
        )
        ok(run("record", code, "D1", "--date", "2026-01-05", "--db", str(db),
               "--today", "2026-06-01"))  # fmt: skip
    ok(run("enroll", "2001", "--screening", "2026-02-01", "--db", str(db), "--today", "2026-03-10"))
    ok(
        run(
            "record", "2001", "D1", "--date", "2026-03-01", "--db", str(db), "--today", "2026-03-10"
        )
    )
    site = where / "BREST-1.toml"
    site.write_text(SITE)
    return db, site


@pytest.fixture
def roster(enrolled: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    db, site = enrolled
    copy = tmp_path / "roster.db"
    copy_db(db, copy)
    return copy, site


def book(db: Path, site: Path, *args: str, today: str = "2026-06-01"):
    return run("book", "--db", str(db), "--site", str(site), "--today", today, *args)


def test_book_stores_audited_appointments_and_refusals_leave_the_file_unchanged(roster):
    db, site = roster
    out = ok(book(db, site, "401", "EOT", "2026-06-22", "09:00"))
    assert out == (
        "booked 401 EOT on 2026-06-22 09:00 Europe/Paris (UTC+02:00); "
        f"1 appointment at BREST in {db} (audited)\n"
    )
    ok(book(db, site, "402", "EOT", "2026-06-23", "10:00", "--reason", "biopsy room free"))
    before = dump(db)
    refusals = [
        # The day's only biopsy place is held by 401's stored appointment.
        (("403", "EOT", "2026-06-22", "11:00"), "2026-06-01",
         "date '2026-06-22': is full at BREST (biopsy 2/1 with this visit)"),
        (("2001", "W4", "2026-03-29", "02:30"), "2026-03-10",
         "appointment time (Europe/Paris) '2026-03-29 02:30': does not exist in this zone "
         "(clocks go forward)"),
        (("403", "EOT", "2026-06-21", "09:00"), "2026-06-01",
         "date '2026-06-21': is not bookable at BREST: closure: Pharmacy audit"),
        (("403", "EOT", "2026-06-24", "18:30"), "2026-06-01", "time '18:30': is outside clinic"),
        (("403", "EOT", "2026-06-30", "09:00"), "2026-06-01",
         "date '2026-06-30': is outside EOT's window 2026-06-15 to 2026-06-29"),
        (("403", "EOT", "2026-06-24", "09:00"), "2026-06-25",
         "date '2026-06-24': is before today (2026-06-25)"),
        (("9999", "EOT", "2026-06-24", "09:00"), "2026-06-01",
         "participant '9999': is not enrolled in this roster"),
        (("403", "D1", "2026-06-24", "09:00"), "2026-06-01", "visit 'D1': is done"),
    ]  # fmt: skip
    for args, today, message in refusals:
        one_line_error(book(db, site, *args, today=today), message)
        assert dump(db) == before, args
    with Roster.open(db) as store:
        held = [(a.participant, a.visit, str(a.date), a.time) for a in store.appointments()]
        assert held == [
            ("401", "EOT", "2026-06-22", "09:00"),
            ("402", "EOT", "2026-06-23", "10:00"),
        ]
        last = store.history("402")[-1]
    assert (last.action, last.field, last.old, last.new, last.reason) == (
        "appointment", "EOT", None, "2026-06-23 10:00", "biopsy room free"
    )  # fmt: skip

    # Moving 401 to another time of its day does not count it twice, and is audited.
    out = ok(book(db, site, "401", "EOT", "2026-06-22", "14:00"))
    assert "(replaces the earlier appointment); 2 appointments at BREST" in out
    with Roster.open(db) as store:
        last = store.history("401")[-1]
    assert (last.old, last.new) == ("2026-06-22 09:00", "2026-06-22 14:00")
    # A time that exists on the spring-forward day is fine, at UTC+02:00.
    out = ok(book(db, site, "2001", "W4", "2026-03-29", "09:00", today="2026-03-10"))
    assert "2026-03-29 09:00 Europe/Paris (UTC+02:00)" in out


def test_two_coordinators_booking_the_last_place_at_once_cannot_both_get_it(roster):
    db, site = roster
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "visitplan"]
    base = [*cmd, "book", "--db", str(db), "--site", str(site), "--today", "2026-06-01"]
    for day in ("2026-06-24", "2026-06-25", "2026-06-26"):
        # Two processes race for the day's single biopsy place (each may also move its
        # participant off a day won in an earlier round).
        procs = [
            subprocess.Popen(
                [*base, code, "EOT", day, "09:00"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for code in ("402", "403")
        ]
        results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
        for p in procs:
            for stream in (p.stdout, p.stderr):
                if stream:
                    stream.close()
        codes = sorted(rc for rc, _ in results)
        assert codes == [0, 2], results
        refused = next(err for rc, err in results if rc == 2)
        assert refused == f"error: date '{day}': is full at BREST (biopsy 2/1 with this visit)\n"
        with Roster.open(db) as store:
            on_day = [a.participant for a in store.appointments() if str(a.date) == day]
        assert len(on_day) == 1


def test_book_chooses_the_database_or_the_csv_clearly(roster, tmp_path):
    db, site = roster
    before = dump(db)
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(
        run("book", "--db", str(db), "--bookings", str(tmp_path / "b.csv"),
            "401", "EOT", "2026-06-22", "09:00"),
        f"--db '{db}': holds the roster and its appointments; drop --bookings",
    )  # fmt: skip
    one_line_error(
        run("book", "401", "EOT", "2026-06-22", "09:00", cwd=empty, env={}),
        "--db 'visitplan.db': does not exist and VISITPLAN_DB is not set",
    )
    one_line_error(
        run("book", "--db", str(tmp_path / "nowhere.db"), "401", "EOT", "2026-06-22", "09:00"),
        f"--db '{tmp_path / 'nowhere.db'}': no roster there yet",
    )
    assert not (tmp_path / "nowhere.db").exists()
    assert dump(db) == before
    # $VISITPLAN_DB, then ./visitplan.db, like the roster commands.
    env = {"VISITPLAN_DB": str(db)}
    ok(run("book", "--site", str(site), "--today", "2026-06-01", "401", "EOT", "2026-06-22",
           "09:00", env=env))  # fmt: skip
    here = tmp_path / "site"
    here.mkdir()
    copy_db(db, here / "visitplan.db")
    out = ok(run("book", "--site", str(site), "--today", "2026-06-01", "403", "EOT",
                 "2026-06-24", "09:00", cwd=here))  # fmt: skip
    assert "at BREST in visitplan.db (audited)" in out
    with Roster.open(here / "visitplan.db") as store:
        assert [(a.participant, str(a.date)) for a in store.appointments()] == [
            ("401", "2026-06-22"),
            ("403", "2026-06-24"),
        ]
    # Typed files beat the environment: the CSV mode still works with VISITPLAN_DB set.
    csv = tmp_path / "b.csv"
    ok(run("book", "--bookings", str(csv), "1001", "EOT", "2023-02-15", "09:00", env=env))
    assert csv.read_text() == "participant,visit,date,time\n1001,EOT,2023-02-15,09:00\n"


def agenda_lines(db: Path, site: Path, *args: str) -> list[str]:
    r = run("agenda", "--db", str(db), "--site", str(site), "--today", "2026-06-01",
            "--from", "2026-06-15", "--to", "2026-06-30", *args)  # fmt: skip
    return ok(r).splitlines()


def test_agenda_reads_the_database_load_flags_and_proposals(roster):
    db, site = roster
    lines = agenda_lines(db, site)
    # Before any booking the three EOT targets pile up on Monday 22 June.
    assert lines[0] == (
        "BREST (Europe/Paris, clinic 08:00-18:00, capacity biopsy 1/day): 2026-06-15 to 2026-06-30"
    )
    assert "2026-06-22 Mon  load 3  OVER CAPACITY (biopsy 3/1)" in lines
    ok(book(db, site, "401", "EOT", "2026-06-22", "09:00"))
    ok(book(db, site, "402", "EOT", "2026-06-23", "10:00"))
    lines = agenda_lines(db, site, "--propose")
    day = {line[:10]: line for line in lines if re.match(r"\d{4}-\d\d-\d\d ", line)}
    assert day["2026-06-21"] == "2026-06-21 Sun  load 1  CLOSED (closure: Pharmacy audit)"
    assert day["2026-06-22"] == "2026-06-22 Mon  load 2  OVER CAPACITY (biopsy 2/1)"
    assert day["2026-06-23"] == "2026-06-23 Tue  load 1"
    words = [" ".join(line.split()) for line in lines]
    assert "401 EOT End of treatment 09:00 booked 2026-06-15..2026-06-29" in words
    assert "402 EOT End of treatment 10:00 booked 2026-06-15..2026-06-29" in words
    assert "3 days with visits, 1 closed, 1 over capacity" in lines
    w16 = next(line for line in words if line.startswith("2001 W16 "))
    assert w16.endswith(" 2026-06-18..2026-06-24 2026-06-20, 2026-06-22, 2026-06-19")

    def proposed(lines: list[str]) -> dict[str, str]:
        found = {}
        # After the proposals' line, their header, then a row each.
        for line in lines[lines.index(next(x for x in lines if x.startswith("proposals"))) + 2 :]:
            who, visit, _target, to = line.split()[:4]
            found[f"{who} {visit}"] = to
        return found

    # Never onto the days the stored appointments hold (22 and 23 June), nor the closed 21st.
    assert proposed(lines) == {"2001 W16": "2026-06-20", "403 EOT": "2026-06-20"}
    later = proposed(agenda_lines(db, site, "--propose", "--policy", "nearest-later"))
    assert later["403 EOT"] == "2026-06-24"
    # Accepting the proposal books fine; the agenda then has one biopsy on each day.
    ok(book(db, site, "403", "EOT", "2026-06-20", "09:00"))
    lines = agenda_lines(db, site, "--propose")
    assert "0 over capacity" in next(x for x in lines if x.endswith("over capacity"))
    assert "403 EOT" not in proposed(lines)


def test_charts_read_the_database(roster, tmp_path):
    db, site = roster
    ok(book(db, site, "401", "EOT", "2026-06-22", "09:00"))
    svg = tmp_path / "load.svg"
    ok(run("chart", "load", "--db", str(db), "--site", str(site), "--today", "2026-06-01",
           "--from", "2026-06-15", "--to", "2026-06-30", "-o", str(svg)))  # fmt: skip
    text = svg.read_text()
    assert "over: 401 EOT, 402 EOT, 403 EOT" in text and "closed: 2001 W16" in text
    timeline = tmp_path / "timeline.svg"
    ok(run("chart", "timeline", "--db", str(db), "--site", str(site), "--today", "2026-06-01",
           "--from", "2026-06-01", "--to", "2026-06-30", "-o", str(timeline)))  # fmt: skip
    text = timeline.read_text()
    assert "403  EOT" in text and "2001  W16" in text and "1001" not in text  # not the sample


# -- the library: stored appointments for the iCalendar exporter ---------------------------------


def test_stored_appointments_export_as_timed_events_in_summer_and_winter(tmp_path):
    with Roster.open(tmp_path / "r.db", today="2026-06-01") as store:
        store.enroll("401", "2026-01-01")
        store.record("401", "D1", "2026-01-05")
        store.set_appointment("401", "W4", "2026-02-02", "10:00")  # winter: UTC+01:00
        store.set_appointment("401", "EOT", "2026-06-22", "09:00")  # summer: UTC+02:00
        store.set_appointment("401", "W8", "2026-03-02")  # no time: not a timed event
        held = appointments_from_store(store)
        assert appointments_from_store(store, "Europe/Paris") == held
        assert appointments_from_store(store, code="402") == {}
        schedule = store.schedule("401")
        protocol = store.protocol
    assert set(held) == {("401", "W4"), ("401", "EOT")}
    data = to_ical(
        protocol, [schedule], appointments=held, dtstamp=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    )
    text = data.decode()
    assert "DTSTART;TZID=Europe/Paris:20260202T100000" in text
    assert "DTSTART;TZID=Europe/Paris:20260622T090000" in text
    starts = {}
    for event in icalendar.Calendar.from_ical(data).walk("VEVENT"):
        starts[str(event["SUMMARY"]).split()[1]] = event.decoded("DTSTART")
    assert starts["W4"].astimezone(dt.UTC) == dt.datetime(2026, 2, 2, 9, 0, tzinfo=dt.UTC)
    assert starts["EOT"].astimezone(dt.UTC) == dt.datetime(2026, 6, 22, 7, 0, tzinfo=dt.UTC)
    assert type(starts["W8"]) is dt.date  # all day: an untimed appointment is no timed event


def test_a_refusing_check_stores_nothing(tmp_path):
    with Roster.open(tmp_path / "r.db", today="2026-06-01") as store:
        store.enroll("401", "2026-01-01")
        store.set_appointment("401", "EOT", "2026-06-22", "09:00")
        seen = []

        def refuse(people, rows):
            seen.append(([p.code for p in people], [(r.visit, r.time) for r in rows]))
            raise VisitplanError("date", "2026-06-23", "is full")

        with pytest.raises(VisitplanError, match="is full"):
            store.set_appointment("401", "EOT", "2026-06-23", "10:00", check=refuse)
        assert seen == [(["401"], [("EOT", "09:00")])]
        assert [(str(a.date), a.time) for a in store.appointments()] == [("2026-06-22", "09:00")]
        assert [e.action for e in store.history("401")].count("appointment") == 1
        assert pendulum.date(2026, 6, 22) == store.appointments()[0].date
