"""``visitplan demo``: the main job on the shipped sample roster."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from visitplan.cli.common import load_protocol, protocol_option
from visitplan.i18n import _

if TYPE_CHECKING:
    from visitplan.model import Protocol
    from visitplan.participant import Participant
    from visitplan.schedule import Schedule


@click.command()
@protocol_option
@click.option(
    "--roster",
    type=click.Path(dir_okay=False),
    help="A roster CSV (participant,site,screening,day1,flags); default: the shipped sample.",
)
@click.option("--out", "out", default="out", show_default=True, type=click.Path(file_okay=False))
def demo(protocol_spec: str, roster: str | None, out: str) -> None:
    """Plan every participant of a roster and write plans and calendars to OUT."""
    from importlib import resources

    from visitplan.errors import VisitplanError
    from visitplan.export.tabular import to_csv, to_json
    from visitplan.fileio import write_files
    from visitplan.roster_csv import load_roster, read_roster

    if not out.strip():
        raise VisitplanError("--out", out, _("must name a folder"))
    protocol = load_protocol(protocol_spec)
    if roster is None:
        text = (resources.files("visitplan") / "data" / "sample-roster.csv").read_text("utf-8")
        people = read_roster(text, source="sample-roster.csv", day1_visit=protocol.day1_visit)
    else:
        people = load_roster(roster, day1_visit=protocol.day1_visit)
    schedules = [_plan(protocol, p) for p in people]
    folder = Path(out)
    # Everything is computed before anything is written, and written all or nothing: a bad
    # roster row or a failed write leaves OUT exactly as it was.
    files: dict[str, str | bytes] = {
        f"plans/{p.code}.json": to_json(protocol, p, s) + "\n"
        for p, s in zip(people, schedules, strict=True)
    }
    files["plans/all-visits.csv"] = to_csv(schedules)
    by_site: dict[str, list[Schedule]] = {}
    for s in schedules:
        files[f"calendars/{s.participant}.ics"] = _calendar(
            protocol, [s], folder, f"calendars/{s.participant}.ics"
        )
        by_site.setdefault(s.site or protocol.site.code, []).append(s)
    for site, group in sorted(by_site.items()):
        name = f"calendars/site-{site}.ics"
        files[name] = _calendar(protocol, group, folder, name)
    written = write_files(folder, files)
    for p, s in zip(people, schedules, strict=True):
        click.echo(
            _("{code}: Day 1 {day1}, last dose {last_dose}, {n} visits").format(
                code=p.code, day1=s.day1, last_dose=s.last_dose, n=len(s.visits)
            )
        )
    click.echo(_("wrote {n} files under {folder}/").format(n=len(written), folder=folder))


def _calendar(protocol: Protocol, schedules: list[Schedule], folder: Path, name: str) -> bytes:
    """A calendar's bytes; the file already there is the previous export (SEQUENCE, UIDs)."""
    from visitplan.export.ics import to_ical
    from visitplan.export.ics.state import load_state
    from visitplan.fileio import inside

    path = inside(folder, name)
    # Only a regular file, up to a limit; a FIFO or a device there is refused in one line.
    previous = load_state(path, "previous calendar") if path.exists() else {}
    return to_ical(protocol, schedules, previous=previous)


def _plan(protocol: Protocol, person: Participant) -> Schedule:
    """The participant's schedule; a planning error names the participant it is about."""
    from visitplan.engine import plan
    from visitplan.errors import VisitplanError

    try:
        return plan(protocol, person)
    except VisitplanError as exc:
        raise exc.about(person.code) from None
