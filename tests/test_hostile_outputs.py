"""Hostile input, round two (issue 18): what visitplan writes stays safe whatever text it holds.

CSV cells holding a CR or LF stay one cell of one row and formulas stay text (item 2);
iCalendar TEXT values carry no raw line break or control character (item 3); terminal tables
print control characters escaped (item 12); per-participant file names are portable (item 13);
every help text states the exit codes (item 14).
"""

from __future__ import annotations

import ast
import csv
import io
from pathlib import Path
from typing import Any

import pytest
from tests import cli as harness

from visitplan.cli import cli

SRC = Path(__file__).resolve().parents[1] / "src" / "visitplan"
TODAY = "2022-12-01"


def csvfile() -> Any:
    """visitplan.csvfile, imported when a test runs (so that each test fails on its own where
    it is missing)."""
    import importlib

    return importlib.import_module("visitplan.csvfile")


def run(*args: str, **kwargs: Any) -> Any:
    return harness.run(*args, **kwargs)


def rows_of(text: str) -> list[list[str]]:
    """CSV text read back as the csv module reads a file opened with newline=''."""
    return list(csv.reader(io.StringIO(text, newline="")))


def enrolled(tmp_path: Path) -> str:
    db = str(tmp_path / "r.db")
    r = run("enroll", "1001", "--screening", "2022-07-27", "--db", db, "--today", TODAY)
    assert r.exit_code == 0, r.output
    return db


# -- item 2: CSV ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["ill\r=1+1", "ill\n=1+1", "ill\r\n=1+1", "\r=1+1", "\n=1+1", "a\rb\rc"]
)
def test_a_cell_with_a_line_break_stays_one_cell_of_one_row(text):
    out = csvfile().to_csv(["a", "b", "c"], [["1", text, "=2+2"]])
    assert rows_of(out) == [["a", "b", "c"], ["1", csvfile().safe_cell(text), "'=2+2"]]


@pytest.mark.parametrize(("text", "cell"), [("\n=1", "'\n=1"), ("\r=1", "'\r=1"), ("-7", "-7")])
def test_a_line_break_first_is_a_formula_start(text, cell):
    assert csvfile().safe_cell(text) == cell


def test_cdisc_sv_keeps_a_reason_with_a_carriage_return_in_its_row(tmp_path):
    db = enrolled(tmp_path)
    r = run("record", "1001", "W4", "--status", "missed", "--reason", "ill\r=1+1",
            "--date", "2022-08-30", "--db", db, "--today", TODAY)  # fmt: skip
    assert r.exit_code == 0, r.output
    r = run("cdisc", "sv", "--db", db, "--today", TODAY)
    assert r.exit_code == 0, r.output
    rows = rows_of(r.stdout)
    header = rows[0]
    assert all(len(row) == len(header) for row in rows)
    reasons = [row[header.index("SVREASOC")] for row in rows[1:]]
    assert "ill\r=1+1" in reasons
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\r", "\n")), cell


def test_cdisc_ta_with_a_carriage_return_in_the_arm_has_its_four_rows():
    plain = rows_of(run("cdisc", "ta").stdout)
    r = run("cdisc", "ta", "--arm", "x\r=1+1")
    assert r.exit_code == 0, r.output
    rows = rows_of(r.stdout)
    assert len(rows) == len(plain) == 4
    assert {row[plain[0].index("ARM")] for row in rows[1:]} == {"x\r=1+1"}


def test_bookings_are_written_by_the_shared_writer():
    import pendulum

    from visitplan.booking import dump_bookings, read_bookings

    when = pendulum.datetime(2022, 9, 1, 9, 30, tz="Europe/Paris")
    text = dump_bookings({("1001", "W4"): when}, "Europe/Paris")
    assert read_bookings(text, "Europe/Paris") == {("1001", "W4"): when}


def test_every_csv_writer_is_the_shared_one():
    """csv.writer is called in visitplan.csvfile only: no module writes CSV on its own."""
    callers = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("writer", "DictWriter")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "csv"
            ):
                callers.append(path.relative_to(SRC).as_posix())
    assert sorted(set(callers)) == ["csvfile.py"]


# -- item 12: terminal tables -------------------------------------------------------------------

HOSTILE_REASON = "ill\x1b[2J\x1b]0;owned\x07\rover\x9b31m\u2028x"
SHOWN_REASON = "ill\\x1b[2J\\x1b]0;owned\\x07\\rover\\x9b31m\\u2028x"


