"""Reading a roster CSV (participant, site, screening, day1, flags) with row-level errors."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from visitplan.dates import to_date
from visitplan.errors import VisitplanError, one_line
from visitplan.fileio import read_text
from visitplan.participant import Participant, Record

REQUIRED = ("participant", "screening")


class RosterError(VisitplanError):
    """Bad rows in a roster file; ``rows`` holds one message per bad row."""

    def __init__(self, source: str, rows: list[str]) -> None:
        self.rows = rows
        more = f" (and {len(rows) - 1} more bad rows)" if len(rows) > 1 else ""
        super().__init__(source, f"{len(rows)} bad rows", "see rows")
        self.args = (one_line(rows[0] + more),)


KNOWN = ("participant", "site", "screening", "day1", "flags")


def read_roster(text: str, *, source: str = "roster", day1_visit: str = "D1") -> list[Participant]:
    """Participants from CSV text; every bad row is reported as ``source:line: error``."""
    if not isinstance(text, str):
        raise VisitplanError(source, type(text).__name__, "roster text must be a str")
    # newline="" as the csv module requires: quoted line breaks stay in their cell, and files
    # with old Mac line ends (CR only) read like any other.
    # strict: an unclosed quote is an error, not a cell swallowing the rest of the file.
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        raise VisitplanError(f"{source}:1: header", None, f"is not valid CSV: {exc}") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise VisitplanError(
            f"{source}: header", ",".join(header), f"needs the columns {', '.join(REQUIRED)}"
        )
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        # DictReader would keep the last of two equal columns and drop the first silently.
        raise VisitplanError(f"{source}: header", ",".join(twice), "column appears twice")
    unknown = [c for c in header if c not in KNOWN]
    if unknown:
        raise VisitplanError(
            f"{source}: header", ",".join(unknown), f"unknown column; known: {', '.join(KNOWN)}"
        )
    people: list[Participant] = []
    errors: list[str] = []
    seen: set[str] = set()
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            # A broken line (e.g. a cell over the csv module's size limit) ends the file.
            errors.append(f"{source}:{reader.line_num + 1}: row is not valid CSV: {exc}")
            break
        line = reader.line_num
        try:
            if None in row:
                cells = len(header) + len(row[None])
                raise VisitplanError(
                    "row", f"{cells} cells", f"has more cells than the header's {len(header)}"
                )
            code = (row.get("participant") or "").strip()
            if code in seen:
                raise VisitplanError("participant", code, "appears twice in the roster")
            flags = frozenset(f.strip() for f in (row.get("flags") or "").split(";") if f.strip())
            records: tuple[Record, ...] = ()
            day1 = (row.get("day1") or "").strip()
            if day1:
                records = (Record(day1_visit, to_date(day1, "day1")),)
            people.append(
                Participant(
                    code,
                    (row.get("screening") or "").strip(),
                    records=records,
                    flags=flags,
                    site=(row.get("site") or "").strip() or None,
                )
            )
            seen.add(code)
        except VisitplanError as exc:
            errors.append(f"{source}:{line}: {exc}")
    if errors:
        raise RosterError(source, errors)
    return people


def load_roster(path: str | Path, **kwargs: str) -> list[Participant]:
    """Read a roster CSV file (UTF-8, a BOM from Excel is accepted)."""
    text = read_text(path, "roster file")
    return read_roster(text, source=str(path), **kwargs)
