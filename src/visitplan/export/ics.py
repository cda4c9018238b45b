"""iCalendar (RFC 5545) export of schedules: one calendar per participant or per site.

Every visit is one VEVENT: an all-day event on its date (DTEND the next day, exclusive) or, when
an appointment is known, a timed event in the site's zone with a rule-based VTIMEZONE. UIDs come
only from the study id, the participant's study code and the visit code, so a re-export updates
events instead of duplicating them; SEQUENCE rises exactly for events whose date, time or status
changed since the ``previous`` export (see :func:`read_state`). No personal data is written:
participants appear by study code only, and there is no ORGANIZER, ATTENDEE or METHOD.

The exporter computes no date: dates come from the engine, the exclusive end of an all-day
event from :func:`visitplan.dates.shift`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar, cast

import attrs
import icalendar
import pendulum
from icalendar import vText

from visitplan.dates import local_datetime, shift
from visitplan.errors import VisitplanError
from visitplan.export.vtimezone import check_instants, vtimezone
from visitplan.model import Procedure, ProcedureKind, Protocol, Site, Span
from visitplan.schedule import PlannedMilestone, PlannedVisit, Schedule, VisitStatus

if TYPE_CHECKING:
    from visitplan.site import SiteCalendar

__all__ = [
    "EventState",
    "Reminders",
    "check_appointment",
    "iter_ical",
    "read_state",
    "to_ical",
    "uid",
]

PRODID = "-//visitplan//visitplan iCalendar export//EN"
UID_DOMAIN = "visitplan"


@attrs.frozen
class EventState:
    """What a re-export needs to know about an event already published under a UID."""

    sequence: int
    #: A digest of the event's start, end and status: a change means SEQUENCE must rise.
    fingerprint: str


def _no_negative(
    instance: object, attribute: attrs.Attribute[tuple[dt.timedelta, ...]], value: object
) -> None:
    for lead in value if isinstance(value, tuple) else (value,):
        if not isinstance(lead, dt.timedelta) or lead < dt.timedelta(0):
            raise VisitplanError(
                f"reminders.{attribute.name}", lead, "must be a duration of zero or more"
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


@functools.lru_cache(maxsize=4096)  # study and visit codes recur in every event, a code in 17
def _uid_piece(text: str) -> str:
    return "".join(
        c
        if c.isascii() and (c.isalnum() or c in "._")
        else "".join(f"%{b:02X}" for b in c.encode())
        for c in text
    )


def to_ical(
    protocol: Protocol,
    schedules: Iterable[Schedule],
    *,
    appointments: Mapping[tuple[str, str], dt.datetime] | None = None,
    duration: dt.timedelta = dt.timedelta(minutes=60),
    dtstamp: dt.datetime | None = None,
    previous: Mapping[str, EventState] | None = None,
    reminders: Reminders | None = Reminders(),  # frozen: a shared default is safe
    window_spans: bool = False,
    name: str | None = None,
    site_calendars: Mapping[str, SiteCalendar] | None = None,
) -> bytes:
    """The schedules as one iCalendar file (UTF-8 bytes, CRLF line ends).

    One schedule gives a participant's calendar; several give a site calendar. ``appointments``
    maps (participant code, visit code) to a zone-aware start: that visit becomes a timed event
    of ``duration`` in its site's zone (a start given in another zone or a fixed UTC offset is
    converted to the site's zone; a naive one is refused). ``dtstamp`` (default: now) makes the
    output reproducible. ``previous`` is :func:`read_state` of the last export to the same
    place: an event keeps its SEQUENCE unless its start, end or status changed, then it gets the
    previous SEQUENCE + 1. ``reminders`` sets the VALARMs (None: no alarm). ``window_spans``
    adds, for each open visit with a window, an all-day event spanning earliest..latest.
    ``name`` is the calendar name shown by clients (NAME and X-WR-CALNAME).

    A timed event ends ``duration`` after its start in elapsed time, whatever the clocks do
    in between (an end whose wall time a DST change repeats is written in UTC, which every
    client reads the same way). An appointment that breaks a rule of booking under the
    current plan (outside its visit's window; with ``site_calendars``, site code -> calendar,
    also on a closed day or outside clinic hours) is still written at its time, flagged
    ``(re-book)`` in the SUMMARY with the rule in the DESCRIPTION
    (:func:`visitplan.booking.appointment_findings`).

    The bytes are those of :func:`iter_ical` over the same schedules, joined.
    """
    return b"".join(
        iter_ical(
            protocol,
            list(schedules),
            appointments=appointments,
            duration=duration,
            dtstamp=dtstamp,
            previous=previous,
            reminders=reminders,
            window_spans=window_spans,
            name=name,
            site_calendars=site_calendars,
        )
    )


def iter_ical(
    protocol: Protocol,
    schedules: Iterable[Schedule],
    *,
    appointments: Mapping[tuple[str, str], dt.datetime] | None = None,
    duration: dt.timedelta = dt.timedelta(minutes=60),
    dtstamp: dt.datetime | None = None,
    previous: Mapping[str, EventState] | None = None,
    reminders: Reminders | None = Reminders(),  # frozen: a shared default is safe
    window_spans: bool = False,
    name: str | None = None,
    site_calendars: Mapping[str, SiteCalendar] | None = None,
) -> Iterator[bytes]:
    """:func:`to_ical` as a stream: the calendar's bytes in chunks, one participant at a time.

    The header and the VTIMEZONEs come first, then each schedule's events as the schedules are
    consumed, then the end of the calendar; a schedule is dropped once its events are written,
    so a generator of schedules (e.g. planning a roster lazily) is exported in flat memory.
    The options are those of :func:`to_ical`, whose output is these chunks joined.

    Given a sequence (a list), everything is checked before the first chunk, exactly as
    :func:`to_ical` does. Given any other iterable, the schedules must come in ascending order
    of participant code, which is how a participant listed twice is refused without keeping
    every code seen (memory stays flat); the checks happen as the schedules arrive (an error
    is raised mid-stream: write to a temporary file and rename it only once the stream ends,
    as ``visitplan ics`` does), and what depends on the whole set is taken from the protocol
    instead: the default name of several participants is "<study> visits" (pass ``name`` for
    another), and with appointments every zone of the protocol's sites gets a VTIMEZONE (only
    zones the calendar uses otherwise).
    """
    appointments = dict(appointments or {})
    previous = previous or {}
    if duration <= dt.timedelta(0):
        raise VisitplanError("duration", duration, "must be longer than zero")
    stamp = _utc(dtstamp, "dtstamp") if dtstamp is not None else dt.datetime.now(dt.UTC)
    stamp = stamp.replace(microsecond=0)

    stream: Iterator[Schedule]
    ordered = not isinstance(schedules, Sequence)  # a one-pass stream: checked in code order
    if isinstance(schedules, Sequence):
        codes = Counter(s.participant for s in schedules)
        for code, count in codes.items():
            if count > 1:
                raise VisitplanError("participant", code, "appears twice in one calendar")
        _check_appointment_keys(schedules, appointments)
        title = (
            name
            if name is not None
            else _default_name(protocol, [(s.participant, s.site) for s in schedules])
        )
        booked = {who for who, _ in appointments}
        zones = sorted({_site(protocol, s).timezone for s in schedules if s.participant in booked})
        stream = iter(schedules)
    else:
        stream = iter(schedules)
        head = list(itertools.islice(stream, 2))
        if name is not None:
            title = name
        elif len(head) == 1:
            title = _default_name(protocol, [(head[0].participant, head[0].site)])
        else:
            title = f"{protocol.id} visits"
        zones = (
            sorted({protocol.site.timezone, *(s.timezone for s in protocol.sites)})
            if appointments
            else []
        )
        stream = itertools.chain(head, stream)

    cal = icalendar.Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    cal.add("CALSCALE", "GREGORIAN")
    cal.add("NAME", title)
    cal.add("X-WR-CALNAME", title)
    header: bytes = cal.to_ical()
    yield header[: -len(_FOOTER)]
    for zone in zones:
        yield vtimezone(zone).to_ical()

    holder = icalendar.Event()
    holder.add("DTSTAMP", stamp)
    stamp_prop = holder["DTSTAMP"]
    known = {id(stamp_prop): _line(holder, "DTSTAMP", stamp_prop)}
    last = ""
    unused = set(appointments)
    for schedule in stream:
        if ordered:
            # In code order, a participant listed twice comes right after itself: one code to
            # remember instead of all of them (a sequence was counted before the first chunk).
            code = schedule.participant
            if code == last:
                raise VisitplanError("participant", code, "appears twice in one calendar")
            if code < last:
                raise VisitplanError(
                    "participant",
                    code,
                    f"comes after {last}: a stream of schedules must be in participant-code "
                    "order (sort it, or pass a list)",
                )
            last = code
        chunk = _schedule_events(
            protocol, schedule, appointments, unused, duration, stamp_prop, known, previous,
            reminders, window_spans, site_calendars,
        )  # fmt: skip
        yield chunk
    if unused:
        raise VisitplanError(
            "appointment", "/".join(sorted(unused)[0]), "names no visit of the exported schedules"
        )
    yield _FOOTER


_FOOTER = b"END:VCALENDAR\r\n"
#: The exclusive end of an all-day event is the next day.
_NEXT_DAY = Span(days=1)


def _schedule_events(
    protocol: Protocol,
    schedule: Schedule,
    appointments: Mapping[tuple[str, str], dt.datetime],
    unused: set[tuple[str, str]],
    duration: dt.timedelta,
    stamp: object,
    known: Mapping[int, bytes],
    previous: Mapping[str, EventState],
    reminders: Reminders | None,
    window_spans: bool,
    site_calendars: Mapping[str, SiteCalendar] | None = None,
) -> bytes:
    """The VEVENTs of one schedule, serialised (``stamp``: the DTSTAMP property, built once,
    and ``known``: its line, see :func:`_serialise`)."""
    site = _site(protocol, schedule)
    events: list[icalendar.Event] = []
    problems: dict[str, list[str]] = {}
    if appointments:
        own = {
            key: appointments[key]
            for v in schedule.visits
            if (key := (schedule.participant, v.code)) in appointments
        }
        if own:
            from visitplan.booking import appointment_findings

            calendar = (site_calendars or {}).get(site.code)
            for f in appointment_findings(schedule, own, calendar):
                problems.setdefault(f.visit, []).append(f.message)
    for visit in schedule.visits:
        key = (schedule.participant, visit.code)
        start = appointments.get(key)
        if start is not None:
            unused.discard(key)
            local = _timed_start(site, schedule.participant, visit.code, start, duration)
        else:
            local = None
        events.append(
            _visit_event(
                protocol,
                schedule,
                visit,
                site,
                local,
                duration,
                reminders,
                problems.get(visit.code, ()),
            )
        )
        if window_spans and visit.open and visit.earliest != visit.latest:
            events.append(_window_event(protocol, schedule, visit, site))
    for milestone in schedule.milestones:
        events.append(_milestone_event(protocol, schedule, milestone, site))
    # UIDs differ between participants (their code is a piece of each), so a duplicate can only
    # come from within one schedule: checking per schedule keeps the stream's memory flat.
    seen: set[str] = set()
    out = []
    for event in events:
        key_uid = str(event["UID"])
        if key_uid in seen:  # only reachable through colliding codes; never write a duplicate
            raise VisitplanError("event UID", key_uid, "would appear twice in one calendar")
        seen.add(key_uid)
        event["DTSTAMP"] = stamp
        before = previous.get(key_uid)
        if before is None:
            sequence = 0
        elif before.fingerprint == _fingerprint(event):
            sequence = before.sequence
        else:
            sequence = before.sequence + 1
        _put(event, "SEQUENCE", sequence)
        out.append(_serialise(event, known))
    return b"".join(out)


def _serialise(component: icalendar.Component, known: Mapping[int, bytes]) -> bytes:
    """``component.to_ical(sorted=False)``, the same bytes, with each shared line made once.

    Unsorted: properties in the order they were added (RFC 5545 gives them none); icalendar's
    default re-sorts every event's property and parameter names. Every line is icalendar's own
    (``Component.content_line``), but a property value shared by many events (see :func:`_put`)
    is turned into its line once, and lines are folded by :func:`_fold`: building and folding
    the same lines again for every event was most of the export (docs/performance.md).
    ``known``: id -> line of other values the caller keeps alive (the DTSTAMP of an export).
    """
    lines = []
    for name, value in component.property_items(sorted=False):
        key = id(value)
        line = known.get(key) or _LINES.get(key)
        if line is None:
            if name == "BEGIN" or name == "END":  # the component's name, made anew each time
                mark = (name, value)
                line = _MARKS.get(mark)
                if line is None:
                    line = _MARKS[mark] = _line(component, name, value)
            else:
                line = _line(component, name, value)
        lines.append(line)
    lines.append(b"")
    return b"\r\n".join(lines)


def _line(component: icalendar.Component, name: str, value: object) -> bytes:
    """The content line of property ``name`` = ``value``: icalendar's, folded, encoded."""
    return _fold(component.content_line(name, value, sorted=False))


