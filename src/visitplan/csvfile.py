"""CSV: the one writer behind every CSV visitplan writes (schedules, CDISC datasets,
bookings), and the strict row reader behind every CSV it reads (rosters, bookings, histories).

Two things make a cell dangerous when a coordinator opens the file in a spreadsheet:

* a cell that starts like a formula (``=``, ``+``, ``-``, ``@``, a tab, a CR or LF) is run as
  one: :func:`safe_cell` prefixes it with ``'`` so it shows as text, while a plain decimal
  number (``-35``) stays a number;
* a line break inside a cell: the csv module quotes a cell only for the characters of its
  line end, so with ``"\\n"`` line ends a bare CR was written unquoted and every reader split
  the row there, leaving the text after it (``=1+1``) as the first cell of a new row.
  :func:`to_csv` quotes every cell holding a CR or an LF, whatever the line end.

A French spreadsheet (Excel set up for France) splits a CSV file on ``;`` (the comma is its
decimal mark) and reads it as UTF-8 only after a byte-order mark: ``to_csv(..., excel=True)``
writes that dialect, and :func:`read_rows` reads either separator, telling them apart by the
header line.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TextIO

#: What a spreadsheet reads as the start of a formula (OWASP's list, and a line feed).
_FORMULA_START = "=+-@\t\r\n"

#: A plain decimal number such as -3 or +2.5e3. Not float(): it also reads "-inf", "+nan" and
#: "+1_000", which a spreadsheet would take for a formula (a name reference), not a number.
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


def safe_cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (``=``, ``+``, ``-``, ``@``, tab,
    CR or LF first): such a cell gets a ``'`` prefix, unless it is a plain decimal number."""
    text = "" if value is None else str(value)
    if text and text[0] in _FORMULA_START and _NUMBER.fullmatch(text) is None:
        return "'" + text
    return text


#: What starts a file for a spreadsheet to read it as UTF-8 (the byte-order mark U+FEFF).
BOM = "\ufeff"


def to_csv(header: Sequence[str], rows: Iterable[Iterable[object]], *, excel: bool = False) -> str:
    """``header`` then ``rows`` as CSV text, every cell through :func:`safe_cell`.

    A row with a CR or LF in a cell is written with every cell quoted, so that it reads back
    as one row with any CSV reader (the csv module alone would leave a bare CR unquoted).
    ``excel``: the dialect of a French spreadsheet, ``;`` between cells and a byte-order mark
    first; the cells themselves are the same.
    """
    out = io.StringIO()
    if excel:
        out.write(BOM)
    write_rows(out, header, rows, delimiter=";" if excel else ",")
    return out.getvalue()


def write_rows(
    out: TextIO, header: Sequence[str], rows: Iterable[Iterable[object]], delimiter: str = ","
) -> None:
    """:func:`to_csv` into an open text stream, one row at a time."""
    plain = csv.writer(out, lineterminator="\n", delimiter=delimiter)
    quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL, delimiter=delimiter)
    for row in _with_header(header, rows):
        cells = [safe_cell(c) for c in row]
        broken = any("\r" in c or "\n" in c for c in cells)
        (quoted if broken else plain).writerow(cells)


def _with_header(
    header: Sequence[str], rows: Iterable[Iterable[object]]
) -> Iterator[Iterable[object]]:
    yield header
    yield from rows


class CsvError(Exception):
    """A line the CSV reader cannot read: ``line`` where its row starts, ``reason`` in words."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


def delimiter_of(text: str) -> str:
    """``;`` when the header line (the first) holds more of them than commas, else ``,``:
    a French spreadsheet's CSV or anyone else's, told apart by the column names, which hold
    neither (never guessed from the data, whose cells may hold both)."""
    first = text.lstrip(BOM).split("\n", 1)[0]
    return ";" if first.count(";") > first.count(",") else ","


def read_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """``(line, cells)`` of each row of CSV ``text``, ``line`` the row's last physical line.

    Read as the csv module needs (``newline=""``: a quoted line break stays in its cell, and
    CR-only line ends read like any other) and strictly: an unclosed quote or a cell over the
    csv module's 128 kB limit raises :class:`CsvError` with the line its row starts on, instead
    of a cell swallowing the rest of the file or a traceback. Cells are separated by ``,`` or,
    as a French spreadsheet writes them, ``;`` (:func:`delimiter_of`); a leading byte-order
    mark is not part of the first cell.
    """
    text = text.removeprefix(BOM)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, delimiter=delimiter_of(text))
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            reason = str(exc)
            if reason == "unexpected end of data":
                reason = "a quote is opened and never closed"
            raise CsvError(start, reason) from None
        yield reader.line_num, cells
