"""`visitplan plan` end to end: the real entry point, JSON contract, one-line errors."""

from __future__ import annotations

import json

import pytest
from tests import cli as harness
from tests.cli import Result


def run(*args: str) -> Result:
    return harness.run(*args, columns=120)


def test_plan_json_contract():
    r = run("plan", "--participant", "1001", "--screening", "2022-07-27", "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) >= {"protocol", "participant", "visits"}
    assert doc["protocol"]["id"] == "NCT05124925"
    assert doc["participant"]["code"] == "1001"
    codes = [v["code"] for v in doc["visits"]]
    assert codes[:8] == ["SCR", "D1", "W4", "W8", "W12", "W16", "W20", "EOT"]
    assert codes[-1] == "EOS" and "FU1" in codes
    targets = [v["target"] for v in doc["visits"]]
    assert targets == sorted(targets)
    for v in doc["visits"]:
        assert {"code", "name", "target", "earliest", "latest", "study_day", "tentative"} <= set(v)
    eos = doc["visits"][-1]
    assert (eos["earliest"], eos["latest"], eos["tentative"]) == ("2023-06-18", "2025-01-18", True)


def test_plan_table_and_csv():
    r = run("plan", "--participant", "1001", "--screening", "2022-07-27", "--day1", "2022-08-20")
    assert r.returncode == 0, r.stderr
    assert "2022-09-17" in r.stdout and "W4" in r.stdout  # Day 1 + 28
    r = run("plan", "--participant", "1001", "--screening", "2022-07-27", "--format", "csv")
    lines = r.stdout.splitlines()
    assert lines[0].startswith("participant,code,name")
    assert lines[1].startswith("1001,SCR,Screening,screening,RUNIN,2022-07-27")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--screening", "2022-02-30"],
            "error: --screening '2022-02-30': is not a day of the calendar",
        ),
        (
            ["--screening", "2022-07-27", "--day1", "2022-07-20"],
            "error: D1.date '2022-07-20': is before the screening date",
        ),
        (
            ["--screening", "2022-07-27", "--day1", "2022-09-01"],
            "error: D1.date '2022-09-01': must be between 2022-07-28 and 2022-08-31",
        ),
        (
            ["--screening", "2022-07-27", "--actual", "W9=2022-09-01"],
            "error: visit 'W9': unknown visit code",
        ),
        (
            ["--screening", "2022-07-27", "--day1", "2022-08-30", "--actual", "W4=2022-08-29"],
            "error: W4.date '2022-08-29': is before Day 1",
        ),
        (
            ["--screening", "2022-07-27", "--actual", "W4"],
            "error: --actual 'W4': must be written NAME=YYYY-MM-DD",
        ),
        (
            ["--screening", "2022-07-27", "--protocol", "nope.toml"],
            "error: protocol file 'nope.toml': does not exist",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message):
    r = run("plan", "--participant", "1001", *args)
    assert r.returncode == 2
    assert r.stderr.startswith(message), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("width", [80, 100, 160])
def test_plan_table_never_cuts_a_date_or_study_day(width):
    # Narrow terminals (80 columns is common) once got "2022-1…" and "1…" in the table.
    import io

    from rich.console import Console

    import visitplan
    from visitplan import Participant, Record
    from visitplan.cli.render import print_schedule

    study = visitplan.builtin("NCT05124925")
    person = Participant("1001", "2022-07-27", records=[Record("D1", "2022-08-30")])
    schedule = study.plan(person)
    out = io.StringIO()
    print_schedule(study, schedule, Console(file=out, width=width, color_system=None))
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text
    lines = text.splitlines()
    for v in schedule.visits:
        row = next(line for line in lines if line.replace("│", " ").split()[:1] == [v.code])
        assert str(v.target) in row and str(v.study_day) in row.replace("│", " ").split()
        if v.earliest != v.latest:
            assert f"{v.earliest}..{v.latest}" in row
        assert v.status.value in row
        if v.actual:
            assert str(v.actual) in row
    assert ("dosing" in text) == (width >= 160)  # the kind column, when there is room
