"""Publishing calendars from the roster: the same calendar, wherever it goes.

- :mod:`~visitplan.publish.calendar`: :class:`RosterCalendar`, the calendar of a roster (or
  of one participant) streamed a batch of participants at a time, with its SEQUENCE state
  kept in the roster. ``visitplan ics --db``, the feed server (:mod:`visitplan.server`) and
  ``visitplan publish`` all write it, so they give the same UIDs, SEQUENCE and VTIMEZONEs.
- :mod:`~visitplan.publish.push`: ``visitplan publish``, the events pushed to a CalDAV
  calendar collection, one resource per UID, idempotent.

The calendars themselves come from :mod:`visitplan.export.ics`, the plans from the engine:
nothing here computes a date.
"""

from visitplan.publish.calendar import RosterCalendar

__all__ = ["RosterCalendar"]
