"""``visitplan cdisc``: SDTM trial design (TV, TE, TA), subject visits (SV) and USDM."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from visitplan.cli.common import (
    emit,
    excel_option,
    format_choice,
    load_protocol,
    parse_date_option,
    protocol_option,
    wants_excel,
)
from visitplan.i18n import _

if TYPE_CHECKING:
    import pendulum

    from visitplan.model import Protocol

_F = TypeVar("_F", bound=Callable[..., object])


_output = click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write to this file (default: stdout)."
)
_csv_or_xpt = format_choice(
    "csv", "xpt", help="csv, or xpt: a SAS transport v5 file (binary: give -o or redirect it)."
)


def _format(func: _F) -> _F:
    """``--format csv|xpt`` and ``--excel``."""
    return excel_option(_csv_or_xpt(func))


@click.group()
def cdisc() -> None:
    """CDISC exports: SDTM TV, TE, TA and SV (SDTMIG 3.4), a USDM v4.0 study as JSON."""


def _emit_dataset(
    rows: list[dict[str, str]],
    columns: tuple[str, ...],
    dataset: str,
    fmt: str,
    output: str | None,
    protocol: Protocol | None = None,
) -> None:
    """The SDTM rows as CSV text, or as a SAS transport file (never onto a terminal)."""
    if fmt == "csv":
        from visitplan.export.cdisc import to_csv

        emit(to_csv(rows, columns, excel=wants_excel(protocol)), output)
        return
    from visitplan.errors import VisitplanError
    from visitplan.export.xpt import to_xpt

    if output is None and sys.stdout.isatty():
        raise VisitplanError(
            "--format", "xpt", _("writes a binary file: give -o FILE or redirect the output")
        )
    emit(to_xpt(rows, columns, dataset), output)


@cdisc.command()
@protocol_option
@_format
@_output
def tv(protocol_spec: str, fmt: str, output: str | None) -> None:
    """SDTM TV (trial visits): one row per planned visit occurrence."""
    from visitplan.export.cdisc import TV_COLUMNS, tv_rows

    study = load_protocol(protocol_spec)
    _emit_dataset(tv_rows(study), TV_COLUMNS, "TV", fmt, output, study)


@cdisc.command()
@protocol_option
@_format
@_output
def te(protocol_spec: str, fmt: str, output: str | None) -> None:
    """SDTM TE (trial elements): one element per epoch."""
    from visitplan.export.cdisc import TE_COLUMNS, te_rows

    study = load_protocol(protocol_spec)
    _emit_dataset(te_rows(study), TE_COLUMNS, "TE", fmt, output, study)


@cdisc.command()
@protocol_option
@click.option("--armcd", help="ARMCD (default: from the study drug, e.g. IANALUMAB).")
@click.option("--arm", help="ARM, the arm's description (default: from the doses).")
@_format
@_output
def ta(
    protocol_spec: str, armcd: str | None, arm: str | None, fmt: str, output: str | None
) -> None:
    """SDTM TA (trial arms): the arm's elements in order."""
    from visitplan.export.cdisc import TA_COLUMNS, ta_rows

    study = load_protocol(protocol_spec)
    _emit_dataset(ta_rows(study, armcd=armcd, arm=arm), TA_COLUMNS, "TA", fmt, output, study)


@cdisc.command()
@protocol_option
@click.option(
    "--roster",
    type=click.Path(dir_okay=False),
    help="A roster CSV (participant,site,screening,day1,flags).",
)
@click.option(
    "--db",
    envvar="VISITPLAN_DB",
    help="A roster database (SQLite file or URL; env VISITPLAN_DB; default ./visitplan.db when "
    "it exists and no --roster is given): recorded visits, unscheduled visits included.",
)
@click.option(
    "--today",
    callback=parse_date_option,
    help="The date the data stand at (default: today): screenings up to it count as done.",
)
@_format
@_output
def sv(
    protocol_spec: str,
    roster: str | None,
    db: str | None,
    today: pendulum.Date | None,
    fmt: str,
    output: str | None,
) -> None:
    """SDTM SV (subject visits) for every participant of a roster CSV or database.

    The participants come from --roster, or from the roster database: --db, else
    $VISITPLAN_DB, else ./visitplan.db when it exists (a --roster typed wins over the last two).
    """
    from visitplan.cli.sitectx import choose_db
    from visitplan.dates import today_at
    from visitplan.engine import plan
    from visitplan.errors import VisitplanError
    from visitplan.export.cdisc import SV_COLUMNS, UnscheduledVisit, sv_rows

    db = choose_db(db, roster=roster, conflict=_("give exactly one of --roster and --db"))
    if roster is None and db is None:
        raise VisitplanError(
            "--roster/--db",
            "neither",
            _("give a --roster FILE or a roster database (--db or VISITPLAN_DB)"),
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
        today = today or today_at(site.timezone for site in study.sites)
    schedules = [plan(study, p, today=today) for p in people]
    _emit_dataset(sv_rows(study, people, schedules, extra), SV_COLUMNS, "SV", fmt, output, study)


@cdisc.command()
@protocol_option
@_output
def usdm(protocol_spec: str, output: str | None) -> None:
    """A complete USDM v4.0 study (Wrapper) as JSON: design, timelines, criteria, CT codes."""
    from visitplan.export.usdm import to_usdm_json

    emit(to_usdm_json(load_protocol(protocol_spec)), output)
