"""The calendar of a roster, streamed, with its SEQUENCE state kept in the roster.

One calendar, three ways out: ``visitplan ics --db`` (files), the feed server (HTTP) and
``visitplan publish`` (CalDAV) all write :class:`RosterCalendar`, so for the same scope and
the same roster they give the same bytes.

- **Streamed.** Participants are read and planned a batch at a time, in code order
  (:meth:`~visitplan.store.Roster.calendar_batches`), and each is written and dropped, so
  memory stays flat however large the roster.
- **SEQUENCE state in the roster.** Each batch brings the stored state of its participants'
  events; the exporter reports the state it writes (``on_state``), and what changed is saved
  in batches, raise-only (:meth:`~visitplan.store.Roster.raise_calendar_state`). Every writer
  shares that one state, so SEQUENCE rises once for a changed event whichever of them sees
  the change first, and never for an unchanged one.
- **DTSTAMP** is, by default, the time of the latest change to the roster's facts (RFC 5545:
  when the information was last revised in the calendar store), the same for every scope,
  so the same roster gives the same bytes: a feed's ETag is known before its body is
  written, and one participant's calendar is the same from a feed, ``ics --db --participant``
  or ``--per-participant``.
"""

from __future__ import annotations

import datetime as dt
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pendulum

from visitplan.booking import timed_appointments
from visitplan.engine import plan
from visitplan.errors import VisitplanError
from visitplan.export.ics import EventState, iter_ical, to_ical
from visitplan.export.ics.writer import _default_name
from visitplan.schedule import Schedule

if TYPE_CHECKING:
    from visitplan.store import Roster
    from visitplan.store.calendars import Revision

#: Participants read, planned and written per batch.
BATCH = 500

Appointments = dict[tuple[str, str], dt.datetime]


