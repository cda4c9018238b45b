"""The roster commands end to end through the real ``visitplan`` entry point and a real file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests import cli as harness
from tests.cli import Result
from tests.storeutil import dump

TODAY = "2022-11-10"


def run(db: Path, *args: str, today: str = TODAY) -> Result:
    return harness.run(*args, "--today", today, columns=160, env={"VISITPLAN_DB": str(db)})


def ok(db: Path, *args: str) -> str:
    r = run(db, *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three participants: a late Day 1, a missed dose, an out-of-window EOT."""
    db = tmp_path_factory.mktemp("site") / "site.db"
    ok(db, "enroll", "1001", "--screening", "2022-07-27", "--flag", "hbcab_positive")
    ok(db, "enroll", "1002", "--screening", "2022-01-10", "--site", "BREST")
    ok(db, "enroll", "1003", "--screening", "2022-10-20", "--flag", "wocbp")
    # 1001: Day 1 one day past the 35-day run-in is refused; on its last day it is taken.
    before = dump(db)
    r = run(db, "record", "1001", "D1", "--date", "2022-09-01")
    assert r.returncode == 2
    assert r.stderr == (
        "error: D1.date '2022-09-01': must be between 2022-07-28 and 2022-08-31 "
        "(the strict window of Baseline and dose 1)\n"
    )
    assert dump(db) == before
    ok(db, "record", "1001", "D1", "--date", "2022-08-31", "--time", "09:30")  # late: S + 35
    ok(db, "record", "1001", "W4", "--date", "2022-09-28")
    ok(db, "record", "1001", "W8", "--status", "missed", "--reason", "participant ill")
    # 1002: every dose on target, then EOT 17 days after its target (window +-7 days).
    doses = (("D1", "2022-02-01"), ("W4", "2022-03-01"), ("W8", "2022-03-29"),
             ("W12", "2022-04-26"), ("W16", "2022-05-24"), ("W20", "2022-06-21"))  # fmt: skip
    for visit, day in doses:
        ok(db, "record", "1002", visit, "--date", day)
    out = ok(db, "record", "1002", "EOT", "--date", "2022-08-05")
    assert (
        "! EOT: out-of-window: done 2022-08-05, outside its window 2022-07-12 to 2022-07-26" in out
    )
    return db


def test_due(site):
    doc = json.loads(ok(site, "due", "--days", "14", "--format", "json"))
    assert doc["today"] == TODAY and doc["days"] == 14
    assert [(d["participant"], d["visit"], d["target"], d["earliest"], d["latest"])
            for d in doc["due"]] == [
        ("1001", "W12", "2022-11-23", "2022-11-20", "2022-11-26"),  # actual D1 + 12 weeks
        ("1003", "D1", "2022-11-24", "2022-10-21", "2022-11-24"),  # end of the run-in
    ]  # fmt: skip
    table = ok(site, "due", "--days", "14")
    assert "2022-11-20..2022-11-26" in table and table.index("W12") < table.index("1003")
    doc = json.loads(ok(site, "due", "--days", "0", "--format", "json"))
    assert doc["due"] == []


def test_overdue(site):
    doc = json.loads(ok(site, "overdue", "--format", "json"))
    assert [(d["participant"], d["visit"], d["kind"], d["latest"]) for d in doc["overdue"]] == [
        ("1002", "FU1", "overdue", "2022-10-18")  # last dose 2022-06-21 + 16 weeks + 7 days
    ]
    assert "FU1" in ok(site, "overdue")


def test_deviations(site):
    doc = json.loads(ok(site, "deviations", "--format", "json"))
    assert [(d["participant"], d["visit"], d["kind"]) for d in doc["deviations"]] == [
        ("1002", "EOT", "out-of-window"),
        ("1002", "FU1", "overdue"),
        ("1001", "W8", "missed"),
    ]
    eot = doc["deviations"][0]
    assert (eot["actual"], eot["earliest"], eot["latest"]) == (
        "2022-08-05",
        "2022-07-12",
        "2022-07-26",
    )
    assert doc["deviations"][2]["message"] == "recorded as missed: participant ill"
    table = ok(site, "deviations")
    assert "out-of-window" in table and "missed" in table


