"""Appointments at a site: booking a visit, proposing capacity-safe dates, the site agenda.

Everything here is a pure function over schedules (from the engine), a
:class:`~visitplan.site.SiteCalendar` and the appointments already held, so the store can
replace the CSV file of bookings without touching the logic.

Appointments are ``dict[tuple[str, str], pendulum.DateTime]`` keyed by (participant code,
visit code), zone-aware in the site's zone: the shape the iCalendar exporter takes for timed
events.
"""

from __future__ import annotations

import datetime
import typing
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import pendulum

from visitplan import csvfile
from visitplan.codes import check_code
from visitplan.dates import local_datetime, parse_date
from visitplan.errors import VisitplanError
from visitplan.fileio import read_text
from visitplan.i18n import _
from visitplan.model import VisitKind
from visitplan.schedule import Finding, FindingKind, PlannedVisit, Schedule, VisitStatus
from visitplan.site import MovePolicy, SiteCalendar, capacity_kinds, check_visit, choose

if TYPE_CHECKING:
    from visitplan.store import Roster

Appointments = dict[tuple[str, str], pendulum.DateTime]
Key = tuple[str, str]

BOOKING_COLUMNS = ("participant", "visit", "date", "time")


def index_visits(schedules: Iterable[Schedule]) -> dict[Key, PlannedVisit]:
    """Every planned visit by (participant code, visit code)."""
    return {(s.participant, v.code): v for s in schedules for v in s.visits}


class _Load:
    """Visits per day and per capacity kind."""

    def __init__(self) -> None:
        self.kinds: dict[pendulum.Date, Counter[VisitKind]] = {}
        self.total: Counter[pendulum.Date] = Counter()

    def add(self, day: pendulum.Date, kinds: Iterable[VisitKind]) -> None:
        self.kinds.setdefault(day, Counter()).update(kinds)
        self.total[day] += 1

    def has_room(self, site: SiteCalendar, day: pendulum.Date, kinds: Iterable[VisitKind]) -> bool:
        return site.has_room(self.kinds.get(day, Counter()), self.total[day], kinds)


def _committed_load(
    visits: Mapping[Key, PlannedVisit],
    appointments: Mapping[Key, pendulum.DateTime],
    skip: Key | None = None,
) -> _Load:
    """The load that capacity is checked against: appointments held and visits done.

    Unbooked targets are not commitments, so they do not take a place.
    """
    load = _Load()
    for key, when in appointments.items():
        if key == skip:
            continue
        visit = _known(visits, key)
        if visit.status is VisitStatus.PLANNED:
            load.add(when.date(), capacity_kinds(visit))
    for key, visit in visits.items():
        if visit.status is VisitStatus.DONE and visit.actual is not None and key != skip:
            load.add(visit.actual, capacity_kinds(visit))
    return load


def _known(visits: Mapping[Key, PlannedVisit], key: Key) -> PlannedVisit:
    try:
        return visits[key]
    except KeyError:
        raise VisitplanError(
            "booking", f"{key[0]} {key[1]}", _("names a participant visit that is not planned")
        ) from None


# -- booking -----------------------------------------------------------------------------------


def appointment(site: SiteCalendar, day: pendulum.Date, time: str) -> pendulum.DateTime:
    """``day`` at wall-clock ``time`` at ``site``: a working day, in clinic hours, no DST trap."""
    for error in _site_errors(site, day, time):
        raise error
    return local_datetime(day, time, site.timezone)


def _site_errors(
    site: SiteCalendar, day: pendulum.Date, time: str | pendulum.Time | None
) -> list[VisitplanError]:
    """The site's rules ``day`` at ``time`` breaks: closed day, DST trap, clinic hours."""
    errors = []
    closed = site.closed_reason(day)
    if closed is not None:
        errors.append(
            VisitplanError(
                "date",
                day.isoformat(),
                _("is not bookable at {code}: {closed}").format(code=site.code, closed=closed),
            )
        )
    if time is None:
        return errors
    try:
        when = local_datetime(day, time, site.timezone)
    except VisitplanError as exc:
        errors.append(exc)
    else:
        if not site.in_hours(when.time()):
            shown = time if isinstance(time, str) else when.strftime("%H:%M")
            errors.append(
                VisitplanError(
                    "time",
                    shown,
                    _("is outside clinic hours at {code} ({hours}, start times)").format(
                        code=site.code, hours=site.hours
                    ),
                )
            )
    return errors


