"""The process boundary itself: the installed ``visitplan`` script and ``python -m visitplan``.

Every other CLI test runs the commands in-process through tests/cli.py; these few check what
only a real process shows: the entry points, the exit codes a shell sees, one line on stderr
and no traceback, and that the in-process harness prints what the real process prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests import cli as harness

BIN = Path(sys.executable).with_name("visitplan")
PLAN = ["plan", "--participant", "1001", "--screening", "2022-07-27", "--day1", "2022-08-20"]
ENTRY_POINTS = {
    "script": [str(BIN)],
    "module": [sys.executable, "-m", "visitplan"],
}


def process(entry: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VISITPLAN_DB", "COLUMNS")}
    return subprocess.run(
        [*ENTRY_POINTS[entry], *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_real_process_prints_what_the_harness_prints(entry):
    if entry == "script" and not BIN.exists():
        pytest.fail(f"the console script is not installed next to {sys.executable}")
    for args in ([*PLAN, "--format", "json"], PLAN):
        real = process(entry, *args)
        assert real.returncode == 0, real.stderr
        assert real.stderr == ""
        assert real.stdout == harness.run(*args).stdout
    doc = json.loads(process(entry, *PLAN, "--format", "json").stdout)
    assert doc["participant"]["code"] == "1001"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            [*PLAN[:-1], "2022-09-01"],
            "error: D1.date '2022-09-01': must be between 2022-07-28 and 2022-08-31 "
            "(the strict window of Baseline and dose 1)",
        ),
        (
            ["plan", "--no-such-option"],
            "error: No such option '--no-such-option'. (see 'visitplan plan --help')",
        ),
    ],
)
def test_a_mistake_is_exit_2_and_one_line_from_a_real_process(args, line):
    real = process("module", *args)
    assert real.returncode == 2, (real.stdout, real.stderr)
    assert real.stdout == ""
    assert real.stderr.splitlines()[0].startswith(line), real.stderr
    assert len(real.stderr.splitlines()) == 1 and "Traceback" not in real.stderr
    same = harness.run(*args)
    assert (same.returncode, same.stderr) == (real.returncode, real.stderr)