def test_history(site):
    doc = json.loads(ok(site, "history", "1001", "--format", "json"))
    assert doc["participant"] == "1001"
    assert [(h["action"], h["field"], h["old"], h["new"], h["reason"]) for h in doc["history"]] == [
        ("enroll", "screening", None, "2022-07-27", None),
        ("enroll", "site", None, "BREST", None),
        ("enroll", "flags", None, "hbcab_positive", None),
        ("record", "D1", None, "done 2022-08-31 09:30", None),
        ("record", "W4", None, "done 2022-09-28", None),
        ("record", "W8", None, "missed", "participant ill"),
    ]
    assert [h["id"] for h in doc["history"]] == sorted(h["id"] for h in doc["history"])
    assert "participant ill" in ok(site, "history", "1001")


def test_show(site):
    doc = json.loads(ok(site, "show", "1002", "--format", "json"))
    assert doc["participant"]["day1"] == "2022-02-01"
    assert doc["participant"]["last_dose"] == "2022-06-21"
    eot = next(v for v in doc["visits"] if v["code"] == "EOT")
    assert (eot["status"], eot["actual"]) == ("done", "2022-08-05")
    assert "1002" in ok(site, "show", "1002")


BAD = [
    (["record", "9999", "D1", "--date", "2022-08-31"],
     "error: participant '9999': is not enrolled in this roster"),
    (["enroll", "1001", "--screening", "2022-07-27"],
     "error: participant '1001': is already enrolled"),
    (["record", "1003", "D1", "--date", "2022-10-19"],
     "error: D1.date '2022-10-19': is before the screening date 2022-10-20"),
    (["record", "1001", "W4", "--date", "2022-09-29"],
     "error: visit 'W4': is recorded twice; a visit has one record (correct or void the one "
     "recorded)"),
    (["record", "1001", "W12", "--date", "2022-08-30"],
     "error: W12.date '2022-08-30': is before Day 1 (2022-08-31)"),
    (["record", "1001", "W12", "--date", "2022-11-09", "--time", "9h30"],
     "error: W12.time '9h30': must be a wall-clock time written HH:MM"),
    (["record", "1001"], "error: record 'nothing': give exactly one of VISIT"),
    (["show", "9999"], "error: participant '9999': is not enrolled in this roster"),
    (["history", "9999"], "error: participant '9999': is not enrolled"),
    (["record", "1001", "W12", "--status", "done", "--date", "2022-11-11"],
     "error: W12.date '2022-11-11': is after today (2022-11-10)"),
    (["discontinue", "1001", "--date", "2022-09-20", "--reason", "AE"],
     "error: W4.date '2022-09-28': is after treatment was discontinued (2022-09-20); "
     "no dose follows discontinuation"),
    (["enroll", "Jean Dupont", "--screening", "2022-07-27"],
     "error: participant 'Jean Dupont': must be a study code"),
    (["due", "--protocol", "nope.toml"], "error: protocol file 'nope.toml': does not exist"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), BAD, ids=[a[0] + "-" + m[7:30] for a, m in BAD])
def test_bad_input_exit_2_store_unchanged(site, args, message):
    before = dump(site)
    r = run(site, *args)
    assert r.returncode == 2, r.stdout
    assert r.stderr.startswith(message), r.stderr
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    assert dump(site) == before


def test_withdrawn_participant_refuses_records(tmp_path):
    db = tmp_path / "w.db"
    ok(db, "enroll", "2001", "--screening", "2022-07-27")
    ok(db, "record", "2001", "D1", "--date", "2022-08-20")
    out = ok(db, "withdraw", "2001", "--date", "2022-09-01", "--reason", "consent withdrawn")
    assert out.startswith("withdrew 2001 on 2022-09-01; ")
    before = dump(db)
    r = run(db, "record", "2001", "W4", "--date", "2022-09-17")
    assert r.returncode == 2
    assert r.stderr == (
        "error: W4.date '2022-09-17': is on or after the withdrawal from the study "
        "(2022-09-01); no visit follows withdrawal\n"
    )
    assert dump(db) == before


