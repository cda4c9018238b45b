"""Terminal rendering of schedules (rich tables)."""

from __future__ import annotations

from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from visitplan.errors import printable
from visitplan.model import Protocol
from visitplan.schedule import Schedule, VisitStatus

_STATUS_STYLE = {
    VisitStatus.DONE: "green",
    VisitStatus.MISSED: "red",
    VisitStatus.CANCELLED: "dim",
    VisitStatus.PLANNED: "",
}


def cell_text(value: object) -> Text:
    """A table cell (or a line) of data, printed as it is: never read as rich markup (``[/b]``),
    with control characters escaped (an ESC sequence in a reason would clear the screen, a CR
    would overwrite the row). Every terminal table of the CLI builds its cells here."""
    return Text(printable(str(value)))


def _markup(text: str) -> str:
    """Data inside rich markup: control characters escaped, markup characters escaped."""
    return escape(printable(text))


def print_schedule(protocol: Protocol, schedule: Schedule, console: Console | None = None) -> None:
    """Print a participant's schedule as a table, then its findings.

    Codes, dates, windows, study days and statuses are never cut short ("2022-1…" is no date).
    When the table is wider than the terminal, the visit's name wraps, the kind column is
    left out and the borders are lighter.
    """
    console = console or Console()
    title = _markup(f"{protocol.id} participant {schedule.participant}: Day 1 {schedule.day1}")
    rows: list[tuple[str, ...]] = []  # rich markup, one string a cell
    for v in schedule.visits:
        target = f"{v.target} {v.target.format('ddd')}" + ("?" if v.tentative else "")
        window = "" if v.earliest == v.latest else f"{v.earliest}..{v.latest}"
        status = v.status.value + (f" {v.actual}" if v.actual else "")
        style = _STATUS_STYLE[v.status]
        # Protocol text is data, not rich markup: "[/b]" in a visit name must print as is.
        rows.append(
            (
                _markup(v.code),
                _markup(v.name),
                target,
                window,
                str(v.study_day),
                f"[{style}]{status}[/]" if style else status,
                _markup(v.kind.value),
            )
        )
    table = _schedule_table(title, rows, narrow=False)
    natural = console.measure(table, options=console.options.update(max_width=10_000))
    if natural.maximum > console.width:
        table = _schedule_table(title, rows, narrow=True)
    console.print(table)
    if schedule.milestones:
        dates = Table(title="Milestones (dates that are not visits)", title_justify="left")
        for name in ("Code", "Milestone", "Date"):
            dates.add_column(name, no_wrap=name != "Milestone")
        for m in schedule.milestones:
            when = f"{m.date} {m.date.format('ddd')}" + ("?" if m.tentative else "")
            dates.add_row(cell_text(m.code), cell_text(m.name), when)
        console.print(dates)
        if any(m.tentative for m in schedule.milestones):
            console.print("? tentative milestone: moves while the last dose is still planned")
    if any(v.tentative for v in schedule.visits):
        console.print("? tentative: the date waits for an event (e.g. B-cell recovery)")
    for f in schedule.findings:
        console.print(f"[yellow]! {_markup(str(f))}[/]")


def _schedule_table(title: str, rows: list[tuple[str, ...]], narrow: bool) -> Table:
    table = Table(title=title, title_justify="left")
    if narrow:  # no borders: columns one space apart
        table.box, table.padding, table.pad_edge = None, (0, 1, 0, 0), False
    names: tuple[str, ...] = ("Code", "Visit", "Target", "Window", "Day", "Status", "Kind")
    names = names[:-1] if narrow else names
    for i, name in enumerate(names):
        if name in ("Visit", "Kind"):
            table.add_column(name, overflow="fold")
            continue
        # The widest cell as printed (markup and escapes left out) is the column's least width.
        widest = max([len(name), *(Text.from_markup(row[i]).cell_len for row in rows)])
        justify: JustifyMethod = "right" if name == "Day" else "left"
        table.add_column(name, justify=justify, no_wrap=True, min_width=widest)
    for row in rows:
        table.add_row(*row[: len(names)])
    return table


