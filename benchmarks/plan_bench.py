"""Planning speed of the built-in protocol (run on demand: python benchmarks/plan_bench.py)."""

from __future__ import annotations

import platform
import time

import pendulum

import visitplan


def main(n: int = 10_000) -> None:
    study = visitplan.builtin("NCT05124925")
    start = pendulum.date(2022, 1, 1)
    people = [visitplan.Participant(f"P{i}", start.add(days=i % 1500)) for i in range(n)]
    t0 = time.perf_counter()
    for p in people:
        study.plan(p)
    dt = time.perf_counter() - t0
    print(f"{platform.processor() or platform.machine()} python {platform.python_version()}")
    print(f"plan {n} participants: {dt:.2f} s ({n / dt:,.0f}/s)")


if __name__ == "__main__":
    main()
