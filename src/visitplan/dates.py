"""Date helpers: strict parsing, anchor arithmetic and the study-day rule.

This is the only module that does calendar arithmetic; the engine calls it, nothing else does.
"""

from __future__ import annotations

import re

import pendulum

from visitplan.errors import VisitplanError
from visitplan.model import Span

#: Dates outside these years are refused as typing mistakes (a trial is planned in decades).
MIN_YEAR = 1900
MAX_YEAR = 2199

#: ASCII digits only: ``\d`` alone would also read Arabic-Indic or Devanagari digits as a date.
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$", re.ASCII)


def parse_date(text: object, field: str = "date") -> pendulum.Date:
    """Parse an ISO 8601 calendar date (YYYY-MM-DD) strictly, or raise :class:`VisitplanError`.

    ``pendulum.parse`` accepts many forms (week dates, ordinal dates, date-times) and returns a
    UTC DateTime for some of them; a schedule needs exactly a calendar date.
    """
    if isinstance(text, pendulum.Date) and not isinstance(text, pendulum.DateTime):
        return check_year(text, field)
    if not isinstance(text, str):
        raise VisitplanError(field, text, "must be a date written YYYY-MM-DD")
    m = _ISO_DATE.match(text.strip())
    if not m:
        raise VisitplanError(field, text, "must be a date written YYYY-MM-DD")
    year, month, day = (int(g) for g in m.groups())
    try:
        value = pendulum.date(year, month, day)
    except ValueError:
        raise VisitplanError(field, text, "is not a day of the calendar") from None
    return check_year(value, field)


def check_year(value: pendulum.Date, field: str) -> pendulum.Date:
    """Refuse dates outside the supported years (a typo such as 0222 or 2922)."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise VisitplanError(
            field, value.isoformat(), f"year must be between {MIN_YEAR} and {MAX_YEAR}"
        )
    return value


def to_date(value: object, field: str = "date") -> pendulum.Date:
    """Accept a pendulum/stdlib date or an ISO string and return a ``pendulum.Date``."""
    import datetime as _dt

    if isinstance(value, _dt.datetime):
        raise VisitplanError(field, value, "must be a calendar date, not a date and time")
    if isinstance(value, _dt.date) and not isinstance(value, pendulum.Date):
        value = pendulum.date(value.year, value.month, value.day)
    return parse_date(value, field)


def shift(anchor: pendulum.Date, span: Span, field: str = "date") -> pendulum.Date:
    """``anchor`` moved by ``span`` in one step: calendar months first (clamped), then days.

    A result beyond the calendar (before year 1 or after 9999) raises :class:`VisitplanError`
    naming ``field``, instead of pendulum's ``OverflowError``.
    """
    try:
        moved = anchor.add(months=span.months) if span.months else anchor
        return moved.add(days=span.days) if span.days else moved
    except (OverflowError, ValueError):
        amount = " + ".join(
            f"{n} {unit}" for n, unit in ((span.months, "months"), (span.days, "days")) if n
        )
        raise VisitplanError(
            field, f"{anchor.isoformat()} + {amount}", "falls outside the calendar (years 1-9999)"
        ) from None


def study_day(day: pendulum.Date, day1: pendulum.Date) -> int:
    """CDISC study day: Day 1 is ``day1``; there is no Day 0, days before it are negative."""
    delta = day.toordinal() - day1.toordinal()
    return delta + 1 if delta >= 0 else delta


def local_datetime(day: pendulum.Date, time: str | pendulum.Time, zone: str) -> pendulum.DateTime:
    """An appointment: ``day`` at wall-clock ``time`` in the IANA ``zone``, zone-aware.

    A wall-clock time that does not exist (the spring-forward gap) or happens twice (the
    autumn fall-back) is refused with :class:`VisitplanError`: RFC 5545 clients and pendulum
    resolve those differently, so visitplan never guesses.
    """
    import datetime as _dt

    day = to_date(day, "appointment date")
    if not isinstance(time, str | _dt.time):
        raise VisitplanError("time", time, "must be a wall-clock time written HH:MM (00:00-23:59)")
    if isinstance(time, str):
        m = re.match(r"^([01]\d|2[0-3]):([0-5]\d)$", time.strip(), re.ASCII)
        if not m:
            raise VisitplanError(
                "time", time, "must be a wall-clock time written HH:MM (00:00-23:59)"
            )
        hour, minute = int(m.group(1)), int(m.group(2))
    else:
        hour, minute = time.hour, time.minute
    try:
        tz = pendulum.timezone(zone)
    except Exception:  # pendulum raises several types for an unknown zone
        raise VisitplanError("timezone", zone, "is not a known IANA time zone") from None
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
