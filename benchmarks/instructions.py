"""Instructions per plan, counted by valgrind's callgrind: steady where wall time is not.

    .venv/bin/python benchmarks/instructions.py                          # this tree
    PYTHONPATH=/other/tree/src .venv/bin/python benchmarks/instructions.py   # another one

Two child processes under callgrind build the same 3,200 participants of run.py's facts and
warm the engine's caches on 200 of them; one then plans 1,000 more, the other 3,000. The
difference of their counts over 2,000 is the instructions of one plan, imports and set-up
left out. The children switch the cyclic collector off: where its collections fall would
move the figure by thousands of instructions per plan (docs/performance.md). Needs valgrind;
takes a few minutes.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

BUILT, WARM = 3200, 200
SIZES = (1000, 3000)


def child(n: int) -> None:
    """Plan ``n`` participants after the warm-up (run under callgrind by :func:`count`)."""
    gc.disable()
    sys.path.insert(0, str(Path(__file__).parent))
    import run as bench

    import visitplan

    study = visitplan.builtin(bench.PROTOCOL)
    people = bench.to_participants(bench.make_facts(BUILT))
    for p in people[:WARM]:
        study.plan(p)
    for p in people[WARM : WARM + n]:
        study.plan(p)


def count(n: int, out: Path) -> int:
    """Instructions of a child process that plans ``n`` participants."""
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
         __file__, "--child", str(n)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    found = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
    assert found, f"no total in {out}"
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        small, large = (count(n, Path(tmp) / f"callgrind.{n}") for n in SIZES)
    print(f"{(large - small) // (SIZES[1] - SIZES[0]):,} instructions per plan")


if __name__ == "__main__":
    main()
