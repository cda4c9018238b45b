"""Pictures for a coordinator: a per-participant timeline and the site's load per day or week.

matplotlib (Agg backend, no display) is imported inside the functions, so importing this
module costs nothing. SVG keeps text as text (participant and visit codes are searchable).
Dates come from the engine's schedules and the agenda; nothing here computes a visit date.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pendulum

from visitplan.i18n import _
from visitplan.model import VisitKind
from visitplan.schedule import Schedule, VisitStatus

if TYPE_CHECKING:
    from visitplan.booking import Key
    from visitplan.site import SiteCalendar

FORMATS = ("svg", "png")
#: matplotlib's date numbers count days from 1970-01-01 (ordinal 719163).
_EPOCH_SHIFT = 719163

_KIND_COLOURS = {
    VisitKind.SCREENING: "#7f7f7f",
    VisitKind.DOSING: "#1f77b4",
    VisitKind.ASSESSMENT: "#17becf",
    VisitKind.BIOPSY: "#d62728",
    VisitKind.FOLLOW_UP: "#2ca02c",
    VisitKind.END_OF_STUDY: "#9467bd",
    VisitKind.UNSCHEDULED: "#bcbd22",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text in SVG
    matplotlib.rcParams["svg.hashsalt"] = "visitplan"  # stable ids: same input, same file
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, fmt: str) -> bytes:
    if fmt not in FORMATS:
        from visitplan.errors import VisitplanError

        raise VisitplanError(
            "chart format", fmt, _("must be one of: {items}").format(items=", ".join(FORMATS))
        )
    plt = _pyplot()
    buf = io.BytesIO()
    meta = {"Date": None} if fmt == "svg" else {"Software": "visitplan"}
    fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight", metadata=meta)
    plt.close(fig)
    return buf.getvalue()


def timeline_chart(
    schedules: Iterable[Schedule],
    appointments: Mapping[Key, pendulum.DateTime] | None = None,
    *,
    today: pendulum.Date | None = None,
    start: pendulum.Date | None = None,
    end: pendulum.Date | None = None,
    site: SiteCalendar | None = None,
    fmt: str = "svg",
) -> bytes:
    """One row per participant visit: window as a bar, target as a mark, today as a line.

    Booked visits show the appointment day as a black diamond, done visits their actual day as
    a filled circle. With a ``site``, a target on a closed day (weekend, holiday, closure) is
    crossed in red. Only visits whose window meets ``[start, end]`` are drawn (all if unset);
    missed and cancelled visits are left out.
    """
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    appointments = appointments or {}
    rows: list[tuple[str, Any]] = []
    for s in schedules:
        for v in s.visits:
            if v.status in (VisitStatus.MISSED, VisitStatus.CANCELLED):
                continue
            if (start and v.latest < start) or (end and v.earliest > end):
                continue
            rows.append((s.participant, v))
    height = max(2.5, 0.28 * len(rows) + 1.2)
    fig, ax = plt.subplots(figsize=(11, height))
    labels: list[str] = []
    previous = None
    closed_targets = False
    for i, (participant, v) in enumerate(rows):
        y = len(rows) - 1 - i
        colour = _KIND_COLOURS[v.kind]
        width = v.latest.toordinal() - v.earliest.toordinal() + 1
        ax.barh(y, width, left=v.earliest, height=0.55, color=colour, alpha=0.35)
        ax.plot([v.target], [y], marker="|", markersize=12, mew=2.5, color=colour)
        if site is not None and v.open and not site.is_working_day(v.target):
            ax.plot([v.target], [y], marker="x", markersize=9, mew=2, color="#d62728")
            closed_targets = True
        when = appointments.get((participant, v.code))
        if v.status is VisitStatus.DONE and v.actual is not None:
            ax.plot([v.actual], [y], marker="o", markersize=6, color="black")
        elif when is not None:
            ax.plot([when.date()], [y], marker="D", markersize=6, color="black")
        labels.append(f"{participant}  {v.code}{'?' if v.tentative else ''}")
        if previous is not None and previous != participant:
            ax.axhline(y + 0.5, color="#bbbbbb", linewidth=0.8)
        previous = participant
    ax.set_yticks(range(len(rows) - 1, -1, -1), labels, fontsize=8, family="monospace")
    if today is not None:
        ax.axvline(today, color="#ff7f0e", linestyle="--", linewidth=1.5)
        ax.text(
            today,
            len(rows) - 0.3,
            " " + _("today {day}").format(day=today),
            color="#ff7f0e",
            fontsize=8,
        )
    if start is not None or end is not None:
        ax.set_xlim(left=start, right=end)
    ax.set_ylim(-0.7, len(rows) - 0.3 + 0.8)
    ax.grid(axis="x", color="#eeeeee")
    ax.set_title(_("Visits per participant: window (bar), target (|), done (o), booked (diamond)"))
    kinds = sorted({v.kind for _code, v in rows}, key=lambda k: list(VisitKind).index(k))
    handles: list[Any] = [Patch(color=_KIND_COLOURS[k], alpha=0.5, label=_(k.value)) for k in kinds]
    handles.append(Line2D([], [], marker="D", color="black", linestyle="", label=_("booked")))
    handles.append(Line2D([], [], marker="o", color="black", linestyle="", label=_("done")))
    if closed_targets:
        handles.append(
            Line2D(
                [],
                [],
                marker="x",
                color="#d62728",
                linestyle="",
                label=_("target on a closed day"),
            )
        )
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.autofmt_xdate()
    return _save(fig, fmt)


def load_chart(
    site: SiteCalendar,
    schedules: Iterable[Schedule],
    appointments: Mapping[Key, pendulum.DateTime],
    start: pendulum.Date,
    end: pendulum.Date,
    *,
    by: str = "day",
    fmt: str = "svg",
) -> bytes:
    """The site's visits per day (or ISO week), biopsy visits apart, limits and flags shown.

    Bars are stacked: biopsy visits (see :func:`~visitplan.site.capacity_kinds`) and the
    others. A day over capacity is labelled ``over`` in red, a day with visits while the site
    is closed ``closed``; per week, a week holding such a day carries the label.
    """
    from visitplan.booking import agenda
    from visitplan.errors import VisitplanError

    if by not in ("day", "week"):
        raise VisitplanError("--by", by, _("must be day or week"))
    plt = _pyplot()
    days = agenda(site, schedules, appointments, start, end)
    buckets: dict[pendulum.Date, list[int]] = {}  # start -> [biopsy, other, over, closed]
    who: dict[pendulum.Date, str] = {}  # day mode: the visits on a flagged day, by code
    for d in days:
        if d.over or d.closed:
            who[d.day] = ", ".join(f"{e.participant} {e.visit}" for e in d.entries)
        key = d.day.start_of("week") if by == "week" else d.day
        b = buckets.setdefault(key, [0, 0, 0, 0])
        biopsy = d.load.get(VisitKind.BIOPSY, 0)
        b[0] += biopsy
        b[1] += d.total - biopsy
        b[2] += 1 if d.over else 0
        b[3] += 1 if d.closed else 0
    keys = sorted(buckets)
    width = 5.5 if by == "week" else 0.8
    fig, ax = plt.subplots(figsize=(11, 4.2))
    biopsies = [buckets[k][0] for k in keys]
    others = [buckets[k][1] for k in keys]
    ax.bar(keys, biopsies, width=width, color=_KIND_COLOURS[VisitKind.BIOPSY], label=_("biopsy"))
    ax.bar(keys, others, width=width, bottom=biopsies, color="#1f77b4", label=_("other visits"))
    top = max((a + b for a, b in zip(biopsies, others, strict=True)), default=0)
    for k, b in zip(keys, (buckets[k] for k in keys), strict=True):
        flags = ([_("over")] if b[2] else []) + ([_("closed")] if b[3] else [])
        if flags:
            label = " ".join(flags) + (f": {who[k]}" if by == "day" and k in who else "")
            ax.text(k, b[0] + b[1] + 0.1, label, ha="center", va="bottom",
                    color="#d62728", fontsize=7, rotation=90,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})  # fmt: skip
    if by == "day":
        # Holidays and closures in the range, shaded, so a coordinator sees where not to book.
        shaded = False
        for day in site.days(start, end):
            if site.holiday(day) or any(c.covers(day) for c in site.closures):
                ax.axvspan(day.toordinal() - 0.5 - _EPOCH_SHIFT, day.toordinal() + 0.5
                           - _EPOCH_SHIFT, color="#999999", alpha=0.25, linewidth=0,
                           label=None if shaded else _("holiday or closure"))  # fmt: skip
                shaded = True
    limit = site.capacity.get(VisitKind.BIOPSY)
    if limit is not None and by == "day":
        ax.axhline(limit, color=_KIND_COLOURS[VisitKind.BIOPSY], linestyle=":",
                   label=_("biopsy limit {limit}/day").format(limit=limit))  # fmt: skip
    ax.set_xlim(start, end)
    ax.set_ylim(0, max(top, limit or 0) + (4.5 if by == "day" and who else 1.8))
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(_("visits per week") if by == "week" else _("visits per day"))
    title = (
        _("{site} load per ISO week (Monday shown), {start} to {end}")
        if by == "week"
        else _("{site} load per day, {start} to {end}")
    )
    ax.set_title(title.format(site=site.code, start=start, end=end))
    ax.grid(axis="y", color="#eeeeee")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.autofmt_xdate()
    return _save(fig, fmt)
