"""The rulebook for recorded facts: what a participant's facts may say, and how they change.

The Python API (:func:`visitplan.plan`), every CLI command, the importer and the roster store
(SQLite or PostgreSQL) take in facts through the same rules, so they refuse the same input
with the same message. The rules live in three places, each written once:

- Here, what holds for any participant under a protocol, whatever the plan: :func:`check`
  (the engine runs it before planning): known flags and events, fact dates not before
  screening nor after today, no dose after discontinuation, no visit on or after withdrawal;
  :func:`check_day1` once Day 1 is known (recovery after the first dose).
- The values of :mod:`visitplan.participant`, when they are built: a date that is a day of
  the supported years, one record per visit, one count a day, a count that is a finite
  number of at least 0.
- The engine, for a record against the protocol's visits: a known visit code, not before
  screening nor before its anchor, done no later than today, inside a strict window.

The transitions (:func:`add_record`, :func:`correct_record`, :func:`void_record`, ...) are
pure functions from a participant's facts and one change to the new facts. They refuse what a
change may not do (a second record of a visit, a correction that changes nothing); the result
is then planned, which runs all of the above.

Nothing here computes a date: comparisons only.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
import pendulum

from visitplan.codes import wall_time
from visitplan.errors import VisitplanError
from visitplan.i18n import _
from visitplan.model import Protocol, Site
from visitplan.participant import Count, Participant, Record, Status
from visitplan.participant import check_count_value as check_count_value


def known_flags(protocol: Protocol) -> frozenset[str]:
    """The participant flags ``protocol`` looks at (its visits', procedures' and milestones'
    conditions): any other flag would change nothing, so it is a typing mistake."""
    found = {v.condition for v in protocol.visits}
    found |= {p.condition for v in protocol.visits for p in v.procedures}
    found |= {m.condition for m in protocol.milestones}
    return frozenset(c for c in found if c is not None)


def known_events(protocol: Protocol) -> frozenset[str]:
    """The dated events ``protocol`` waits for, stops on or derives (``bcell_recovery``)."""
    found: set[str | None] = {protocol.rules.recovery_event}
    for v in protocol.visits:
        found.add(v.wait_for)
        if v.repeat is not None:
            found.add(v.repeat.stop_event)
    return frozenset(e for e in found if e is not None)


def _listed(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def check_flag(protocol: Protocol, flag: str, known: frozenset[str] | None = None) -> None:
    """Refuse a flag the protocol does not know, listing the ones it does."""
    known = known_flags(protocol) if known is None else known
    if flag not in known:
        raise VisitplanError(
            "flag",
            flag,
            _("is not a flag of {id}; known: {listed}").format(
                id=protocol.id, listed=_listed(known)
            ),
        )


def check_event(protocol: Protocol, name: str, known: frozenset[str] | None = None) -> None:
    """Refuse an event the protocol does not know, listing the ones it does."""
    known = known_events(protocol) if known is None else known
    if name not in known:
        raise VisitplanError(
            "event",
            name,
            _("is not an event of {id}; known: {listed}").format(
                id=protocol.id, listed=_listed(known)
            ),
        )


def check_fact_date(
    person: Participant, day: pendulum.Date, field: str, today: pendulum.Date | None
) -> None:
    """A dated fact (an event, a count, an unscheduled visit) happened between screening and
    today, and not on or after the participant's withdrawal."""
    if day < person.screening:
        raise VisitplanError(
            field,
            day.isoformat(),
            _("is before the screening date {screening}").format(screening=person.screening),
        )
    if today is not None and day > today:
        raise VisitplanError(
            field, day.isoformat(), _("is after today ({today})").format(today=today)
        )
    if person.withdrawn is not None and day >= person.withdrawn:
        raise VisitplanError(
            field,
            day.isoformat(),
            _(
                "is on or after the withdrawal from the study ({withdrawn}); nothing follows "
                "withdrawal"
            ).format(withdrawn=person.withdrawn),
        )


def check_site(protocol: Protocol, site: str | None) -> str | None:
    """A participant's site: one of the protocol's (the only one when none is given and the
    protocol has one site; any code when the protocol lists no site)."""
    if site is None or not site.strip():
        return protocol.sites[0].code if len(protocol.sites) == 1 else None
    if not protocol.sites:
        return site.strip()
    return protocol.site_of(site.strip()).code


