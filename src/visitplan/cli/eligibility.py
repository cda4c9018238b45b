"""``visitplan eligibility``: washout rules against a medication and vaccine history."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from visitplan.cli.common import load_protocol, machine_format, parse_date_option, protocol_option
from visitplan.cli.render import Cell, Column
from visitplan.i18n import N_, _, ngettext


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
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    callback=machine_format,
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
        status = Text(_("ok"))
        if not c.ok:
            status = Text.assemble((_("broken"), "red"), printable(f" ({c.binds} {c.date})"))
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
    title = _(
        "{study} participant {participant}: screening {screening}, Day 1 {day1} ({source})"
    ).format(
        study=protocol.id,
        participant=report.participant,
        screening=report.screening,
        day1=report.day1,
        source=_(_SOURCES.get(report.day1_source, report.day1_source)),
    )
    print_table(title, ELIGIBILITY_COLUMNS, rows, console)
    binding = (
        _(" (binding rule: {rule})").format(rule=report.binding)
        if report.binding
        else _(" (no rule binds)")
    )
    print_text(
        _("Earliest permissible Day 1: {day}").format(day=report.earliest_day1) + binding, console
    )
    if not report.within_window:
        print_text(
            Text(_("! no permissible Day 1 is left in the run-in of this screening"), "red"),
            console,
        )
    for c in report.checks:
        if c.requirement and c.last_exposure is not None:
            print_text(
                _("{code}: also requires {requirement}").format(
                    code=c.code, requirement=c.requirement
                ),
                console,
            )
    if not report.ok:
        n = len(report.broken)
        text = ngettext("! {n} rule broken", "! {n} rules broken", n).format(n=n)
        print_text(Text(text, "red"), console)


#: Where Day 1 comes from (the report's ``day1_source``), as the title says it.
_SOURCES = {"planned": N_("as planned"), "given": N_("as given"), "recorded": N_("as recorded")}
#: The terminal table of ``eligibility``.
ELIGIBILITY_COLUMNS = (
    Column(N_("Rule")),
    Column(N_("What"), "text"),
    Column(N_("Interval"), "text"),
    Column(N_("Last exposure")),
    Column(N_("Anchor"), "text", decoration=True),  # the protocol's words; Status names the visit
    Column(N_("Earliest")),
    Column(N_("Status"), "words"),
)

if TYPE_CHECKING:
    import pendulum
