"""What the workspace's pages show, read from the roster: plain values for the templates.

No date is computed here: windows, targets and findings are the engine's, days and load are
:func:`visitplan.booking.agenda`'s, closed days the site calendar's, proposals
:func:`visitplan.booking.propose_dates`'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs
import pendulum

from visitplan import i18n
from visitplan.booking import agenda, index_visits, propose_dates
from visitplan.dates import Span, shift
from visitplan.schedule import Finding, PlannedVisit, Schedule, VisitStatus
from visitplan.siteroster import appointment_deviations, from_store

if TYPE_CHECKING:
    from visitplan.booking import Appointments, Proposal
    from visitplan.model import Protocol
    from visitplan.site import SiteCalendar
    from visitplan.store import Appointment, Deviation, Roster


#: The participant page proposes days for the visits whose target is at most this many days
#: ahead (the next two dosing intervals or so; later visits are booked later).
PROPOSE_DAYS = 84


@attrs.frozen
class Entry:
    """One participant visit on a day of the week page."""

    participant: str
    visit: str
    name: str
    state: str  # booked, done, planned, tentative
    time: str | None  # the booked wall-clock time
    target: pendulum.Date
    earliest: pendulum.Date
    latest: pendulum.Date
    procedures: tuple[str, ...]
    problems: tuple[str, ...] = ()


@attrs.frozen
class Load:
    """One capacity limit of a day: what it counts, how many are taken, the limit."""

    what: str
    used: int
    limit: int

    @property
    def over(self) -> bool:
        return self.used > self.limit


@attrs.frozen
class Day:
    """A day of the week page: its visits, why it is closed, the capacity used."""

    day: pendulum.Date
    closed: str | None
    entries: tuple[Entry, ...]
    load: tuple[Load, ...]
    total: int


@attrs.frozen
class Week:
    """The week from ``start`` (a Monday) with what needs acting on now."""

    start: pendulum.Date
    days: tuple[Day, ...]
    overdue: tuple[Deviation, ...]
    appointments: tuple[Deviation, ...]

    @property
    def previous(self) -> pendulum.Date:
        return shift(self.start, Span(0, -7))

    @property
    def next(self) -> pendulum.Date:
        return shift(self.start, Span(0, 7))


def monday(day: pendulum.Date) -> pendulum.Date:
    """The Monday of ``day``'s ISO week."""
    return shift(day, Span(0, 1 - day.isoweekday()))


def site_days(
    roster: Roster, site: SiteCalendar, start: pendulum.Date, end: pendulum.Date
) -> list[Day]:
    """Each day from ``start`` to ``end``: visits (booked, done, planned, tentative), why the
    day is closed, and the capacity used against each limit of the site."""
    schedules, held = _site(roster, site)
    by_day = {d.day: d for d in agenda(site, schedules, held, start, end)}
    visits = index_visits(schedules)
    out: list[Day] = []
    for day in site.days(start, end):
        found = by_day.get(day)
        entries = () if found is None else found.entries
        rows = tuple(
            Entry(
                e.participant,
                e.visit,
                visit_name(roster.protocol, visits[(e.participant, e.visit)]),
                e.state,
                e.when.in_timezone(site.timezone).strftime("%H:%M") if e.when else None,
                visits[(e.participant, e.visit)].target,
                e.earliest,
                e.latest,
                _procedures(visits[(e.participant, e.visit)]),
                e.problems,
            )
            for e in entries
        )
        counts = {} if found is None else found.load
        load = [
            Load(kind.value, counts.get(kind, 0), limit)
            for kind, limit in sorted(site.capacity.items(), key=lambda kv: kv[0].value)
        ]
        if site.daily_limit is not None:
            load.append(Load("all visits", len(rows), site.daily_limit))
        out.append(Day(day, site.closed_reason(day), rows, tuple(load), len(rows)))
    return out


def week(roster: Roster, site: SiteCalendar, start: pendulum.Date) -> Week:
    """The week page's content: 7 days from ``start``, overdue visits, appointments that a
    re-plan has left breaking a booking rule."""
    today = roster.today()
    shown = site_days(roster, site, start, shift(start, Span(0, 6)))
    return Week(
        start,
        tuple(shown),
        tuple(roster.overdue(today)),
        tuple(appointment_deviations(roster, today)),
    )