def booking_errors(
    site: SiteCalendar | None,
    visit: PlannedVisit,
    day: pendulum.Date,
    time: str | pendulum.Time | None,
) -> list[VisitplanError]:
    """Every rule of :func:`book` (capacity aside) that ``visit`` on ``day`` at ``time`` breaks.

    In the order :func:`book` checks them, each with :func:`book`'s own message: the visit is
    not open (done, missed, cancelled), tentative, ``day`` is outside its window, closed at
    ``site``, ``time`` is skipped or repeated by a DST change, or outside clinic hours. Empty
    when the appointment is allowed. Without ``site`` (no site calendar) only the visit's own
    rules are checked; without ``time`` (an appointment stored with none) no time rule. This
    is the one place these rules live: :func:`book` raises the first,
    :func:`appointment_findings` reports those an appointment already held now breaks, and
    ``visitplan ics --appointment`` refuses with them.
    """
    errors = []
    if visit.status is not VisitStatus.PLANNED:
        errors.append(
            VisitplanError(
                "visit",
                visit.code,
                _("is {status}; only a planned visit can be booked").format(
                    status=visit.status.value
                ),
            )
        )
    if visit.tentative:
        errors.append(
            VisitplanError(
                "visit",
                visit.code,
                _("is tentative (its date waits for an event); record the event first"),
            )
        )
    if not visit.earliest <= day <= visit.latest:
        errors.append(
            VisitplanError(
                "date",
                day.isoformat(),
                _("is outside {code}'s window {earliest} to {latest}").format(
                    code=visit.code, earliest=visit.earliest, latest=visit.latest
                ),
            )
        )
    if site is not None:
        errors.extend(_site_errors(site, day, time))
    return errors


def appointment_findings(
    schedule: Schedule,
    appointments: Mapping[Key, datetime.datetime] | Iterable[StoredAppointment],
    site: SiteCalendar | None = None,
) -> tuple[Finding, ...]:
    """What is wrong with the appointments of ``schedule``'s participant under this plan.

    A re-plan (an actual Day 1, a late dose, B-cell recovery) can leave an appointment booked
    earlier outside its visit's window, and a site file change can close its day: each open
    visit's appointment is checked with :func:`booking_errors` (the rules and messages of
    :func:`book`; closed days, DST and clinic hours only with ``site``), and an appointment of
    a visit no longer in the plan is reported too. One :class:`~visitplan.schedule.Finding` of
    kind ``appointment`` per broken rule, e.g. ``W4: appointment: booked 2027-03-08 09:30:
    date '2027-03-08': is outside W4's window 2027-02-19 to 2027-02-25``.

    ``appointments`` are zone-aware starts keyed by (participant, visit), read as wall-clock
    times in the site's zone, or stored rows (participant, visit, date, time) as the roster
    keeps them, whose wall-clock time may itself break a rule (a time a DST change skips).
    Other participants' appointments are ignored; done, missed and cancelled visits are not
    checked (their appointment is history). Pure: nothing is moved.
    """
    who = schedule.participant
    booked: list[tuple[str, pendulum.Date, str | None]] = []
    if isinstance(appointments, Mapping):
        for (participant, code), when in appointments.items():
            if participant == who:
                local = pendulum.instance(when)
                if site is not None:
                    local = local.in_timezone(site.timezone)
                booked.append((code, local.date(), local.strftime("%H:%M")))
    else:
        booked.extend((r.visit, r.date, r.time) for r in appointments if r.participant == who)
    found: list[Finding] = []
    by_code = {v.code: v for v in schedule.visits}
    for code, day, time in sorted(booked, key=lambda b: (b[1], b[0])):
        what = (
            _("booked {day} {time}").format(day=day, time=time)
            if time
            else _("booked {day}").format(day=day)
        )
        visit = by_code.get(code)
        if visit is None:
            found.append(
                Finding(
                    FindingKind.APPOINTMENT,
                    code,
                    _("{what}: {code} is no longer planned").format(what=what, code=code),
                )
            )
        elif visit.status is VisitStatus.PLANNED:
            for error in booking_errors(site, visit, day, time):
                found.append(Finding(FindingKind.APPOINTMENT, code, f"{what}: {error}"))
    return tuple(found)


