"""The fuzzing oracle shared by the hypothesis fuzz tests and the atheris harness.

Whatever the input, a reader either returns its result or raises :class:`VisitplanError`
with a one-line message; any other exception is a crash. What a reader accepts must then plan
and export cleanly too.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import visitplan
from visitplan import Participant, VisitplanError, plan
from visitplan.codes import STUDY_CODE
from visitplan.export.tabular import to_csv, to_json
from visitplan.protocol_file import load, loads
from visitplan.roster_csv import load_roster, read_roster

STUDY = visitplan.builtin("NCT05124925")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def one_line(exc: VisitplanError) -> None:
    text = str(exc)
    assert text and "\n" not in text and "\r" not in text, repr(text)
    assert len(text) <= 2100, len(text)


def check_protocol_text(text: str, fmt: str) -> None:
    """Parse ``text`` as a protocol; if it loads, plan a participant and export the plan."""
    try:
        protocol = loads(text, source="fuzz", fmt=fmt)
    except VisitplanError as exc:
        one_line(exc)
        return
    check_planning(protocol)


def check_protocol_bytes(data: bytes, folder: Path, suffix: str) -> None:
    """Write ``data`` to a file and read it with :func:`visitplan.load` (decoding included)."""
    path = folder / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        protocol = load(path)
    except VisitplanError as exc:
        one_line(exc)
        return
    check_planning(protocol)


def check_planning(protocol: visitplan.Protocol) -> None:
    person = Participant("F1", "2022-07-27")
    try:
        schedule = plan(protocol, person)
    except VisitplanError as exc:
        one_line(exc)
        return
    check_exports(protocol, person, schedule)


def check_exports(
    protocol: visitplan.Protocol, person: Participant, schedule: visitplan.Schedule
) -> None:
    to_json(protocol, person, schedule).encode("utf-8")  # must be writable as UTF-8
    for row in list(csv.reader(io.StringIO(to_csv([schedule]), newline="")))[1:]:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS) or _number(cell), cell


def check_roster_text(text: str) -> None:
    """Read ``text`` as a roster; whoever it accepts must have a study code and plan cleanly."""
    try:
        people = read_roster(text, source="fuzz")
    except VisitplanError as exc:
        one_line(exc)
        return
    for p in people[:3]:
        assert STUDY_CODE.match(p.code), p.code
        try:
            schedule = plan(STUDY, p)
        except VisitplanError as exc:
            one_line(exc)
            continue
        check_exports(STUDY, p, schedule)


def check_roster_bytes(data: bytes, folder: Path) -> None:
    path = folder / "fuzz.csv"
    path.write_bytes(data)
    try:
        load_roster(path)
    except VisitplanError as exc:
        one_line(exc)


def _number(cell: str) -> bool:
    import re

    return re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", cell, re.ASCII) is not None
