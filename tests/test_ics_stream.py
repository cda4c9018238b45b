"""Streaming iCalendar export: iter_ical gives to_ical's bytes in chunks, from a generator too."""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path

import attrs
import icalendar
import pendulum
import pytest

import visitplan
from visitplan import Participant, Record, Status, VisitplanError
from visitplan.dates import local_datetime
from visitplan.export.ics import iter_ical, to_ical
from visitplan.fileio import atomic_write
from visitplan.model import Site

STAMP = pendulum.datetime(2026, 1, 1, tz="UTC")


@pytest.fixture(scope="module")
def sited() -> visitplan.Protocol:
    return attrs.evolve(
        visitplan.builtin("NCT05124925"),
        sites=(
            Site("BREST", "Brest", "Europe/Paris", "FR"),
            Site("NYC", "New York", "America/New_York", "US"),
        ),
    )


def people(n: int, site: str | None = None) -> list[Participant]:
    out = []
    for i in range(n):
        records = []
        if i % 3 == 1:
            records = [Record("D1", pendulum.date(2022, 1, 1).add(days=i + 20))]
        if i % 5 == 2:
            records.append(Record("W4", None, Status.MISSED, reason="ill"))
        screening = pendulum.date(2022, 1, 1).add(days=i)
        out.append(Participant(f"P{i:03d}", screening=screening, records=records, site=site))
    return out


def facts(data: bytes) -> dict[str, dict[str, bytes]]:
    """UID -> every property of the event, serialised, as icalendar reads the file back."""
    cal = icalendar.Calendar.from_ical(data)
    return {
        str(e["UID"]): {k: e.content_line(k, v) for k, v in e.property_items(recursive=False)}
        for e in cal.walk("VEVENT")
    }


def test_stream_of_a_list_is_to_ical_in_chunks(study):
    schedules = [study.plan(p) for p in people(12)]
    chunks = list(iter_ical(study, schedules, dtstamp=STAMP, window_spans=True))
    assert len(chunks) == 12 + 2  # header, one chunk per participant, footer
    assert chunks[0].startswith(b"BEGIN:VCALENDAR\r\n")
    assert chunks[-1] == b"END:VCALENDAR\r\n"
    assert b"".join(chunks) == to_ical(study, schedules, dtstamp=STAMP, window_spans=True)


def test_stream_of_a_generator_plans_lazily_and_parses_to_the_same_events(study):
    cohort = people(15)
    planned: list[str] = []

    def lazily() -> Iterator[visitplan.Schedule]:
        for p in cohort:
            planned.append(p.code)
            yield study.plan(p)

    stream = iter_ical(study, lazily(), dtstamp=STAMP, name="site")
    assert isinstance(stream, types.GeneratorType)
    header = next(stream)
    assert b"X-WR-CALNAME:site" in header
    assert len(planned) <= 2  # the header needs at most a peek, never the whole roster
    streamed = header + b"".join(stream)
    whole = to_ical(study, [study.plan(p) for p in cohort], dtstamp=STAMP, name="site")
    assert streamed == whole
    assert facts(streamed) == facts(whole)
    assert len(facts(streamed)) == sum(
        len(study.plan(p).visits) + len(study.plan(p).milestones) for p in cohort
    )


def test_generator_with_timed_appointments_matches_the_list_export(sited):
    cohort = [Participant("N1", screening="2029-11-01", site="NYC"), *people(4, site="BREST")]
    appointments = {
        ("P001", "W4"): local_datetime(pendulum.date(2022, 3, 16), "09:30", "Europe/Paris"),
        ("N1", "W8"): local_datetime(pendulum.date(2030, 3, 12), "14:00", "America/New_York"),
    }
    schedules = [sited.plan(p) for p in cohort]
    whole = to_ical(sited, schedules, appointments=appointments, dtstamp=STAMP)
    # Without the list, the zones come from the protocol's sites: both are used here.
    streamed = b"".join(
        iter_ical(sited, iter(schedules), appointments=appointments, dtstamp=STAMP, name=None)
    )
    assert facts(streamed) == facts(whole)
    assert streamed.count(b"BEGIN:VTIMEZONE") == whole.count(b"BEGIN:VTIMEZONE") == 2
    assert b"X-WR-CALNAME:NCT05124925 visits" in streamed  # no list: no set of sites to name


def test_a_single_participant_stream_keeps_the_participant_name(study):
    schedule = study.plan(people(1)[0])
    assert b"".join(iter_ical(study, iter([schedule]), dtstamp=STAMP)) == to_ical(
        study, [schedule], dtstamp=STAMP
    )