def _fold(line: str) -> bytes:
    """``Contentline.to_ical()``: the line folded as icalendar folds it, encoded.

    icalendar 7.3 folds character by character, every line, short or long (its ``_foldline``,
    once the largest cost of the export). An ASCII line is folded here by slices with the same
    rule: at most 74 octets per piece, and a piece never ends with the ``\\`` or ``^`` of an
    escape, which moves to the next piece (icalendar issue 1501: Google Calendar drops events
    whose escapes are split). Any other line is icalendar's own. ``tests/test_ics.py`` checks
    both against icalendar.
    """
    if not line.isascii():
        folded: bytes = line.to_ical()  # type: ignore[attr-defined]
        return folded
    size = len(line)
    if size < 75:
        return line.encode("ascii")
    pieces = []
    start = 0
    while size - start > 74:
        end = start + 74
        if line[end - 1] in "\\^":
            end -= 1
        pieces.append(line[start:end])
        start = end
    pieces.append(line[start:])
    return "\r\n ".join(pieces).encode("ascii")


#: Property values built once and shared by every event (they are never changed once built):
#: what ``Component.add`` makes of a date, a status or a kind is the same object each time, so
#: building it again for each of hundreds of thousands of events was most of the export's own
#: time (see docs/performance.md). Bounded: dates over a few years and a few constants.
_PROPS: dict[tuple[str, type, object], object] = {}
_PROPS_MAX = 20_000
#: id -> the content line of each value in _PROPS, made with it (see _serialise). _PROPS keeps
#: the values alive, so an id here is never reused by another object.
_LINES: dict[int, bytes] = {}
#: (BEGIN or END, a component name) -> its line.
_MARKS: dict[tuple[str, object], bytes] = {}


