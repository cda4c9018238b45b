"""Reading a roster file for import: CSV, or an Excel workbook (.xlsx, with openpyxl).

A workbook is a zip of XML files, so it is checked before openpyxl opens it: a regular file
of at most :data:`MAX_XLSX_BYTES`, whose members unpack to at most
:data:`MAX_XLSX_UNPACKED` in all and none more than :data:`MAX_XLSX_RATIO` times its packed
size (a 3 MB "zip bomb" used to grow past 300 MB). openpyxl parses the XML with defusedxml
(no entity expansion, no external entities) when it is installed, as the ``xlsx`` extra does.
Rows then go one at a time to the CSV reader's own row reader, which stops past
:data:`~visitplan.roster_csv.MAX_ROSTER_ROWS`.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

from visitplan.errors import VisitplanError
from visitplan.fileio import read_bytes, size_limit
from visitplan.i18n import _
from visitplan.participant import Participant
from visitplan.roster_csv import KNOWN, load_roster, read_rows

#: The largest workbook read: a roster of 100,000 rows is a few MB.
MAX_XLSX_BYTES = 32 * 1024 * 1024
#: The most its members may unpack to, in all.
MAX_XLSX_UNPACKED = 256 * 1024 * 1024
#: The most a member over 1 MB may grow when unpacked (XML of a real sheet: about 5 to 20).
MAX_XLSX_RATIO = 100
#: Columns read from the sheet: a roster has five (more are refused by their header anyway),
#: so a sheet claiming 16,384 columns costs nothing.
_MAX_COLUMNS = 4 * len(KNOWN)


#: The most participants one import enrols. Each is checked and planned inside the roster's
#: write transaction, which other commands wait for (``--wait``): 10,000 take seconds, where
#: a million took minutes and 734 MB. Import a larger roster as several files.
MAX_IMPORT_ROWS = 10_000


def read_roster_file(
    path: str | Path,
    *,
    day1_visit: str = "D1",
    max_rows: int = MAX_IMPORT_ROWS,
    dayfirst: bool = False,
) -> list[Participant]:
    """Participants from a roster CSV, or from the first sheet of an ``.xlsx`` workbook: at
    most ``max_rows``, a longer file refused once the reader is past them.

    Both go through the same reader (:func:`visitplan.roster_csv.read_rows`), so the columns,
    the checks and the row-level errors (``file:row: error``) are the same. ``dayfirst``:
    dates written DD/MM/YYYY are read day first (a workbook's date cells are dates already).
    """
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        return load_roster(path, day1_visit=day1_visit, max_rows=max_rows, dayfirst=dayfirst)
    return read_rows(
        xlsx_rows(path),
        source=str(path),
        day1_visit=day1_visit,
        max_rows=max_rows,
        dayfirst=dayfirst,
    )


def xlsx_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """The first worksheet's rows as ``(row number, cells)``: dates as YYYY-MM-DD, whole
    numbers without '.0', trailing empty cells left out. Read lazily, one row at a time."""
    try:
        import openpyxl
    except ImportError:
        raise VisitplanError(
            "roster file",
            str(path),
            _("reading .xlsx needs openpyxl: pip install 'visitplan[xlsx]'"),
        ) from None
    # Read once, checked, then opened from memory: the file cannot change in between.
    data = read_bytes(
        path, "roster file", limit=MAX_XLSX_BYTES, usual="a roster workbook is a few MB"
    )
    _check_zip(data, path)
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError, InvalidFileException, ...
        # openpyxl wraps what went wrong in a ValueError: name the cause (EntitiesForbidden).
        cause = exc.__cause__ or exc.__context__ or exc
        raise VisitplanError(
            "roster file",
            str(path),
            _("is not a readable .xlsx workbook ({name})").format(name=type(cause).__name__),
        ) from None
    number = 0
    try:
        if not book.worksheets:
            raise VisitplanError("roster file", str(path), _("has no worksheet"))
        rows = book.worksheets[0].iter_rows(max_col=_MAX_COLUMNS, values_only=True)
        while True:
            number += 1
            try:
                row = next(rows)
            except StopIteration:
                return
            except Exception as exc:  # a numeric cell holding text, broken XML, ...
                raise VisitplanError(
                    f"{path}:{number}", type(exc).__name__, _("is a row openpyxl cannot read")
                ) from None
            cells = [_cell(v) for v in row]
            while cells and not cells[-1]:
                cells.pop()
            yield number, cells
    finally:
        book.close()


def _check_zip(data: bytes, path: Path) -> None:
    """Refuse a workbook whose members would unpack to too much (see the module's limits).

    The sizes are those the zip declares: Python's zipfile never unpacks a member past its
    declared size, so they bound what openpyxl can be made to read.
    """
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise VisitplanError(
            "roster file", str(path), _("is not a readable .xlsx workbook (not a zip file)")
        ) from None
    total = 0
    for info in members:
        total += info.file_size
        packed = max(info.compress_size, 1)
        if info.file_size > 1024 * 1024 and info.file_size > MAX_XLSX_RATIO * packed:
            raise VisitplanError(
                "roster file",
                str(path),
                _(
                    "holds {filename!r}, which unpacks {value} times larger (at most "
                    "{MAX_XLSX_RATIO}): not a workbook, a zip bomb"
                ).format(
                    filename=info.filename,
                    value=info.file_size // packed,
                    MAX_XLSX_RATIO=MAX_XLSX_RATIO,
                ),
            )
        if total > MAX_XLSX_UNPACKED:
            raise VisitplanError(
                "roster file",
                str(path),
                _("unpacks to more than {MAX_XLSX_UNPACKED}: not a roster workbook").format(
                    MAX_XLSX_UNPACKED=size_limit(MAX_XLSX_UNPACKED)
                ),
            )


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
