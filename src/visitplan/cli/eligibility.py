"""``visitplan eligibility``: washout rules against a medication and vaccine history."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from visitplan.cli.common import load_protocol, parse_date_option, protocol_option
from visitplan.cli.render import Cell, Column


@click.command()
@protocol_option
@click.option(
    "--participant", default="candidate", show_default=True, help="A study code (no names)."
)
@click.option(
    "--screening", required=True, callback=parse_date_option, help="Screening date, YYYY-MM-DD."
)
@click.option(
    "--day1",
    callback=parse_date_option,
    help="The planned or actual Day 1 to check (default: the planned Day 1).",
)
@click.option(
    "--history",
    "history_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="History file: CSV (rule,what,last_dose,last_change,half_life) or JSON.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def eligibility(
    protocol_spec: str,
    participant: str,
    screening: pendulum.Date,
    day1: pendulum.Date | None,
    history_file: str,
    fmt: str,
) -> None:
    """Earliest permissible Day 1 under each washout rule, and the rules a Day 1 breaks."""
    from visitplan.eligibility import check, load_history
    from visitplan.errors import printable
    from visitplan.participant import Participant

    protocol = load_protocol(protocol_spec)
    history = load_history(history_file)
    report = check(protocol, Participant(participant, screening), history, day1=day1)
    if fmt == "json":
        import json

        from visitplan.eligibility import eligibility_dict

        click.echo(json.dumps(eligibility_dict(report), indent=2, ensure_ascii=False))
        return
    from rich.text import Text

    from visitplan.cli.render import make_console, print_table, print_text

    console = make_console()
    rows: list[list[Cell]] = []
    for c in report.checks:
        status = Text("ok")
        if not c.ok:
            status = Text.assemble(("broken", "red"), printable(f" ({c.binds} {c.date})"))
        rows.append(
            [
                c.code,
                c.what or ("-" if c.last_exposure is None else ""),
                c.interval,
                str(c.last_exposure or "-"),
                f"{c.anchor} ({c.binds})",
                str(c.earliest or "-"),
                status,
            ]
        )
    title = (
        f"{protocol.id} participant {report.participant}: screening {report.screening}, "
        f"Day 1 {report.day1} ({report.day1_source})"
    )
    print_table(title, ELIGIBILITY_COLUMNS, rows, console)
    binding = f" (binding rule: {report.binding})" if report.binding else " (no rule binds)"
    print_text(f"Earliest permissible Day 1: {report.earliest_day1}{binding}", console)
    if not report.within_window:
        print_text(
            Text("! no permissible Day 1 is left in the run-in of this screening", "red"), console
        )
    for c in report.checks:
        if c.requirement and c.last_exposure is not None:
            print_text(f"{c.code}: also requires {c.requirement}", console)
    if not report.ok:
        print_text(Text(f"! {len(report.broken)} rule(s) broken", "red"), console)


#: The terminal table of ``eligibility``.
ELIGIBILITY_COLUMNS = (
    Column("Rule"),
    Column("What", "text"),
    Column("Interval", "text"),
    Column("Last exposure"),
    Column("Anchor", "text", decoration=True),  # the protocol's words; Status names the visit
    Column("Earliest"),
    Column("Status", "words"),
)

if TYPE_CHECKING:
    import pendulum
