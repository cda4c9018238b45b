"""The daily lists in CSV and JSON, and the roster database found the same way by every command
(issue 17, item 11).

`due`, `overdue`, `deviations`, `history`, `show` and `agenda` write `--format csv` (through
the one formula-safe writer) and `--format json` with ISO dates and English keys; the CSV says
the same as the JSON. `ics` and `cdisc sv` read `$VISITPLAN_DB` like the other roster
commands, while a roster CSV or facts typed still work without a database.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import icalendar
import pytest
from click.testing import CliRunner

from visitplan.cli import cli

TODAY = "2022-11-10"
ROOT = Path(__file__).resolve().parents[1]
HOSTILE = '=HYPERLINK("http://x")\r\n+1'


def invoke(db: Path | None, *args: str, code: int = 0) -> Any:
    env = {"VISITPLAN_DB": None if db is None else str(db), "COLUMNS": "120"}
    r = CliRunner(env=env).invoke(cli, list(args))
    assert r.exit_code == code, r.output
    return r


def out(db: Path | None, *args: str) -> str:
    # The bytes as written: click's Result.stdout would turn a CR LF inside a cell into LF.
    return bytes(invoke(db, *args).stdout_bytes).decode("utf-8")


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.fixture(scope="module")
def roster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("formats") / "site.db"
    for args in (
        ("enroll", "1001", "--screening", "2022-07-27"),
        ("enroll", "1002", "--screening", "2022-01-10"),
        ("enroll", "1003", "--screening", "2022-10-20"),
        ("record", "1001", "D1", "--date", "2022-08-31"),
        ("record", "1001", "W4", "--date", "2022-09-28"),
        ("record", "1001", "W8", "--status", "missed", "--reason", HOSTILE),
        ("record", "1002", "D1", "--date", "2022-02-01"),
        ("record", "1001", "--unscheduled", "--date", "2022-10-03", "--reason", "rash"),
        ("book", "1001", "W12", "2022-11-22", "09:30"),
    ):
        out(db, *args, "--today", TODAY)
    return db


def test_due_csv_says_what_its_json_says(roster):
    doc = json.loads(out(roster, "due", "--days", "30", "--format", "json", "--today", TODAY))
    text = out(roster, "due", "--days", "30", "--format", "csv", "--today", TODAY)
    assert text.splitlines()[0] == (
        "participant,site,visit,name,target,earliest,latest,study_day,tentative,"
        "appointment_date,appointment_time,appointment_problems"
    )
    rows = rows_of(text)
    assert len(rows) == len(doc["due"]) >= 2
    for row, d in zip(rows, doc["due"], strict=True):
        for key in ("participant", "site", "visit", "name", "target", "earliest", "latest"):
            assert row[key] == d[key]
        assert row["study_day"] == str(d["study_day"])
        assert row["tentative"] == ("yes" if d["tentative"] else "no")
        booked = d["appointment"] or {"date": "", "time": "", "problems": []}
        assert (row["appointment_date"], row["appointment_time"]) == (
            booked["date"],
            booked["time"],
        )
        assert row["appointment_problems"] == "; ".join(booked["problems"])
    w12 = next(r for r in rows if r["visit"] == "W12")
    assert (w12["appointment_date"], w12["appointment_time"]) == ("2022-11-22", "09:30")


@pytest.mark.parametrize("command", ["overdue", "deviations"])
def test_findings_csv_says_what_their_json_says(roster, command):
    doc = json.loads(out(roster, command, "--format", "json", "--today", TODAY))
    text = out(roster, command, "--format", "csv", "--today", TODAY)
    header = "participant,site,visit,kind,message,target,earliest,latest,actual"
    assert text.splitlines()[0] == header
    rows = rows_of(text)
    assert rows and len(rows) == len(doc[command])
    for row, d in zip(rows, doc[command], strict=True):
        assert row == {k: "" if d[k] is None else str(d[k]) for k in header.split(",")}


def test_deviations_csv_keeps_a_reason_with_a_line_break_in_one_cell(roster):
    rows = rows_of(out(roster, "deviations", "--format", "csv", "--today", TODAY))
    missed = next(r for r in rows if r["kind"] == "missed")
    assert missed["message"] == f"recorded as missed: {HOSTILE}"


def test_history_csv_is_formula_safe_and_keeps_utc(roster):
    doc = json.loads(out(roster, "history", "1001", "--format", "json", "--today", TODAY))
    text = out(roster, "history", "1001", "--format", "csv", "--today", TODAY)
    assert text.splitlines()[0] == "id,at,user,action,field,old,new,reason"
    rows = rows_of(text)
    assert [r["id"] for r in rows] == [str(h["id"]) for h in doc["history"]]
    assert [r["at"] for r in rows] == [h["at"] for h in doc["history"]]  # UTC, as stored
    w8 = next(r for r in rows if r["field"] == "W8")
    # A spreadsheet shows the typed formula as text: a ' in front, the line break inside.
    assert w8["reason"] == "'" + HOSTILE


def test_show_csv_is_the_plan_csv(roster):
    from visitplan.export.tabular import CSV_COLUMNS

    doc = json.loads(out(roster, "show", "1001", "--format", "json", "--today", TODAY))
    text = out(roster, "show", "1001", "--format", "csv", "--today", TODAY)
    rows = rows_of(text)
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["code"], r["target"], r["status"], r["actual"]) for r in rows] == [
        (v["code"], v["target"], v["status"], v["actual"] or "") for v in doc["visits"]
    ]


def test_agenda_csv_and_json(roster):
    args = ("agenda", "--from", "2022-11-01", "--to", "2022-12-31", "--propose", "--today", TODAY)
    doc = json.loads(out(roster, *args, "--format", "json"))
    assert doc["site"]["code"] == "BREST" and doc["site"]["timezone"] == "Europe/Paris"
    assert (doc["from"], doc["to"], doc["policy"]) == ("2022-11-01", "2022-12-31", "nearest")
    visits = [(d["date"], v) for d in doc["days"] for v in d["visits"]]
    booked = next(v for _, v in visits if v["state"] == "booked")
    assert (booked["participant"], booked["visit"], booked["time"]) == ("1001", "W12", "09:30")
    assert isinstance(doc["proposals"], list) and doc["proposals"]
    rows = rows_of(out(roster, *args, "--format", "csv"))
    assert tuple(rows[0]) == (
        "date", "participant", "visit", "name", "state", "time", "earliest", "latest", "closed",
        "over_capacity", "open_days", "problems", "proposed_day", "proposal_reason",
    )  # fmt: skip
    assert [(r["date"], r["participant"], r["visit"], r["state"], r["time"]) for r in rows] == [
        (day, v["participant"], v["visit"], v["state"], v["time"] or "") for day, v in visits
    ]
    proposed = {(p["participant"], p["visit"]): p["day"] for p in doc["proposals"]}
    for r in rows:
        if (r["participant"], r["visit"]) in proposed:
            assert r["proposed_day"] == (proposed[(r["participant"], r["visit"])] or "")
    # Without --propose: no proposals, said as null.
    plain = json.loads(out(roster, *[a for a in args if a != "--propose"], "--format", "json"))
    assert plain["proposals"] is None


def test_the_docs_list_every_csv_header():
    from visitplan.cli.agenda import AGENDA_CSV_COLUMNS
    from visitplan.cli.roster import DEVIATION_CSV_COLUMNS, DUE_CSV_COLUMNS, HISTORY_CSV_COLUMNS

    roster_md = (ROOT / "docs" / "roster.md").read_text("utf-8")
    site_md = (ROOT / "docs" / "site-calendar.md").read_text("utf-8")
    for columns in (DUE_CSV_COLUMNS, DEVIATION_CSV_COLUMNS, HISTORY_CSV_COLUMNS):
        assert f"`{','.join(columns)}`" in roster_md
    assert f"`{','.join(AGENDA_CSV_COLUMNS)}`" in site_md


# -- the roster database of ics and cdisc sv ---------------------------------------------------

STAMP = ("--dtstamp", "2026-01-01T00:00:00Z")


def participants_of(data: bytes) -> set[str]:
    cal = icalendar.Calendar.from_ical(data)
    return {str(e["SUMMARY"]).split()[0] for e in cal.walk("VEVENT")}


def test_ics_reads_visitplan_db_and_typed_facts_win(roster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./visitplan.db here
    data = invoke(roster, "ics", "--today", TODAY, *STAMP).stdout_bytes
    assert participants_of(data) == {"1001", "1002", "1003"}
    one = invoke(roster, "ics", "--participant", "1002", "--today", TODAY, *STAMP).stdout_bytes
    assert participants_of(one) == {"1002"}
    # Facts typed beat the environment: one participant who is in no database.
    facts = invoke(roster, "ics", "--participant", "9001", "--screening", "2022-07-27", *STAMP)
    assert participants_of(facts.stdout_bytes) == {"9001"}
    people = tmp_path / "people.csv"
    people.write_text("participant,site,screening,day1,flags\n7001,BREST,2022-07-27,,\n")
    listed = invoke(roster, "ics", "--roster", str(people), *STAMP).stdout_bytes
    assert participants_of(listed) == {"7001"}
    # --db typed with facts is refused in one line, as before.
    r = invoke(None, "ics", "--db", str(roster), "--roster", str(people), code=2)
    assert r.stderr.startswith(f"error: --db '{roster}': takes its facts and previous export")
    # Neither a database nor facts: said in one line.
    r = invoke(None, "ics", code=2)
    assert r.stderr == (
        "error: --participant/--screening 'missing': give both, or a --roster FILE, or a "
        "roster database (--db or VISITPLAN_DB)\n"
    )


def test_ics_reads_the_visitplan_db_of_the_folder(roster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "visitplan.db").write_bytes(roster.read_bytes())
    data = invoke(None, "ics", "--today", TODAY, *STAMP).stdout_bytes
    assert participants_of(data) == {"1001", "1002", "1003"}


def test_cdisc_sv_reads_visitplan_db_and_a_typed_roster_wins(roster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = rows_of(out(roster, "cdisc", "sv", "--today", TODAY))
    assert {r["USUBJID"].rsplit("-", 1)[1] for r in rows} == {"1001", "1002", "1003"}
    assert any(r["VISIT"].startswith("Unscheduled") for r in rows)  # recorded, from the db
    people = tmp_path / "people.csv"
    people.write_text("participant,site,screening,day1,flags\n7001,BREST,2022-07-27,,\n")
    rows = rows_of(out(roster, "cdisc", "sv", "--roster", str(people), "--today", TODAY))
    assert {r["USUBJID"].rsplit("-", 1)[1] for r in rows} == {"7001"}
    r = invoke(None, "cdisc", "sv", "--db", str(roster), "--roster", str(people), code=2)
    assert r.stderr == f"error: --db '{roster}': give exactly one of --roster and --db\n"


def test_enroll_says_which_database_it_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = invoke(None, "enroll", "1001", "--screening", "2022-07-27", "--today", TODAY)
    assert r.stdout.splitlines()[0] == "created the roster visitplan.db"
    r = invoke(None, "enroll", "1002", "--screening", "2022-07-27", "--today", TODAY)
    assert "created" not in r.stdout
