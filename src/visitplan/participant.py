"""Participant facts: who (by study code only) and what actually happened."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping

import attrs
import pendulum

from visitplan.codes import NAME, STUDY_CODE
from visitplan.codes import check_code as check_code
from visitplan.dates import to_date
from visitplan.errors import VisitplanError
from visitplan.i18n import _

# The patterns live in visitplan.codes; these are their names here from before.
CODE_PATTERN = STUDY_CODE
NAME_PATTERN = NAME


def _record_date(value: object) -> pendulum.Date | None:
    return None if value is None else to_date(value, "date")


def _screening(value: object) -> pendulum.Date:
    return to_date(value, "screening")


def _discontinued(value: object) -> pendulum.Date | None:
    return None if value is None else to_date(value, "discontinued")


def _withdrawn(value: object) -> pendulum.Date | None:
    return None if value is None else to_date(value, "withdrawn")


def _name(value: object, field: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise VisitplanError(field, value, _("must be a lower-case name such as 'hbcab_positive'"))
    return value


def _flags(value: Iterable[str]) -> frozenset[str]:
    # A lone string is iterable too: frozenset("wocbp") would quietly be five one-letter flags.
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise VisitplanError("flags", value, _("must be a collection of flag names"))
    return frozenset(_name(f, "flag") for f in value)


def _site(value: object) -> str | None:
    return None if value is None else check_code(value, "site")


def _visit_code(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise VisitplanError("visit", value, _("must be a visit code such as 'W4' or 'FU2'"))
    return value


def parse_status(value: object) -> Status:
    """A record's status from its value (``"done"``, ``"missed"``, ``"cancelled"``)."""
    return _status(value)


def _status(value: object) -> Status:
    if type(value) is Status:
        return value
    # A dictionary first: Status("done") goes through enum's lookup machinery, several times
    # slower, and a roster query converts every stored record's status (docs/performance.md).
    found = _STATUSES.get(value) if isinstance(value, str) else None
    if found is not None:
        return found
    try:
        return Status(value)
    except ValueError:
        choices = ", ".join(s.value for s in Status)
        raise VisitplanError(
            "status", value, _("must be one of: {choices}").format(choices=choices)
        ) from None


class Status(enum.Enum):
    """What happened to a visit."""

    DONE = "done"
    MISSED = "missed"
    CANCELLED = "cancelled"


_STATUSES = {s.value: s for s in Status}


@attrs.frozen
class Record:
    """A recorded fact about one visit (a repeat occurrence is named e.g. ``FU2``)."""

    code: str = attrs.field(converter=_visit_code)
    date: pendulum.Date | None = attrs.field(default=None, converter=_record_date)
    status: Status = attrs.field(default=Status.DONE, converter=_status)
    reason: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.status is Status.DONE and self.date is None:
            raise VisitplanError(f"{self.code}.date", None, _("a visit marked done needs its date"))


def _unscheduled_date(value: object) -> pendulum.Date:
    return to_date(value, "unscheduled.date")


@attrs.frozen
class UnscheduledVisit:
    """A visit the protocol did not plan, recorded for one participant (by study code).

    The roster numbers them per participant (``code``: ``U1``, ``U2``, ...) and hands them
    back (:meth:`visitplan.store.Roster.unscheduled`); the SDTM SV export gives each a decimal
    VISITNUM and writes its ``reason`` as SVUPDES. The engine does not plan them.
    """

    participant: str
    code: str
    date: pendulum.Date = attrs.field(converter=_unscheduled_date)
    time: str | None = None
    reason: str | None = None


def _records(value: Iterable[Record] | Mapping[str, object]) -> tuple[Record, ...]:
    if isinstance(value, Mapping):
        return tuple(
            Record(_visit_code(code), to_date(day, f"{code}.date")) for code, day in value.items()
        )
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise VisitplanError(
            "records", value, _("must be Record objects or a mapping of visit code to date")
        )
    records = tuple(value)
    seen: set[str] = set()
    for r in records:
        if not isinstance(r, Record):
            raise VisitplanError("records", r, _("must be a Record (visit code, date, status)"))
        if r.code in seen:
            raise VisitplanError(
                "visit",
                r.code,
                _("is recorded twice; a visit has one record (correct or void the one recorded)"),
            )
        seen.add(r.code)
    return records


