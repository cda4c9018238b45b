"""An independent oracle for the built-in protocol, written with the standard library only.

It restates default-protocol.md directly (dates from Day 1 or the last dose, months clamped),
so tests compare the engine against a second implementation instead of against its own output.
"""

from __future__ import annotations

import calendar
import datetime as dt

D = dt.timedelta


def add_months(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def reference(
    screening: dt.date, day1: dt.date | None = None
) -> dict[str, tuple[dt.date, dt.date, dt.date]]:
    """code -> (target, earliest, latest) with no actual dose recorded after Day 1."""
    d1 = day1 or screening + D(35)
    out = {
        "SCR": (screening, screening, screening),
        "D1": (screening + D(35), screening + D(1), screening + D(35)),
    }
    for week in (4, 8, 12, 16, 20):
        t = d1 + D(7 * week)
        out[f"W{week}"] = (t, t - D(3), t + D(3))
    t = d1 + D(168)
    out["EOT"] = (t, t - D(7), t + D(7))
    last = d1 + D(140)
    latest = add_months(last, 24)
    k = 0
    while (t := last + D(112 + 84 * k)) <= latest and t < latest:
        out[f"FU{k + 1}"] = (t, t - D(7), t + D(7))
        k += 1
    out["EOS"] = (latest, add_months(last, 5), latest)
    return out


def study_day(day: dt.date, day1: dt.date) -> int:
    n = (day - day1).days
    return n + 1 if n >= 0 else n