def deviations(roster: Roster) -> list[Deviation]:
    """The site's deviations (the engine's, and appointments to re-book), in date order."""
    today = roster.today()
    found = roster.deviations(today) + appointment_deviations(roster, today)
    found.sort(key=lambda d: (d.planned.date if d.planned else today, d.participant, d.visit))
    return found


@attrs.frozen
class Participant:
    """A participant's page: facts, plan, findings, appointments, proposals."""

    code: str
    site: str | None
    screening: pendulum.Date
    flags: tuple[str, ...]
    discontinued: pendulum.Date | None
    withdrawn: pendulum.Date | None
    baseline: str | None
    schedule: Schedule
    findings: tuple[Finding, ...]
    appointments: dict[str, Appointment]
    proposals: tuple[Proposal, ...]
    counts: tuple[tuple[pendulum.Date, str], ...]
    unscheduled: tuple[tuple[str, pendulum.Date, str | None, str | None], ...]

    @property
    def open_visits(self) -> list[PlannedVisit]:
        return [v for v in self.schedule.visits if v.status is VisitStatus.PLANNED]

    @property
    def recorded(self) -> list[PlannedVisit]:
        return [v for v in self.schedule.visits if v.status is not VisitStatus.PLANNED]

    @property
    def bookable(self) -> list[PlannedVisit]:
        return [v for v in self.open_visits if not v.tentative]


def participant(roster: Roster, site: SiteCalendar, code: str) -> Participant:
    """Everything the participant page shows (refused for a code not enrolled)."""
    from visitplan.booking import appointment_findings

    today = roster.today()
    person = roster.participant(code)
    schedule = roster.schedule(code, today)
    stored = roster.appointments(code)
    mine = appointment_findings(
        schedule, stored, site if person.site in (None, site.code) else None
    )
    proposals: tuple[Proposal, ...] = ()
    if person.site in (None, site.code):
        schedules, held = _site(roster, site)
        proposals = tuple(
            p for p in propose_dates(site, schedules, held, today=today) if p.participant == code
        )
    base = roster.baseline_bcell(code)
    return Participant(
        code,
        person.site,
        person.screening,
        tuple(sorted(person.flags)),
        person.discontinued,
        person.withdrawn,
        None if base is None else f"{base[0]:g} {base[1]}",
        schedule,
        tuple(schedule.findings) + tuple(mine),
        {a.visit: a for a in stored},
        proposals,
        tuple((c.date, f"{c.value:g} {c.unit}") for c in roster.bcell_counts(code)),
        tuple((u.code, u.date, u.time, u.reason) for u in roster.unscheduled(code)),
    )


def timeline(roster: Roster, site: SiteCalendar, code: str) -> bytes:
    """The participant's timeline picture (SVG), with appointments and today."""
    from visitplan.booking import timed_appointments
    from visitplan.charts import timeline_chart

    today = roster.today()
    schedule = roster.schedule(code, today)
    held = timed_appointments(roster.appointments(code), site.timezone)
    return timeline_chart([schedule], held, today=today, site=site, fmt="svg")


def _site(roster: Roster, site: SiteCalendar) -> tuple[list[Schedule], Appointments]:
    schedules, held, _ = from_store(
        roster.protocol, site, roster.participants(), roster.appointments(), roster.today()
    )
    return schedules, held


def _procedures(visit: PlannedVisit) -> tuple[str, ...]:
    lang = i18n.language()
    return tuple(p.describe(lang) for p in visit.procedures)


def visit_name(protocol: Protocol, visit: PlannedVisit) -> str:
    """A planned visit's name in the current language (the protocol's translation)."""
    code = visit.base_code or visit.code
    return protocol.visit_name(code, visit.name, visit.occurrence, i18n.language())


def codes(roster: Roster) -> Sequence[str]:
    """Every enrolled participant's code."""
    return roster.codes()