def _put(component: icalendar.Component, name: str, value: object) -> None:
    """``component.add(name, value)`` for a property it does not have yet, from the cache.

    Only for values whose equality means the same text: dates, strings, numbers, durations and
    lists of strings (never aware datetimes, which compare equal across zones).
    """
    key = (name, type(value), tuple(value) if isinstance(value, list) else value)
    prop = _PROPS.get(key)
    if prop is None:
        holder = icalendar.Event()
        holder.add(name, value)
        prop = holder[name]
        if len(_PROPS) < _PROPS_MAX:
            _LINES[id(prop)] = _line(holder, name, prop)
            _PROPS[key] = prop
    component[name] = prop


def read_state(data: bytes | str) -> dict[str, EventState]:
    """UID -> :class:`EventState` of every event in an iCalendar file written by :func:`to_ical`.

    Pass the result as ``previous`` to the next export to the same place; also the state of a
    fresh export, for a store that keeps it instead of the file.
    """
    try:
        cal = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise VisitplanError("previous calendar", str(exc)[:60], "is not iCalendar data") from None
    state: dict[str, EventState] = {}
    for event in cal.walk("VEVENT"):
        if "UID" not in event:
            continue
        sequence = event.get("SEQUENCE", 0)
        state[str(event["UID"])] = EventState(int(sequence), _fingerprint(event))
    return state