class RosterCalendar:
    """The calendar of every participant of ``roster`` (or of ``participant`` only).

    ``options`` are :func:`~visitplan.export.ics.iter_ical`'s (``duration``, ``reminders``,
    ``window_spans``, ``dtstamp``, ``name``); ``extra`` adds appointments to the stored ones
    (each must name a visit of its participant's plan). ``revision`` is the roster's
    :class:`~visitplan.store.calendars.Revision` when the caller has read it already (the
    feed server reads it first, for its ETag).
    """

    def __init__(
        self,
        roster: Roster,
        participant: str | None = None,
        *,
        extra: Mapping[tuple[str, str], dt.datetime] | None = None,
        revision: Revision | None = None,
        batch: int = BATCH,
        **options: Any,
    ) -> None:
        self.roster = roster
        self.protocol = roster.protocol
        self.participant = participant
        self.batch = batch
        self.revision = revision or roster.calendar_revision()
        self.today = roster.today()
        if participant is None:
            count, sites, first = roster.calendar_members()
        else:
            # Refused when not enrolled, before anything is written.
            count, sites, first = 1, [roster.participant(participant).site], participant
        #: How many participants the calendar has (for a progress bar).
        self.count = count
        self._options = dict(options)
        if self._options.get("name") is None:
            self._options["name"] = self._default_name(count, sites, first)
        if self._options.get("dtstamp") is None:
            self._options["dtstamp"] = self.revised_at()
        self._booked = self._appointments(extra or {})
        # The state of the current batch, then of the one before: the exporter looks one or
        # two schedules ahead (for the calendar's name), so a batch's last events may be
        # written after the next batch was read.
        self._previous: ChainMap[str, EventState] = ChainMap({}, {})
        self._pending: dict[str, tuple[int, str]] = {}
        #: State rows written so far (new events and raised SEQUENCEs).
        self.saved = 0

    # -- what the calendar is made of -------------------------------------------------------
    def revised_at(self) -> dt.datetime:
        """When the roster's facts last changed (UTC, to the second): the default DTSTAMP.

        An empty roster has no change yet: the epoch (it has no event to stamp either).
        """
        if self.revision.at is None:
            return dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        at = pendulum.parse(self.revision.at)
        assert isinstance(at, dt.datetime)
        return at.astimezone(dt.UTC).replace(microsecond=0)

    def _default_name(self, count: int, sites: list[str | None], first: str | None) -> str:
        if count == 1 and first is not None:
            return _default_name(self.protocol, [(first, sites[0] if sites else None)])
        # What the exporter names a calendar of several participants (by their sites); the
        # list is only made long enough not to read as one participant's.
        return _default_name(self.protocol, [("", s) for s in sites] * 2)

    def _appointments(
        self, extra: Mapping[tuple[str, str], dt.datetime]
    ) -> dict[str, Appointments]:
        """The stored timed appointments (and ``extra``), zone-aware, by participant."""
        by_zone: dict[str, list[Any]] = {}
        for booked, site in self.roster.calendar_appointments(self.participant):
            by_zone.setdefault(self.protocol.site_of(site).timezone, []).append(booked)
        found: Appointments = {}
        for zone, rows in by_zone.items():
            found.update(timed_appointments(rows, zone))
        if extra:
            self._check_extra(extra)
            found.update(extra)
        grouped: dict[str, Appointments] = {}
        for key, start in found.items():
            grouped.setdefault(key[0], {})[key] = start
        return grouped

    def _check_extra(self, extra: Mapping[tuple[str, str], dt.datetime]) -> None:
        for who, visit in extra:
            if self.participant is not None and who != self.participant:
                raise VisitplanError(
                    "appointment", f"{who}/{visit}", "names no visit of the exported schedules"
                )
            schedule = plan(self.protocol, self.roster.participant(who), today=self.today)
            if visit not in {v.code for v in schedule.visits}:
                raise VisitplanError(
                    "appointment", f"{who}/{visit}", "names no visit of the exported schedules"
                )

    # -- the stream ------------------------------------------------------------------------
    def schedules(self, progress: Callable[[int], None] | None = None) -> Iterator[Schedule]:
        """Every participant's plan, a batch at a time, each batch's stored state loaded
        before its first plan is handed out (and the state written so far saved)."""
        for people, state in self.roster.calendar_batches(self.participant, self.batch):
            self.flush()
            current = {u: EventState(s, f) for u, (s, f) in state.items()}
            self._previous.maps[:] = [current, self._previous.maps[0]]
            for person in people:
                yield plan(self.protocol, person, today=self.today)
                if progress is not None:
                    progress(1)
        self.flush()

    def calendar(self, schedules: Iterable[Schedule] | None = None) -> Iterator[bytes]:
        """The calendar as a stream of chunks (``schedules``: :meth:`schedules`, or a wrapper
        of it that also writes each participant's own file)."""
        stream = self.schedules() if schedules is None else schedules
        booked = {k: v for own in self._booked.values() for k, v in own.items()}
        yield from iter_ical(
            self.protocol,
            stream,
            appointments=booked,
            previous=self._previous,
            on_state=self._record,
            drop_unplanned=True,
            **self._options,
        )
        self.flush()

    def participant_calendar(self, schedule: Schedule) -> bytes:
        """One participant's own calendar, with the same SEQUENCE as in :meth:`calendar`
        (call it while that participant's batch is current: inside :meth:`schedules`)."""
        options = {**self._options, "name": None}
        return to_ical(
            self.protocol,
            [schedule],
            appointments=self._booked.get(schedule.participant, {}),
            previous=self._previous,
            on_state=self._record,
            drop_unplanned=True,
            **options,
        )

    def _record(self, uid: str, state: EventState) -> None:
        if self._previous.get(uid) != state:
            self._pending[uid] = (state.sequence, state.fingerprint)

    def flush(self) -> None:
        """Save the state written since the last flush (raise-only, one transaction)."""
        if self._pending:
            self.saved += self.roster.raise_calendar_state(self._pending)
            self._pending = {}