def check_time(
    protocol: Protocol,
    site: str | None,
    day: pendulum.Date | None,
    time: str | None,
    field: str,
) -> str | None:
    """A recorded or booked wall-clock time: ``HH:MM`` on a date, existing exactly once in
    the site's zone when the protocol has sites (a time a DST change skips or repeats is
    refused, never guessed)."""
    if time is None:
        return None
    if wall_time(time) is None:
        raise VisitplanError(
            field, time, _("must be a wall-clock time written HH:MM (00:00-23:59)")
        )
    if day is None:
        raise VisitplanError(field, time, _("needs the visit's date"))
    from visitplan.dates import local_datetime

    if protocol.sites:
        local_datetime(day, time, _site(protocol, site).timezone)
    assert isinstance(time, str)
    return time


def _site(protocol: Protocol, site: str | None) -> Site:
    """The participant's site, or the study's first one for a participant without."""
    known = [s for s in protocol.sites if s.code == site]
    return known[0] if known else protocol.site


def check_count_unit(protocol: Protocol, site: str | None, unit: object) -> str:
    """A count's unit must be the site's ``bcell_unit``: the engine compares numbers."""
    if not isinstance(unit, str) or not unit.strip():
        raise VisitplanError("bcell_count.unit", unit, _("must not be empty"))
    unit = unit.strip()
    where = _site(protocol, site) if protocol.sites else None
    if where is not None and where.bcell_unit and unit != where.bcell_unit:
        raise VisitplanError(
            "bcell_count.unit",
            unit,
            _("must be {bcell_unit}, the unit of site {code}'s bcell_lln").format(
                bcell_unit=where.bcell_unit, code=where.code
            ),
        )
    return unit


def require_reason(reason: object, field: str = "reason", context: str | None = None) -> str:
    """A correction, a void, a discontinuation or withdrawal says why: refused without."""
    if not isinstance(reason, str) or not reason.strip():
        rule = "is required: say why (it is kept in the audit trail)"
        shown = "" if reason is None else reason
        raise VisitplanError(field, shown, f"{context}; a reason {rule[3:]}" if context else rule)
    return reason


def check(
    protocol: Protocol,
    person: Participant,
    today: pendulum.Date | None,
    *,
    flags: frozenset[str] | None = None,
    events: frozenset[str] | None = None,
    is_dose: object = None,
) -> None:
    """Refuse facts that no protocol rule allows, whatever the plan (see the module's list).

    ``flags`` and ``events`` are the protocol's known ones when the caller has them already
    (the engine keeps them per protocol); ``is_dose(code) -> bool`` says whether a recorded
    visit code gives the study drug.
    """
    if person.site is not None and protocol.sites:
        check_site(protocol, person.site)
    if person.flags:
        known = known_flags(protocol) if flags is None else flags
        for flag in sorted(person.flags - known):
            check_flag(protocol, flag, known)
    if person.events:
        known = known_events(protocol) if events is None else events
        for name in sorted(person.events):
            check_event(protocol, name, known)
            check_fact_date(person, person.events[name], f"{name}.date", today)
    for c in person.bcell_counts:
        check_fact_date(person, c.date, "bcell_count.date", today)
    for field, stop in (("discontinued", person.discontinued), ("withdrawn", person.withdrawn)):
        if stop is None:
            continue
        if stop < person.screening:
            raise VisitplanError(
                field,
                stop.isoformat(),
                _("is before the screening date {screening}").format(screening=person.screening),
            )
        if today is not None and stop > today:
            raise VisitplanError(
                field, stop.isoformat(), _("is after today ({today})").format(today=today)
            )
    if person.discontinued is None and person.withdrawn is None:
        return
    for r in person.records:
        if r.status is not Status.DONE or r.date is None:
            continue
        if person.withdrawn is not None and r.date >= person.withdrawn:
            raise VisitplanError(
                f"{r.code}.date",
                r.date.isoformat(),
                _(
                    "is on or after the withdrawal from the study ({withdrawn}); no visit "
                    "follows withdrawal"
                ).format(withdrawn=person.withdrawn),
            )
        if (
            person.discontinued is not None
            and r.date > person.discontinued
            and callable(is_dose)
            and is_dose(r.code)
        ):
            raise VisitplanError(
                f"{r.code}.date",
                r.date.isoformat(),
                _(
                    "is after treatment was discontinued ({discontinued}); no dose follows "
                    "discontinuation"
                ).format(discontinued=person.discontinued),
            )