def check_count_value(value: object, field: str = "bcell_count.value") -> float:
    """A B-cell count: a finite number of at least 0 (NaN and infinities are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise VisitplanError(field, value, _("must be a number"))
    # NaN compares false with everything: a NaN count would never be "below" anything.
    if not math.isfinite(value) or value < 0:
        raise VisitplanError(field, value, _("must be a finite count of at least 0"))
    return float(value)


def _count_date(value: object) -> pendulum.Date:
    return to_date(value, "bcell_count.date")


def _count(value: object) -> float:
    return check_count_value(value, "bcell_count.value")


@attrs.frozen
class Count:
    """A blood B-cell count on a date, in the unit of the site's lower limit of normal."""

    date: pendulum.Date = attrs.field(converter=_count_date)
    value: float = attrs.field(converter=_count)


def _counts(
    value: Iterable[Count | tuple[object, object]] | Mapping[str, object],
) -> tuple[Count, ...]:
    if isinstance(value, Mapping):
        items = [Count(day, v) for day, v in value.items()]
    else:
        items = [c if isinstance(c, Count) else Count(*c) for c in value]
    seen: set[pendulum.Date] = set()
    for c in items:
        if c.date in seen:
            raise VisitplanError(
                "bcell_count.date",
                c.date.isoformat(),
                _("has two counts; one count a day (correct or void the one recorded)"),
            )
        seen.add(c.date)
    return tuple(sorted(items, key=lambda c: c.date))


def _baseline(value: object) -> float | None:
    return None if value is None else check_count_value(value, "bcell_baseline")


def _events(value: Mapping[str, object]) -> dict[str, pendulum.Date]:
    if not isinstance(value, Mapping):
        raise VisitplanError("events", value, _("must be a mapping of event name to date"))
    return {_name(name, "event"): to_date(day, name) for name, day in value.items()}


@attrs.frozen
class Participant:
    """One participant's facts. Identified by study code only: no name, no birth date.

    ``records`` are the visits already done, missed or cancelled (a mapping ``{"D1":
    "2022-08-31"}`` is accepted for visits done); ``flags`` switch conditional schedules on
    (e.g. ``hbcab_positive``); ``events`` are dated facts such as ``bcell_recovery``.
    ``bcell_counts`` are blood B-cell counts (a mapping ``{"2023-05-10": 95}`` or
    :class:`Count` items) and ``bcell_baseline`` the pre-treatment count, both in the unit of
    the site's ``bcell_lln``; see :mod:`visitplan.recovery`.
    """

    code: str = attrs.field(converter=check_code)
    screening: pendulum.Date = attrs.field(converter=_screening)
    records: tuple[Record, ...] = attrs.field(factory=tuple, converter=_records)
    flags: frozenset[str] = attrs.field(factory=frozenset, converter=_flags)
    events: Mapping[str, pendulum.Date] = attrs.field(factory=dict, converter=_events, hash=False)
    discontinued: pendulum.Date | None = attrs.field(default=None, converter=_discontinued)
    withdrawn: pendulum.Date | None = attrs.field(default=None, converter=_withdrawn)
    site: str | None = attrs.field(default=None, converter=_site)
    bcell_counts: tuple[Count, ...] = attrs.field(factory=tuple, converter=_counts)
    bcell_baseline: float | None = attrs.field(default=None, converter=_baseline)

    def record(self, code: str) -> Record | None:
        """The record for a visit code, if any."""
        for r in self.records:
            if r.code == code:
                return r
        return None

    def with_record(self, record: Record) -> Participant:
        """A copy with ``record`` added (replacing any earlier record of the same visit)."""
        kept = tuple(r for r in self.records if r.code != record.code)
        return attrs.evolve(self, records=(*kept, record))

    def done(self, code: str, day: object) -> Participant:
        """A copy with visit ``code`` recorded as done on ``day``."""
        return self.with_record(Record(code, to_date(day, f"{code}.date")))
