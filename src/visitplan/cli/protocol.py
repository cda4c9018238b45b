"""``visitplan protocol``: check, show and export protocol files."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from visitplan.cli.common import EXIT_USER_ERROR, emit, error_line, format_choice, load_protocol

if TYPE_CHECKING:
    from visitplan.model import Protocol

_file_format = format_choice("toml", "json", "yaml")
_output = click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write to this file."
)


@click.group()
def protocol() -> None:
    """Check, show and export protocol files (TOML, JSON, YAML)."""


@protocol.command()
@click.argument("file", type=click.Path(dir_okay=False))
def check(file: str) -> None:
    """Validate FILE and report every error at once, one a line (exit code 2 if any)."""
    from visitplan.i18n import _, ngettext
    from visitplan.protocol_file import ProtocolErrors, load
    from visitplan.protocol_file.checks import translation_gaps

    try:
        study = load(file)
    except ProtocolErrors as exc:
        for e in exc.errors:
            click.echo(error_line(str(e)), err=True)
        n = len(exc.errors)
        click.echo(
            ngettext("{n} error in {file}", "{n} errors in {file}", n).format(n=n, file=file),
            err=True,
        )
        raise SystemExit(EXIT_USER_ERROR) from None
    problem = _smoke_plan(study)
    if problem:
        click.echo(error_line(f"{file}: {problem}"), err=True)
        click.echo(
            ngettext("{n} error in {file}", "{n} errors in {file}", 1).format(n=1, file=file),
            err=True,
        )
        raise SystemExit(EXIT_USER_ERROR)
    for lang, fields in translation_gaps(study).items():
        # Not an error: those names read in the protocol's own language.
        click.echo(
            ngettext(
                "warning: {file}: the {lang} translations are incomplete: {n} name has "
                "none: {fields}",
                "warning: {file}: the {lang} translations are incomplete: {n} names have "
                "none: {fields}",
                len(fields),
            ).format(file=file, lang=lang, n=len(fields), fields=", ".join(fields)),
            err=True,
        )
    procedures = {p.code for v in study.visits for p in v.procedures}
    click.echo(
        _(
            "ok: {file}: {study}: {epochs} epochs, {visits} visits, {procedures} procedures, "
            "{sites} sites"
        ).format(
            file=file,
            study=study.id,
            epochs=len(study.epochs),
            visits=len(study.visits),
            procedures=len(procedures),
            sites=len(study.sites),
        )
    )


def _smoke_plan(study: Protocol) -> str | None:
    """Plan a participant with no flag and one with every flag; a failure is a protocol bug."""
    from visitplan.engine import plan
    from visitplan.errors import VisitplanError
    from visitplan.participant import Participant

    flags = {v.condition for v in study.visits if v.condition} | {
        p.condition for v in study.visits for p in v.procedures if p.condition
    }
    for chosen in (frozenset(), frozenset(flags)):
        try:
            plan(study, Participant("CHECK", "2001-01-01", flags=chosen))
        except VisitplanError as exc:
            from visitplan.i18n import _

            return _("cannot plan a participant (flags: {flags}): {error}").format(
                flags=", ".join(sorted(chosen)) or _("none"), error=exc
            )
    return None


@protocol.command()
@click.argument("spec", default="NCT05124925", metavar="[NAME|FILE]")
def show(spec: str) -> None:
    """Print the schedule of activities: visits x procedures, with timing and windows."""
    from rich.console import Console

    from visitplan.cli.render import print_activities

    print_activities(load_protocol(spec), Console())


@protocol.command()
@click.argument("spec", default="NCT05124925", metavar="[NAME|FILE]")
@_file_format
@_output
def export(spec: str, fmt: str, output: str | None) -> None:
    """Write a protocol as a file that `visitplan protocol check` reads back unchanged."""
    from visitplan.protocol_file import dumps

    emit(dumps(load_protocol(spec), fmt=fmt), output)


@protocol.command("import-usdm")
@click.argument("file", type=click.Path(dir_okay=False))
@_file_format
@_output
def import_usdm(file: str, fmt: str, output: str | None) -> None:
    """Read a USDM v4 study (a Wrapper, as `visitplan cdisc usdm` writes it) into a protocol file.

    The protocol plans the same dates as the one exported; see docs/cdisc.md for what a USDM
    file from another tool must hold.
    """
    from visitplan.errors import VisitplanError
    from visitplan.protocol_file import dumps
    from visitplan.protocol_file.usdm import load_usdm

    study = load_usdm(file)
    problem = _smoke_plan(study)
    if problem:
        raise VisitplanError("USDM file", file, problem)
    emit(dumps(study, fmt=fmt), output)
