"""``visitplan plan``: one participant's schedule as a table, JSON or CSV."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from visitplan.cli.common import (
    excel_option,
    facts_options,
    load_protocol,
    machine_format,
    parse_date_option,
    participant_from_options,
    protocol_option,
    wants_excel,
)

if TYPE_CHECKING:
    import pendulum


@click.command()
@protocol_option
@facts_options()
@click.option("--today", callback=parse_date_option, help="Report overdue visits as of this date.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    callback=machine_format,
)
@excel_option
def plan(
    protocol_spec: str,
    participant: str,
    screening: pendulum.Date,
    day1: pendulum.Date | None,
    actuals: tuple[str, ...],
    flags: tuple[str, ...],
    events: tuple[str, ...],
    bcell_counts: tuple[str, ...],
    bcell_baseline: float | None,
    today: pendulum.Date | None,
    fmt: str,
) -> None:
    """Plan one participant's visits: target, window and study day of each."""
    protocol = load_protocol(protocol_spec)
    person = participant_from_options(
        protocol,
        participant,
        screening,
        day1,
        actuals,
        flags,
        events,
        bcell_counts=bcell_counts,
        bcell_baseline=bcell_baseline,
    )
    from visitplan.engine import plan as plan_visits

    schedule = plan_visits(protocol, person, today=today)
    if fmt == "json":
        from visitplan.export.tabular import to_json

        click.echo(to_json(protocol, person, schedule))
    elif fmt == "csv":
        from visitplan.export.tabular import to_csv

        click.echo(to_csv([schedule], excel=wants_excel(protocol)), nl=False)
    else:
        from visitplan.cli.render import print_schedule

        print_schedule(protocol, schedule)