def book(
    site: SiteCalendar,
    schedules: Iterable[Schedule],
    participant: str,
    visit: str,
    day: pendulum.Date,
    time: str,
    appointments: Mapping[Key, pendulum.DateTime],
) -> Appointments:
    """Book ``participant``'s ``visit`` on ``day`` at ``time``; return the new appointments.

    Refused with :class:`VisitplanError` (one line) when the visit is unknown, not open,
    tentative, outside its window, on a closed day, outside clinic hours, at a local time that
    a DST change skips or repeats, or when the day's capacity for one of its kinds (see
    :func:`~visitplan.site.capacity_kinds`) is already taken by appointments held and visits
    done. An earlier appointment of the same visit is replaced. ``appointments`` is not
    changed.
    """
    visits = index_visits(schedules)
    key = (participant, visit)
    if key not in visits:
        if not any(p == participant for p, _ in visits):
            raise VisitplanError("participant", participant, _("is not in the roster"))
        raise VisitplanError(
            "visit",
            visit,
            _("is not a planned visit of participant {participant}").format(
                participant=participant
            ),
        )
    pv = visits[key]
    for error in booking_errors(site, pv, day, time):
        raise error
    when = local_datetime(day, time, site.timezone)
    load = _committed_load(visits, appointments, skip=key)
    kinds = capacity_kinds(pv)
    if not load.has_room(site, day, kinds):
        taken = site.over_capacity(_plus(load, day, kinds), load.total[day] + 1)
        raise VisitplanError(
            "date",
            day.isoformat(),
            _("is full at {code} ({items} with this visit)").format(
                code=site.code, items="; ".join(taken)
            ),
        )
    out = dict(appointments)
    out[key] = when
    return out


def _plus(load: _Load, day: pendulum.Date, kinds: Iterable[VisitKind]) -> Counter[VisitKind]:
    counts = Counter(load.kinds.get(day, Counter()))
    counts.update(kinds)
    return counts


# -- proposals ---------------------------------------------------------------------------------


@attrs.frozen
class Proposal:
    """A proposed day for an open visit; ``day`` is None when its window has no room.

    ``reason`` says why the target was not kept (closed day, or full), None when it was.
    """

    participant: str
    visit: str
    target: pendulum.Date
    earliest: pendulum.Date
    latest: pendulum.Date
    day: pendulum.Date | None
    reason: str | None = None

    @property
    def moved(self) -> bool:
        """True if the proposed day is not the target (a coordinator must confirm it)."""
        return self.day != self.target


def propose_dates(
    site: SiteCalendar,
    schedules: Iterable[Schedule],
    appointments: Mapping[Key, pendulum.DateTime] | None = None,
    policy: MovePolicy | None = None,
    *,
    start: pendulum.Date | None = None,
    end: pendulum.Date | None = None,
    today: pendulum.Date | None = None,
) -> list[Proposal]:
    """Propose a day for every open, unbooked, non-tentative visit whose target is in range.

    Days are working days inside each visit's window, chosen by ``policy`` (default: the
    site's) among days with room left, counting appointments held, visits done and the
    proposals already made: the proposals never exceed capacity. With ``today``, no day
    before it is proposed (the part of a window already past is not bookable; a window that
    closed before today gets no day). Visits are served tightest deadline first (latest date,
    then target, participant, visit), so a visit with a short window is not crowded out by one
    that could move. Nothing is booked: the caller books what the coordinator accepts.
    """
    policy = policy or site.policy
    appointments = appointments or {}
    schedules = list(schedules)
    visits = index_visits(schedules)
    load = _committed_load(visits, appointments)
    todo = [
        (s.participant, v)
        for s in schedules
        for v in s.visits
        if v.status is VisitStatus.PLANNED
        and not v.tentative
        and (s.participant, v.code) not in appointments
        and (start is None or v.target >= start)
        and (end is None or v.target <= end)
    ]
    todo.sort(key=lambda pv: (pv[1].latest, pv[1].target, pv[0], pv[1].code))
    out: list[Proposal] = []
    for participant, v in todo:
        kinds = capacity_kinds(v)
        first = v.earliest if today is None else max(v.earliest, today)
        closed = site.closed_reason(v.target)
        reason = closed
        if today is not None and v.target < today:
            reason = (
                _("its window closed on {day}").format(day=v.latest)
                if v.latest < today
                else _("{day} is past").format(day=v.target)
            )
        elif closed is None and not load.has_room(site, v.target, kinds):
            reason = _("{day} is full").format(day=v.target)
        candidates = [
            d for d in site.working_days(first, v.latest) if load.has_room(site, d, kinds)
        ]
        day = choose(v.target, candidates, policy)
        if day is not None:
            load.add(day, kinds)
        elif reason is None:
            reason = _("no room")
        out.append(Proposal(participant, v.code, v.target, v.earliest, v.latest, day, reason))
    out.sort(key=lambda p: (p.day or p.target, p.participant, p.visit))
    return out


