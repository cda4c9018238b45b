"""docs/cdisc.md as written: every ``visitplan`` command of its console blocks runs (with the
fixed ``--today`` the page gives), in order, in one folder, and so does its Python example."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from visitplan.cli import cli

PAGE = Path(__file__).resolve().parents[1] / "docs" / "cdisc.md"


def commands() -> list[list[str]]:
    text = PAGE.read_text("utf-8")
    lines = [
        line.removeprefix("$ ")
        for block in re.findall(r"```console\n(.*?)```", text, flags=re.S)
        for line in block.splitlines()
        if line.startswith("$ visitplan ")
    ]
    return [shlex.split(line, comments=True)[1:] for line in lines]


def test_the_page_shows_commands():
    assert len(commands()) >= 8


def test_every_command_of_the_page_runs(tmp_path, monkeypatch):
    pytest.importorskip("pyreadstat")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VISITPLAN_DB", raising=False)
    runner = CliRunner()

    def ok(*args: str) -> bytes:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, (args, result.output)
        return bytes(result.stdout_bytes)

    # What the page's commands read: a roster CSV and a roster database at Brest.
    Path("roster.csv").write_text(
        "participant,site,screening,day1,flags\n1001,BREST,2022-07-27,2022-08-31,\n"
    )
    db = ("--db", "brest.db", "--today", "2022-11-10")
    ok("enroll", "1501", "--screening", "2022-07-27", *db)
    ok("record", "1501", "D1", "--date", "2022-08-31", *db)
    ok("record", "1501", "--unscheduled", "--date", "2022-08-20", "--reason", "rash", *db)
    for args in commands():
        if ">" in args:  # a shell redirection of standard output
            at = args.index(">")
            Path(args[at + 1]).write_bytes(ok(*args[:at]))
        else:
            ok(*args)
    for name in ("sv.csv", "tv.xpt", "sv.xpt", "te.xpt", "nct.json", "nct.toml"):
        assert Path(name).stat().st_size > 0, name
    # The page's Python example reads tv.xpt with pandas' own reader.
    (example,) = re.findall(r"```python\n(.*?)```", PAGE.read_text("utf-8"), flags=re.S)[:1]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, str(PAGE), "exec"), {})
    printed = out.getvalue()
    assert printed.startswith("TV Trial Visits\n")
    assert "VISITDY numeric 8 Planned Study Day of Visit" in printed
