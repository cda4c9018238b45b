"""Event mapping: a schedule's visits, windows and milestones as VEVENTs.

UIDs come only from the study id, the participant's study code and the visit code; no
personal data is written. The exclusive end of an all-day event comes from
:func:`visitplan.dates.next_day`; every other date comes from the engine.
"""

from __future__ import annotations

import datetime as dt
import functools
import urllib.parse
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

import attrs
import icalendar
import pendulum
from icalendar import vText

from visitplan import i18n
from visitplan.dates import local_datetime, next_day
from visitplan.errors import VisitplanError
from visitplan.export.ics.lines import _put
from visitplan.i18n import _
from visitplan.model import Procedure, ProcedureKind, Protocol, Site
from visitplan.schedule import PlannedMilestone, PlannedVisit, Schedule, VisitStatus

UID_DOMAIN = "visitplan"


def _no_negative(
    instance: object, attribute: attrs.Attribute[tuple[dt.timedelta, ...]], value: object
) -> None:
    for lead in value if isinstance(value, tuple) else (value,):
        if not isinstance(lead, dt.timedelta) or lead < dt.timedelta(0):
            raise VisitplanError(
                f"reminders.{attribute.name}", lead, _("must be a duration of zero or more")
            )


@attrs.frozen
class Reminders:
    """Which VALARM reminders each visit gets: how long before the visit they go off.

    Every visit gets one reminder per entry of ``lead``; a visit with a procedure whose kind is
    in ``long_lead_for`` (a biopsy, by default) gets ``long_lead`` as well, since it needs
    preparation (stopping anticoagulants, booking the room). For an all-day visit the lead
    counts from midnight at the start of the visit day. ``Reminders(lead=())`` with no long
    lead writes no alarm; so does passing ``reminders=None`` to :func:`to_ical`.
    """

    lead: tuple[dt.timedelta, ...] = attrs.field(
        default=(dt.timedelta(days=1),), converter=tuple, validator=_no_negative
    )
    long_lead: tuple[dt.timedelta, ...] = attrs.field(
        default=(dt.timedelta(days=7),), converter=tuple, validator=_no_negative
    )
    long_lead_for: frozenset[ProcedureKind] = attrs.field(
        default=frozenset({ProcedureKind.BIOPSY}), converter=frozenset
    )

    def leads(self, visit: PlannedVisit) -> tuple[dt.timedelta, ...]:
        """The reminder lead times of ``visit``, longest first, without repeats."""
        leads = set(self.lead)
        if any(p.kind in self.long_lead_for for p in visit.procedures):
            leads.update(self.long_lead)
        return tuple(sorted(leads, reverse=True))


def uid(study: str, participant: str, visit: str, part: str = "") -> str:
    """The stable UID of a visit's event (``part`` names a secondary event, e.g. ``window``).

    Each piece is escaped so that the ``-`` separators stay unambiguous whatever the codes.
    """
    pieces = [study, participant, visit, *([part] if part else [])]
    return "-".join(_uid_piece(p) for p in pieces) + f"@{UID_DOMAIN}"


def uid_participant(text: str) -> str | None:
    """The participant code of a UID made by :func:`uid` (None for any other UID).

    Every piece of a UID escapes ``-`` (and anything but ASCII letters, digits, ``.`` and
    ``_``), so the second piece reads back exactly.
    """
    body, at, domain = text.rpartition("@")
    pieces = body.split("-")
    if not at or domain != UID_DOMAIN or len(pieces) < 3 or not pieces[1]:
        return None
    try:
        return urllib.parse.unquote(pieces[1], errors="strict")
    except UnicodeDecodeError:
        return None


@functools.lru_cache(maxsize=4096)  # study and visit codes recur in every event, a code in 17
def _uid_piece(text: str) -> str:
    return "".join(
        c
        if c.isascii() and (c.isalnum() or c in "._")
        else "".join(f"%{b:02X}" for b in c.encode())
        for c in text
    )


def _in_zone(start: dt.datetime, site: Site, participant: str, visit: str) -> dt.datetime:
    field = f"appointment {participant} {visit}"
    if not isinstance(start, dt.datetime) or start.utcoffset() is None:
        raise VisitplanError(field, start, _("must be a date and time with a time zone"))
    # A fixed offset (what parsing "+02:00" gives) has no TZID a client can resolve: keep the
    # instant, write it in the site's named zone.
    local = pendulum.instance(start).in_timezone(site.timezone)
    if local.second or local.microsecond:
        raise VisitplanError(field, start.isoformat(), _("must be on a whole minute"))
    # An instant in the repeated hour of the autumn change has a wall time RFC 5545 reads as
    # the other occurrence: local_datetime refuses such wall times (and spring-gap ones).
    wall = local_datetime(local.date(), f"{local.hour:02d}:{local.minute:02d}", site.timezone)
    return dt.datetime(wall.year, wall.month, wall.day, wall.hour, wall.minute, tzinfo=wall.tzinfo)