# -- agenda ------------------------------------------------------------------------------------


@attrs.frozen
class AgendaEntry:
    """One participant visit on an agenda day.

    ``state`` is ``booked`` (an appointment is held, ``when`` is its time), ``done``,
    ``planned`` (on its target, not booked) or ``tentative`` (waits for an event).
    ``alternatives`` are the open days of its window, nearest first, when the day is closed.
    """

    participant: str
    visit: str
    name: str
    kinds: frozenset[VisitKind]
    state: str
    earliest: pendulum.Date
    latest: pendulum.Date
    when: pendulum.DateTime | None = None
    alternatives: tuple[pendulum.Date, ...] = ()
    #: For a booked visit: the rules of :func:`book` its appointment now breaks (a re-plan
    #: moved the window, the day closed), as :func:`booking_errors` words them.
    problems: tuple[str, ...] = ()


@attrs.frozen
class AgendaDay:
    """A site day: its visits, the load per kind, and what is wrong (closed, over capacity)."""

    day: pendulum.Date
    closed: str | None
    entries: tuple[AgendaEntry, ...]
    load: Mapping[VisitKind, int] = attrs.field(hash=False)
    over: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        """How many visits fall on this day."""
        return len(self.entries)


def agenda(
    site: SiteCalendar,
    schedules: Iterable[Schedule],
    appointments: Mapping[Key, pendulum.DateTime],
    start: pendulum.Date,
    end: pendulum.Date,
) -> list[AgendaDay]:
    """The site's days from ``start`` to ``end`` that have visits, in date order.

    A visit is on its appointment's day when booked, its actual day when done, else its
    target. The load counts every visit shown (booked, done, planned, tentative), so a day is
    flagged over capacity before anyone is booked into it. Missed and cancelled visits are left
    out.
    """
    schedules = list(schedules)
    visits = index_visits(schedules)
    for key in appointments:
        _known(visits, key)
    by_day: dict[pendulum.Date, list[AgendaEntry]] = {}
    for s in schedules:
        for v in s.visits:
            key = (s.participant, v.code)
            when = appointments.get(key)
            if v.status is VisitStatus.DONE and v.actual is not None:
                day, state = v.actual, "done"
            elif v.status is not VisitStatus.PLANNED:
                continue
            elif when is not None:
                day, state = when.date(), "booked"
            else:
                day, state = v.target, "tentative" if v.tentative else "planned"
            if not start <= day <= end:
                continue
            alternatives: tuple[pendulum.Date, ...] = ()
            problems: tuple[str, ...] = ()
            if state in ("planned", "tentative"):
                alternatives = check_visit(site, s.participant, v).alternatives
            elif state == "booked":
                assert when is not None
                local = when.in_timezone(site.timezone)
                found = booking_errors(site, v, local.date(), local.strftime("%H:%M"))
                problems = tuple(str(e) for e in found)
            by_day.setdefault(day, []).append(
                AgendaEntry(
                    s.participant,
                    v.code,
                    v.name,
                    capacity_kinds(v),
                    state,
                    v.earliest,
                    v.latest,
                    when if state == "booked" else None,
                    alternatives,
                    problems,
                )
            )
    days: list[AgendaDay] = []
    for day in sorted(by_day):
        entries = sorted(
            by_day[day],
            key=lambda e: (e.when is None, e.when.time() if e.when else 0, e.participant, e.visit),
        )
        load: Counter[VisitKind] = Counter()
        for e in entries:
            load.update(e.kinds)
        days.append(
            AgendaDay(
                day,
                site.closed_reason(day),
                tuple(entries),
                dict(load),
                tuple(site.over_capacity(load, len(entries))),
            )
        )
    return days


# -- the bookings file -------------------------------------------------------------------------


#: A bookings file holds one line per appointment (about 30 bytes): 16 MB is half a million.
MAX_BOOKINGS_BYTES = 16 * 1024 * 1024