def print_activities(protocol: Protocol, console: Console | None = None) -> None:
    """Print the schedule of activities as protocol documents do: visits as columns, timing
    rows (epoch, timing, window, planned study day) on top, then one row a procedure.

    ``X`` marks a procedure done at the visit, ``(X)`` one done only for participants with
    its flag; a visit only for flagged participants is marked ``*``. ``Day`` is the planned
    study day where it is a fixed number of days from Day 1 (SDTM TV's VISITDY), with ``...``
    for a repeating visit (its first occurrence).
    """
    from visitplan.export.cdisc import planned_study_days

    console = console or Console()
    days = planned_study_days(protocol)
    procs = {p.code: p for v in protocol.visits for p in v.procedures}
    table = Table(title=cell_text(f"{protocol.id}: schedule of activities"), title_justify="left")
    table.add_column("", no_wrap=True)
    for v in protocol.visits:
        table.add_column(cell_text(v.code + (" *" if v.condition else "")), justify="center")
    notes: list[str] = []
    legend: list[str] = []
    timing, window, day = [], [], []
    for v in protocol.visits:
        t = f"{_anchor_name(v.anchor, short=True)} {'-' if v.offset.value < 0 else '+'}"
        t += _short(abs(v.offset.value), v.offset.unit.value)
        if v.repeat:
            t += f" q{_short(v.repeat.every.value, v.repeat.every.unit.value)}"
            r = v.repeat
            ends = [f"{r.count} times" if r.count else "", f"until +{r.until}" if r.until else ""]
            ends += [f"until {r.stop_event}" if r.stop_event else ""]
            ends += [f"until {r.stop_visit}" if r.stop_visit else ""]
            notes.append(
                f"{v.code}: repeats every {r.every} from its first occurrence, "
                f"{', '.join(e for e in ends if e)} (whichever comes first)"
            )
        timing.append(t)
        w = v.window
        before = _short(w.before.value, w.before.unit.value)
        after = _short(w.after.value, w.after.unit.value)
        if w.before.value == 0 and w.after.value == 0:
            window.append("")
        elif before == after:
            window.append(f"±{before}")
        else:
            window.append(f"-{before}/+{after}")
        if w.strict:
            notes.append(f"{v.code}: strict window (a date outside it is refused)")
        if v.wait_for:
            notes.append(
                f"{v.code}: on the {v.wait_for} date once recorded (kept inside the window); "
                "until then tentative, at the latest date"
            )
        if v.not_before:
            notes.append(
                f"{v.code}: never before {_anchor_name(v.not_before.anchor)} "
                f"+ {v.not_before.offset}"
            )
        if v.condition:
            notes.append(f"{v.code} *: only for participants flagged {v.condition}")
        first = days.get(f"{v.code}1" if v.repeat else v.code)
        day.append("" if first is None else f"{first}{'...' if v.repeat else ''}")
    table.add_row("Visit", *(cell_text(v.name) for v in protocol.visits))
    table.add_row("Epoch", *(cell_text(v.epoch) for v in protocol.visits))
    table.add_row("Timing", *map(cell_text, timing))
    table.add_row("Window", *window)
    table.add_row("Day", *day, end_section=True)
    for code, p in procs.items():
        marks = []
        for v in protocol.visits:
            if p not in v.procedures:
                marks.append("")
            else:
                marks.append("(X)" if p.condition else "X")
        table.add_row(cell_text(code), *marks)
        legend.append(f"{code}: {p.name}")
        if p.condition:
            notes.append(f"(X) {code}: only for participants flagged {p.condition}")
        if p.dose:
            notes.append(f"{code}: {p.dose}")
    console.print(table)
    console.print("scr = screening date, LD = last dose, q = every; Day = planned study day")
    for note in [*legend, *notes]:
        console.print(cell_text(note))


def _short(value: int, unit: str) -> str:
    return f"{value}{ {'days': 'd', 'weeks': 'w', 'months': 'mo'}[unit] }"


def _anchor_name(anchor: object, *, short: bool = False) -> str:
    text = str(anchor)
    names = {"last_dose": "last dose", "screening": "screening"}
    if short:
        names = {"last_dose": "LD", "screening": "scr"}
    return names.get(text, text)
