"""Interop: exported calendars read by independent parsers, checking what each one resolves.

* Mozilla ical.js (Thunderbird's parser) under Node, resolving TZIDs with the file's own
  VTIMEZONEs (tests/interop/read_ics.mjs; installed by scripts/test with ``npm ci``);
* the PyPI ``ical`` package (strict value types);
* vobject with ``validate(raiseException=True)``, which also reads the file's VTIMEZONEs.

Every parser must give the same UTC instants for timed events (summer and winter, 2027 and
2030, in three zones), the same all-day dates with an exclusive DTEND, and the same statuses.
These tests fail when a parser is missing; set VISITPLAN_ALLOW_SKIP=1 to skip them locally.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pendulum
import pytest

import visitplan
from visitplan import Participant, Record, Status
from visitplan.dates import local_datetime
from visitplan.export.ics import to_ical, uid
from visitplan.model import Site

HERE = Path(__file__).parent
STAMP = pendulum.datetime(2026, 1, 1, tz="UTC")
SITE_NAME = "Hôpital de la Cavale Blanche, CHU; Brest\nx\r\nEND:VEVENT\r\nBEGIN:VEVENT"

Event = dict[str, Any]


def require(ok: bool, what: str) -> None:
    if ok:
        return
    if os.environ.get("VISITPLAN_ALLOW_SKIP"):
        pytest.skip(f"{what} (skipped: VISITPLAN_ALLOW_SKIP is set)")
    pytest.fail(f"{what}: scripts/test installs it; set VISITPLAN_ALLOW_SKIP=1 to skip locally")


def utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def when(value: dt.date | dt.datetime) -> str:
    return utc(value) if isinstance(value, dt.datetime) else value.isoformat()


# --- the three parsers, each reduced to {uid: event facts} --------------------------------


def read_icaljs(path: Path) -> dict[str, Event]:
    node = shutil.which("node")
    require(node is not None, "node (Node 20) is not on PATH")
    require((HERE / "node_modules" / "ical.js").is_dir(), "npm package ical.js not installed")
    out = subprocess.run(
        [str(node), str(HERE / "read_ics.mjs"), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    found = {}
    for e in json.loads(out)["events"]:
        fix = (lambda t: t.replace(".000Z", "Z")) if not e["isDate"] else (lambda t: t)
        found[e["uid"]] = {
            "start": fix(e["start"]),
            "end": fix(e["end"]),
            "all_day": e["isDate"],
            "status": e["status"],
            "sequence": e["sequence"],
            "summary": e["summary"],
            "location": e["location"],
            "categories": e["categories"],
        }
    return found


def read_ical(path: Path) -> dict[str, Event]:
    try:
        from ical.calendar_stream import IcsCalendarStream
        from ical.timezone import IcsTimezoneInfo
    except ImportError:
        require(False, "the PyPI package ical is not installed")
    cal = IcsCalendarStream.calendar_from_ics(path.read_text(encoding="utf-8"))
    # ical resolves a known TZID with the tz database; read the wall time again with ical's own
    # evaluation of the file's VTIMEZONE, so that what is under test is what we wrote.
    zones = {tz.tz_id: IcsTimezoneInfo.from_timezone(tz) for tz in cal.timezones}

    def resolved(value: dt.date | dt.datetime) -> str:
        if not isinstance(value, dt.datetime):
            return value.isoformat()
        key = str(getattr(value.tzinfo, "key", value.tzinfo))
        if key not in zones:  # a UTC value ("...Z"): no VTIMEZONE involved
            assert value.utcoffset() == dt.timedelta(0), value
            return utc(value)
        return utc(value.replace(tzinfo=zones[key]))

    return {
        e.uid: {
            "start": resolved(e.dtstart),
            "end": resolved(e.dtend),
            "all_day": not isinstance(e.dtstart, dt.datetime),
            "status": e.status.value if e.status else None,
            "sequence": e.sequence,
            "summary": e.summary,
            "location": e.location,
            "categories": list(e.categories),
        }
        for e in cal.events
    }


#: vobject keeps a process-wide TZID registry where the first VTIMEZONE seen wins, so each file
#: is read in a fresh interpreter: the events then resolve with that file's own VTIMEZONE.
VOBJECT_SCRIPT = """
import datetime as dt, json, sys
import vobject

def when(v):
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return v.isoformat()

cal = vobject.readOne(open(sys.argv[1], encoding="utf-8").read())
cal.validate(raiseException=True)
found = {}
for e in cal.vevent_list:
    start, end = e.dtstart.value, e.dtend.value
    found[e.uid.value] = {
        "start": when(start),
        "end": when(end),
        "all_day": not isinstance(start, dt.datetime),
        "status": e.status.value,
        "sequence": int(e.sequence.value),
        "summary": e.summary.value,
        "location": e.location.value,
        "categories": list(e.categories.value),
    }
