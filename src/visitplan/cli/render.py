"""Terminal rendering of schedules (rich tables)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from visitplan.model import Protocol
from visitplan.schedule import Schedule, VisitStatus

_STATUS_STYLE = {
    VisitStatus.DONE: "green",
    VisitStatus.MISSED: "red",
    VisitStatus.CANCELLED: "dim",
    VisitStatus.PLANNED: "",
}


def print_schedule(protocol: Protocol, schedule: Schedule, console: Console | None = None) -> None:
    """Print a participant's schedule as a table, then its findings."""
    console = console or Console()
    table = Table(
        title=escape(f"{protocol.id} participant {schedule.participant}: Day 1 {schedule.day1}"),
        title_justify="left",
    )
    for name, justify in (("Code", "left"), ("Visit", "left"), ("Target", "left"),
                          ("Window", "left"), ("Day", "right"), ("Status", "left"),
                          ("Kind", "left")):  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=name != "Visit")  # type: ignore[arg-type]
    for v in schedule.visits:
        target = f"{v.target} {v.target.format('ddd')}" + ("?" if v.tentative else "")
        window = "" if v.earliest == v.latest else f"{v.earliest}..{v.latest}"
        status = v.status.value + (f" {v.actual}" if v.actual else "")
        # Protocol text is data, not rich markup: "[/b]" in a visit name must print as is.
        table.add_row(
            escape(v.code),
            escape(v.name),
            target,
            window,
            str(v.study_day),
            f"[{_STATUS_STYLE[v.status]}]{status}[/]" if _STATUS_STYLE[v.status] else status,
            escape(v.kind.value),
        )
    console.print(table)
    if any(v.tentative for v in schedule.visits):
        console.print("? tentative: the date waits for an event (e.g. B-cell recovery)")
    for f in schedule.findings:
        console.print(f"[yellow]! {escape(str(f))}[/]")
