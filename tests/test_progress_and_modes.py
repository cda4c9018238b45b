"""Long commands show a progress bar on a terminal and nothing extra when piped; every file
visitplan writes gets the mode the umask gives a new file, and a replaced file keeps its own.

The terminal is a real pseudo-terminal (``pty``) given to a ``visitplan`` process as stderr.
"""

from __future__ import annotations

import csv
import os
import pty
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from visitplan.cli import cli
from visitplan.fileio import atomic_write, write_files

N = 150


@pytest.fixture(scope="module")
def roster_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("csv") / "roster.csv"
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["participant", "site", "screening", "day1", "flags"])
        for i in range(N):
            out.writerow([f"P{i:04d}", "BREST", f"2022-0{1 + i % 9}-1{i % 10}", "", ""])
    return path


def run_on_terminal(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run ``visitplan ARGS`` with stderr on a pseudo-terminal; (exit code, stdout, terminal)."""
    main, side = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "visitplan", *args],
        stdout=subprocess.PIPE,
        stderr=side,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=env,
    )
    os.close(side)
    seen = b""
    while True:
        try:
            block = os.read(main, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not block:
            break
        seen += block
    os.close(main)
    out = process.stdout.read() if process.stdout else b""
    return process.wait(timeout=120), out.decode(), seen.decode(errors="replace")


def run_piped(args: list[str], cwd: Path) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "visitplan", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, done.stdout, done.stderr


def test_a_bar_on_a_terminal_and_nothing_extra_when_piped(roster_csv: Path, tmp_path: Path) -> None:
    today = ("--today", "2022-12-01")
    code, out, terminal = run_on_terminal(["import", str(roster_csv), "--db", "t.db", *today],
                                          tmp_path)  # fmt: skip
    assert code == 0 and out.endswith(f"imported {N} participants from {roster_csv}\n")
    assert "Importing" in terminal and f"{N}/{N}" in terminal
    code, out, terminal = run_on_terminal(["ics", "--db", "t.db", "-o", "site.ics", *today],
                                          tmp_path)  # fmt: skip
    assert code == 0 and out == ""
    assert "Writing calendars" in terminal and f"{N}/{N}" in terminal and "━" in terminal
    assert terminal.rstrip().endswith("wrote site.ics")

    code, out, err = run_piped(["import", str(roster_csv), "--db", "p.db", *today], tmp_path)
    assert (code, err) == (0, "")
    assert out == f"created the roster p.db\nimported {N} participants from {roster_csv}\n" or (
        out == f"imported {N} participants from {roster_csv}\n"
    )
    code, out, err = run_piped(["ics", "--db", "p.db", "-o", "site.ics", *today], tmp_path)
    assert (code, out, err) == (0, "", "wrote site.ics\n")
    code, out, err = run_piped(["ics", "--db", "p.db", "--per-participant", "each", *today],
                               tmp_path)  # fmt: skip
    assert code == 0 and out == "" and err.count("\n") == N and "\x1b" not in err


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_get_the_umask_mode_and_replaced_ones_keep_theirs(
    umask: None, tmp_path: Path
) -> None:
    db = tmp_path / "r.db"
    runner = CliRunner()
    assert runner.invoke(cli, ["enroll", "1001", "--screening", "2022-07-27", "--db", str(db),
                               "--today", "2022-10-01"]).exit_code == 0  # fmt: skip
    site, each = tmp_path / "site.ics", tmp_path / "each"
    args = ["ics", "--db", str(db), "-o", str(site), "--per-participant", str(each)]
    assert runner.invoke(cli, args).exit_code == 0
    assert (mode(site), mode(each / "1001.ics")) == (0o644, 0o644)
    site.chmod(0o640)
    assert runner.invoke(cli, args).exit_code == 0
    assert (mode(site), mode(each / "1001.ics")) == (0o640, 0o644)  # kept; the umask's
    os.umask(0o077)
    fresh = atomic_write(tmp_path / "new.txt", "x")
    chunks = atomic_write(tmp_path / "chunks.txt", iter([b"a", b"b"]))
    both = write_files(tmp_path / "out", {"a.csv": "a", "b.csv": b"b"})
    assert {mode(p) for p in (fresh, chunks, *both)} == {0o600}
    os.umask(0o022)
    (tmp_path / "out" / "a.csv").chmod(0o664)
    write_files(tmp_path / "out", {"a.csv": "again", "c.csv": "c"})
    assert [mode(tmp_path / "out" / n) for n in ("a.csv", "b.csv", "c.csv")] == [0o664, 0o600,
                                                                                 0o644]  # fmt: skip
    # Still atomic: no temporary file left beside them.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.csv", "b.csv", "c.csv"]
