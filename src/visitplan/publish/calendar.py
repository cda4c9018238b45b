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


def builtin_site_calendars(protocol: Any) -> dict[str, Any]:
    """Site code -> the built-in site file of each of the protocol's sites that has one: what
    a booked appointment is checked against (closed days, clinic hours) and flagged
    ``(re-book)`` by when it breaks a rule, as ``visitplan ics`` does by default."""
    from visitplan.site import builtin_site_names, site_for

    known = set(builtin_site_names())
    return {s.code: site_for(s.code, s) for s in protocol.sites if s.code in known}


class RosterCalendar:
    """The calendar of every participant of ``roster`` (or of ``participant`` only).

    ``options`` are :func:`~visitplan.export.ics.iter_ical`'s (``duration``, ``reminders``,
    ``window_spans``, ``dtstamp``, ``name``, ``site_calendars``). ``revision`` is the
    roster's :class:`~visitplan.store.calendars.Revision` when the caller has read it already
    (the feed server reads it first, for its ETag).

    One stored booking never blocks the calendar: an appointment the calendar cannot hold as
    a timed event (a wall time the zone does not give, or before its current daylight-saving
    rule) is left out, ``note`` is called with why, and its visit is an all-day event.
    """

    def __init__(
        self,
        roster: Roster,
        participant: str | None = None,
        *,
        revision: Revision | None = None,
        note: Callable[[str], None] | None = None,
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
        if self._options.get("site_calendars") is None:
            self._options["site_calendars"] = builtin_site_calendars(self.protocol)
        self._note = note or (lambda _: None)
        self._booked = self._appointments()
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

    def _appointments(self) -> dict[str, Appointments]:
        """The stored timed appointments, zone-aware, by participant (see the class)."""
        from types import SimpleNamespace

        from visitplan.export.ics import check_appointment

        duration = self._options.get("duration", dt.timedelta(minutes=60))
        grouped: dict[str, Appointments] = {}
        for booked, site in self.roster.calendar_appointments(self.participant):
            try:
                zone = self.protocol.site_of(site).timezone
                member = SimpleNamespace(participant=booked.participant, site=site)
                for key, start in timed_appointments([booked], zone).items():
                    check_appointment(self.protocol, member, booked.visit, start, duration)  # type: ignore[arg-type]
                    grouped.setdefault(key[0], {})[key] = start
            except VisitplanError as exc:
                when = f"{booked.date} {booked.time or ''}".strip()
                self._note(
                    f"appointment {booked.participant} {booked.visit} on {when} is not written "
                    f"as a timed event ({exc}); the visit is an all-day event"
                )
        return grouped

    def booked(self) -> Appointments:
        """Every appointment the calendar writes as a timed event (participant, visit) ->
        start."""
        return {k: v for own in self._booked.values() for k, v in own.items()}

    def add_appointments(self, found: Mapping[tuple[str, str], dt.datetime]) -> None:
        """Add (or replace) appointments, checked by the caller (``ics --appointment``)."""
        for key, start in found.items():
            self._booked.setdefault(key[0], {})[key] = start

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
        yield from iter_ical(
            self.protocol,
            stream,
            appointments=self.booked(),
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