def assert_clean(text: str) -> None:
    """No control character but the line feeds between lines."""
    bad = [c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F]
    assert not bad and "\u2028" not in text, bad


def test_roster_commands_print_a_hostile_reason_escaped(tmp_path):
    db = enrolled(tmp_path)
    r = run("record", "1001", "W4", "--status", "missed", "--reason", HOSTILE_REASON,
            "--date", "2022-08-30", "--db", db, "--today", TODAY)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert_clean(r.stdout)
    assert f"! W4: missed: recorded as missed: {SHOWN_REASON}" in r.stdout
    env = {"COLUMNS": "250"}
    for args in (["history", "1001"], ["deviations"], ["show", "1001"]):
        r = run(*args, "--db", db, "--today", TODAY, env=env)
        assert r.exit_code == 0, (args, r.output)
        assert_clean(r.stdout)
        assert SHOWN_REASON in r.stdout, (args, r.stdout)


def test_eligibility_prints_hostile_history_text_escaped(tmp_path):
    history = tmp_path / "h.csv"
    history.write_text("rule,what,last_dose\nlive_vaccine,x\x1b[2Jy[/b],2022-01-01\n")
    r = run("eligibility", "--screening", "2022-07-27", "--history", str(history),
            env={"COLUMNS": "200"})  # fmt: skip
    assert r.exit_code == 0, r.output
    assert_clean(r.stdout)
    assert "x\\x1b[2Jy[/b]" in r.stdout


def test_the_schedule_table_prints_hostile_protocol_text_escaped():
    import attrs
    from rich.console import Console

    import visitplan
    from visitplan.cli.render import print_schedule

    base = visitplan.builtin("NCT05124925")
    visits = tuple(
        attrs.evolve(v, name="Dose\x1b[2J\r2") if v.code == "W4" else v for v in base.visits
    )
    study = attrs.evolve(base, visits=visits)
    out = io.StringIO()
    print_schedule(study, study.plan(visitplan.Participant("1001", "2022-07-27")),
                   Console(file=out, width=200))  # fmt: skip
    assert_clean(out.getvalue())
    assert "Dose\\x1b[2J\\r2" in out.getvalue()


# -- item 14: exit codes in every help ----------------------------------------------------------


def all_command_paths() -> list[list[str]]:
    import click

    from visitplan.cli import COMMANDS

    paths: list[list[str]] = [[]]
    ctx = click.Context(cli)
    for _, name in COMMANDS:
        command = cli.get_command(ctx, name)
        paths.append([name])
        if isinstance(command, click.Group):
            paths += [[name, sub] for sub in command.commands]
    return paths


@pytest.mark.parametrize("path", all_command_paths(), ids=" ".join)
def test_every_help_states_the_exit_codes(path):
    r = run(*path, "--help", env={"COLUMNS": "1000"})
    assert r.exit_code == 0, r.output
    assert (
        "Exit codes: 0 done; 1 a check found a problem (audit verify: the trail is not intact); "
        "2 bad input or a refused change, said in one line on stderr ('error: ...')."
    ) in " ".join(r.stdout.split())


# -- items 8, 9, 13: calendar files ---------------------------------------------------------------

ROSTER_HEADER = "participant,site,screening,day1,flags\n"


def roster_file(tmp_path: Path, *codes: str) -> str:
    path = tmp_path / "r.csv"
    path.write_text(ROSTER_HEADER + "".join(f"{c},,2022-07-27,,\n" for c in codes))
    return str(path)


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def test_per_participant_files_are_written_all_or_none(tmp_path):
    roster = roster_file(tmp_path, "1001", "1002", "1003")
    cal = tmp_path / "cal"
    cal.mkdir()
    (cal / "1002.ics").write_bytes(b"not a calendar")  # refused as a previous export
    before = listing(cal)
    r = run("ics", "--roster", roster, "--per-participant", str(cal))
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith(f"error: -o '{cal / '1002.ics'}': is not a calendar to update")
    assert listing(cal) == before  # 1001.ics was written before 1002 was refused
    # And when -o fails after every participant's file is made, none of them is written.
    (cal / "1002.ics").unlink()
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where -o wants a folder")
    r = run("ics", "--roster", roster, "--per-participant", str(cal), "-o",
            str(blocker / "site.ics"))  # fmt: skip
    assert r.exit_code == 2, r.output
    assert listing(cal) == {}


