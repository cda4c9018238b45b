"""``visitplan cdisc``: SDTM trial design (TV, TE, TA), subject visits (SV) and USDM."""

from __future__ import annotations

from typing import Any

import click

from visitplan.cli.common import load_protocol, parse_date_option, protocol_option

_output = click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write to this file (default: stdout)."
)


@click.group()
def cdisc() -> None:
    """CDISC exports: SDTM TV, TE, TA and SV (SDTMIG 3.4), a USDM v4.0 study as JSON."""


def _emit(text: str, output: str | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    from visitplan.fileio import atomic_write

    atomic_write(output, text)
    click.echo(f"wrote {output}", err=True)


@cdisc.command()
@protocol_option
@_output
def tv(protocol_spec: str, output: str | None) -> None:
    """SDTM TV (trial visits): one row per planned visit occurrence."""
    from visitplan.export.cdisc import TV_COLUMNS, to_csv, tv_rows

    _emit(to_csv(tv_rows(load_protocol(protocol_spec)), TV_COLUMNS), output)


@cdisc.command()
@protocol_option
@_output
def te(protocol_spec: str, output: str | None) -> None:
    """SDTM TE (trial elements): one element per epoch."""
    from visitplan.export.cdisc import TE_COLUMNS, te_rows, to_csv

    _emit(to_csv(te_rows(load_protocol(protocol_spec)), TE_COLUMNS), output)


@cdisc.command()
@protocol_option
@click.option("--armcd", help="ARMCD (default: from the study drug, e.g. IANALUMAB).")
@click.option("--arm", help="ARM, the arm's description (default: from the doses).")
@_output
def ta(protocol_spec: str, armcd: str | None, arm: str | None, output: str | None) -> None:
    """SDTM TA (trial arms): the arm's elements in order."""
    from visitplan.export.cdisc import TA_COLUMNS, ta_rows, to_csv

    rows = ta_rows(load_protocol(protocol_spec), armcd=armcd, arm=arm)
    _emit(to_csv(rows, TA_COLUMNS), output)


@cdisc.command()
@protocol_option
@click.option(
    "--roster",
    type=click.Path(dir_okay=False),
    help="A roster CSV (participant,site,screening,day1,flags).",
)
@click.option(
    "--db",
    help="A roster database (SQLite file or URL): recorded visits, unscheduled visits included.",
)
@click.option(
    "--today",
    callback=parse_date_option,
    help="The date the data stand at (default: today): screenings up to it count as done.",
)
@_output
def sv(
    protocol_spec: str, roster: str | None, db: str | None, today: Any, output: str | None
) -> None:
    """SDTM SV (subject visits) for every participant of a roster CSV or database."""
    import pendulum

    from visitplan.engine import plan
    from visitplan.errors import VisitplanError
    from visitplan.export.cdisc import SV_COLUMNS, UnscheduledVisit, sv_rows, to_csv

    if (roster is None) == (db is None):
        raise VisitplanError(
            "--roster/--db", "both" if roster else "neither", "give exactly one of them"
        )
    study = load_protocol(protocol_spec)
    extra: list[UnscheduledVisit] = []
    if db is not None:
        from visitplan.store import Roster

        with Roster.open(db, protocol=study, today=today, create=False) as store:
            today = store.today()
            people = store.participants()
            for p in people:
                extra += store.unscheduled(p.code)
    else:
        from visitplan.roster_csv import load_roster

        assert roster is not None
        people = load_roster(roster, day1_visit=study.day1_visit)
        today = today or pendulum.today().date()
    schedules = [plan(study, p, today=today) for p in people]
    _emit(to_csv(sv_rows(study, people, schedules, extra), SV_COLUMNS), output)


@cdisc.command()
@protocol_option
@_output
def usdm(protocol_spec: str, output: str | None) -> None:
    """A complete USDM v4.0 study (Wrapper) as JSON: design, timelines, criteria, CT codes."""
    from visitplan.export.usdm import to_usdm_json

    _emit(to_usdm_json(load_protocol(protocol_spec)), output)
