"""The calendar: schedules to one iCalendar file, whole (:func:`to_ical`) or streamed."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import icalendar

from visitplan import i18n
from visitplan.errors import VisitplanError
from visitplan.export.ics.events import (
    Reminders,
    _end,
    _in_zone,
    _milestone_event,
    _repeated,
    _visit_event,
    _window_event,
)
from visitplan.export.ics.lines import _line, _put, _serialise
from visitplan.export.ics.state import EventState, _fingerprint
from visitplan.export.vtimezone import check_instants, vtimezone
from visitplan.i18n import _
from visitplan.model import Protocol, Site
from visitplan.schedule import Schedule

if TYPE_CHECKING:
    from visitplan.site import SiteCalendar

PRODID = "-//visitplan//visitplan iCalendar export//EN"


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
    on_state: Callable[[str, EventState], None] | None = None,
    drop_unplanned: bool = False,
    lang: str | None = None,
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
    ``on_state(uid, EventState)`` is called for each event as it is written, with the
    SEQUENCE and fingerprint it got: what a store keeps as the next export's ``previous``
    instead of reading the file back. With ``drop_unplanned``, an appointment of a visit that
    is in no exported plan (a stored booking that a re-plan dropped) is left out instead of
    refused. ``lang`` is the language of the texts (summaries, descriptions, reminders, the
    default name; visit and procedure names where the protocol translates them); None: the
    current one (:mod:`visitplan.i18n`). UIDs, dates, statuses and categories never change
    with it.

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
            on_state=on_state,
            drop_unplanned=drop_unplanned,
            lang=lang,
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
    on_state: Callable[[str, EventState], None] | None = None,
    drop_unplanned: bool = False,
    lang: str | None = None,
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
    lang = i18n.check_language(lang, "lang") if lang is not None else i18n.language()
    appointments = dict(appointments or {})
    # Not ``previous or {}``: a caller may hand a mapping it fills as the stream goes.
    previous = {} if previous is None else previous
    if name is not None:
        check_name(name)
    if duration <= dt.timedelta(0):
        raise VisitplanError("duration", duration, _("must be longer than zero"))
    stamp = _utc(dtstamp, "dtstamp") if dtstamp is not None else dt.datetime.now(dt.UTC)
    stamp = stamp.replace(microsecond=0)

    stream: Iterator[Schedule]
    ordered = not isinstance(schedules, Sequence)  # a one-pass stream: checked in code order
    if isinstance(schedules, Sequence):
        codes = Counter(s.participant for s in schedules)
        for code, count in codes.items():
            if count > 1:
                raise VisitplanError("participant", code, _("appears twice in one calendar"))
        if not drop_unplanned:
            _check_appointment_keys(schedules, appointments)
        with i18n.use(lang):
            title = (
                name
                if name is not None
                else _default_name(protocol, [(s.participant, s.site) for s in schedules])
            )
        booked = {who for who, _ in appointments}
        zones = sorted(
            {protocol.site_of(s.site).timezone for s in schedules if s.participant in booked}
        )
        stream = iter(schedules)
    else:
        stream = iter(schedules)
        head = list(itertools.islice(stream, 2))
        with i18n.use(lang):
            if name is not None:
                title = name
            elif len(head) == 1:
                title = _default_name(protocol, [(head[0].participant, head[0].site)])
            else:
                title = _("{study} visits").format(study=protocol.id)
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
    # Written as they are, as calendar clients read X-WR-CALNAME (ical.js does not unescape
    # it): check_name and the default names keep every control character out.
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
                raise VisitplanError("participant", code, _("appears twice in one calendar"))
            if code < last:
                raise VisitplanError(
                    "participant",
                    code,
                    _(
                        "comes after {last}: a stream of schedules must be in participant-code "
                        "order (sort it, or pass a list)"
                    ).format(last=last),
                )
            last = code
        # The language is set around each chunk, never across a yield: the caller's own
        # context keeps its language between chunks.
        with i18n.use(lang):
            chunk = _schedule_events(
                protocol, schedule, appointments, unused, duration, stamp_prop, known, previous,
                reminders, window_spans, site_calendars, on_state,
            )  # fmt: skip
        yield chunk
    if unused and not drop_unplanned:
        raise VisitplanError(
            "appointment",
            "/".join(sorted(unused)[0]),
            _("names no visit of the exported schedules"),
        )
    yield _FOOTER


_FOOTER = b"END:VCALENDAR\r\n"


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
    on_state: Callable[[str, EventState], None] | None = None,
) -> bytes:
    """The VEVENTs of one schedule, serialised (``stamp``: the DTSTAMP property, built once,
    and ``known``: its line, see :func:`_serialise`)."""
    site = protocol.site_of(schedule.site)
    events: list[icalendar.Event] = []
    problems = _problems(schedule, appointments, site, site_calendars) if appointments else {}
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
            raise VisitplanError("event UID", key_uid, _("would appear twice in one calendar"))
        seen.add(key_uid)
        event["DTSTAMP"] = stamp
        before = previous.get(key_uid)
        fingerprint = _fingerprint(event) if before is not None or on_state else ""
        if before is None:
            sequence = 0
        elif before.fingerprint == fingerprint:
            sequence = before.sequence
        else:
            sequence = before.sequence + 1
        _put(event, "SEQUENCE", sequence)
        if on_state is not None:
            on_state(key_uid, EventState(sequence, fingerprint))
        out.append(_serialise(event, known))
    return b"".join(out)


def _problems(
    schedule: Schedule,
    appointments: Mapping[tuple[str, str], dt.datetime],
    site: Site,
    site_calendars: Mapping[str, SiteCalendar] | None,
) -> dict[str, list[str]]:
    """Visit code -> the rules of booking its appointment breaks under this plan."""
    own = {
        key: appointments[key]
        for v in schedule.visits
        if (key := (schedule.participant, v.code)) in appointments
    }
    if not own:
        return {}
    from visitplan.booking import appointment_findings

    found: dict[str, list[str]] = {}
    calendar = (site_calendars or {}).get(site.code)
    for f in appointment_findings(schedule, own, calendar):
        found.setdefault(f.visit, []).append(f.message)
    return found


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
    site = protocol.site_of(schedule.site)
    _timed_start(site, schedule.participant, visit, start, duration)


def _utc(value: dt.datetime, field: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise VisitplanError(field, value, _("must be a date and time with a time zone"))
    return value.astimezone(dt.UTC)


def _check_appointment_keys(
    schedules: Sequence[Schedule], appointments: Mapping[tuple[str, str], dt.datetime]
) -> None:
    known = {(s.participant, v.code) for s in schedules for v in s.visits}
    for key in appointments:
        if key not in known:
            raise VisitplanError(
                "appointment", "/".join(key), _("names no visit of the exported schedules")
            )


def check_name(name: object, field: str = "name") -> str:
    """``name`` if it can be a calendar's name: text of one line, without control characters
    (a CR would end the line and start another property), at most 200 characters."""
    if not isinstance(name, str) or not name.strip():
        raise VisitplanError(field, name, _("must be non-empty text"))
    if _NAME_CONTROL.search(name):
        raise VisitplanError(field, name, _("must be one line without control characters"))
    if len(name) > 200:
        raise VisitplanError(field, name, _("must be at most 200 characters"))
    return name


#: Controls but the tab, C1 controls, Unicode line and paragraph separators, lone surrogates.
_NAME_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _default_name(protocol: Protocol, members: Sequence[tuple[str, str | None]]) -> str:
    """The calendar name of ``members`` (participant code, site code or None)."""
    if len(members) == 1:
        return _("{study} participant {code}").format(study=protocol.id, code=members[0][0])
    sites = (
        sorted({site or protocol.site.code for _code, site in members}) if protocol.sites else []
    )
    if sites:
        return _("{study} site {sites}").format(study=protocol.id, sites=", ".join(sites))
    return _("{study} visits").format(study=protocol.id)
