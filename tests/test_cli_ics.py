"""`visitplan ics` and the calendars of `visitplan demo`, through the real entry point."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import icalendar
import pytest
from tests import cli as harness

ONE = ["--participant", "1001", "--screening", "2022-07-27"]
STAMP = ["--dtstamp", "2026-01-01T00:00:00Z"]


@dataclass(frozen=True)
class Bytes:
    """A calendar is bytes (CRLF lines): the harness's result with ``stdout`` as bytes."""

    returncode: int
    stdout: bytes
    stderr: bytes


def run(*args: str, cwd: Path | None = None) -> Bytes:
    r = harness.run(*args, cwd=cwd, columns=120)
    return Bytes(r.returncode, r.stdout_bytes, r.stderr.encode())


def sequences(path: Path) -> dict[str, int]:
    cal = icalendar.Calendar.from_ical(path.read_bytes())
    return {str(e["UID"]): int(e["SEQUENCE"]) for e in cal.walk("VEVENT")}


def test_stdout_is_a_reproducible_calendar():
    a = run("ics", *ONE, *STAMP, "--appointment", "W4=2022-09-28T09:30")
    assert a.returncode == 0, a.stderr
    assert a.stdout.startswith(b"BEGIN:VCALENDAR\r\n")
    assert b"DTSTART;TZID=Europe/Paris:20220928T093000" in a.stdout
    assert b"BEGIN:VALARM" in a.stdout
    b = run("ics", *ONE, *STAMP, "--appointment", "W4=2022-09-28T09:30", "-o", "-")
    assert a.stdout == b.stdout
    quiet = run("ics", *ONE, *STAMP, "--no-alarms", "--window-spans")
    assert b"VALARM" not in quiet.stdout
    assert b"UID:NCT05124925-1001-W4-window@visitplan" in quiet.stdout


def test_reexport_to_the_same_file_raises_sequence_of_changed_events(tmp_path):
    out = tmp_path / "1001.ics"
    r = run("ics", *ONE, *STAMP, "-o", str(out))
    assert r.returncode == 0, r.stderr
    first = sequences(out)
    assert set(first.values()) == {0}
    r = run("ics", *ONE, "--day1", "2022-08-29", "-o", str(out))
    assert r.returncode == 0, r.stderr
    second = sequences(out)
    assert set(second) == set(first)
    assert second["NCT05124925-1001-SCR@visitplan"] == 0
    assert second["NCT05124925-1001-W4@visitplan"] == 1
    # The same facts again: nothing changed, nothing bumped.
    run("ics", *ONE, "--day1", "2022-08-29", "-o", str(out))
    assert sequences(out) == second
    # An explicit --previous wins over the file being replaced.
    other = tmp_path / "other.ics"
    run("ics", *ONE, "--day1", "2022-08-29", "-o", str(other), "--previous", str(out))
    assert sequences(other) == second


def test_roster_site_calendar_and_per_participant_files(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "participant,site,screening,day1,flags\n"
        "1001,BREST,2022-07-27,,\n1002,BREST,2022-09-12,2022-10-10,hbcab_positive\n",
        encoding="utf-8",
    )
    r = run(
        "ics", "--roster", str(roster), "--per-participant", str(tmp_path / "pp"),
        "-o", str(tmp_path / "site.ics"), "--appointment", "1002/W4=2022-11-07T10:00", *STAMP,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    site = sequences(tmp_path / "site.ics")
    one, two = sequences(tmp_path / "pp" / "1001.ics"), sequences(tmp_path / "pp" / "1002.ics")
    assert set(site) == set(one) | set(two) and not set(one) & set(two)
    assert b"TZID=Europe/Paris:20221107T100000" in (tmp_path / "pp" / "1002.ics").read_bytes()
    assert b"TZID" not in (tmp_path / "pp" / "1001.ics").read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [],
            "error: --participant/--screening 'missing': give both, or a --roster FILE, or a "
            "roster database (--db or VISITPLAN_DB)",
        ),
        # An appointment is checked as `visitplan book` checks a booking, with its messages
        # (the DST refusal itself: tests/test_booking_rules.py, on a site open on Sundays).
        (
            [*ONE, "--appointment", "W4=2022-10-30T02:30"],
            "error: date '2022-10-30': is outside W4's window 2022-09-25 to 2022-10-01",
        ),
        (
            [*ONE, "--appointment", "X9=2022-10-01T09:00"],
            "error: visit 'X9': is not a planned visit of participant 1001",
        ),
        ([*ONE, "--appointment", "W4=2022-10-01"], "error: --appointment 'W4=2022-10-01'"),
        ([*ONE, "--dtstamp", "2026-01-01"], "error: --dtstamp '2026-01-01': must be a date"),
        ([*ONE, "--per-participant", "x"], "error: --per-participant 'x': needs --roster or --db"),
        ([*ONE, "--previous", "/nonexistent.ics"], "error: --previous '/nonexistent.ics'"),
        ([*ONE, "-o", "/"], "error: -o '/': is a folder; name a file"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(args, message):
    r = run("ics", *args)
    assert r.returncode == 2
    err = r.stderr.decode()
    assert err.startswith(message), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_bad_previous_file_is_refused_and_the_output_left_intact(tmp_path):
    out = tmp_path / "cal.ics"
    out.write_bytes(b"not a calendar")
    r = run("ics", *ONE, "-o", str(out))
    assert r.returncode == 2 and b"is not iCalendar data" in r.stderr
    assert out.read_bytes() == b"not a calendar"


def test_demo_writes_participant_and_site_calendars(tmp_path):
    r = run("demo", "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "out" / "calendars"
    assert sorted(p.name for p in folder.iterdir()) == [
        "1001.ics", "1002.ics", "1003.ics", "site-BREST.ics",
    ]  # fmt: skip
    site = sequences(folder / "site-BREST.ics")
    assert len(site) == sum(len(sequences(folder / f"{c}.ics")) for c in ("1001", "1002", "1003"))
    # Running the demo again updates the same events: same UIDs, no SEQUENCE raised.
    assert run("demo", "--out", str(tmp_path / "out")).returncode == 0
    assert sequences(folder / "site-BREST.ics") == site
