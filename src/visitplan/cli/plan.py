"""``visitplan plan``: one participant's schedule as a table, JSON or CSV."""

from __future__ import annotations

from typing import Any

import click

from visitplan.cli.common import load_protocol, parse_date_option, protocol_option


@click.command()
@protocol_option
@click.option("--participant", required=True, help="The participant's study code (no names).")
@click.option(
    "--screening", required=True, callback=parse_date_option, help="Screening date, YYYY-MM-DD."
)
@click.option("--day1", callback=parse_date_option, help="Actual Day 1 (first dose), YYYY-MM-DD.")
@click.option(
    "--actual",
    "actuals",
    multiple=True,
    metavar="CODE=DATE",
    help="An actual visit date, e.g. --actual W4=2022-09-29 (repeatable).",
)
@click.option(
    "--flag", "flags", multiple=True, help="A participant flag such as hbcab_positive (repeatable)."
)
@click.option(
    "--event",
    "events",
    multiple=True,
    metavar="NAME=DATE",
    help="A dated event, e.g. bcell_recovery=2023-09-01.",
)
@click.option(
    "--bcell-count",
    "bcell_counts",
    multiple=True,
    metavar="DATE=VALUE",
    help="A blood B-cell count in the site's unit, e.g. 2023-05-10=95 (repeatable).",
)
@click.option(
    "--bcell-baseline",
    type=float,
    help="The pre-treatment B-cell count (default: last count on or before Day 1).",
)
@click.option("--today", callback=parse_date_option, help="Report overdue visits as of this date.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
def plan(
    protocol_spec: str,
    participant: str,
    screening: Any,
    day1: Any,
    actuals: tuple[str, ...],
    flags: tuple[str, ...],
    events: tuple[str, ...],
    bcell_counts: tuple[str, ...],
    bcell_baseline: float | None,
    today: Any,
    fmt: str,
) -> None:
    """Plan one participant's visits: target, window and study day of each."""
    from visitplan.errors import VisitplanError
    from visitplan.participant import Participant, Record

    protocol = load_protocol(protocol_spec)
    records: list[Record] = []
    if day1 is not None:
        records.append(Record(protocol.day1_visit, day1))
    for item in actuals:
        code, day = _pair(item, "--actual")
        if code == protocol.day1_visit and day1 is not None:
            raise VisitplanError("--actual", item, "Day 1 is already given by --day1")
        records.append(Record(code, _date(day, f"--actual {code}")))
    event_dates = {}
    for item in events:
        name, day = _pair(item, "--event")
        event_dates[name] = _date(day, f"--event {name}")
    counts = {}
    for item in bcell_counts:
        day, value = _pair(item, "--bcell-count", "DATE=VALUE")
        try:
            counts[_date(day, "--bcell-count")] = float(value)
        except ValueError:
            raise VisitplanError("--bcell-count", item, "the count must be a number") from None
    person = Participant(
        participant,
        screening,
        records=records,
        flags=frozenset(flags),
        events=event_dates,
        bcell_counts=counts,
        bcell_baseline=bcell_baseline,
    )
    schedule = protocol.plan(person, today=today)
    if fmt == "json":
        from visitplan.export.tabular import to_json

        click.echo(to_json(protocol, person, schedule))
    elif fmt == "csv":
        from visitplan.export.tabular import to_csv

        click.echo(to_csv([schedule]), nl=False)
    else:
        from visitplan.cli.render import print_schedule

        print_schedule(protocol, schedule)


def _pair(item: str, option: str, form: str = "NAME=YYYY-MM-DD") -> tuple[str, str]:
    from visitplan.errors import VisitplanError

    key, sep, value = item.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise VisitplanError(option, item, f"must be written {form}")
    return key.strip(), value.strip()


def _date(text: str, field: str) -> Any:
    from visitplan.dates import parse_date

    return parse_date(text, field)
