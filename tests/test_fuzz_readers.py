"""Fuzzing the other readers and the free-text outputs with hypothesis (issue 18, "Also").

Each reader (washout history CSV and JSON, site files, bookings, .xlsx rosters) either returns
its result or raises VisitplanError with one line; free text (a calendar's name, a visit's or
site's name, a reason) goes into CSV, iCalendar and terminal tables without breaking them.
Bounded for CI like tests/test_fuzz.py (VISITPLAN_FUZZ_EXAMPLES raises the bound).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import attrs
import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.fuzzing import one_line
from tests.test_fuzz import EXAMPLES, FUZZ

import visitplan
from visitplan import Participant, VisitplanError
from visitplan.booking import read_bookings
from visitplan.csvfile import to_csv
from visitplan.eligibility import check, read_history
from visitplan.errors import printable
from visitplan.export.ics import to_ical
from visitplan.model import Site
from visitplan.site import loads_site

pytestmark = pytest.mark.fuzz

#: Readers that build a workbook or a database per example: fewer examples in CI.
SLOW = settings(FUZZ, max_examples=max(8, EXAMPLES // 8))
STUDY = visitplan.builtin("NCT05124925")
SITE_TOML = (Path(visitplan.__file__).parent / "sites" / "BREST.toml").read_text()

#: Text with what breaks outputs: line ends, escape sequences, C1 controls, line separators,
#: formula starts, quotes, CSV and iCalendar separators, non-ASCII and lone surrogates.
_PIECES = [*"\r\n\t\x00\x1b\x07\x7f\x85\u2028\u2029=+-@\"',;:\\[]/ aZ09é✓", "\ud800",
           "END:VEVENT", "BEGIN:VEVENT", "[/b]", "\x1b[2J"]  # fmt: skip
nasty = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join) | st.text(max_size=40)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | nasty
    | st.sampled_from(["live_vaccine", "investigational", "2022-01-01", "12 days", "1e308"])
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12),
                                                                          inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


def reads_or_refuses(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except VisitplanError as exc:
        one_line(exc)
        return None


# -- washout histories --------------------------------------------------------------------------

history_items = st.fixed_dictionaries(
    {"rule": scalars},
    optional={k: scalars for k in ("what", "last_dose", "last_change", "half_life", "extra")},
)


@FUZZ
@given(st.lists(history_items, max_size=4) | json_values)
def test_fuzz_history_json(doc):
    try:
        text = json.dumps(doc, allow_nan=True)
    except (ValueError, RecursionError):
        return
    items = reads_or_refuses(read_history, text, source="h.json", fmt="json")
    if items is not None:
        reads_or_refuses(check, STUDY, Participant("1001", "2022-07-27"), items)


@FUZZ
@given(
    st.lists(st.lists(nasty | st.sampled_from(["live_vaccine", "2022-01-01", "3 weeks"]),
                      max_size=6), max_size=5),
    st.sampled_from(["\n", "\r\n", "\r"]),
)  # fmt: skip
def test_fuzz_history_csv(rows, end):
    text = "rule,what,last_dose,last_change,half_life" + end
    text += end.join(",".join(row) for row in rows)
    items = reads_or_refuses(read_history, text, source="h.csv")
    if items is not None:
        reads_or_refuses(check, STUDY, Participant("1001", "2022-07-27"), items)


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_history_random_text(text):
    reads_or_refuses(read_history, text, source="h.csv")
    reads_or_refuses(read_history, text, source="h.json", fmt="json")


# -- site files -----------------------------------------------------------------------------------


@FUZZ
@given(
    st.sampled_from(["code", "name", "timezone", "country", "policy", "opens", "closes", "days",
                     "biopsy"]),
    scalars | st.lists(scalars, max_size=3),
)  # fmt: skip
def test_fuzz_site_values(key, value):
    import tomllib

    import tomli_w

    doc = tomllib.loads(SITE_TOML)
    table = {"opens": "clinic", "closes": "clinic", "days": "clinic", "biopsy": "capacity"}
    doc[table.get(key, "site")][key] = value
    try:
        text = tomli_w.dumps(doc)
    except (TypeError, ValueError):
        return  # None or a lone surrogate: not writable as TOML
    reads_or_refuses(loads_site, text, source="s.toml")


@FUZZ
@given(st.integers(0, len(SITE_TOML)), st.text(max_size=30) | nasty)
def test_fuzz_site_text_edits(at, insert):
    reads_or_refuses(loads_site, SITE_TOML[:at] + insert + SITE_TOML[at:], source="s.toml")


# -- bookings -------------------------------------------------------------------------------------


@FUZZ
@given(
    st.lists(st.lists(nasty | st.sampled_from(["1001", "W4", "2022-08-24", "09:00", "02:30"]),
                      min_size=0, max_size=5), max_size=5),
    st.sampled_from(["\n", "\r\n", "\r"]),
)  # fmt: skip
def test_fuzz_bookings(rows, end):
    text = "participant,visit,date,time" + end + end.join(",".join(r) for r in rows)
    found = reads_or_refuses(read_bookings, text, "Europe/Paris", source="b.csv")
    for when in (found or {}).values():
        assert when.tzinfo is not None


# -- .xlsx rosters ---------------------------------------------------------------------------------

cell_values = (
    st.none()
    | st.integers(-(10**15), 10**15)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.dates(min_value=__import__("datetime").date(1900, 3, 1))
    | st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=20)
    | st.sampled_from(["1001", "BREST", "2022-07-27", "hbcab_positive", "=1+1"])
)


@SLOW
@given(st.lists(st.lists(cell_values, max_size=6), max_size=5), st.booleans())
def test_fuzz_xlsx_roster(tmp_path_factory, rows, header):
    openpyxl = pytest.importorskip("openpyxl")
    from visitplan.store.importing import read_roster_file

    book = openpyxl.Workbook()
    if header:
        book.active.append(["participant", "site", "screening", "day1", "flags"])
    for row in rows:
        book.active.append(row)
    path = tmp_path_factory.mktemp("xlsx") / "r.xlsx"
    book.save(path)
    people = reads_or_refuses(read_roster_file, path)
    for p in people or []:
        assert p.code == p.code.strip() and p.code


@SLOW
@given(st.binary(max_size=400))
def test_fuzz_xlsx_bytes(tmp_path_factory, data):
    from visitplan.store.importing import read_roster_file

    path = tmp_path_factory.mktemp("xlsx") / "r.xlsx"
    path.write_bytes(b"PK\x03\x04" + data if data[:1] == b"\x00" else data)
    reads_or_refuses(read_roster_file, path)


# -- free text into outputs ----------------------------------------------------------------------


@FUZZ
@given(st.lists(st.lists(nasty, min_size=3, max_size=3), max_size=4))
def test_fuzz_csv_cells_read_back_one_row_each(rows):
    try:
        text = to_csv(["a", "b", "c"], rows)
    except UnicodeEncodeError:
        return
    back = list(csv.reader(io.StringIO(text, newline="")))
    assert len(back) == len(rows) + 1
    for row in back[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r", "\n")), cell


@FUZZ
@given(nasty, nasty)
def test_fuzz_calendar_text_forges_nothing(visit_name, site_name):
    visits = tuple(attrs.evolve(v, name=visit_name) if v.code == "W4" else v for v in STUDY.visits)
    study = attrs.evolve(STUDY, visits=visits,
                         sites=(Site("BREST", site_name, "Europe/Paris", "FR"),))  # fmt: skip
    try:
        schedule = study.plan(Participant("1001", "2022-07-27"))
    except VisitplanError as exc:
        one_line(exc)
        return
    data = to_ical(study, [schedule], reminders=None)
    assert data.count(b"\r") == data.count(b"\r\n")
    assert not any((b < 0x20 and b not in (0x09, 0x0A, 0x0D)) or b == 0x7F for b in data)
    events = icalendar.Calendar.from_ical(data).walk("VEVENT")
    assert len(events) == len(schedule.visits) + len(schedule.milestones)


@FUZZ
@given(nasty)
def test_fuzz_calendar_name(name):
    try:
        data = to_ical(STUDY, [], name=name)
    except VisitplanError as exc:
        one_line(exc)
        return
    assert data.count(b"\r") == data.count(b"\r\n")
    assert str(icalendar.Calendar.from_ical(data)["X-WR-CALNAME"]) == name


@FUZZ
@given(nasty)
def test_fuzz_printable_is_one_clean_line(text):
    shown = printable(text)
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in shown), shown
    assert "\u2028" not in shown and "\u2029" not in shown