def test_discontinue_and_other_facts(tmp_path):
    db = tmp_path / "d.db"
    ok(db, "enroll", "2001", "--screening", "2022-07-27")
    ok(db, "record", "2001", "D1", "--date", "2022-08-20")
    out = ok(db, "discontinue", "2001", "--date", "2022-09-01", "--reason", "adverse event")
    assert out == "discontinued treatment of 2001 on 2022-09-01; EOT target 2022-09-10\n"
    assert "U1" in ok(db, "record", "2001", "--unscheduled", "--date", "2022-09-05")
    ok(db, "record", "2001", "--bcell", "150", "--baseline", "--date", "2022-07-27")
    ok(db, "record", "2001", "--bcell", "3.5", "--date", "2022-11-01")
    ok(db, "record", "2001", "--event", "bcell_recovery", "--date", "2022-11-08")
    doc = json.loads(ok(db, "show", "2001", "--format", "json"))
    assert doc["participant"]["discontinued"] == "2022-09-01"
    assert doc["participant"]["baseline_bcell"] == {"value": 150.0, "unit": "cells/uL"}
    assert doc["unscheduled"][0]["code"] == "U1"
    assert doc["bcell_counts"] == [{"date": "2022-11-01", "value": 3.5, "unit": "cells/uL"}]
    statuses = {v["code"]: v["status"] for v in doc["visits"]}
    assert statuses["W4"] == statuses["W20"] == "cancelled"
    actions = [
        h["action"] for h in json.loads(ok(db, "history", "2001", "--format", "json"))["history"]
    ]
    assert actions == ["enroll", "enroll", "record", "discontinue", "unscheduled", "bcell",
                       "bcell", "event"]  # fmt: skip


def test_import_csv_all_or_nothing(tmp_path):
    db = tmp_path / "i.db"
    ok(db, "enroll", "1003", "--screening", "2023-01-31")
    sample = Path(__file__).parents[1] / "src" / "visitplan" / "data" / "sample-roster.csv"
    before = dump(db)
    r = run(db, "import", str(sample), today="2023-04-01")
    assert r.returncode == 2
    assert r.stderr == f"error: {sample}: participant '1003': is already enrolled\n"
    assert dump(db) == before
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "participant,site,screening,day1,flags\n"
        "4001,BREST,2022-07-27,,\n"
        "4002,BREST,2022-02-30,,\n"
        "Jean Dupont,BREST,2022-07-27,,\n"
        "4004,BREST,2022-07-27,2022-09-30,\n",
        encoding="utf-8",
    )
    r = run(db, "import", str(bad), today="2023-04-01")
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        f"error: {bad}:3: screening '2022-02-30': is not a day of the calendar",
        f"error: {bad}:4: participant 'Jean Dupont': must be a study code of 1-32 letters, "
        "digits, '.', '-' or '_' (no names)",
    ]
    assert dump(db) == before
    r = run(db, "import", str(bad.with_name("none.csv")), today="2023-04-01")
    assert r.returncode == 2 and "does not exist" in r.stderr
    fresh = tmp_path / "fresh.db"
    out = run(fresh, "import", str(sample), today="2023-04-01")
    assert out.stdout.splitlines() == [
        f"created the roster {fresh}",
        f"imported 3 participants from {sample}",
    ], out.stderr
    doc = json.loads(ok(fresh, "show", "1002", "--format", "json"))
    assert doc["participant"]["day1"] == "2022-10-10"
    assert doc["participant"]["flags"] == ["hbcab_positive"]


def test_import_xlsx(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    import datetime as dt

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["participant", "site", "screening", "day1", "flags"])
    sheet.append([5001, "BREST", dt.date(2022, 7, 27), dt.date(2022, 8, 30), "wocbp"])
    sheet.append(["5002", None, dt.datetime(2022, 8, 1), None, None])
    path = tmp_path / "roster.xlsx"
    book.save(path)
    db = tmp_path / "x.db"
    assert (
        ok(db, "import", str(path))
        == f"created the roster {db}\nimported 2 participants from {path}\n"
    )
    doc = json.loads(ok(db, "show", "5001", "--format", "json"))
    assert doc["participant"]["day1"] == "2022-08-30"
    assert doc["participant"]["flags"] == ["wocbp"]
    sheet.append(["5003", "BREST", "27/07/2022", None, None])
    book.save(path)
    r = run(tmp_path / "y.db", "import", str(path))
    assert r.returncode == 2
    assert (
        r.stderr == f"error: {path}:4: screening '27/07/2022': is not written YYYY-MM-DD; "
        "a day-first date (31/01/2023) is read only with --dayfirst\n"
    )


def test_read_commands_do_not_create_a_database(tmp_path):
    db = tmp_path / "typo.db"
    for args in (["due"], ["overdue"], ["deviations"], ["history", "1001"], ["show", "1001"],
                 ["record", "1001", "D1"], ["import", str(tmp_path / "missing.csv")]):  # fmt: skip
        r = run(db, *args)
        assert r.returncode == 2, args
        assert len(r.stderr.splitlines()) == 1, r.stderr
    assert not db.exists()
    r = run(db, "due")
    assert r.stderr == (
        f"error: --db '{db}': no roster there yet; 'visitplan enroll' or 'import' creates one\n"
    )
