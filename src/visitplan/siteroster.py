"""A site's view of a roster database: its schedules and appointments, the appointments a
re-plan has left breaking a rule, and a booking checked inside the store's write transaction.

Shared by the CLI (``book``, ``agenda``, ``due``, ``deviations``) and the web workspace, so
both book with the same checks and flag the same appointments. Heavy modules are imported
inside the functions: the CLI imports this module at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from visitplan.i18n import _

if TYPE_CHECKING:
    import pendulum

    from visitplan.booking import Appointments
    from visitplan.model import Protocol
    from visitplan.participant import Participant
    from visitplan.schedule import Schedule
    from visitplan.site import SiteCalendar
    from visitplan.store import Deviation, Roster


def from_store(
    protocol: Protocol,
    site: SiteCalendar,
    people: Sequence[Participant],
    rows: Iterable[Any],
    today: pendulum.Date,
) -> tuple[list[Schedule], Appointments, list[Any]]:
    """Schedules and timed appointments of the site's participants, from the store's facts.

    Returns ``(schedules, appointments, stale)``: ``stale`` are the stored appointments of
    this site's participants whose visit is no longer in the plan (e.g. a follow-up visit
    that B-cell recovery ended); they take no place and are not shown.
    """
    from visitplan.booking import timed_appointments
    from visitplan.engine import plan

    here = [p for p in people if p.site in (None, site.code)]
    schedules = [plan(protocol, p, today=today) for p in here]
    planned = {(s.participant, v.code) for s in schedules for v in s.visits}
    codes = {p.code for p in here}
    mine = [r for r in rows if r.participant in codes]
    stale = [r for r in mine if (r.participant, r.visit) not in planned]
    held = timed_appointments(
        [r for r in mine if (r.participant, r.visit) in planned], site.timezone
    )
    return schedules, held, stale


def site_calendar_of(protocol: Protocol, code: str | None) -> SiteCalendar | None:
    """The site calendar of a participant's site (its built-in site file), or None.

    The roster commands (``due``, ``deviations``) take no ``--site``: a site of the protocol
    with no built-in site file is checked for windows only, not for closed days and hours.
    """
    from visitplan.site import builtin_site_names, site_for

    site = protocol.site_of(code) if protocol.sites else None
    if site is None or site.code not in builtin_site_names():
        return None
    return site_for(site.code, site)


def appointment_deviations(
    roster: Roster, today: pendulum.Date, *, code: str | None = None
) -> list[Deviation]:
    """Every stored appointment a re-plan has left breaking a rule of ``book``, as deviations
    (of one participant with ``code``).

    Each participant with appointments is planned as of ``today`` and checked with
    :func:`visitplan.booking.appointment_findings` against their site's calendar.
    """
    from visitplan.booking import appointment_findings
    from visitplan.store import Deviation

    rows = roster.appointments(code)
    out: list[Deviation] = []
    calendars: dict[str | None, SiteCalendar | None] = {}
    for who in sorted({r.participant for r in rows}):
        person = roster.participant(who)
        if person.site not in calendars:
            calendars[person.site] = site_calendar_of(roster.protocol, person.site)
        schedule = roster.schedule(who, today)
        by_code = {v.code: v for v in schedule.visits}
        for f in appointment_findings(schedule, rows, calendars[person.site]):
            out.append(
                Deviation(who, person.site, f.kind, f.visit, f.message, by_code.get(f.visit))
            )
    return out


def book_in_store(
    roster: Roster,
    site: SiteCalendar,
    participant: str,
    visit: str,
    day: pendulum.Date,
    time: str,
    *,
    reason: str | None = None,
    user: str | None = None,
) -> tuple[pendulum.DateTime, bool, int]:
    """Book ``participant``'s ``visit`` with every rule of :func:`visitplan.booking.book`,
    checked against the stored roster and written in one write transaction.

    Returns ``(start, replaced, appointments held at the site)``. Refused (one-line
    :class:`~visitplan.errors.VisitplanError`, nothing written) as ``book`` refuses, and also
    for a day before the roster's today or a participant of another site.
    """
    from visitplan.booking import book
    from visitplan.errors import VisitplanError

    now = roster.today()
    outcome: dict[str, Any] = {}

    def check(people: list[Participant], rows: list[Any]) -> None:
        # Runs under the write lock: the places counted are the ones really held.
        person = next(p for p in people if p.code == participant)
        if person.site not in (None, site.code):
            raise VisitplanError(
                "participant",
                participant,
                _("is at site {site}, not {code}").format(site=person.site, code=site.code),
            )
        if day < now:
            raise VisitplanError(
                "date",
                day.isoformat(),
                _("is before today ({now}); book a day to come").format(now=now),
            )
        schedules, held, _problems = from_store(roster.protocol, site, people, rows, now)
        updated = book(site, schedules, participant, visit, day, time, held)
        outcome["when"] = updated[(participant, visit)]
        outcome["replaced"] = (participant, visit) in held
        outcome["count"] = len(updated)

    roster.set_appointment(participant, visit, day, time, reason=reason, check=check, user=user)
    return outcome["when"], bool(outcome["replaced"]), int(outcome["count"])
