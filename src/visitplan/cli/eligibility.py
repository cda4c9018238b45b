"""``visitplan eligibility``: washout rules against a medication and vaccine history."""

from __future__ import annotations

from typing import Any

import click

from visitplan.cli.common import load_protocol, parse_date_option, protocol_option


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
    screening: Any,
    day1: Any,
    history_file: str,
    fmt: str,
) -> None:
    """Earliest permissible Day 1 under each washout rule, and the rules a Day 1 breaks."""
    from visitplan.eligibility import check, load_history
    from visitplan.participant import Participant

    protocol = load_protocol(protocol_spec)
    history = load_history(history_file)
    report = check(protocol, Participant(participant, screening), history, day1=day1)
    if fmt == "json":
        import json

        from visitplan.eligibility import eligibility_dict

        click.echo(json.dumps(eligibility_dict(report), indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    from visitplan.cli.render import cell_text

    console = Console()
    table = Table(
        title=cell_text(
            f"{protocol.id} participant {report.participant}: screening {report.screening}, "
            f"Day 1 {report.day1} ({report.day1_source})"
        ),
        title_justify="left",
    )
    for name in ("Rule", "What", "Interval", "Last exposure", "Anchor", "Earliest", "Status"):
        table.add_column(name, no_wrap=name not in ("What", "Interval", "Anchor"))
    for c in report.checks:
        status = "ok" if c.ok else f"[red]broken[/] ({c.binds} {c.date})"
        table.add_row(
            cell_text(c.code),
            cell_text(c.what or ("-" if c.last_exposure is None else "")),
            cell_text(c.interval),
            str(c.last_exposure or "-"),
            cell_text(f"{c.anchor} ({c.binds})"),
            str(c.earliest or "-"),
            status,
        )
    console.print(table)
    binding = f" (binding rule: {report.binding})" if report.binding else " (no rule binds)"
    console.print(f"Earliest permissible Day 1: {report.earliest_day1}{binding}")
    if not report.within_window:
        console.print("[red]! no permissible Day 1 is left in the run-in of this screening[/]")
    for c in report.checks:
        if c.requirement and c.last_exposure is not None:
            console.print(cell_text(f"{c.code}: also requires {c.requirement}"))
    if not report.ok:
        console.print(f"[red]! {len(report.broken)} rule(s) broken[/]")
