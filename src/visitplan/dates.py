"""Date helpers: strict parsing, anchor arithmetic, the study-day rule and appointment times.

visitplan's date arithmetic lives here. The engine computes every visit's dates with it; the
few edges that need a calendar step of their own call it too, never adding days themselves:
:func:`next_day` for the exclusive end of an all-day calendar event and the site calendar's
walk over days, :func:`shift` for the store's horizon of due visits and the half-lives of a
washout, :func:`earliest_clear` for washouts. The one other module that steps over days is
:mod:`visitplan.export.vtimezone`, which finds a time zone's daylight-saving change days for
a calendar's VTIMEZONE; those are not dates of a plan.
"""

from __future__ import annotations

import calendar
import datetime as _dt
from collections.abc import Iterable
from typing import TypeVar

import attrs
import pendulum

from visitplan.codes import ISO_DATE, wall_time
from visitplan.errors import VisitplanError
from visitplan.i18n import _

_D = TypeVar("_D", bound=_dt.date)

#: Dates outside these years are refused as typing mistakes (a trial is planned in decades).
MIN_YEAR = 1900
MAX_YEAR = 2199


@attrs.frozen
class Span:
    """Calendar months plus days: the sum of offsets, applied from an anchor in one step.

    Months are applied first (end-of-month clamped), then days, so ``anchor + 5 months + 19
    months`` is computed as ``anchor + 24 months``, never as two clamped steps.
    """

    months: int = 0
    days: int = 0

    def __add__(self, other: Span) -> Span:
        return Span(self.months + other.months, self.days + other.days)

    def __neg__(self) -> Span:
        return Span(-self.months, -self.days)

    def __sub__(self, other: Span) -> Span:
        return self + (-other)

    def times(self, k: int) -> Span:
        """This span repeated ``k`` times (for the k-th occurrence of a repeat)."""
        return Span(self.months * k, self.days * k)


def parse_date(text: object, field: str = "date") -> pendulum.Date:
    """Parse an ISO 8601 calendar date (YYYY-MM-DD) strictly, or raise :class:`VisitplanError`.

    Only ``YYYY-MM-DD`` in ASCII digits, surrounding whitespace ignored, a day of the calendar
    within the supported years; a ``pendulum.Date`` is checked and returned as it is.
    ``pendulum.parse`` accepts many forms (week dates, ordinal dates, date-times) and returns a
    UTC DateTime for some of them; a schedule needs exactly a calendar date.
    """
    if isinstance(text, pendulum.Date) and not isinstance(text, pendulum.DateTime):
        return check_year(text, field)
    if not isinstance(text, str):
        raise VisitplanError(field, text, _("must be a date written YYYY-MM-DD"))
    m = ISO_DATE.match(text.strip())
    if not m:
        raise VisitplanError(field, text, _("must be a date written YYYY-MM-DD"))
    year, month, day = (int(g) for g in m.groups())
    try:
        value = pendulum.date(year, month, day)
    except ValueError:
        raise VisitplanError(field, text, _("is not a day of the calendar")) from None
    return check_year(value, field)


