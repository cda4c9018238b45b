"""visitplan.codes: each code and format, and the hostile text each must refuse.

Hostile: Arabic-Indic digits (``int("٨") == 8``), a final newline (``$`` matches before it),
leading zeros, the empty string, other scripts' letters.
"""

from __future__ import annotations

import pendulum
import pytest

from visitplan import codes
from visitplan.dates import local_datetime, parse_date
from visitplan.errors import VisitplanError
from visitplan.participant import Participant
from visitplan.site import loads_site

HOSTILE_ALWAYS = ["", "\n", " ", "\x00"]


def refused(pattern, texts):
    return [t for t in texts if pattern.match(t) is not None]


def test_study_codes():
    good = ["1001", "P-001", "a.b_c", "X" * 32, "0"]
    assert [t for t in good if not codes.STUDY_CODE.match(t)] == []
    bad = [*HOSTILE_ALWAYS, "1001\n", "1001 ", " 1001", "-1", ".x", "X" * 33, "Jean Dupont",
           "١٠٠١", "P٠٠1", "Zoë", "a/b"]  # fmt: skip
    assert refused(codes.STUDY_CODE, bad) == []
    assert codes.check_code("1001") == "1001"
    with pytest.raises(VisitplanError, match=r"^site '1001\\n': must be a study code"):
        codes.check_code("1001\n", "site")
    with pytest.raises(VisitplanError):
        codes.check_code(1001)


def test_names_of_flags_and_events():
    assert [
        t for t in ["wocbp", "hbcab_positive", "a", "b2", "x" * 40] if not codes.is_name(t)
    ] == []
    bad = [*HOSTILE_ALWAYS, "wocbp\n", "Wocbp", "2b", "_a", "a-b", "x" * 41, "café", "a٢"]
    assert [t for t in bad if codes.is_name(t)] == []
    assert not codes.is_name(None)


def test_visit_and_milestone_codes():
    good = ["D1", "FU", "EOT", "C1D1", "W_4", "A" * 16]
    assert [t for t in good if not codes.is_visit_code(t)] == []
    bad = [*HOSTILE_ALWAYS, "D1\n", "d1", "1D", "D-1", "A" * 17, "D١", "Ω1"]
    assert [t for t in bad if codes.is_visit_code(t)] == []
    assert codes.MILESTONE_CODE.match("C" * 32)
    assert refused(codes.MILESTONE_CODE, [*HOSTILE_ALWAYS, "END\n", "C" * 33, "end", "E١"]) == []


def test_site_codes_and_countries():
    assert codes.SITE_CODE.match("BREST") and codes.SITE_CODE.match("FR-29_1")
    assert refused(codes.SITE_CODE, [*HOSTILE_ALWAYS, "BREST\n", "brest", "1BREST", "B" * 17]) == []
    assert codes.COUNTRY.match("FR")
    assert refused(codes.COUNTRY, [*HOSTILE_ALWAYS, "FR\n", "fr", "FRA", "F"]) == []


@pytest.mark.parametrize(
    ("code", "base", "number"),
    [
        ("FU2", "FU", 2),
        ("FU10", "FU", 10),
        ("FU999999", "FU", 999999),
        ("FU1000000", "FU", None),  # seven digits: no repeat goes that far
        ("FU02", "FU", None),  # leading zero: one code per occurrence
        ("FU0", "FU", None),  # occurrences count from 1
        ("FU", "FU", None),
        ("FU٢", "FU", None),  # Arabic-Indic two
        ("FU2\n", "FU", None),
        ("FU+2", "FU", None),
        ("FU 2", "FU", None),
        ("W4", "FU", None),
        ("", "FU", None),
        ("C1D12", "C1D1", 2),  # a base code may end in digits itself
    ],
)
def test_occurrence_numbers(code, base, number):
    assert codes.occurrence_number(code, base) == number


def test_codes_that_read_as_an_occurrence():
    assert [
        c for c in ["FU1", "FU01", "FU0", "FU123"] if not codes.reads_as_occurrence(c, "FU")
    ] == []
    assert [
        c for c in ["FU", "FUA", "FU1A", "FU٢", "W4", "FU1\n"] if codes.reads_as_occurrence(c, "FU")
    ] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("08:30", (8, 30)),
        ("00:00", (0, 0)),
        ("23:59", (23, 59)),
        ("24:00", None),
        ("23:60", None),
        ("8:30", None),
        ("08:30\n", None),  # $ would have let this in
        ("0٨:30", None),  # Arabic-Indic eight: \d and int() would read 08:30
        ("٠٨:٣٠", None),
        (" 08:30", None),
        ("08:30 ", None),
        ("08h30", None),
        ("08:30:00", None),
        ("", None),
        (None, None),
        (830, None),
    ],
)
def test_wall_clock_times(text, expected):
    assert codes.wall_time(text) == expected


def test_iso_dates_are_ascii_digits_only():
    assert codes.ISO_DATE.match("2022-07-27")
    assert (
        refused(codes.ISO_DATE, [*HOSTILE_ALWAYS, "2022-07-27\n", "٢٠٢٢-07-27", "22-07-27"]) == []
    )


# -- every reader refuses the same text ------------------------------------------------------


def test_an_appointment_time_is_read_strictly():
    day = pendulum.date(2026, 1, 5)
    assert local_datetime(day, "08:30", "Europe/Paris").hour == 8
    for text in ("08:30\n", "0٨:30", " 08:30"):
        with pytest.raises(VisitplanError, match="must be a wall-clock time written HH:MM"):
            local_datetime(day, text, "Europe/Paris")


SITE = """
[site]
code = "BREST"
timezone = "Europe/Paris"
country = "FR"
[clinic]
opens = "{opens}"
"""


def test_a_site_file_reads_its_hours_and_code_strictly():
    assert loads_site(SITE.format(opens="08:00")).opens == pendulum.time(8, 0)
    for text in ("0٨:00", "08:00\\n"):
        with pytest.raises(VisitplanError, match=r"clinic\.opens .*must be a wall-clock time"):
            loads_site(SITE.format(opens=text))
    with pytest.raises(VisitplanError, match=r"site\.code 'BREST\\n': must be 1-16 capitals"):
        loads_site(SITE.format(opens="08:00").replace('"BREST"', '"BREST\\n"'))


def test_participants_and_dates_refuse_a_final_newline_or_other_digits():
    with pytest.raises(VisitplanError, match="must be a study code"):
        Participant("1001\n", "2022-07-27")
    with pytest.raises(VisitplanError, match="must be a date written YYYY-MM-DD"):
        parse_date("٢٠٢٢-07-27")
