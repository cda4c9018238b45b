"""Rule-based VTIMEZONE components built from the IANA tz data.

``icalendar``'s ``Timezone.from_tzid`` and ``Calendar.add_missing_timezones`` list every
transition as RDATEs; Mozilla's ical.js (Thunderbird) reads those one hour off in summer. Real
clients read yearly RRULE observances right, so this module writes the zone's *current* rule,
taken from the POSIX TZ string at the end of the zone's TZif file (e.g. ``CET-1CEST,M3.5.0,
M10.5.0/3`` for Europe/Paris), as STANDARD and DAYLIGHT observances with RRULEs.

A current rule is wrong for dates before the zone last changed its rules, so the exporter
checks every instant it writes against the tz database (:func:`check_instants`) and refuses
the export rather than write a wrong time.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path

import attrs
from icalendar import Timezone, TimezoneDaylight, TimezoneStandard

from visitplan.errors import VisitplanError
from visitplan.i18n import _

#: Observances start here; the rule check makes the exact year irrelevant for the instants used.
_EPOCH_YEAR = 1970

_NAME = r"(?:<[^>]+>|[A-Za-z]{3,})"
_OFFSET = r"[+-]?\d{1,3}(?::\d{2}){0,2}"
_POSIX = re.compile(
    rf"^(?P<std>{_NAME})(?P<stdoff>{_OFFSET})"
    rf"(?:(?P<dst>{_NAME})(?P<dstoff>{_OFFSET})?"
    r",(?P<start>[^,]+),(?P<end>[^,]+))?$"
)
_MONTH_RULE = re.compile(r"^M(\d{1,2})\.([1-5])\.([0-6])(?:/(" + _OFFSET + r"))?$")
_WEEKDAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")


@attrs.frozen
class _Transition:
    """A yearly change: month, week (1-4, or 5 = last), weekday (0 = Sunday), local time."""

    month: int
    week: int
    weekday: int
    time: dt.timedelta

    def rrule(self) -> dict[str, object]:
        week = -1 if self.week == 5 else self.week
        return {
            "FREQ": "YEARLY",
            "BYMONTH": self.month,
            "BYDAY": f"{week}{_WEEKDAYS[self.weekday]}",
        }

    def first(self, year: int) -> dt.datetime:
        """The local wall time of this change in ``year`` (its DTSTART there)."""
        if self.week == 5:
            nxt = dt.date(year + self.month // 12, self.month % 12 + 1, 1)
            day = nxt - dt.timedelta(days=1)
            day -= dt.timedelta(days=(day.isoweekday() % 7 - self.weekday) % 7)
        else:
            day = dt.date(year, self.month, 1)
            day += dt.timedelta(days=(self.weekday - day.isoweekday() % 7) % 7)
            day += dt.timedelta(weeks=self.week - 1)
        return dt.datetime.combine(day, dt.time()) + self.time


def _seconds(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    parts = [int(p) for p in text.lstrip("+-").split(":")]
    parts += [0] * (3 - len(parts))
    return sign * (parts[0] * 3600 + parts[1] * 60 + parts[2])


def _tzif_bytes(zone: str) -> bytes:
    for folder in zoneinfo.TZPATH:
        path = Path(folder) / zone
        if path.is_file():
            return path.read_bytes()
    package, _sep, name = f"tzdata.zoneinfo/{zone}".rpartition("/")
    try:
        return (resources.files(package.replace("/", ".")) / name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        raise VisitplanError("timezone", zone, _("is not a known IANA time zone")) from None


def posix_rule(zone: str) -> str:
    """The POSIX TZ string that governs ``zone`` after its last listed transition."""
    data = _tzif_bytes(zone)
    if data[:4] != b"TZif" or data[4:5] not in (b"2", b"3", b"4"):
        raise VisitplanError("timezone", zone, _("has no TZif v2+ data with a current rule"))
    return data.rstrip(b"\n").rsplit(b"\n", 1)[-1].decode("ascii")


def _transition(text: str, zone: str) -> _Transition:
    m = _MONTH_RULE.match(text)
    if not m:
        raise VisitplanError(
            "timezone", zone, _("rule {text!r} cannot be written as an RRULE").format(text=text)
        )
    time = dt.timedelta(seconds=_seconds(m.group(4)) if m.group(4) else 7200)
    if not dt.timedelta(0) <= time < dt.timedelta(days=1):
        raise VisitplanError(
            "timezone", zone, _("rule {text!r} changes outside 00:00-24:00").format(text=text)
        )
    return _Transition(int(m.group(1)), int(m.group(2)), int(m.group(3)), time)


def vtimezone(zone: str) -> Timezone:
    """A VTIMEZONE for the IANA ``zone`` with one RRULE per yearly change (or none).

    Raises :class:`VisitplanError` for an unknown zone or a rule RFC 5545 cannot express.
    """
    component = Timezone.from_ical(_vtimezone_ical(zone))
    assert isinstance(component, Timezone)
    return component


@cache
def _vtimezone_ical(zone: str) -> bytes:
    # Cached as bytes: every caller gets its own component, free to change it.
    data: bytes = _build(zone).to_ical()
    return data


def _build(zone: str) -> Timezone:
    rule = posix_rule(zone)
    m = _POSIX.match(rule)
    if not m:
        raise VisitplanError(
            "timezone", zone, _("has a rule visitplan cannot read: {rule!r}").format(rule=rule)
        )
    std_name = m.group("std").strip("<>")
    std = dt.timedelta(seconds=-_seconds(m.group("stdoff")))  # POSIX counts west as positive
    tz = Timezone()
    tz.add("TZID", zone)
    tz.add("X-LIC-LOCATION", zone)
    if not m.group("dst"):
        part = TimezoneStandard()
        part.add("DTSTART", dt.datetime(_EPOCH_YEAR, 1, 1))
        part.add("TZOFFSETFROM", std)
        part.add("TZOFFSETTO", std)
        part.add("TZNAME", std_name)
        tz.add_component(part)
        return tz  # no daylight saving time in the current rule
    dst_name = m.group("dst").strip("<>")
    dst = (
        dt.timedelta(seconds=-_seconds(m.group("dstoff")))
        if m.group("dstoff")
        else std + dt.timedelta(hours=1)
    )
    to_dst, to_std = _transition(m.group("start"), zone), _transition(m.group("end"), zone)
    daylight = TimezoneDaylight()
    daylight.add("DTSTART", to_dst.first(_EPOCH_YEAR))
    daylight.add("RRULE", to_dst.rrule())
    daylight.add("TZOFFSETFROM", std)
    daylight.add("TZOFFSETTO", dst)
    daylight.add("TZNAME", dst_name)
    standard = TimezoneStandard()
    standard.add("DTSTART", to_std.first(_EPOCH_YEAR))
    standard.add("RRULE", to_std.rrule())
    standard.add("TZOFFSETFROM", dst)
    standard.add("TZOFFSETTO", std)
    standard.add("TZNAME", std_name)
    tz.add_component(standard)
    tz.add_component(daylight)
    return tz


def check_instants(zone: str, instants: Iterable[dt.datetime]) -> None:
    """Refuse the export if the VTIMEZONE of ``zone`` gives any of ``instants`` another offset
    than the tz database (the zone changed its rules since that date)."""
    rules = _rules_tzinfo(zone)
    for when in instants:
        local = when.replace(tzinfo=None)
        expected = when.utcoffset()
        got = local.replace(tzinfo=rules).utcoffset()
        if expected != got:
            raise VisitplanError(
                f"appointment ({zone})",
                local.isoformat(sep=" ", timespec="minutes"),
                _(
                    "falls before the zone's current daylight-saving rule; give it in UTC or "
                    "another zone"
                ),
            )


@cache
def _rules_tzinfo(zone: str) -> dt.tzinfo:
    # icalendar evaluates the RRULEs itself: an independent reading of what we write.
    rules: dt.tzinfo = vtimezone(zone).to_tz(lookup_tzid=False)
    return rules
