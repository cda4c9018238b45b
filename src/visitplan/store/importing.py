"""Reading a roster file for import: CSV, or an Excel workbook (.xlsx, with openpyxl)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

from visitplan.errors import VisitplanError
from visitplan.participant import Participant
from visitplan.roster_csv import load_roster, read_roster


def read_roster_file(path: str | Path, *, day1_visit: str = "D1") -> list[Participant]:
    """Participants from a roster CSV, or from the first sheet of an ``.xlsx`` workbook.

    Both go through the same reader (:func:`visitplan.roster_csv.read_roster`), so the columns,
    the checks and the row-level errors (``file:row: error``) are the same.
    """
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        return load_roster(path, day1_visit=day1_visit)
    return read_roster(xlsx_to_csv(path), source=str(path), day1_visit=day1_visit)


def xlsx_to_csv(path: Path) -> str:
    """The first worksheet as CSV text: dates as YYYY-MM-DD, whole numbers without '.0'."""
    try:
        import openpyxl
    except ImportError:
        raise VisitplanError(
            "roster file", str(path), "reading .xlsx needs openpyxl: pip install 'visitplan[xlsx]'"
        ) from None
    if not path.is_file():
        raise VisitplanError("roster file", str(path), "does not exist")
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError, InvalidFileException, ...
        raise VisitplanError(
            "roster file", str(path), f"is not a readable .xlsx workbook ({type(exc).__name__})"
        ) from None
    try:
        sheet = book.worksheets[0]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for row in sheet.iter_rows(values_only=True):
            writer.writerow([_cell(v) for v in row])
    finally:
        book.close()
    return out.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if value.time() != dt.time(0):
            return value.isoformat()  # refused by the reader: a date is wanted, not a time
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
