"""Output safety: no formula injection, no path escape, atomic all-or-nothing writes, no
personal data in exports."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import visitplan
from visitplan import Participant, VisitplanError
from visitplan.cli import cli
from visitplan.export.tabular import CSV_COLUMNS, safe_cell, schedule_dict, to_csv, to_json
from visitplan.fileio import atomic_write, inside, write_files
from visitplan.protocol_file import dumps, loads

STUDY = visitplan.builtin("NCT05124925")
VISIT_COLUMNS = {"code", "name", "kind", "epoch", "target", "earliest", "latest", "study_day",
                 "tentative", "status", "actual", "procedures"}  # fmt: skip


def hostile_protocol() -> visitplan.Protocol:
    """The built-in protocol with spreadsheet formulas as visit and procedure names."""
    text = dumps(STUDY)
    for old, new in (
        ('name = "Dose 2"', 'name = "=HYPERLINK(\\"http://evil\\",\\"x\\")"'),
        ('name = "Dose 3"', 'name = "+SUM(A1:A9)"'),
        ('name = "Dose 4"', 'name = "-2+3"'),
        ('name = "Dose 5"', 'name = "@cmd"'),
        ('name = "Blood B-cell count"', 'name = "=1+1"'),
    ):
        assert old in text
        text = text.replace(old, new, 1)
    return loads(text)


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-inf", "'-inf"),
        ("+1_000", "'+1_000"),
        ("-35", "-35"),
        ("+2.5e3", "+2.5e3"),
        ("Dose 2", "Dose 2"),
        ("", ""),
    ],
)
def test_safe_cell(text, cell):
    assert safe_cell(text) == cell


def test_csv_export_neutralises_formulas_in_protocol_text():
    protocol = hostile_protocol()
    schedule = protocol.plan(Participant("1001", "2022-07-27"))
    rows = list(csv.DictReader(io.StringIO(to_csv([schedule]), newline="")))
    names = {r["code"]: r["name"] for r in rows}
    assert names["W4"] == '\'=HYPERLINK("http://evil","x")'
    assert names["W8"] == "'+SUM(A1:A9)"
    assert names["W12"] == "'-2+3"
    assert names["W16"] == "'@cmd"
    assert names["FU1"] == "'+SUM(A1:A9) 1" or names["FU1"] == "Follow-up 1"
    assert any(r["procedures"].startswith("'=1+1") for r in rows if r["code"].startswith("FU"))
    for r in rows:
        for cell in r.values():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
            assert not cell.startswith("-") or cell.lstrip("-").isdigit(), cell
    assert rows[0]["study_day"] == "-35"  # a negative study day stays a number


def test_json_keeps_text_exactly_as_data():
    protocol = hostile_protocol()
    person = Participant("1001", "2022-07-27")
    doc = json.loads(to_json(protocol, person, protocol.plan(person)))
    names = {v["code"]: v["name"] for v in doc["visits"]}
    assert names["W4"] == '=HYPERLINK("http://evil","x")'  # JSON is not run by anything


def test_demo_outputs_neutralise_formulas(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("hostile.toml").write_text(dumps(hostile_protocol()), "utf-8")
    r = CliRunner().invoke(cli, ["demo", "--protocol", "hostile.toml", "--out", "out"])
    assert r.exit_code == 0, r.output
    with Path("out/plans/all-visits.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert len(rows) == 1 + 3 * 17
    flat = [c for row in rows[1:] for c in row]
    assert '\'=HYPERLINK("http://evil","x")' in flat
    assert not [c for c in flat if c[:1] in ("=", "+", "@", "\t", "\r")]


# -- paths -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code", ["../../etc/passwd", "..", "/etc/passwd", "a/b", "a\\b", "1001\n", "", " 1001", "é1"]
)
def test_participant_codes_that_could_leave_a_folder_are_refused(code):
    with pytest.raises(VisitplanError, match="must be a study code"):
        Participant(code, "2022-07-27")


@pytest.mark.parametrize("name", ["../x.json", "../../etc/passwd", "/etc/passwd", "plans/../../x"])
def test_inside_refuses_escapes(tmp_path, name):
    with pytest.raises(VisitplanError, match="must stay inside the folder"):
        inside(tmp_path / "out", name)


def test_inside_refuses_the_folder_itself(tmp_path):
    with pytest.raises(VisitplanError):
        inside(tmp_path, ".")


def test_inside_refuses_a_symlink_leading_out(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "plans").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(VisitplanError, match="must stay inside the folder"):
        inside(out, "plans/1001.json")
    (out / "link.json").symlink_to(tmp_path / "victim.json")
    with pytest.raises(VisitplanError):
        inside(out, "link.json")


def test_inside_accepts_a_symlink_that_stays_inside(tmp_path):
    out = tmp_path / "out"
    (out / "real").mkdir(parents=True)
    (out / "plans").symlink_to(out / "real", target_is_directory=True)
    assert inside(out, "plans/1001.json") == (out / "real" / "1001.json").resolve()


def test_demo_refuses_a_symlinked_plans_folder_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("elsewhere").mkdir()
    Path("out").mkdir()
    Path("out/plans").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    r = CliRunner().invoke(cli, ["demo", "--out", "out"])
    assert r.exit_code == 2
    assert r.stderr == "error: output name 'plans/1001.json': must stay inside the folder out\n"
    assert list(Path("elsewhere").iterdir()) == []


# -- atomic writes -------------------------------------------------------------------------------
def test_atomic_write_failure_mid_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "plan.json"
    target.write_text("old\n")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(VisitplanError) as info:
        atomic_write(target, "new content that never lands\n")
    assert str(info.value) == f"output file '{target}': cannot be written: No space left on device"
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]  # no temp file left


def test_atomic_write_interrupted_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "plan.json"
    target.write_text("old\n")

    def killed(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, "new\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "plan.json"
    atomic_write(target, "a" * 100_000)
    atomic_write(target, "b")
    assert target.read_text() == "b"


def test_write_files_is_all_or_nothing(tmp_path, monkeypatch):
    out = tmp_path / "out"
    (out / "plans").mkdir(parents=True)
    (out / "plans" / "1001.json").write_text("old 1001\n")
    calls = []
    real_replace = os.replace

    def fail_on_second_stage(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail_on_second_stage)
    with pytest.raises(VisitplanError, match="No space left on device"):
        write_files(out, {"plans/1001.json": "new\n", "new/deep/1002.json": "new\n"})
    assert (out / "plans" / "1001.json").read_text() == "old 1001\n"
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["plans", "plans/1001.json"]
    assert os.replace is real_replace


def test_write_files_refuses_a_folder_in_the_way(tmp_path):
    out = tmp_path / "out"
    (out / "plans" / "1002.json").mkdir(parents=True)
    (out / "plans" / "1001.json").write_text("old\n")
    with pytest.raises(VisitplanError, match="is a folder"):
        write_files(out, {"plans/1001.json": "new\n", "plans/1002.json": "new\n"})
    assert (out / "plans" / "1001.json").read_text() == "old\n"


def test_demo_with_a_folder_in_the_way_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("out/plans/1003.json").mkdir(parents=True)
    Path("out/plans/1001.json").write_text("earlier\n")
    r = CliRunner().invoke(cli, ["demo", "--out", "out"])
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and "is a folder; remove it first" in r.stderr
    assert Path("out/plans/1001.json").read_text() == "earlier\n"
    assert sorted(p.name for p in Path("out/plans").iterdir()) == ["1001.json", "1003.json"]


def test_demo_out_is_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("out").write_text("not a folder\n")
    r = CliRunner().invoke(cli, ["demo", "--out", "out"], prog_name="visitplan")
    assert r.exit_code == 2
    assert r.stderr == (
        "error: Invalid value for '--out': Directory 'out' is a file."
        " (see 'visitplan demo --help')\n"
    )
    assert Path("out").read_text() == "not a folder\n"


def test_demo_with_a_file_where_its_folder_goes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("out").mkdir()
    Path("out/plans").write_text("a file, not a folder\n")
    r = CliRunner().invoke(cli, ["demo", "--out", "out"])
    assert r.exit_code == 2
    where = Path("out/plans").resolve()
    assert r.stderr == f"error: output folder '{where}': cannot be created: File exists\n"
    assert Path("out/plans").read_text() == "a file, not a folder\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_demo_into_a_read_only_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("out").mkdir()
    Path("out").chmod(0o500)
    try:
        r = CliRunner().invoke(cli, ["demo", "--out", "out"])
    finally:
        Path("out").chmod(0o700)
    assert r.exit_code == 2
    where = Path("out/plans").resolve()
    assert r.stderr == f"error: output folder '{where}': cannot be created: Permission denied\n"
    assert list(Path("out").iterdir()) == []


# -- personal data ----------------------------------------------------------------------------
def test_exports_carry_only_the_study_code():
    person = Participant("1001", "2022-07-27", flags={"hbcab_positive"}, site="BREST")
    schedule = STUDY.plan(person)
    doc = schedule_dict(STUDY, person, schedule)
    assert set(doc["participant"]) == {"code", "screening", "day1", "last_dose"}
    assert doc["participant"]["code"] == "1001"
    header = to_csv([schedule]).splitlines()[0].split(",")
    # One column is about the person, and it holds the study code; "name" is the visit's name.
    assert tuple(header) == CSV_COLUMNS
    assert [c for c in header if c not in VISIT_COLUMNS] == ["participant"]
    assert {line.split(",")[0] for line in to_csv([schedule]).splitlines()[1:]} == {"1001"}
    assert "BREST" not in to_csv([schedule]) and "hbcab_positive" not in to_json(
        STUDY, person, schedule
    )


def test_participant_has_no_field_for_identity():
    import attrs

    fields = {f.name for f in attrs.fields(Participant)}
    assert fields == {
        "code", "screening", "records", "flags", "events", "discontinued", "withdrawn", "site",
        "bcell_counts", "bcell_baseline",  # lab values by date: clinical facts, not identity
    }  # fmt: skip


def test_real_entry_point_non_utf8_argument_is_one_line():
    """Bytes that are not UTF-8 on the command line: one line, exit 2, no traceback."""
    exe = Path(sys.executable).with_name("visitplan")
    cmd = (
        [os.fsencode(str(exe))]
        if exe.exists()
        else [os.fsencode(sys.executable), b"-m", b"visitplan"]
    )
    r = subprocess.run(
        [*cmd, b"plan", b"--participant", b"10\xff\xfe01", b"--screening", b"2022-07-27"],
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stderr == (
        b"error: participant '10\\udcff\\udcfe01': must be a study code of 1-32 letters, digits,"
        b" '.', '-' or '_' (no names)\n"
    )
    assert r.stdout == b""


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["plan", "--participant", "1001", "--screening", "2023-02-29"],
         "error: --screening '2023-02-29': is not a day of the calendar"),
        (["plan", "--participant", "1001"],
         "error: Missing option '--screening'. (see 'visitplan plan --help')"),
        (["demo", "--roster", "nope.csv", "--out", "o"],
         "error: roster file 'nope.csv': does not exist"),
    ],
)  # fmt: skip
def test_real_entry_point_errors(tmp_path, args, line):
    exe = Path(sys.executable).with_name("visitplan")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "visitplan"]
    r = subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert (r.returncode, r.stderr, r.stdout) == (2, line + "\n", "")
    assert not (tmp_path / "o").exists()


def test_csv_row_with_a_carriage_return_stays_one_row():
    """Regression: csv.writer with "\\n" line ends left a bare CR unquoted, splitting the row."""
    import attrs

    # Protocol files refuse control characters; a protocol built in code can still hold one.
    visits = tuple(attrs.evolve(v, name="Dose\r2") if v.code == "W4" else v for v in STUDY)
    protocol = attrs.evolve(STUDY, visits=visits)
    schedule = protocol.plan(Participant("1001", "2022-07-27"))
    rows = list(csv.reader(io.StringIO(to_csv([schedule]), newline="")))
    assert len(rows) == 1 + len(schedule.visits)
    assert [r[2] for r in rows if r[1] == "W4"] == ["Dose\r2"]


def test_table_prints_rich_markup_in_protocol_text_literally(tmp_path, monkeypatch):
    """Regression: a visit name holding "[/bold]" crashed the table with rich's MarkupError."""
    monkeypatch.chdir(tmp_path)
    Path("p.toml").write_text(dumps(STUDY).replace('"Dose 2"', '"Dose [/bold] 2 [red]x"', 1))
    r = CliRunner().invoke(
        cli,
        ["plan", "-p", "p.toml", "--participant", "1001", "--screening", "2022-07-27"],
        env={"COLUMNS": "200"},
    )
    assert r.exit_code == 0, r.output
    assert "Dose [/bold] 2 [red]x" in r.stdout
