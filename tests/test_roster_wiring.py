"""The roster database wired into the rest: recovery from stored counts, milestones and
conditional visits in the roster views, calendars and CDISC SV exported from the database.

Every step goes through the ``visitplan`` command line (in-process, on a real SQLite file).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import icalendar
import pytest
from click.testing import CliRunner
from tests import cli as harness
from tests.oracle import study_day
from tests.storeutil import dump

from visitplan.cli import cli
from visitplan.export.ics import read_state
from visitplan.store import Roster

DOSES = (("D1", "2022-08-31"), ("W4", "2022-09-28"), ("W8", "2022-10-26"),
         ("W12", "2022-11-23"), ("W16", "2022-12-21"), ("W20", "2023-01-18"))  # fmt: skip
STAMP = ("--dtstamp", "2026-01-01T00:00:00Z")


def run(db: Path, *args: str, today: str) -> Any:
    return harness.run(*args, "--db", str(db), "--today", today)


def ok(db: Path, *args: str, today: str) -> str:
    result = run(db, *args, today=today)
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def show(db: Path, code: str, today: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ok(db, "show", code, "--format", "json", today=today))
    return doc


def treated(db: Path, code: str, today: str, *flags: str) -> None:
    """Enrol CODE (screening 2022-07-27) and record every dose and EOT on target."""
    opts = [x for f in flags for x in ("--flag", f)]
    ok(db, "enroll", code, "--screening", "2022-07-27", *opts, today=today)
    for visit, day in (*DOSES, ("EOT", "2023-02-15")):
        ok(db, "record", code, visit, "--date", day, today=today)


# -- 1. recovery derived from the counts stored in the roster ------------------------------
def test_recovery_from_stored_counts_replans(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    today = "2023-08-10"
    treated(db, "1001", today)
    last_dose = "2023-01-18"
    # Baseline 90 is above the site's LLN (80 cells/uL): recovery needs a count >= 80.
    ok(db, "record", "1001", "--bcell", "90", "--baseline", "--date", "2022-07-27", today=today)
    ok(db, "record", "1001", "--bcell", "70", "--date", "2023-05-10", today=today)
    before = show(db, "1001", today)
    assert before["participant"]["last_dose"] == last_dose
    eos = next(v for v in before["visits"] if v["code"] == "EOS")
    assert eos["tentative"] is True
    assert (eos["earliest"], eos["latest"]) == ("2023-06-18", "2025-01-18")  # LD + 5, + 24 mo
    assert [v["code"] for v in before["visits"] if v["code"].startswith("FU")] == [
        f"FU{i}" for i in range(1, 9)
    ]
    # A new count at or above min(LLN, baseline) = 80: recovery on 2023-08-02, after LD + 5
    # months, so EOS is firm on the recovery date and the follow-up after it is gone.
    ok(db, "record", "1001", "--bcell", "85", "--date", "2023-08-02", today=today)
    after = show(db, "1001", today)
    eos = next(v for v in after["visits"] if v["code"] == "EOS")
    assert (eos["target"], eos["tentative"]) == ("2023-08-02", False)
    assert [v["code"] for v in after["visits"] if v["code"].startswith("FU")] == ["FU1"]
    assert after["bcell_counts"] == [
        {"date": "2023-05-10", "value": 70.0, "unit": "cells/uL"},
        {"date": "2023-08-02", "value": 85.0, "unit": "cells/uL"},
    ]


def test_low_baseline_lowers_the_threshold_and_eos_waits_for_five_months(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    today = "2023-08-10"
    treated(db, "1002", today)
    ok(db, "record", "1002", "--bcell", "70", "--date", "2023-05-10", today=today)
    assert next(v for v in show(db, "1002", today)["visits"] if v["code"] == "EOS")["tentative"]
    # Baseline 60: the threshold is min(80, 60) = 60, so the 70 of 2023-05-10 is recovery,
    # before last dose + 5 months (2023-06-18): EOS is firm on 2023-06-18.
    ok(db, "record", "1002", "--bcell", "60", "--baseline", "--date", "2022-07-27", today=today)
    doc = show(db, "1002", today)
    eos = next(v for v in doc["visits"] if v["code"] == "EOS")
    assert (eos["target"], eos["tentative"]) == ("2023-06-18", False)
    assert not [v for v in doc["visits"] if v["code"].startswith("FU") and v["code"] != "FU1"]
    assert doc["participant"]["baseline_bcell"] == {"value": 60.0, "unit": "cells/uL"}


def test_count_in_another_unit_is_refused_and_nothing_stored(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    today = "2023-08-10"
    treated(db, "1003", today)
    before = dump(db)
    for extra in ((), ("--baseline",)):
        r = run(db, "record", "1003", "--bcell", "0.1", "--unit", "10^9/L",
                "--date", "2023-05-10", *extra, today=today)  # fmt: skip
        assert r.exit_code == 2
        assert r.stderr == (
            "error: bcell_count.unit '10^9/L': must be cells/uL, "
            "the unit of site BREST's bcell_lln\n"
        )
        assert dump(db) == before
    # Two counts the same day are refused the same way.
    ok(db, "record", "1003", "--bcell", "20", "--date", "2023-05-10", today=today)
    before = dump(db)
    r = run(db, "record", "1003", "--bcell", "30", "--date", "2023-05-10", today=today)
    assert r.exit_code == 2
    assert "bcell_count.date '2023-05-10': has two counts; one count a day" in r.stderr
    assert dump(db) == before


def test_library_participant_carries_counts_and_baseline(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    today = "2023-08-10"
    treated(db, "1004", today)
    ok(db, "record", "1004", "--bcell", "60", "--baseline", "--date", "2022-07-27", today=today)
    ok(db, "record", "1004", "--bcell", "65", "--date", "2023-08-02", today=today)
    with Roster.open(db, today=today) as roster:
        (person,) = roster.participants()
        assert person == roster.participant("1004")
    assert person.bcell_baseline == 60.0
    assert [(c.date.isoformat(), c.value) for c in person.bcell_counts] == [("2023-08-02", 65.0)]


# -- 2. milestones and conditional visits in the roster views --------------------------------
def test_show_has_milestones_in_table_and_json(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    today = "2022-10-01"
    ok(db, "enroll", "1101", "--screening", "2022-07-27", "--flag", "hbcab_positive",
       "--flag", "wocbp", today=today)  # fmt: skip
    ok(db, "enroll", "1102", "--screening", "2022-07-27", today=today)
    ok(db, "record", "1101", "D1", "--date", "2022-08-31", today=today)
    doc = show(db, "1101", today)
    # Last dose still planned (W20 target 2023-01-18): + 6 and + 12 months, tentative.
    assert doc["milestones"] == [
        {"code": "CONTRACEPTION_END", "name": "End of highly effective contraception",
         "date": "2023-07-18", "tentative": True},
        {"code": "PROPHYLAXIS_END",
         "name": "End of antiviral prophylaxis (tenofovir or entecavir)",
         "date": "2024-01-18", "tentative": True},
    ]  # fmt: skip
    assert show(db, "1102", today)["milestones"] == []
    table = CliRunner(env={"COLUMNS": "200"}).invoke(
        cli, ["show", "1101", "--db", str(db), "--today", today]
    )
    assert table.exit_code == 0, table.output
    assert "Milestones" in table.stdout
    assert "CONTRACEPTION_END" in table.stdout and "2023-07-18 Tue?" in table.stdout
    assert "PROPHYLAXIS_END" in table.stdout and "2024-01-18 Thu?" in table.stdout
    other = CliRunner(env={"COLUMNS": "200"}).invoke(
        cli, ["show", "1102", "--db", str(db), "--today", today]
    )
    assert "Milestones" not in other.stdout


def test_due_lists_hbv_monitoring_only_for_flagged(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    today = "2023-05-08"
    treated(db, "1201", today, "hbcab_positive")
    treated(db, "1202", today)
    # FU1 missed: the HBV test it would have carried is due on its own for 1201 only.
    for code in ("1201", "1202"):
        ok(db, "record", code, "FU1", "--status", "missed", "--date", today, today=today)
    doc = json.loads(ok(db, "due", "--days", "30", "--format", "json", today=today))
    assert [(d["participant"], d["visit"], d["target"], d["earliest"], d["latest"])
            for d in doc["due"]] == [
        ("1201", "HBV1", "2023-05-10", "2023-05-03", "2023-05-17")
    ]  # fmt: skip


# -- 3. calendars from the roster, SEQUENCE kept in the database ------------------------------
def events(data: bytes) -> dict[str, icalendar.Event]:
    cal = icalendar.Calendar.from_ical(data)
    found = list(cal.walk("VEVENT"))
    uids = [str(e["UID"]) for e in found]
    assert len(uids) == len(set(uids)), "duplicate UIDs"
    return dict(zip(uids, found, strict=True))


def when(event: icalendar.Event) -> tuple[str, str, str]:
    return (event["DTSTART"].to_ical().decode(), event["DTEND"].to_ical().decode(),
            str(event.get("STATUS")))  # fmt: skip


def test_ics_from_db_updates_sequence_only_for_moved_events(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    today = "2023-01-10"
    ok(db, "enroll", "1301", "--screening", "2022-07-27", "--flag", "wocbp", today=today)
    ok(db, "enroll", "1302", "--screening", "2022-08-01", today=today)
    for visit, day in DOSES[:5]:
        ok(db, "record", "1301", visit, "--date", day, today=today)
    ok(db, "record", "1302", "D1", "--date", "2022-08-20", today=today)
    # A name typed into a reason must never reach a calendar.
    ok(db, "record", "1302", "W4", "--status", "missed", "--date", "2022-09-17",
       "--reason", "Mme Dupont, hospitalised", today=today)  # fmt: skip
    with Roster.open(db, today=today) as roster:
        roster.set_appointment("1301", "EOT", "2023-02-15", "14:00")  # CET
        roster.set_appointment("1301", "FU1", "2023-05-10", "09:30")  # CEST
        roster.set_appointment("1302", "W8", "2022-10-15")  # no time: stays all-day
    site = tmp_path / "site.ics"
    ok(db, "ics", "-o", str(site), *STAMP, today=today)
    first = site.read_bytes()
    one = events(first)
    assert {str(e["SEQUENCE"]) for e in one.values()} == {"0"}
    assert {u.split("-")[1] for u in one} == {"1301", "1302"}
    fu1 = one["NCT05124925-1301-FU1@visitplan"]
    assert fu1["DTSTART"].to_ical() == b"20230510T093000"
    assert fu1["DTSTART"].params["TZID"] == "Europe/Paris"
    assert fu1["DTSTART"].dt.astimezone(dt.UTC) == dt.datetime(2023, 5, 10, 7, 30, tzinfo=dt.UTC)
    eot = one["NCT05124925-1301-EOT@visitplan"]["DTSTART"].dt
    assert eot.astimezone(dt.UTC) == dt.datetime(2023, 2, 15, 13, 0, tzinfo=dt.UTC)
    assert isinstance(one["NCT05124925-1302-W8@visitplan"]["DTSTART"].dt, dt.date)
    assert b"CONTRACEPTION_END" in first  # milestones reach the calendar too
    assert b"Dupont" not in first and b"hospitalised" not in first
    assert {str(e["SUMMARY"]).split()[0] for e in one.values()} == {"1301", "1302"}
    with Roster.open(db, today=today) as roster:
        stored = roster.calendar_state()
    assert stored == {u: (e.sequence, e.fingerprint) for u, e in read_state(first).items()}

    # Nothing changed: the same bytes again.
    ok(db, "ics", "-o", str(site), *STAMP, today=today)
    assert site.read_bytes() == first

    # The last dose given 3 days late moves every date anchored on it (FU, EOS, milestones);
    # EOT and FU1 keep their booked appointments, so they do not move.
    today = "2023-01-21"
    ok(db, "record", "1301", "W20", "--date", "2023-01-21", today=today)
    ok(db, "ics", "-o", str(site), *STAMP, today=today)
    two = events(site.read_bytes())
    assert set(two) == set(one)
    moved = {u for u in one if when(one[u]) != when(two[u])}
    assert {u.split("-")[2].split("@")[0] for u in moved} == {
        "W20", *(f"FU{i}" for i in range(2, 9)), "EOS", "CONTRACEPTION_END"
    }  # fmt: skip
    assert not any("-1302-" in u for u in moved)
    assert {u: int(e["SEQUENCE"]) for u, e in two.items()} == {
        u: 1 if u in moved else 0 for u in one
    }
    with Roster.open(db, today=today) as roster:
        assert roster.calendar_state() == {
            u: (e.sequence, e.fingerprint) for u, e in read_state(site.read_bytes()).items()
        }

    # One participant's calendar and per-participant files share the stored state.
    out = tmp_path / "each"
    ok(db, "ics", "--per-participant", str(out), *STAMP, today=today)
    assert sorted(p.name for p in out.iterdir()) == ["1301.ics", "1302.ics"]
    each = events((out / "1301.ics").read_bytes())
    assert {u: int(e["SEQUENCE"]) for u, e in each.items()} == {
        u: int(e["SEQUENCE"]) for u, e in two.items() if "-1301-" in u
    }
    alone = ok(db, "ics", "--participant", "1302", *STAMP, today=today).encode()
    assert {u.split("-")[1] for u in events(alone)} == {"1302"}


def test_ics_from_db_refusals(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    today = "2022-10-01"
    missing = run(db, "ics", "-o", str(tmp_path / "x.ics"), today=today)
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: --db ")
    assert not db.exists()
    ok(db, "enroll", "1401", "--screening", "2022-07-27", today=today)
    before = dump(db)
    r = run(db, "ics", "--participant", "9999", today=today)
    assert (r.exit_code, r.stderr) == (
        2,
        "error: participant '9999': is not enrolled in this roster\n",
    )
    r = run(db, "ics", "--screening", "2022-07-27", today=today)
    assert r.exit_code == 2 and r.stderr.startswith("error: --db ")
    assert dump(db) == before
    r = CliRunner().invoke(cli, ["ics", *("--participant", "1", "--screening", "2022-07-27"),
                                 "--today", today])  # fmt: skip
    assert (r.exit_code, r.stderr) == (2, "error: --today '2022-10-01': needs --db\n")


# -- 4. CDISC SV from the roster ------------------------------------------------------------
def test_cdisc_sv_from_db_with_unscheduled_and_study_days(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    today = "2022-11-10"
    ok(db, "enroll", "1501", "--screening", "2022-07-27", today=today)
    ok(db, "enroll", "1502", "--screening", "2022-10-20", today=today)
    ok(db, "record", "1501", "D1", "--date", "2022-08-31", today=today)
    ok(db, "record", "1501", "W4", "--date", "2022-09-29", today=today)
    ok(db, "record", "1501", "W8", "--status", "missed", "--date", "2022-10-26",
       "--reason", "participant ill", today=today)  # fmt: skip
    ok(db, "record", "1501", "--unscheduled", "--date", "2022-08-20",
       "--reason", "rash", today=today)  # fmt: skip
    ok(db, "record", "1501", "--unscheduled", "--date", "2022-10-03", today=today)
    ok(db, "record", "1502", "--unscheduled", "--date", "2022-10-25", today=today)
    text = ok(db, "cdisc", "sv", today=today)
    rows = list(csv.DictReader(io.StringIO(text)))
    got = [(r["USUBJID"], r["VISITNUM"], r["VISIT"], r["SVSTDTC"], r["SVSTDY"], r["SVPRESP"],
            r["SVOCCUR"], r["SVREASOC"], r["SVUPDES"]) for r in rows]  # fmt: skip
    sid = "CVAY736A2103"
    assert got == [
        (f"{sid}-1501", "100", "Screening", "2022-07-27", "-35", "Y", "Y", "", ""),
        (f"{sid}-1501", "100.01", "Unscheduled 100.01", "2022-08-20", "-11", "", "", "", "rash"),
        (f"{sid}-1501", "200", "Baseline and dose 1", "2022-08-31", "1", "Y", "Y", "", ""),
        (f"{sid}-1501", "300", "Dose 2", "2022-09-29", "30", "Y", "Y", "", ""),
        (f"{sid}-1501", "300.01", "Unscheduled 300.01", "2022-10-03", "34", "", "", "", ""),
        (f"{sid}-1501", "400", "Dose 3", "", "", "Y", "N", "participant ill", ""),
        # No Day 1 yet: no study day (SDTM leaves SVSTDY null without a reference date).
        (f"{sid}-1502", "100", "Screening", "2022-10-20", "", "Y", "Y", "", ""),
        (f"{sid}-1502", "100.01", "Unscheduled 100.01", "2022-10-25", "", "", "", "", ""),
    ]
    day1 = dt.date(2022, 8, 31)
    for r in rows:
        if r["USUBJID"].endswith("1501") and r["SVSTDTC"]:
            expected = study_day(dt.date.fromisoformat(r["SVSTDTC"]), day1)
            assert r["SVSTDY"] == r["SVENDY"] == str(expected)
    # Exactly one source of participants.
    both = run(db, "cdisc", "sv", "--roster", str(tmp_path / "x.csv"), today=today)
    assert both.exit_code == 2
    assert both.stderr == f"error: --db '{db}': give exactly one of --roster and --db\n"
    neither = CliRunner().invoke(cli, ["cdisc", "sv"])
    assert neither.exit_code == 2
    assert neither.stderr == (
        "error: --roster/--db 'neither': give a --roster FILE or a roster database "
        "(--db or VISITPLAN_DB)\n"
    )


@pytest.fixture(autouse=True)
def _no_env_db(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VISITPLAN_DB", raising=False)
