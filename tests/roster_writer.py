"""A separate process that writes to a roster, for the crash and concurrency tests.

    python tests/roster_writer.py DB PREFIX COUNT [--block-at N]

Waits for a line on stdin (a start signal, so that two writers overlap), opens the roster,
then for each i in range(COUNT) enrols PREFIX+i, records its D1 and W4, and prints
``committed CODE VISIT`` after each commit. With ``--block-at N`` it stops inside the N-th
record transaction, after the record row is written and before its audit row, prints
``inside`` and waits to be killed; with ``--block-in-migration`` it does the same inside the
last schema migration step.
"""

from __future__ import annotations

import sys

import pendulum

from visitplan.dates import Span, shift
from visitplan.store import Roster

SCREENING = pendulum.date(2022, 7, 27)


def main(argv: list[str]) -> None:
    db, prefix, count = argv[0], argv[1], int(argv[2])
    block_at = int(argv[4]) if len(argv) > 4 and argv[3] == "--block-at" else None
    if block_at is not None:
        _block_in_record_audit(block_at)
    if "--block-in-migration" in argv:
        _block_in_migration()
    print("ready", flush=True)
    sys.stdin.readline()
    # Opened after the start signal, so two writers may create a new database's schema at once.
    roster = Roster.open(db, today="2023-06-01")
    day1 = shift(SCREENING, Span(0, 30))
    w4 = shift(day1, Span(0, 28))
    for i in range(count):
        code = f"{prefix}{i:04d}"
        roster.enroll(code, SCREENING, reason="writer")
        print(f"committed {code} enroll", flush=True)
        roster.record(code, "D1", day1, time="09:30", reason="writer")
        print(f"committed {code} D1", flush=True)
        roster.record(code, "W4", w4, reason="writer")
        print(f"committed {code} W4", flush=True)
    roster.close()


def _block_in_record_audit(n: int) -> None:
    from visitplan.store import journal

    real = journal.append
    calls = {"record": 0}

    def append(conn, rows):  # type: ignore[no-untyped-def]
        for row in rows:
            if row["action"] == "record":
                calls["record"] += 1
                if calls["record"] == n:
                    print(f"inside {row['participant']} {row['field']}", flush=True)
                    sys.stdin.readline()  # never answered: the test kills this process here
        real(conn, rows)

    journal.append = append


def _block_in_migration() -> None:
    from visitplan.store import schema

    def blocked(conn, step=schema.MIGRATIONS[-1]):  # type: ignore[no-untyped-def]
        step(conn)  # every table and trigger created, the version not yet bumped
        print("inside migration", flush=True)
        sys.stdin.readline()  # never answered: the test kills this process here

    schema.MIGRATIONS = (*schema.MIGRATIONS[:-1], blocked)


if __name__ == "__main__":
    main(sys.argv[1:])