def test_all_day_streams_write_no_timezone(study):
    data = b"".join(iter_ical(study, (study.plan(p) for p in people(3)), dtstamp=STAMP))
    assert b"VTIMEZONE" not in data


def test_mid_stream_errors_are_raised_and_an_atomic_write_leaves_the_old_file(study, tmp_path):
    cohort = people(3)
    target = tmp_path / "site.ics"
    target.write_bytes(b"old")
    twice = (study.plan(p) for p in [*cohort, cohort[-1]])
    with pytest.raises(VisitplanError, match=r"P0+2.*appears twice"):
        atomic_write(target, iter_ical(study, twice, dtstamp=STAMP))
    # Out of code order a stream cannot tell a repeat from a late code without keeping every
    # code seen: it is refused, whether the late one is a repeat (P000) or not (P001).
    for late in (cohort[0], cohort[1]):
        disordered = (study.plan(p) for p in [cohort[0], cohort[2], late])
        with pytest.raises(VisitplanError, match=r"comes after P0+2: .* participant-code order"):
            atomic_write(target, iter_ical(study, disordered, dtstamp=STAMP))
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["site.ics"]
    # A list is counted before the first chunk, in any order.
    listed = [study.plan(p) for p in [cohort[2], cohort[0], cohort[1]]]
    assert b"".join(iter_ical(study, listed, dtstamp=STAMP)).count(b"BEGIN:VEVENT") > 0
    with pytest.raises(VisitplanError, match=r"P0+0.*appears twice"):
        next(iter_ical(study, [*listed, listed[1]], dtstamp=STAMP))

    stray = {("P999", "W4"): local_datetime(pendulum.date(2022, 3, 1), "09:00", "Europe/Paris")}
    stream = iter_ical(study, (study.plan(p) for p in cohort), appointments=stray, dtstamp=STAMP)
    with pytest.raises(VisitplanError, match=r"P999/W4.*names no visit"):
        b"".join(stream)


def test_atomic_write_writes_every_chunk(tmp_path: Path):
    target = atomic_write(tmp_path / "a" / "b.ics", iter([b"one ", b"", b"two"]))
    assert target.read_bytes() == b"one two"


def test_cli_roster_calendar_is_streamed_to_the_file_with_the_same_bytes(study, tmp_path):
    import os
    import subprocess
    import sys

    from visitplan.roster_csv import load_roster

    roster = tmp_path / "roster.csv"
    roster.write_text(
        "participant,site,screening,day1,flags\n"
        # Rows out of code order: the calendar comes out in code order, streamed all the same.
        + "".join(f"{1000 + i},BREST,2022-0{1 + i % 9}-1{i % 10},,\n" for i in reversed(range(30))),
        encoding="utf-8",
    )
    out = tmp_path / "site.ics"
    binary = Path(sys.executable).with_name("visitplan")
    cmd = [str(binary)] if binary.exists() else [sys.executable, "-m", "visitplan"]
    args = ["ics", "--roster", str(roster), "--dtstamp", "2026-01-01T00:00:00Z", "-o"]
    done = subprocess.run([*cmd, *args, str(out)], capture_output=True, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    people_ = sorted(load_roster(str(roster), day1_visit=study.day1_visit), key=lambda p: p.code)
    expected = to_ical(study, [study.plan(p) for p in people_], dtstamp=STAMP)
    assert out.read_bytes() == expected
    uids = [line for line in expected.split(b"\r\n") if line.startswith(b"UID:")]
    assert uids[0].startswith(b"UID:NCT05124925-1000-") and b"-1029-" in uids[-1]
    stdout = subprocess.run([*cmd, *args, "-"], capture_output=True, env=dict(os.environ))
    assert stdout.returncode == 0, stdout.stderr
    assert stdout.stdout == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roster.csv", "site.ics"]


def test_cli_error_found_mid_stream_writes_nothing(tmp_path):
    import os
    import subprocess
    import sys

    roster = tmp_path / "roster.csv"
    roster.write_text(
        "participant,site,screening,day1,flags\n1001,BREST,2022-07-27,,\n1002,NOPE,2022-07-27,,\n",
        encoding="utf-8",
    )
    out = tmp_path / "site.ics"
    binary = Path(sys.executable).with_name("visitplan")
    cmd = [str(binary)] if binary.exists() else [sys.executable, "-m", "visitplan"]
    args = ["ics", "--roster", str(roster), "-o"]
    for target in (str(out), "-"):
        done = subprocess.run([*cmd, *args, target], capture_output=True, env=dict(os.environ))
        assert done.returncode == 2
        assert done.stderr == b"error: site 'NOPE': is not a site of NCT05124925; known: BREST\n"
        assert done.stdout == b""  # the first participant's events were not printed either
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roster.csv"]  # no file, no temp