def read_bookings(text: str, zone: str, *, source: str = "bookings") -> Appointments:
    """Appointments from CSV text ``participant,visit,date,time`` (local wall-clock in ``zone``).

    Each bad row is refused as ``source:line: error``.
    """
    out: Appointments = {}
    try:
        rows = csvfile.read_rows(text)
        header = tuple(next(rows, (1, []))[1])
        if header != BOOKING_COLUMNS:
            raise VisitplanError(
                f"{source}: header",
                ",".join(header),
                _("must be {items}").format(items=",".join(BOOKING_COLUMNS)),
            )
        for line, cells in rows:
            if not cells:
                continue  # a blank line
            try:
                if len(cells) != len(BOOKING_COLUMNS):
                    raise VisitplanError("row", line, _("must have exactly 4 cells"))
                row = dict(zip(BOOKING_COLUMNS, cells, strict=True))
                participant = check_code(row["participant"].strip(), "participant")
                visit = check_code(row["visit"].strip(), "visit")
                day = parse_date(row["date"].strip(), "date")
                key = (participant, visit)
                if key in out:
                    raise VisitplanError("booking", f"{participant} {visit}", _("appears twice"))
                out[key] = local_datetime(day, row["time"].strip(), zone)
            except VisitplanError as exc:
                raise VisitplanError(f"{source}:{line}: {exc.field}", exc.value, exc.rule) from None
    except csvfile.CsvError as exc:
        raise VisitplanError(
            f"{source}: line", exc.line, _("is not valid CSV: {reason}").format(reason=exc.reason)
        ) from None
    return out


def dump_bookings(appointments: Mapping[Key, pendulum.DateTime], zone: str) -> str:
    """CSV text of ``appointments`` (local date and time in ``zone``), sorted by time."""
    rows = []
    for (participant, visit), when in sorted(appointments.items(), key=lambda kv: (kv[1], kv[0])):
        local = when.in_timezone(zone)
        rows.append([participant, visit, local.date().isoformat(), local.strftime("%H:%M")])
    return csvfile.to_csv(BOOKING_COLUMNS, rows)


def load_bookings(path: str | Path, zone: str, *, missing_ok: bool = False) -> Appointments:
    """Read a bookings file; a missing file is an error unless ``missing_ok``."""
    if missing_ok and not Path(path).exists():
        return {}
    text = read_text(path, "bookings file", limit=MAX_BOOKINGS_BYTES)
    return read_bookings(text, zone, source=str(path))


def save_bookings(
    path: str | Path, appointments: Mapping[Key, pendulum.DateTime], zone: str
) -> Path:
    """Write the bookings file atomically (a reader never sees half of it)."""
    from visitplan.fileio import atomic_write

    return atomic_write(path, dump_bookings(appointments, zone))


# -- the roster database -----------------------------------------------------------------------


class StoredAppointment(typing.Protocol):
    """What the store keeps of an appointment (:class:`visitplan.store.Appointment`)."""

    @property
    def participant(self) -> str: ...

    @property
    def visit(self) -> str: ...

    @property
    def date(self) -> pendulum.Date: ...

    @property
    def time(self) -> str | None: ...


def timed_appointments(rows: Iterable[StoredAppointment], zone: str) -> Appointments:
    """Stored appointments as zone-aware starts: each date at its wall-clock time in ``zone``.

    An appointment stored without a time (possible from the library, never from
    ``visitplan book``) is left out: it has no start to put in a calendar or on the agenda.
    """
    return {
        (r.participant, r.visit): local_datetime(r.date, r.time, zone)
        for r in rows
        if r.time is not None
    }


def appointments_from_store(
    roster: Roster, zone: str | None = None, *, code: str | None = None
) -> Appointments:
    """The roster's timed appointments (of one participant, or all) for the iCalendar exporter.

    Each start is zone-aware, built by :func:`visitplan.dates.local_datetime` from the stored
    date and wall-clock time in ``zone`` (default: each participant's site zone in the
    roster's protocol), so a booked visit exports as a timed event at the right instant on
    either side of a DST change. Pass the result as ``appointments`` to
    :func:`visitplan.export.ics.to_ical`.
    """
    rows = roster.appointments(code)
    if zone is not None:
        return timed_appointments(rows, zone)
    sites = {p.code: p.site for p in roster.participants()}
    out: Appointments = {}
    for row in rows:
        site_zone = roster.protocol.site_of(sites.get(row.participant)).timezone
        out.update(timed_appointments([row], site_zone))
    return out
