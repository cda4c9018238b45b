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
from click.testing import CliRunner

from visitplan.cli import cli

SRC = Path(__file__).resolve().parents[1] / "src" / "visitplan"
TODAY = "2022-12-01"


def csvfile() -> Any:
    """visitplan.csvfile, imported when a test runs (so that each test fails on its own where
    it is missing)."""
    import importlib

    return importlib.import_module("visitplan.csvfile")


def run(*args: str, **kwargs: Any) -> Any:
    return CliRunner().invoke(cli, list(args), **kwargs)


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
