"""The hostile-input corpus (tests/corpus/cases.toml): each bad input gives its exact one-line
error, exit code 2 and no traceback, and `demo` leaves its output folder untouched on error."""

from __future__ import annotations

import datetime as dt
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pendulum
import pytest
from click.testing import CliRunner
from tests.corpus.generated import write_generated

import visitplan
from visitplan import Participant, Record, plan
from visitplan.cli import cli
from visitplan.dates import local_datetime
from visitplan.protocol_file import loads
from visitplan.roster_csv import load_roster, read_roster

CORPUS = Path(__file__).parent / "corpus"
CASES: list[dict[str, Any]] = tomllib.loads((CORPUS / "cases.toml").read_text("utf-8"))["case"]
LONG_CODE = "P" * 5000
#: What an earlier, successful `demo` left in out/: an error must not touch any of it.
EARLIER = {"out/plans/1001.json": b'{"earlier": true}\n', "out/notes.txt": b"kept\n"}


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("corpus")
    for sub in ("protocols", "rosters"):
        shutil.copytree(CORPUS / sub, work / sub)
    write_generated(work)
    return work


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for a folder)."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


def test_corpus_ids_are_unique():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 150


def test_every_corpus_file_has_a_case():
    used = " ".join(" ".join(c.get("args", [])) for c in CASES)
    for sub in ("protocols", "rosters"):
        for f in (CORPUS / sub).iterdir():
            assert f"{sub}/{f.name}" in used, f"{f} has no case in cases.toml"


@pytest.mark.parametrize("case", [c for c in CASES if "args" in c], ids=lambda c: c["id"])
def test_cli_case(case, corpus_dir, monkeypatch):
    monkeypatch.chdir(corpus_dir)
    shutil.rmtree(corpus_dir / "out", ignore_errors=True)
    for name, data in EARLIER.items():
        (corpus_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus_dir / name).write_bytes(data)
    before = snapshot(corpus_dir / "out")
    args = [LONG_CODE if a == "@long-code@" else a for a in case["args"]]

    result = CliRunner().invoke(cli, args, prog_name="visitplan")

    # Only a clean exit: any other exception is a crash (a traceback for the user).
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == case["exit"], result.stderr
    if case["exit"] == 0:
        assert result.stdout.splitlines()[-1] == case["stdout"]
        return
    assert result.stderr == case["error"] + "\n"
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert snapshot(corpus_dir / "out") == before


@pytest.mark.parametrize("case", [c for c in CASES if "call" in c], ids=lambda c: c["id"])
def test_library_case(case, corpus_dir, monkeypatch):
    monkeypatch.chdir(corpus_dir)
    namespace = {
        "dt": dt,
        "visitplan": visitplan,
        "Participant": Participant,
        "Record": Record,
        "plan": plan,
        "loads": loads,
        "read_roster": read_roster,
        "load_roster": load_roster,
        "study": visitplan.builtin("NCT05124925"),
        "local_datetime": local_datetime,
        "pendulum": pendulum,
    }
    with pytest.raises(visitplan.VisitplanError) as info:
        eval(case["call"], namespace)
    assert str(info.value) == case["error"]
    assert "\n" not in str(info.value)