def _end(start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
    """``start`` + ``duration`` in elapsed time, in ``start``'s zone.

    Aware datetimes in one zone add in wall-clock time (01:59 + 1 hour on the spring-forward
    night would be 02:59, which does not exist): the sum is made in UTC instead.
    """
    return (start.astimezone(dt.UTC) + duration).astimezone(start.tzinfo)


def _repeated(when: dt.datetime) -> bool:
    """True if ``when``'s wall time happens twice in its zone (the autumn change)."""
    return when.replace(fold=0).utcoffset() != when.replace(fold=1).utcoffset()


def _status(visit: PlannedVisit) -> str:
    if visit.status is VisitStatus.CANCELLED:
        return "CANCELLED"
    if visit.tentative:
        return "TENTATIVE"
    return "CONFIRMED"


def _summary(protocol: Protocol, schedule: Schedule, visit: PlannedVisit) -> str:
    name = _name(protocol, visit)
    if visit.status is not VisitStatus.PLANNED:
        return _("{participant} {code} {name} ({status})").format(
            participant=schedule.participant,
            code=visit.code,
            name=name,
            status=_(visit.status.value),
        )
    if visit.tentative:
        return _("{participant} {code} {name} (tentative)").format(
            participant=schedule.participant, code=visit.code, name=name
        )
    return f"{schedule.participant} {visit.code} {name}"


def _name(protocol: Protocol, visit: PlannedVisit) -> str:
    """The visit's name in the current language (the protocol's translation, if any)."""
    lang = i18n.language()
    return protocol.visit_name(visit.base_code or visit.code, visit.name, visit.occurrence, lang)


def _day(day: pendulum.Date) -> str:
    return i18n.shown_date(day)


def _description(protocol: Protocol, visit: PlannedVisit) -> str:
    # The participant and the site are the event's SUMMARY and LOCATION: not repeated here.
    lang = i18n.language()
    lines = [
        _("Study {study}, visit {code}: {name} ({kind}, {epoch})").format(
            study=protocol.id,
            code=visit.code,
            name=_name(protocol, visit),
            kind=_(visit.kind.value),
            epoch=visit.epoch.name_in(lang),
        ),
        _("Target {target}, window {earliest} to {latest}").format(
            target=_day(visit.target), earliest=_day(visit.earliest), latest=_day(visit.latest)
        ),
        _("Study day {day}").format(day=visit.study_day),
    ]
    if visit.actual is not None:
        lines.append(_("Done on {day}").format(day=_day(visit.actual)))
    if visit.status in (VisitStatus.MISSED, VisitStatus.CANCELLED):
        # Only the status: a reason is free text about the participant (it may name them or
        # say why they were ill), and a calendar carries nothing about them but their code.
        lines.append(_(visit.status.value).capitalize())
    if visit.tentative:
        lines.append(
            _(
                "Tentative: the date waits for an event (e.g. blood B-cell recovery) and is "
                "planned at the latest permitted date until it is recorded"
            )
        )
    if visit.procedures:
        lines.append(_listed(visit.procedures))
    return "\n".join(lines)


T = TypeVar("T")

#: What an export works out once per object instead of once per event: a visit's procedures
#: are one tuple shared by every plan (hashing one costs more than the result), so entries
#: are keyed by identity, and each keeps its objects alive so that their ids cannot be reused.
#: (what, id(first), id(second)) -> (first, second, result). Bounded.
_ONCE: dict[tuple[str, int, int], tuple[object, object, object]] = {}


def _once(what: str, first: object, second: object, make: Callable[[], T]) -> T:
    key = (what, id(first), id(second))
    hit = _ONCE.get(key)
    if hit is not None and hit[0] is first and hit[1] is second:
        return cast(T, hit[2])
    result = make()
    if len(_ONCE) >= 2048:
        _ONCE.clear()
    _ONCE[key] = (first, second, result)
    return result


def _leads(reminders: Reminders, visit: PlannedVisit) -> tuple[dt.timedelta, ...]:
    """``reminders.leads(visit)``, which depends on the visit's procedures alone."""
    return _once("leads", reminders, visit.procedures, lambda: reminders.leads(visit))


def _listed(procedures: tuple[Procedure, ...]) -> str:
    """The procedures as lines of a description, in the current language."""
    lang = i18n.language()
    return _once(
        "listed " + lang,
        procedures,
        None,
        lambda: "\n".join([_("Procedures:"), *(f"- {p.describe(lang)}" for p in procedures)]),
    )


def _base_event(
    protocol: Protocol, schedule: Schedule, visit: PlannedVisit, site: Site, part: str = ""
) -> icalendar.Event:
    event = icalendar.Event()
    event["UID"] = vText(uid(protocol.id, schedule.participant, visit.code, part))
    _put(event, "LOCATION", site.name)
    _put(event, "CATEGORIES", [visit.kind.value])
    event["DESCRIPTION"] = vText(_description(protocol, visit))
    return event


def _visit_event(
    protocol: Protocol,
    schedule: Schedule,
    visit: PlannedVisit,
    site: Site,
    start: dt.datetime | None,
    duration: dt.timedelta,
    reminders: Reminders | None,
    problems: Sequence[str] = (),
) -> icalendar.Event:
    event = _base_event(protocol, schedule, visit, site)
    text = _summary(protocol, schedule, visit)
    summary = vText(_("{summary} (re-book)").format(summary=text) if problems else text)
    event["SUMMARY"] = summary
    if problems:
        # The appointment breaks a rule of booking under the current plan: say which.
        lines = [_("Re-book the appointment: {rule}").format(rule=p) for p in problems]
        event["DESCRIPTION"] = vText("\n".join([str(event["DESCRIPTION"]), *lines]))
    if start is None:
        day = visit.date
        _put(event, "DTSTART", dt.date(day.year, day.month, day.day))
        end = next_day(day)  # DTEND of an all-day event is exclusive
        _put(event, "DTEND", dt.date(end.year, end.month, end.day))
        _put(event, "TRANSP", "TRANSPARENT")
    else:
        # Not cached: aware datetimes in different zones compare equal at the same instant.
        event.add("DTSTART", start)
        finish = _end(start, duration)
        # An end in the repeated hour of the autumn change: RFC 5545 reads such a wall time as
        # its first occurrence, ical.js as its second; the UTC instant is read alike by all.
        event.add("DTEND", finish.astimezone(dt.UTC) if _repeated(finish) else finish)
        _put(event, "TRANSP", "OPAQUE")
    _put(event, "STATUS", _status(visit))
    if reminders is not None and visit.open:
        for lead in _leads(reminders, visit):
            alarm = icalendar.Alarm()
            _put(alarm, "ACTION", "DISPLAY")
            alarm["DESCRIPTION"] = summary  # values are never changed once built: share it
            _put(alarm, "TRIGGER", -lead)
            event.add_component(alarm)
    return event


def _window_event(
    protocol: Protocol, schedule: Schedule, visit: PlannedVisit, site: Site
) -> icalendar.Event:
    event = _base_event(protocol, schedule, visit, site, part="window")
    event["SUMMARY"] = vText(
        _("{participant} {code} window").format(participant=schedule.participant, code=visit.code)
    )
    first = visit.earliest
    end = next_day(visit.latest)
    _put(event, "DTSTART", dt.date(first.year, first.month, first.day))
    _put(event, "DTEND", dt.date(end.year, end.month, end.day))
    _put(event, "TRANSP", "TRANSPARENT")
    _put(event, "STATUS", _status(visit))
    return event


def _milestone_event(
    protocol: Protocol, schedule: Schedule, milestone: PlannedMilestone, site: Site
) -> icalendar.Event:
    """A dated milestone (e.g. the end of contraception) as an all-day, free-time event."""
    event = icalendar.Event()
    event["UID"] = vText(uid(protocol.id, schedule.participant, milestone.code, "milestone"))
    name = protocol.milestone_name(milestone.code, milestone.name, i18n.language())
    summary = (
        _("{participant} {name} (tentative)") if milestone.tentative else "{participant} {name}"
    )
    event["SUMMARY"] = vText(summary.format(participant=schedule.participant, name=name))
    _put(event, "CATEGORIES", ["milestone"])
    lines = [
        _("Study {study}, participant {participant}, site {site}").format(
            study=protocol.id, participant=schedule.participant, site=site.name
        ),
        _("{name}: {day}").format(name=name, day=_day(milestone.date)),
    ]
    if milestone.tentative:
        lines.append(_("Tentative: moves with the last dose until it is given."))
    event["DESCRIPTION"] = vText("\n".join(lines))
    day = milestone.date
    end = next_day(day)  # DTEND of an all-day event is exclusive
    _put(event, "DTSTART", dt.date(day.year, day.month, day.day))
    _put(event, "DTEND", dt.date(end.year, end.month, end.day))
    _put(event, "TRANSP", "TRANSPARENT")
    _put(event, "STATUS", "TENTATIVE" if milestone.tentative else "CONFIRMED")
    return event
