"""Shared loading for the site commands (agenda, book, chart): protocol, site, roster, bookings."""

from __future__ import annotations

from typing import Any

import click

site_option = click.option(
    "--site",
    "site_spec",
    help="A built-in site code (e.g. BREST) or a site file (.toml); default: the protocol's site.",
)
roster_option = click.option(
    "--roster",
    type=click.Path(dir_okay=False),
    help="A roster CSV (participant,site,screening,day1,flags); default: the shipped sample.",
)


def load_context(
    protocol_spec: str, site_spec: str | None, roster: str | None
) -> tuple[Any, Any, list[Any]]:
    """The protocol, the site calendar, and the schedules of the roster's participants there.

    Participants of another site are left out; those with no site are taken as this site's.
    """
    from importlib import resources

    from visitplan.cli.common import load_protocol
    from visitplan.roster_csv import load_roster, read_roster
    from visitplan.site import site_for

    protocol = load_protocol(protocol_spec)
    site = site_for(site_spec, protocol.sites[0] if protocol.sites else None)
    if roster is None:
        text = (resources.files("visitplan") / "data" / "sample-roster.csv").read_text("utf-8")
        people = read_roster(text, source="sample-roster.csv", day1_visit=protocol.day1_visit)
    else:
        people = load_roster(roster, day1_visit=protocol.day1_visit)
    schedules = [protocol.plan(p) for p in people if p.site in (None, site.code)]
    return protocol, site, schedules