def _fingerprint(event: icalendar.Component) -> str:
    # Built from the serialised values so a parsed file and a fresh event agree exactly.
    parts = []
    for prop in ("DTSTART", "DTEND", "STATUS"):
        value = event.get(prop)
        if value is None:
            parts.append("")
            continue
        text = value.to_ical()
        text = text.decode() if isinstance(text, bytes) else str(text)
        tzid = value.params.get("TZID", "") if hasattr(value, "params") else ""
        kind = value.params.get("VALUE", "") if hasattr(value, "params") else ""
        parts.append(f"{tzid};{kind};{text}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _utc(value: dt.datetime, field: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise VisitplanError(field, value, "must be a date and time with a time zone")
    return value.astimezone(dt.UTC)


def _site(protocol: Protocol, schedule: Schedule) -> Site:
    if schedule.site is not None:
        for site in protocol.sites:
            if site.code == schedule.site:
                return site
        raise VisitplanError("site", schedule.site, f"is not a site of {protocol.id}")
    return protocol.site


def _in_zone(start: dt.datetime, site: Site, participant: str, visit: str) -> dt.datetime:
    field = f"appointment {participant} {visit}"
    if not isinstance(start, dt.datetime) or start.utcoffset() is None:
        raise VisitplanError(field, start, "must be a date and time with a time zone")
    # A fixed offset (what parsing "+02:00" gives) has no TZID a client can resolve: keep the
    # instant, write it in the site's named zone.
    local = pendulum.instance(start).in_timezone(site.timezone)
    if local.second or local.microsecond:
        raise VisitplanError(field, start.isoformat(), "must be on a whole minute")
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


def _timed_start(
    site: Site, participant: str, visit: str, start: dt.datetime, duration: dt.timedelta
) -> dt.datetime:
    """The start of an appointment's event in the site's zone, checked as the export writes
    it: a whole minute, a wall time clients read unambiguously, the VTIMEZONE's offset."""
    local = _in_zone(start, site, participant, visit)
    end = _end(local, duration)
    check_instants(site.timezone, [local, *(() if _repeated(end) else (end,))])
    return local


def check_appointment(
    protocol: Protocol,
    schedule: Schedule,
    visit: str,
    start: dt.datetime,
    duration: dt.timedelta = dt.timedelta(minutes=60),
) -> None:
    """Raise :class:`VisitplanError` if :func:`to_ical` would refuse ``start`` as the
    appointment of ``schedule``'s ``visit``: naive, not on a whole minute, a wall time a DST
    change skips or repeats at the site, or before the zone's current daylight-saving rule.

    For an exporter of stored bookings that reports such an appointment and writes its visit
    as an all-day event instead of failing the whole calendar (``visitplan ics --db``).
    """
    _timed_start(_site(protocol, schedule), schedule.participant, visit, start, duration)


def _check_appointment_keys(
    schedules: Sequence[Schedule], appointments: Mapping[tuple[str, str], dt.datetime]
) -> None:
    known = {(s.participant, v.code) for s in schedules for v in s.visits}
    for key in appointments:
        if key not in known:
            raise VisitplanError(
                "appointment", "/".join(key), "names no visit of the exported schedules"
            )


def _default_name(protocol: Protocol, members: Sequence[tuple[str, str | None]]) -> str:
    """The calendar name of ``members`` (participant code, site code or None)."""
    if len(members) == 1:
        return f"{protocol.id} participant {members[0][0]}"
    sites = sorted({site or protocol.site.code for _, site in members}) if protocol.sites else []
    return f"{protocol.id} site {', '.join(sites)}" if sites else f"{protocol.id} visits"


def _status(visit: PlannedVisit) -> str:
    if visit.status is VisitStatus.CANCELLED:
        return "CANCELLED"
    if visit.tentative:
        return "TENTATIVE"
    return "CONFIRMED"


def _summary(schedule: Schedule, visit: PlannedVisit) -> str:
    text = f"{schedule.participant} {visit.code} {visit.name}"
    if visit.status is not VisitStatus.PLANNED:
        text += f" ({visit.status.value})"
    elif visit.tentative:
        text += " (tentative)"
    return text


def _description(protocol: Protocol, visit: PlannedVisit) -> str:
    # The participant and the site are the event's SUMMARY and LOCATION: not repeated here.
    lines = [
        f"Study {protocol.id}, visit {visit.code}: {visit.name} "
        f"({visit.kind.value}, {visit.epoch.name})",
        f"Target {visit.target.isoformat()}, window {visit.earliest.isoformat()}"
        f" to {visit.latest.isoformat()}",
        f"Study day {visit.study_day}",
    ]
    if visit.actual is not None:
        lines.append(f"Done on {visit.actual.isoformat()}")
    if visit.status in (VisitStatus.MISSED, VisitStatus.CANCELLED):
        # Only the status: a reason is free text about the participant (it may name them or
        # say why they were ill), and a calendar carries nothing about them but their code.
        lines.append(visit.status.value.capitalize())
    if visit.tentative:
        lines.append(
            "Tentative: the date waits for an event (e.g. blood B-cell recovery) and is "
            "planned at the latest permitted date until it is recorded"
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
    """The procedures as lines of a description."""
    return _once(
        "listed",
        procedures,
        None,
        lambda: "\n".join(["Procedures:", *(f"- {p.describe()}" for p in procedures)]),
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
    summary = vText(_summary(schedule, visit) + (" (re-book)" if problems else ""))
    event["SUMMARY"] = summary
    if problems:
        # The appointment breaks a rule of booking under the current plan: say which.
        lines = [f"Re-book the appointment: {p}" for p in problems]
        event["DESCRIPTION"] = vText("\n".join([str(event["DESCRIPTION"]), *lines]))
    if start is None:
        day = visit.date
        _put(event, "DTSTART", dt.date(day.year, day.month, day.day))
        end = shift(day, _NEXT_DAY)  # DTEND of an all-day event is exclusive
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
    event["SUMMARY"] = vText(f"{schedule.participant} {visit.code} window")
    first = visit.earliest
    end = shift(visit.latest, _NEXT_DAY)
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
    tentative = " (tentative)" if milestone.tentative else ""
    event["SUMMARY"] = vText(f"{schedule.participant} {milestone.name}{tentative}")
    _put(event, "CATEGORIES", ["milestone"])
    lines = [
        f"Study {protocol.id}, participant {schedule.participant}, site {site.name}",
        f"{milestone.name}: {milestone.date}",
    ]
    if milestone.tentative:
        lines.append("Tentative: moves with the last dose until it is given.")
    event["DESCRIPTION"] = vText("\n".join(lines))
    day = milestone.date
    end = shift(day, _NEXT_DAY)  # DTEND of an all-day event is exclusive
    _put(event, "DTSTART", dt.date(day.year, day.month, day.day))
    _put(event, "DTEND", dt.date(end.year, end.month, end.day))
    _put(event, "TRANSP", "TRANSPARENT")
    _put(event, "STATUS", "TENTATIVE" if milestone.tentative else "CONFIRMED")
    return event