def check_day1(protocol: Protocol, person: Participant, day1: pendulum.Date) -> None:
    """Once Day 1 is known: B-cell recovery is looked for after the first dose, as the counts
    are (a count on or before Day 1 is pre-treatment), so a recovery dated on or before Day 1
    is refused instead of silently ending follow-up."""
    name = protocol.rules.recovery_event
    day = person.events.get(name) if name else None
    if day is not None and day <= day1:
        raise VisitplanError(
            f"{name}.date",
            day.isoformat(),
            _("is on or before Day 1 ({day1}); recovery is looked for after the first dose").format(
                day1=day1
            ),
        )


# -- transitions: one change to a participant's facts -------------------------------------


def add_record(person: Participant, record: Record) -> Participant:
    """A new record of a visit. A visit has one record: a second is refused (correct it)."""
    if person.withdrawn is not None and record.date is None:
        raise VisitplanError(
            "participant",
            person.code,
            _(
                "was withdrawn from the study on {withdrawn}; nothing can be recorded after it"
            ).format(withdrawn=person.withdrawn),
        )
    # Participant refuses two records of a visit, with the message every path gives.
    return attrs.evolve(person, records=(*person.records, record))


def recorded(person: Participant, code: str) -> Record:
    """The record of visit ``code``, or a refusal naming how to make one."""
    old = person.record(code)
    if old is None:
        raise VisitplanError(
            "visit",
            code,
            _("is not recorded for participant {code}; nothing to change").format(code=person.code),
        )
    return old


def correct_record(
    person: Participant,
    code: str,
    *,
    date: pendulum.Date | None = None,
    status: Status | None = None,
    reason: str | None = None,
    time_changed: bool = False,
) -> tuple[Record, Record, Participant]:
    """Replace a visit's record: ``(old, new, facts after)``.

    Fields not given keep their recorded value; a visit that becomes missed or cancelled loses
    its date unless one is given. ``time_changed`` says the caller changes the record's time,
    which the participant's facts do not hold (the store does).
    """
    old = recorded(person, code)
    state = old.status if status is None else status
    if date is not None:
        day: pendulum.Date | None = date
    elif state is old.status:
        day = old.date
    else:
        day = None
    # A visit's reason says why it was missed or cancelled: it goes with a change of status
    # (the correction's own reason is in the audit trail).
    kept = old.reason if state is old.status else None
    new = Record(code, day, state, kept if reason is None else reason)
    if new == old and not time_changed:
        raise VisitplanError(
            "visit",
            code,
            _("is already recorded as {show_record}; the correction changes nothing").format(
                show_record=show_record(old)
            ),
        )
    records = tuple(new if r.code == code else r for r in person.records)
    return old, new, attrs.evolve(person, records=records)


def void_record(person: Participant, code: str) -> tuple[Record, Participant]:
    """Remove a record entered in error: the visit is planned again."""
    old = recorded(person, code)
    return old, attrs.evolve(person, records=tuple(r for r in person.records if r.code != code))


def set_event(
    protocol: Protocol, person: Participant, name: str, day: pendulum.Date, *, replace: bool
) -> tuple[pendulum.Date | None, Participant]:
    """Record (or, with ``replace``, correct) a dated event: ``(old date, facts after)``."""
    check_event(protocol, name)
    old = person.events.get(name)
    if old is not None and not replace:
        raise VisitplanError(
            "event",
            name,
            _(
                "is already recorded for {code} ({old}); use 'correct' or 'void' with a reason"
            ).format(code=person.code, old=old),
        )
    if old is None and replace:
        raise VisitplanError(
            "event",
            name,
            _("is not recorded for {code}; nothing to change").format(code=person.code),
        )
    if old == day:
        raise VisitplanError(
            "event",
            name,
            _("is already recorded on {day}; the correction changes nothing").format(day=day),
        )
    return old, attrs.evolve(person, events={**person.events, name: day})


def void_event(
    protocol: Protocol, person: Participant, name: str
) -> tuple[pendulum.Date, Participant]:
    """Remove a recorded event."""
    check_event(protocol, name)
    old = person.events.get(name)
    if old is None:
        raise VisitplanError(
            "event",
            name,
            _("is not recorded for {code}; nothing to change").format(code=person.code),
        )
    return old, attrs.evolve(person, events={k: v for k, v in person.events.items() if k != name})


