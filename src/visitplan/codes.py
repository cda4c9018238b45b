"""Codes and formats: each written once, as an ASCII pattern anchored at both ends.

Every pattern starts with ``\\A`` and ends with ``\\Z``: ``$`` also matches before a final
newline, so ``"1001\\n"`` would pass. Every digit is ``[0-9]``: ``\\d`` also reads
Arabic-Indic or Devanagari digits, and ``int("٨")`` is 8, so ``"0٨:30"`` would read as
08:30. Readers (protocol files, site files, rosters, bookings, the CLI) and the model's own
checks use these, so they refuse the same text.
"""

from __future__ import annotations

import re
from typing import TypeGuard

from visitplan.errors import VisitplanError

#: A study code (a participant; a participant's site as a roster names it): letters, digits,
#: dot, dash, underscore, no spaces, so no person's name fits by accident.
STUDY_CODE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,31}\Z", re.ASCII)
STUDY_CODE_RULE = "must be a study code of 1-32 letters, digits, '.', '-' or '_' (no names)"

#: A flag or event name, the same form a protocol uses for conditions (``hbcab_positive``).
NAME = re.compile(r"\A[a-z][a-z0-9_]{0,39}\Z", re.ASCII)
NAME_RULE = "must be a lower-case name such as 'hbcab_positive'"

#: A protocol's visit or procedure code (``D1``, ``FU``, ``BIOPSY``).
VISIT_CODE = re.compile(r"\A[A-Z][A-Z0-9_]{0,15}\Z", re.ASCII)
#: A protocol's milestone code (``CONTRACEPTION_END``).
MILESTONE_CODE = re.compile(r"\A[A-Z][A-Z0-9_]{0,31}\Z", re.ASCII)
#: A site file's code (``BREST``): capitals, digits, ``-`` and ``_``.
SITE_CODE = re.compile(r"\A[A-Z][A-Z0-9_-]{0,15}\Z", re.ASCII)
#: An ISO 3166 two-letter country code (``FR``).
COUNTRY = re.compile(r"\A[A-Z]{2}\Z", re.ASCII)

#: The number of a repeating visit's occurrence as written after its code (``FU2``): no
#: leading zero, so each occurrence has one code.
OCCURRENCE_NUMBER = re.compile(r"\A[1-9][0-9]{0,5}\Z", re.ASCII)

#: A wall-clock time ``HH:MM``, 00:00 to 23:59.
WALL_TIME = re.compile(r"\A([01][0-9]|2[0-3]):([0-5][0-9])\Z", re.ASCII)
#: A calendar date ``YYYY-MM-DD`` (whether it is a day of the calendar is checked by dates).
ISO_DATE = re.compile(r"\A([0-9]{4})-([0-9]{2})-([0-9]{2})\Z", re.ASCII)


def check_code(value: object, field: str = "participant") -> str:
    """Return ``value`` if it is a valid study code, else raise :class:`VisitplanError`."""
    if not isinstance(value, str) or not STUDY_CODE.match(value):
        raise VisitplanError(field, value, STUDY_CODE_RULE)
    return value


def is_name(value: object) -> TypeGuard[str]:
    """True if ``value`` is a flag or event name (see :data:`NAME`)."""
    return isinstance(value, str) and NAME.match(value) is not None


def is_visit_code(value: object) -> TypeGuard[str]:
    """True if ``value`` is a protocol visit or procedure code (see :data:`VISIT_CODE`)."""
    return isinstance(value, str) and VISIT_CODE.match(value) is not None


def occurrence_number(code: str, base: str) -> int | None:
    """The occurrence of repeating visit ``base`` that ``code`` names: ``FU2`` of ``FU`` is 2.

    None unless ``code`` is ``base`` followed by the number written canonically (``FU02``,
    ``FU0`` and ``FU٢`` name no occurrence).
    """
    rest = code[len(base) :]
    return int(rest) if code.startswith(base) and OCCURRENCE_NUMBER.match(rest) else None


def reads_as_occurrence(code: str, base: str) -> bool:
    """True if ``code`` is ``base`` followed by digits (``FU1``, ``FU01``, ``FU0``).

    A protocol refuses such a visit code beside a repeating ``base``: a person (or a
    spreadsheet dropping a zero) could take it for one of its occurrences.
    """
    rest = code[len(base) :]
    return code.startswith(base) and re.fullmatch("[0-9]+", rest, re.ASCII) is not None


def wall_time(text: object) -> tuple[int, int] | None:
    """``(hour, minute)`` of a time written ``HH:MM`` (00:00-23:59), else None.

    Nothing around it is accepted, not even a final newline.
    """
    m = WALL_TIME.match(text) if isinstance(text, str) else None
    return None if m is None else (int(m.group(1)), int(m.group(2)))
