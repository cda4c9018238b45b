"""iCalendar (RFC 5545) export of schedules: one calendar per participant or per site.

Every visit is one VEVENT: an all-day event on its date (DTEND the next day, exclusive) or, when
an appointment is known, a timed event in the site's zone with a rule-based VTIMEZONE. UIDs come
only from the study id, the participant's study code and the visit code, so a re-export updates
events instead of duplicating them; SEQUENCE rises exactly for events whose date, time or status
changed since the ``previous`` export (see :func:`read_state`). No personal data is written:
participants appear by study code only, and there is no ORGANIZER, ATTENDEE or METHOD.

The exporter computes no date: dates come from the engine, the exclusive end of an all-day
event from :func:`visitplan.dates.next_day`.

The package is split by seam: :mod:`~visitplan.export.ics.events` maps a schedule to events,
:mod:`~visitplan.export.ics.state` keeps SEQUENCE across exports,
:mod:`~visitplan.export.ics.lines` writes content lines, and
:mod:`~visitplan.export.ics.writer` assembles the calendar. The public API is the names below.
"""

from __future__ import annotations

from visitplan.export.ics.events import UID_DOMAIN as UID_DOMAIN
from visitplan.export.ics.events import Reminders, uid, uid_participant
from visitplan.export.ics.state import EventState, read_state
from visitplan.export.ics.writer import PRODID as PRODID
from visitplan.export.ics.writer import check_appointment, iter_ical, to_ical

__all__ = [
    "EventState",
    "Reminders",
    "check_appointment",
    "iter_ical",
    "read_state",
    "to_ical",
    "uid",
    "uid_participant",
]
