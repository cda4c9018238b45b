"""``visitplan demo``: the main job on the shipped sample roster."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from visitplan.cli.common import load_protocol, protocol_option

if TYPE_CHECKING:
    from visitplan.model import Protocol
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

    from visitplan.export.tabular import to_csv, to_json
    from visitplan.fileio import atomic_write, inside
    from visitplan.roster_csv import load_roster, read_roster

    protocol = load_protocol(protocol_spec)
    if roster is None:
        text = (resources.files("visitplan") / "data" / "sample-roster.csv").read_text("utf-8")
        people = read_roster(text, source="sample-roster.csv", day1_visit=protocol.day1_visit)
    else:
        people = load_roster(roster, day1_visit=protocol.day1_visit)
    schedules = [protocol.plan(p) for p in people]
    folder = Path(out)
    written = []
    for p, s in zip(people, schedules, strict=True):
        written.append(
            atomic_write(inside(folder, f"plans/{p.code}.json"), to_json(protocol, p, s) + "\n")
        )
    written.append(atomic_write(inside(folder, "plans/all-visits.csv"), to_csv(schedules)))
    by_site: dict[str, list[Schedule]] = {}
    for s in schedules:
        written.append(_calendar(protocol, [s], inside(folder, f"calendars/{s.participant}.ics")))
        by_site.setdefault(s.site or protocol.site.code, []).append(s)
    for site, group in sorted(by_site.items()):
        written.append(_calendar(protocol, group, inside(folder, f"calendars/site-{site}.ics")))
    for p, s in zip(people, schedules, strict=True):
        click.echo(f"{p.code}: Day 1 {s.day1}, last dose {s.last_dose}, {len(s.visits)} visits")
    click.echo(f"wrote {len(written)} files under {folder}/")


def _calendar(protocol: Protocol, schedules: list[Schedule], path: Path) -> Path:
    """Write a calendar; the file already there is the previous export (SEQUENCE, UIDs)."""
    from visitplan.export.ics import read_state, to_ical
    from visitplan.fileio import atomic_write

    previous = read_state(path.read_bytes()) if path.exists() else {}
    return atomic_write(path, to_ical(protocol, schedules, previous=previous))