def test_per_participant_files_from_a_database_are_written_all_or_none(tmp_path):
    db = str(tmp_path / "r.db")
    for code in ("1001", "ab", "AB"):
        r = run("enroll", code, "--screening", "2022-07-27", "--db", db, "--today", TODAY)
        assert r.exit_code == 0, r.output
    cal = tmp_path / "cal"
    r = run("ics", "--db", db, "--today", TODAY, "--per-participant", str(cal))
    assert r.exit_code == 2, r.output
    assert r.stderr == (
        "error: output files 'AB.ics and ab.ics': differ only in case: they would be one file "
        "on Windows and macOS\n"
    )
    assert not cal.exists()


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        (["1001", "CON"], "output file 'CON.ics': is named after a Windows device (CON): "
         "Windows would not make it"),
        (["nul.txt", "1001"], "output file 'nul.txt.ics': is named after a Windows device (NUL): "
         "Windows would not make it"),
        (["com1", "1001"], "output file 'com1.ics': is named after a Windows device (COM1): "
         "Windows would not make it"),
        (["ab", "AB"], "output files 'AB.ics and ab.ics': differ only in case: they would be "
         "one file on Windows and macOS"),
    ],
)  # fmt: skip
def test_per_participant_names_are_portable(tmp_path, codes, message):
    cal = tmp_path / "cal"
    r = run("ics", "--roster", roster_file(tmp_path, *codes), "--per-participant", str(cal))
    assert r.exit_code == 2, r.output
    assert r.stderr == f"error: {message}\n"
    assert not cal.exists()


def test_demo_refuses_a_participant_named_after_a_device(tmp_path):
    out = tmp_path / "out"
    r = run("demo", "--roster", roster_file(tmp_path, "1001", "PRN"), "--out", str(out))
    assert r.exit_code == 2, r.output
    assert "'plans/PRN.json': is named after a Windows device (PRN)" in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("code", ["BR EST", "../x", "=1+1", "a" * 33])
def test_protocol_site_codes_are_study_codes(tmp_path, code):
    import visitplan
    from visitplan.protocol_file import dumps

    path = tmp_path / "p.toml"
    path.write_text(dumps(visitplan.builtin("NCT05124925")).replace('"BREST"', f'"{code}"', 1))
    r = run("protocol", "check", str(path))
    assert r.exit_code == 2
    assert r.stderr.splitlines()[0].endswith(
        "must be a study code of 1-32 letters, digits, '.', '-' or '_' (no names)"
    ), r.stderr
    assert ".code " in r.stderr.splitlines()[0]


ONE = ["ics", "--participant", "1001", "--screening", "2022-07-27",
       "--dtstamp", "2026-01-01T00:00:00Z"]  # fmt: skip


def test_o_dev_stdout_through_a_pipe_writes_the_calendar_and_ends(tmp_path):
    import subprocess
    import sys

    bin_ = Path(sys.executable).with_name("visitplan")
    cmd = [str(bin_)] if bin_.exists() else [sys.executable, "-m", "visitplan"]
    r = subprocess.run(
        [*cmd, *ONE, "-o", "/dev/stdout"], capture_output=True, timeout=60, cwd=tmp_path
    )  # fmt: skip  (it read its own pipe and hung)
    assert r.returncode == 0, r.stderr
    assert r.stdout == run(*ONE).stdout_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_o_an_existing_empty_file_is_written(tmp_path):
    target = tmp_path / "cal.ics"
    target.write_bytes(b"")
    r = run(*ONE, "-o", str(target))
    assert r.exit_code == 0, r.output
    assert target.read_bytes() == run(*ONE).stdout_bytes


def test_o_a_file_that_is_no_calendar_is_named_in_the_error(tmp_path):
    target = tmp_path / "cal.ics"
    target.write_bytes(b"BEGIN:VCALENDAR\r\nnonsense")
    r = run(*ONE, "-o", str(target))
    assert r.exit_code == 2
    assert r.stderr.startswith(f"error: -o '{target}': is not a calendar to update (")
    assert target.read_bytes() == b"BEGIN:VCALENDAR\r\nnonsense"


def test_previous_that_is_a_fifo_is_refused_at_once(tmp_path):
    import os
    import subprocess
    import sys

    fifo = tmp_path / "prev.ics"
    os.mkfifo(fifo)
    bin_ = Path(sys.executable).with_name("visitplan")
    cmd = [str(bin_)] if bin_.exists() else [sys.executable, "-m", "visitplan"]
    r = subprocess.run([*cmd, *ONE, "--previous", str(fifo)], capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr == (
        f"error: --previous '{fifo}': is not a regular file (a FIFO, a device or a socket)\n"
    )