def _count_on(person: Participant, day: pendulum.Date) -> Count | None:
    for c in person.bcell_counts:
        if c.date == day:
            return c
    return None


def set_count(
    person: Participant, day: pendulum.Date, value: float, *, replace: bool
) -> tuple[Count | None, Participant]:
    """Record (or, with ``replace``, correct) the B-cell count of a day: one count a day."""
    value = check_count_value(value)
    old = _count_on(person, day)
    if not replace:
        # Participant refuses two counts on a day, with the message every path gives.
        return None, attrs.evolve(person, bcell_counts=(*person.bcell_counts, Count(day, value)))
    if old is None and replace:
        raise VisitplanError(
            "bcell_count.date",
            day.isoformat(),
            _("no count is recorded for {code} that day").format(code=person.code),
        )
    if old is not None and old.value == value:
        raise VisitplanError(
            "bcell_count.value",
            value,
            _("is the count already recorded; the correction changes nothing"),
        )
    counts = (*(c for c in person.bcell_counts if c.date != day), Count(day, value))
    return old, attrs.evolve(person, bcell_counts=counts)


def void_count(person: Participant, day: pendulum.Date) -> tuple[Count, Participant]:
    """Remove the B-cell count of a day."""
    old = _count_on(person, day)
    if old is None:
        raise VisitplanError(
            "bcell_count.date",
            day.isoformat(),
            _("no count is recorded for {code} that day").format(code=person.code),
        )
    counts = tuple(c for c in person.bcell_counts if c.date != day)
    return old, attrs.evolve(person, bcell_counts=counts)


def set_baseline(person: Participant, value: float | None) -> Participant:
    """Set (a number) or clear (None) the pre-treatment B-cell count."""
    checked = None if value is None else check_count_value(value, "bcell_baseline")
    if checked == person.bcell_baseline:
        raise VisitplanError(
            "bcell_baseline",
            value,
            _("is the baseline already recorded; the correction changes nothing"),
        )
    return attrs.evolve(person, bcell_baseline=checked)


def stop(
    person: Participant, field: str, day: pendulum.Date | None, *, replace: bool
) -> Participant:
    """Discontinue treatment or withdraw (``field``: ``discontinued`` or ``withdrawn``) on
    ``day``; with ``replace`` correct that date, or remove it with ``day`` None."""
    old = person.discontinued if field == "discontinued" else person.withdrawn
    if not replace:
        if person.withdrawn is not None:
            raise VisitplanError(
                "participant",
                person.code,
                _("was already withdrawn on {withdrawn}").format(withdrawn=person.withdrawn),
            )
        if old is not None:
            raise VisitplanError(
                "participant",
                person.code,
                _("treatment was already discontinued on {old}").format(old=old),
            )
    elif old is None:
        rule = (
            _("{code} is not withdrawn; nothing to change")
            if field == "withdrawn"
            else _("{code} is not discontinued; nothing to change")
        )
        raise VisitplanError(field, None, rule.format(code=person.code))
    elif old == day:
        raise VisitplanError(
            field, day.isoformat() if day else None, _("is the date already recorded")
        )
    if field == "discontinued":
        return attrs.evolve(person, discontinued=day)
    return attrs.evolve(person, withdrawn=day)


def correct_screening(person: Participant, day: pendulum.Date) -> Participant:
    """Correct the screening date (every plan anchored on it moves)."""
    if day == person.screening:
        raise VisitplanError("screening", day.isoformat(), _("is the date already recorded"))
    return attrs.evolve(person, screening=day)


def correct_flags(protocol: Protocol, person: Participant, flags: Iterable[str]) -> Participant:
    """Replace the participant's flags (each must be one the protocol knows)."""
    wanted = frozenset(flags)
    known = known_flags(protocol)
    for flag in sorted(wanted):
        check_flag(protocol, flag, known)
    if wanted == person.flags:
        raise VisitplanError("flags", ";".join(sorted(wanted)), _("are the flags already recorded"))
    return attrs.evolve(person, flags=wanted)


def show_record(record: Record, time: str | None = None) -> str:
    """A record as the audit trail and messages show it: ``done 2022-09-28 09:30``."""
    parts = [record.status.value]
    if record.date is not None:
        parts.append(record.date.isoformat() + (f" {time}" if time else ""))
    return " ".join(parts)