print(json.dumps(found))
"""


def read_vobject(path: Path) -> dict[str, Event]:
    require(importlib.util.find_spec("vobject") is not None, "PyPI package vobject not installed")
    out = subprocess.run(
        [sys.executable, "-c", VOBJECT_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    found: dict[str, Event] = json.loads(out.stdout)
    return found


PARSERS: dict[str, Callable[[Path], dict[str, Event]]] = {
    "ical.js": read_icaljs,
    "ical": read_ical,
    "vobject": read_vobject,
}

# --- the calendar under test ------------------------------------------------------------

#: (site zone, participant, visit, local wall time, UTC instant worked out by hand)
TIMED = [
    ("Europe/Paris", "A", "W4", "2027-07-29 09:30", "2027-07-29T07:30:00Z"),  # CEST +2
    ("Europe/Paris", "A", "W20", "2027-11-18 14:00", "2027-11-18T13:00:00Z"),  # CET +1
    ("Europe/Paris", "B", "D1", "2030-01-05 08:15", "2030-01-05T07:15:00Z"),
    ("Europe/Paris", "B", "W12", "2030-03-31 10:00", "2030-03-31T08:00:00Z"),  # change day
    ("Europe/Paris", "B", "EOT", "2030-06-22 16:45", "2030-06-22T14:45:00Z"),
    ("Australia/Sydney", "S", "W4", "2030-01-15 09:00", "2030-01-14T22:00:00Z"),  # AEDT +11
    ("Australia/Sydney", "S", "W8", "2030-07-15 09:00", "2030-07-14T23:00:00Z"),  # AEST +10
    ("America/New_York", "N", "W4", "2030-01-15 09:00", "2030-01-15T14:00:00Z"),  # EST -5
    ("America/New_York", "N", "W8", "2030-07-15 09:00", "2030-07-15T13:00:00Z"),  # EDT -4
]
#: (participant, visit, all-day date, exclusive DTEND, STATUS)
ALL_DAY = [
    ("A", "SCR", "2027-05-27", "2027-05-28", "CONFIRMED"),
    ("A", "D1", "2027-07-01", "2027-07-02", "CONFIRMED"),
    ("C", "SCR", "2030-12-31", "2031-01-01", "CONFIRMED"),  # DTEND in the next year
    ("B", "W4", "2030-02-02", "2030-02-03", "CANCELLED"),
    ("B", "EOS", "2032-05-25", "2032-05-26", "TENTATIVE"),  # latest date until recovery
]
PEOPLE = {
    "A": ("BREST", "2027-05-27"),
    "B": ("BREST", "2029-12-01"),
    "C": ("BREST", "2030-12-31"),
    "S": ("SYD", "2029-11-01"),
    "N": ("NYC", "2029-11-01"),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, visitplan.Protocol, list[visitplan.Schedule]]:
    base = visitplan.builtin("NCT05124925")
    study = attrs.evolve(
        base,
        sites=(
            Site("BREST", SITE_NAME, "Europe/Paris", "FR"),
            Site("SYD", "Sydney", "Australia/Sydney", "AU"),
            Site("NYC", "New York", "America/New_York", "US"),
        ),
    )
    schedules = []
    for code, (site, screening) in PEOPLE.items():
        records = [Record("W4", None, Status.CANCELLED, reason="grève")] if code == "B" else []
        schedules.append(
            study.plan(Participant(code, screening=screening, site=site, records=records))
        )
    appointments = {}
    for zone, who, visit, local, _ in TIMED:
        day, time = local.split()
        appointments[(who, visit)] = local_datetime(pendulum.parse(day).date(), time, zone)
    data = to_ical(study, schedules, appointments=appointments, dtstamp=STAMP, window_spans=True)
    path = tmp_path_factory.mktemp("interop") / "site.ics"
    path.write_bytes(data)
    return path, study, schedules


@pytest.mark.parametrize("parser", PARSERS)
def test_timed_events_resolve_to_the_right_utc_instants(exported, parser):
    path, study, _ = exported
    found = PARSERS[parser](path)
    for _zone, who, visit, _local, instant in TIMED:
        e = found[uid(study.id, who, visit)]
        assert not e["all_day"]
        assert e["start"] == instant, (parser, who, visit)
        end = dt.datetime.fromisoformat(instant) + dt.timedelta(hours=1)
        assert e["end"] == end.strftime("%Y-%m-%dT%H:%M:%SZ"), (parser, who, visit)


@pytest.mark.parametrize("parser", PARSERS)
def test_all_day_events_dates_exclusive_end_and_status(exported, parser):
    path, study, schedules = exported
    found = PARSERS[parser](path)
    for who, visit, start, end, status in ALL_DAY:
        e = found[uid(study.id, who, visit)]
        assert (e["all_day"], e["start"], e["end"], e["status"]) == (True, start, end, status)
    w4 = found[uid(study.id, "A", "W4", "window")]  # the window as its own span
    assert (w4["all_day"], w4["start"], w4["end"]) == (True, "2027-07-26", "2027-08-02")
    expected = sum(
        len(s.visits) + sum(1 for v in s.visits if v.open and v.earliest != v.latest)
        for s in schedules
    )
    assert len(found) == expected  # the hostile site name injected no event


@pytest.mark.parametrize("parser", PARSERS)
def test_text_is_read_back_exactly(exported, parser):
    path, study, _ = exported
    found = PARSERS[parser](path)
    e = found[uid(study.id, "B", "W4")]
    assert e["summary"] == "B W4 Dose 2 (cancelled)"
    assert e["location"].replace("\r\n", "\n") == SITE_NAME.replace("\r\n", "\n")
    assert e["categories"] == ["dosing"]
    assert e["sequence"] == 0


@pytest.mark.parametrize("parser", PARSERS)
def test_the_files_vtimezone_is_what_each_parser_reads(exported, parser, tmp_path):
    # Harness check: with the DST start moved to April in the file's VTIMEZONE, a parser that
    # really reads it must put 10:00 on 31 March 2030 an hour later.
    path, study, _ = exported
    broken = path.read_bytes().replace(
        b"RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3", b"RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=4"
    )
    assert broken != path.read_bytes()
    bad = tmp_path / "broken.ics"
    bad.write_bytes(broken)
    e = PARSERS[parser](bad)[uid(study.id, "B", "W12")]
    assert e["start"] == "2030-03-31T09:00:00Z"


# --- hostile TEXT (issue 18, item 3) ----------------------------------------------------------

#: A lone CR that vobject reads as a line end (it forged an event), an ESC sequence, a NUL, a
#: C1 control and a line separator, in every TEXT value the model can carry.
HOSTILE = "x\rEND:VEVENT\rBEGIN:VEVENT\rUID:forged\rSUMMARY:forged\r\x1b[2J\x00\x85\u2028y"


def read_icalendar(path: Path) -> dict[str, Event]:
    import icalendar

    cal = icalendar.Calendar.from_ical(path.read_bytes())
    return {
        str(e["UID"]): {"summary": str(e["SUMMARY"]), "location": str(e.get("LOCATION"))}
        for e in cal.walk("VEVENT")
    }


@pytest.fixture(scope="module")
def hostile_text(tmp_path_factory) -> tuple[Path, visitplan.Schedule]:
    base = visitplan.builtin("NCT05124925")
    visits = tuple(attrs.evolve(v, name=HOSTILE) if v.code == "W4" else v for v in base.visits)
    study = attrs.evolve(base, visits=visits, sites=(Site("BREST", HOSTILE, "Europe/Paris", "FR"),))
    schedule = study.plan(Participant("1001", screening="2027-05-27"))
    path = tmp_path_factory.mktemp("hostile") / "hostile.ics"
    path.write_bytes(to_ical(study, [schedule], dtstamp=STAMP, reminders=None))
    return path, schedule


def test_no_raw_control_character_is_written(hostile_text):
    path, _ = hostile_text
    data = path.read_bytes()
    # The only CRs are those of the CRLF line ends; no other control byte at all.
    assert data.count(b"\r") == data.count(b"\r\n")
    assert not any((b < 0x20 and b not in (0x09, 0x0A, 0x0D)) or b == 0x7F for b in data)
    assert "\x85".encode() not in data and "\u2028".encode() not in data


@pytest.mark.parametrize("parser", [*PARSERS, "icalendar"])
def test_hostile_text_forges_no_event_and_reads_back_neutralised(hostile_text, parser):
    path, schedule = hostile_text
    found = read_icalendar(path) if parser == "icalendar" else PARSERS[parser](path)
    assert "forged" not in found
    assert len(found) == len(schedule.visits) + len(schedule.milestones)
    e = found[uid("NCT05124925", "1001", "W4")]
    expected = (
        "x\nEND:VEVENT\nBEGIN:VEVENT\nUID:forged\nSUMMARY:forged\n\ufffd[2J\ufffd\ufffd\ufffdy"
    )
    assert e["summary"].replace("\r\n", "\n") == f"1001 W4 {expected}"
    assert e["location"].replace("\r\n", "\n") == expected


@pytest.mark.parametrize("name", ["a\rb", "a\r\nb", "a\nb", "a\x1b[2Jb", "a\x00b", "a\x85b"])
def test_a_calendar_name_with_a_control_character_is_refused(name):
    from click.testing import CliRunner

    from visitplan.cli import cli

    r = CliRunner().invoke(
        cli, ["ics", "--participant", "1001", "--screening", "2022-07-27", "--name", name]
    )
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: --name ") and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.endswith(": must be one line without control characters\n")
    with pytest.raises(visitplan.VisitplanError):
        to_ical(visitplan.builtin("NCT05124925"), [], name=name)


@pytest.mark.parametrize("parser", ["ical.js", "vobject", "icalendar"])
def test_a_calendar_name_with_every_other_character_reads_back(parser, tmp_path):
    # (No comma: vobject reads NAME as a list and X-WR-CALNAME's commas as separators.)
    name = 'Étude; "A" tab\there — ✓'
    study = visitplan.builtin("NCT05124925")
    schedule = study.plan(Participant("1001", screening="2027-05-27"))
    path = tmp_path / "named.ics"
    path.write_bytes(to_ical(study, [schedule], dtstamp=STAMP, name=name))
    if parser == "ical.js":
        node = shutil.which("node")
        require(node is not None, "node (Node 20) is not on PATH")
        out = subprocess.run([str(node), str(HERE / "read_ics.mjs"), str(path)],
                             capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        assert json.loads(out.stdout)["name"] == name
    elif parser == "vobject":
        import vobject

        cal = vobject.readOne(path.read_text(encoding="utf-8"))
        assert cal.contents["x-wr-calname"][0].value == name
        assert cal.contents["name"][0].value == name
    else:
        import icalendar

        cal = icalendar.Calendar.from_ical(path.read_bytes())
        assert str(cal["X-WR-CALNAME"]) == name


# --- timed events across the DST changes (issue 17, item 9) --------------------------------

#: (participant, screening, Day 1, W4's local start, duration in minutes, UTC start, UTC end)
#: worked out by hand for Europe/Paris in 2027: clocks go forward on 28 March at 02:00 (CET
#: +1 to CEST +2) and back on 31 October at 03:00 (CEST +2 to CET +1).
ACROSS_DST = [
    # 01:59 exists; an hour later is 03:59 summer time. The wall-clock end (02:59) does not
    # exist, and made the whole export fail.
    ("S1", "2027-02-01", "2027-02-28", "2027-03-28 01:59", 60,
     "2027-03-28T00:59:00Z", "2027-03-28T01:59:00Z"),
    # 01:30 summer time + 1 hour = 02:30 summer time, a wall time that happens twice: ical.js
    # read it as the second one (winter time), a 2-hour event.
    ("A1", "2027-09-01", "2027-10-03", "2027-10-31 01:30", 60,
     "2027-10-30T23:30:00Z", "2027-10-31T00:30:00Z"),
    # 01:45 summer time + 90 minutes = 02:15 winter time, the second 02:15 of the night.
    ("A2", "2027-09-01", "2027-10-03", "2027-10-31 01:45", 90,
     "2027-10-30T23:45:00Z", "2027-10-31T01:15:00Z"),
    # Ordinary days either side, for contrast.
    ("W1", "2027-09-01", "2027-10-04", "2027-11-01 09:00", 60,
     "2027-11-01T08:00:00Z", "2027-11-01T09:00:00Z"),
]  # fmt: skip


@pytest.fixture(scope="module")
def across_dst(tmp_path_factory) -> tuple[visitplan.Protocol, list[Path]]:
    study = visitplan.builtin("NCT05124925")
    paths = []
    for code, screening, day1, local, minutes, _, _ in ACROSS_DST:
        s = study.plan(Participant(code, screening, records={"D1": day1}))
        day, time = local.split()
        start = local_datetime(pendulum.parse(day).date(), time, "Europe/Paris")
        assert s.visit("W4").target == start.date()
        data = to_ical(
            study,
            [s],
            appointments={(code, "W4"): start},
            duration=dt.timedelta(minutes=minutes),
            dtstamp=STAMP,
        )
        path = tmp_path_factory.mktemp("dst") / f"{code}.ics"
        path.write_bytes(data)
        paths.append(path)
    return study, paths


@pytest.mark.parametrize("parser", PARSERS)
def test_timed_events_last_their_duration_across_dst_changes(across_dst, parser):
    study, paths = across_dst
    for (code, *_, minutes, start, end), path in zip(ACROSS_DST, paths, strict=True):
        e = PARSERS[parser](path)[uid(study.id, code, "W4")]
        assert (e["start"], e["end"]) == (start, end), (parser, code)
        length = dt.datetime.fromisoformat(e["end"]) - dt.datetime.fromisoformat(e["start"])
        assert length == dt.timedelta(minutes=minutes), (parser, code)
