"""Reading a roster CSV (participant, site, screening, day1, flags) with row-level errors."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from visitplan import csvfile
from visitplan.dates import to_date
from visitplan.errors import VisitplanError, one_line
from visitplan.fileio import read_text
from visitplan.i18n import _
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


#: The most participants one roster file may list: a site's roster is hundreds, a study's a
#: few thousand. Reading stops at the first row past it, so a huge file costs no more memory
#: than this many participants (about 75 MB); split a larger roster into several files.
MAX_ROSTER_ROWS = 100_000
#: The largest roster file read (100,000 rows of a few dozen bytes fit in a few MB).
MAX_ROSTER_BYTES = 32 * 1024 * 1024


def read_roster(
    text: str,
    *,
    source: str = "roster",
    day1_visit: str = "D1",
    max_rows: int = MAX_ROSTER_ROWS,
    dayfirst: bool = False,
) -> list[Participant]:
    """Participants from CSV text (``,`` or ``;`` between cells, as a French spreadsheet
    writes it); every bad row is reported as ``source:line: error``.

    At most ``max_rows`` participants: a file with more is refused as soon as the reader gets
    past them. Dates are YYYY-MM-DD; with ``dayfirst``, DD/MM/YYYY too (31/01/2023). A date
    written with slashes is never guessed: without ``dayfirst`` it is refused.
    """
    if not isinstance(text, str):
        raise VisitplanError(source, type(text).__name__, _("roster text must be a str"))

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            yield from csvfile.read_rows(text)
        except csvfile.CsvError as exc:
            if exc.line == 1:
                raise VisitplanError(
                    f"{source}:1: header",
                    None,
                    _("is not valid CSV: {reason}").format(reason=exc.reason),
                ) from None
            # A broken line (e.g. a cell over the csv module's size limit) ends the file.
            raise _BrokenRow(
                _("{source}:{line}: row is not valid CSV: {reason}").format(
                    source=source, line=exc.line, reason=exc.reason
                )
            ) from None

    return read_rows(
        rows(), source=source, day1_visit=day1_visit, max_rows=max_rows, dayfirst=dayfirst
    )


class _BrokenRow(Exception):
    """A row the file's reader cannot read: reported with the bad rows before it, and the
    last one reported (nothing after it can be read)."""


def read_rows(
    rows: Iterable[tuple[int, list[str]]],
    *,
    source: str = "roster",
    day1_visit: str = "D1",
    max_rows: int = MAX_ROSTER_ROWS,
    dayfirst: bool = False,
) -> list[Participant]:
    """Participants from ``(line, cells)`` rows, the first the header: the reader behind
    :func:`read_roster` and the ``.xlsx`` import, which therefore refuse the same rows with
    the same messages. Rows are read one at a time, and no more than ``max_rows`` + 1."""
    it = iter(rows)
    first = next(it, None)
    header = first[1] if first is not None else []
    _check_header(header, source)
    people: list[Participant] = []
    errors: list[str] = []
    seen: set[str] = set()
    count = 0
    try:
        for read, (line, cells) in enumerate(it, start=1):
            count += bool(cells)
            # Blank rows count too, twice as many allowed: a sheet padded with a million
            # empty rows is refused like a million participants.
            if count > max_rows or read > 2 * max_rows:
                raise VisitplanError(
                    source,
                    f"more than {max_rows:,} rows",
                    _("is too long for one roster; split it"),
                )
            if not cells:
                continue  # a blank line
            try:
                person = _participant(header, cells, seen, day1_visit, dayfirst)
            except VisitplanError as exc:
                errors.append(f"{source}:{line}: {exc}")
                continue
            seen.add(person.code)
            people.append(person)
    except _BrokenRow as exc:
        errors.append(str(exc))
    if errors:
        raise RosterError(source, errors)
    return people


def _check_header(header: list[str], source: str) -> None:
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise VisitplanError(
            f"{source}: header",
            ",".join(header),
            _("needs the columns {items}").format(items=", ".join(REQUIRED)),
        )
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        # A dict of the row would keep the last of two equal columns and drop the first.
        raise VisitplanError(f"{source}: header", ",".join(twice), _("column appears twice"))
    unknown = [c for c in header if c not in KNOWN]
    if unknown:
        raise VisitplanError(
            f"{source}: header",
            ",".join(unknown),
            _("unknown column; known: {items}").format(items=", ".join(KNOWN)),
        )


#: A date written day first or month first: 31/01/2023, 1.2.2023, 31-01-2023.
_SLASHED = re.compile(r"([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4})", re.ASCII)


def date_cell(text: str, field: str, dayfirst: bool) -> str:
    """A date cell as YYYY-MM-DD: ISO as written, or DD/MM/YYYY with ``dayfirst``.

    01/02/2023 is 1 February in France and 2 January in the US: such a date is read only when
    the file is said to be day first (``--dayfirst``), never guessed from its numbers.
    """
    m = _SLASHED.fullmatch(text)
    if m is None:
        return text
    if not dayfirst:
        raise VisitplanError(
            field,
            text,
            _(
                "is not written YYYY-MM-DD; a day-first date (31/01/2023) is read only with "
                "--dayfirst"
            ),
        )
    day, month, year = m.groups()
    return f"{year}-{int(month):02d}-{int(day):02d}"


def _participant(
    header: list[str], cells: list[str], seen: set[str], day1_visit: str, dayfirst: bool = False
) -> Participant:
    if len(cells) > len(header):
        raise VisitplanError(
            "row",
            f"{len(cells)} cells",
            _("has more cells than the header's {count}").format(count=len(header)),
        )
    row = dict(zip(header, cells, strict=False))
    code = (row.get("participant") or "").strip()
    if code in seen:
        raise VisitplanError("participant", code, _("appears twice in the roster"))
    flags = frozenset(f.strip() for f in (row.get("flags") or "").split(";") if f.strip())
    screening = date_cell((row.get("screening") or "").strip(), "screening", dayfirst)
    records: tuple[Record, ...] = ()
    day1 = (row.get("day1") or "").strip()
    if day1:
        records = (Record(day1_visit, to_date(date_cell(day1, "day1", dayfirst), "day1")),)
    return Participant(
        code,
        screening,
        records=records,
        flags=flags,
        site=(row.get("site") or "").strip() or None,
    )


def load_roster(
    path: str | Path,
    *,
    day1_visit: str = "D1",
    max_rows: int = MAX_ROSTER_ROWS,
    dayfirst: bool = False,
) -> list[Participant]:
    """Read a roster CSV file (UTF-8, a BOM from Excel is accepted, ``,`` or ``;`` between
    cells; at most :data:`MAX_ROSTER_BYTES` and ``max_rows`` participants)."""
    text = read_text(path, "roster file", limit=MAX_ROSTER_BYTES)
    return read_roster(
        text, source=str(path), day1_visit=day1_visit, max_rows=max_rows, dayfirst=dayfirst
    )
