"""SEQUENCE state: what a re-export must know of the events already published.

An event keeps its SEQUENCE while its start, end and status stay the same (its fingerprint);
any change raises it by one (RFC 5545 3.8.7.4), so clients update instead of ignoring it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import attrs
import icalendar

from visitplan.errors import VisitplanError
from visitplan.export.ics.lines import _LINES
from visitplan.i18n import _


@attrs.frozen
class EventState:
    """What a re-export needs to know about an event already published under a UID."""

    sequence: int
    #: A digest of the event's start, end and status: a change means SEQUENCE must rise.
    fingerprint: str


def read_state(data: bytes | str) -> dict[str, EventState]:
    """UID -> :class:`EventState` of every event in an iCalendar file written by :func:`to_ical`.

    Pass the result as ``previous`` to the next export to the same place; also the state of a
    fresh export, for a store that keeps it instead of the file.
    """
    try:
        cal = icalendar.Calendar.from_ical(data)
        state: dict[str, EventState] = {}
        for event in cal.walk("VEVENT"):
            if "UID" not in event:
                continue
            sequence = event.get("SEQUENCE", 0)
            state[str(event["UID"])] = EventState(int(sequence), _fingerprint(event))
    except VisitplanError:
        raise
    except Exception as exc:  # icalendar raises ValueError, KeyError, TypeError, ... on junk
        raise VisitplanError(
            "previous calendar", str(exc)[:60], _("is not iCalendar data")
        ) from None
    return state


#: (id of DTSTART, DTEND, STATUS) -> fingerprint, for property values from the export's value
#: cache (lines._PROPS keeps them alive, so their ids are never reused): most events share
#: their dates and status with others, and an export of a roster asks for every event's.
_KNOWN: dict[tuple[int, int, int], str] = {}


#: The largest previous export read back (a site calendar of tens of thousands of visits is
#: tens of MB).
MAX_PREVIOUS_BYTES = 256 * 1024 * 1024


def load_state(path: Path, field: str) -> dict[str, EventState]:
    """:func:`read_state` of the calendar file at ``path`` (``field``: the option naming it).

    Only a regular file is read, up to :data:`MAX_PREVIOUS_BYTES` (a FIFO, a device such as
    ``/dev/stdout``, a folder are refused in one line); an empty file has no events. Every
    error names ``field`` and the path.
    """
    from visitplan.fileio import read_bytes

    data = read_bytes(path, field, limit=MAX_PREVIOUS_BYTES)
    if not data.strip():
        return {}
    try:
        return read_state(data)
    except VisitplanError as exc:
        raise VisitplanError(
            field, str(path), _("is not a calendar to update ({exc})").format(exc=exc)
        ) from None


def _fingerprint(event: icalendar.Component) -> str:
    values = (event.get("DTSTART"), event.get("DTEND"), event.get("STATUS"))
    key = (id(values[0]), id(values[1]), id(values[2]))
    if all(k in _LINES for k in key):
        found = _KNOWN.get(key)
        if found is None:
            if len(_KNOWN) >= 50_000:
                _KNOWN.clear()
            found = _KNOWN[key] = _digest(values)
        return found
    return _digest(values)


def _digest(values: tuple[Any, ...]) -> str:
    # Built from the serialised values so a parsed file and a fresh event agree exactly.
    parts = []
    for value in values:
        if value is None:
            parts.append("")
            continue
        text = value.to_ical()
        text = text.decode() if isinstance(text, bytes) else str(text)
        tzid = value.params.get("TZID", "") if hasattr(value, "params") else ""
        kind = value.params.get("VALUE", "") if hasattr(value, "params") else ""
        parts.append(f"{tzid};{kind};{text}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