def check_year(value: _D, field: str) -> _D:
    """Refuse dates outside the supported years (a typo such as 0222 or 2922)."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise VisitplanError(
            field,
            value.isoformat(),
            _("year must be between {MIN_YEAR} and {MAX_YEAR}").format(
                MIN_YEAR=MIN_YEAR, MAX_YEAR=MAX_YEAR
            ),
        )
    return value


def to_date(value: object, field: str = "date") -> pendulum.Date:
    """Accept a pendulum/stdlib date or an ISO string and return a ``pendulum.Date``."""
    # Exact date types first: every record, count and fact read from a roster comes through
    # here, so a roster query calls this for every stored date (docs/performance.md).
    if type(value) is pendulum.Date:
        return check_year(value, field)
    if type(value) is _dt.date:
        return _from_ordinal(check_year(value, field).toordinal())
    if isinstance(value, _dt.datetime):
        raise VisitplanError(field, value, _("must be a calendar date, not a date and time"))
    if isinstance(value, _dt.date) and not isinstance(value, pendulum.Date):
        value = pendulum.date(value.year, value.month, value.day)
    return parse_date(value, field)


def shift(anchor: pendulum.Date, span: Span, field: str = "date") -> pendulum.Date:
    """``anchor`` moved by ``span`` in one step: calendar months first (clamped), then days.

    The result is exactly ``anchor.add(months=span.months).add(days=span.days)`` (pendulum's
    own arithmetic; tests/test_dates.py checks this on random dates and spans). It is computed
    here with day ordinals and a month-clamping helper because ``pendulum.Date.add`` goes
    through a general duration normaliser, which made it the hottest path of planning
    (figures in docs/performance.md). A result beyond the calendar (before year 1 or after 9999)
    raises :class:`VisitplanError` naming ``field``, instead of an ``OverflowError``.
    """
    try:
        if span.months:
            anchor = _add_months(anchor, span.months)
        if not span.days:
            return anchor
        ordinal = anchor.toordinal() + span.days
        # _BY_ORDINAL.get inlined: shift is on planning's hot path.
        return _BY_ORDINAL.get(ordinal) or _from_ordinal(ordinal)
    except (OverflowError, ValueError):
        amount = " + ".join(
            f"{n} {unit}" for n, unit in ((span.months, "months"), (span.days, "days")) if n
        )
        raise VisitplanError(
            field,
            f"{anchor.isoformat()} + {amount}",
            _("falls outside the calendar (years 1-9999)"),
        ) from None


_ONE_DAY = Span(0, 1)


def next_day(day: pendulum.Date) -> pendulum.Date:
    """The day after ``day`` (an all-day event's exclusive end; a walk over days)."""
    return shift(day, _ONE_DAY)


class Spans:
    """Three spans always applied to the same anchor: a visit's target, earliest and latest.

    ``Spans(spans, fields).apply(anchor)`` is ``tuple(shift(anchor, s, f) for s, f in zip(spans,
    fields))``, the same dates and the same error for a result beyond the calendar, in one
    call: planning asks for these three dates for every visit of every participant, and three
    calls of :func:`shift` cost more (figures in docs/performance.md).
    When no span has months, the anchor's ordinal is read once and the days added to it.
    """

    __slots__ = ("_days", "fields", "spans")

    def __init__(self, spans: tuple[Span, Span, Span], fields: tuple[str, str, str]) -> None:
        self.spans = spans
        self.fields = fields
        self._days = None if any(s.months for s in spans) else tuple(s.days for s in spans)

    def apply(self, anchor: pendulum.Date) -> tuple[pendulum.Date, pendulum.Date, pendulum.Date]:
        """The three dates: ``anchor`` moved by each span."""
        days = self._days
        if days is not None:
            ordinal = anchor.toordinal()
            first, second, third = ordinal + days[0], ordinal + days[1], ordinal + days[2]
            get = _BY_ORDINAL.get
            try:
                return (
                    get(first) or _from_ordinal(first),
                    get(second) or _from_ordinal(second),
                    get(third) or _from_ordinal(third),
                )
            except (OverflowError, ValueError):
                pass  # beyond the calendar: shift() below raises the error naming the field
        spans, fields = self.spans, self.fields
        return (
            shift(anchor, spans[0], fields[0]),
            shift(anchor, spans[1], fields[1]),
            shift(anchor, spans[2], fields[2]),
        )


_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _add_months(day: pendulum.Date, months: int) -> pendulum.Date:
    """``day`` moved by calendar ``months``, clamped to the month's end (31 Jan + 1 = 28 Feb)."""
    years, month0 = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month0 + 1
    last = 29 if month == 2 and calendar.isleap(year) else _DAYS_IN_MONTH[month]
    return pendulum.Date(year, month, min(day.day, last))


#: ordinal -> pendulum.Date. Dates are immutable values, so a schedule can share them: this
#: makes a shift a dictionary look-up, and 100,000 schedules hold a few thousand date objects
#: instead of millions. Bounded (about 180 years of days) so that it cannot grow without end.
_BY_ORDINAL: dict[int, pendulum.Date] = {}
_BY_ORDINAL_MAX = 1 << 16


def _from_ordinal(ordinal: int) -> pendulum.Date:
    day = _BY_ORDINAL.get(ordinal)
    if day is None:
        plain = _dt.date.fromordinal(ordinal)
        day = pendulum.Date(plain.year, plain.month, plain.day)
        if len(_BY_ORDINAL) < _BY_ORDINAL_MAX:
            _BY_ORDINAL[ordinal] = day
    return day


def earliest_clear(exposure: pendulum.Date, span: Span) -> pendulum.Date:
    """The earliest day D whose ``D - span`` (counted back from D) is on or after ``exposure``.

    A washout "no exposure within 6 months before Day 1" is counted from the anchor (Day 1),
    so with month clamping ``exposure + 6 months`` may still be too early: an exposure on
    31 August is within 6 months of 28 February (28 February - 6 months = 28 August), so the
    earliest Day 1 is 1 March.
    """
    # ``D - span`` never decreases as D grows, so the permissible days are all days from one
    # on; the forward shift lands within a few days of it (month clamping), so walk from there.
    day = shift(exposure, span)
    while shift(day, -span) < exposure:
        day = day.add(days=1)
    while shift(day.subtract(days=1), -span) >= exposure:
        day = day.subtract(days=1)
    return day


def study_day(day: pendulum.Date, day1: pendulum.Date) -> int:
    """CDISC study day: Day 1 is ``day1``; there is no Day 0, days before it are negative."""
    delta = day.toordinal() - day1.toordinal()
    return delta + 1 if delta >= 0 else delta


def today_at(zones: Iterable[str]) -> pendulum.Date:
    """Today's date where the study happens: the latest of the dates in ``zones`` (the sites'
    time zones), or the machine's own date when there are none.

    A roster is often kept on a server in UTC while its site is in Paris: between midnight
    and 02:00 in Paris the server's date is still yesterday, and a visit done "today" at
    the site would be refused as a future fact. Taking the latest date of the sites' zones
    never calls a date in the future that has already begun at one of the sites.
    """
    days = [pendulum.today(zone).date() for zone in zones]
    return max(days) if days else pendulum.today().date()


def local_datetime(day: pendulum.Date, time: str | pendulum.Time, zone: str) -> pendulum.DateTime:
    """An appointment: ``day`` at wall-clock ``time`` in the IANA ``zone``, zone-aware.

    A wall-clock time that does not exist (the spring-forward gap) or happens twice (the
    autumn fall-back) is refused with :class:`VisitplanError`: RFC 5545 clients and pendulum
    resolve those differently, so visitplan never guesses.
    """
    import datetime as _dt

    day = to_date(day, "appointment date")
    if not isinstance(time, str | _dt.time):
        raise VisitplanError(
            "time", time, _("must be a wall-clock time written HH:MM (00:00-23:59)")
        )
    if isinstance(time, str):
        parsed = wall_time(time)
        if parsed is None:
            raise VisitplanError(
                "time", time, _("must be a wall-clock time written HH:MM (00:00-23:59)")
            )
        hour, minute = parsed
    else:
        hour, minute = time.hour, time.minute
    try:
        tz = pendulum.timezone(zone)
    except Exception:  # pendulum raises several types for an unknown zone
        raise VisitplanError("timezone", zone, _("is not a known IANA time zone")) from None
    naive = _dt.datetime(day.year, day.month, day.day, hour, minute)
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    when = f"{day.isoformat()} {hour:02d}:{minute:02d}"
    if first.utcoffset() != second.utcoffset():
        # fold=0/1 disagree exactly for gaps and overlaps; tell them apart by round-tripping.
        back = first.astimezone(_dt.UTC).astimezone(tz).replace(tzinfo=None)
        rule = (
            "happens twice in this zone (clocks go back); pick another time"
            if back == naive
            else "does not exist in this zone (clocks go forward); pick another time"
        )
        raise VisitplanError(f"appointment time ({zone})", when, rule)
    return pendulum.instance(first).in_timezone(zone)
