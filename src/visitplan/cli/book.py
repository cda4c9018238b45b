"""``visitplan book``: an appointment for one participant visit, checked before it is kept."""

from __future__ import annotations

import click

from visitplan.cli.common import protocol_option
from visitplan.cli.sitectx import roster_option, site_option


@click.command()
@protocol_option
@site_option
@roster_option
@click.option(
    "--bookings",
    required=True,
    type=click.Path(dir_okay=False),
    help="The bookings CSV to add to (created if missing), rewritten atomically.",
)
@click.argument("participant")
@click.argument("visit")
@click.argument("day", metavar="DATE")
@click.argument("time", metavar="HH:MM")
def book(
    protocol_spec: str,
    site_spec: str | None,
    roster: str | None,
    bookings: str,
    participant: str,
    visit: str,
    day: str,
    time: str,
) -> None:
    """Book PARTICIPANT's VISIT on DATE at HH:MM (site local time).

    Refused, and nothing written, when the day is outside the visit's window, closed
    (weekend, holiday, closure), full, or the time is outside clinic hours or skipped or
    repeated by a DST change. Booking a visit again replaces its earlier appointment.
    """
    from visitplan.booking import book as book_visit
    from visitplan.booking import load_bookings, save_bookings
    from visitplan.cli.sitectx import load_context
    from visitplan.dates import parse_date

    _, site, schedules = load_context(protocol_spec, site_spec, roster)
    held = load_bookings(bookings, site.timezone, missing_ok=True)
    updated = book_visit(site, schedules, participant, visit, parse_date(day, "date"), time, held)
    save_bookings(bookings, updated, site.timezone)
    when = updated[(participant, visit)]
    replaced = " (replaces the earlier appointment)" if (participant, visit) in held else ""
    click.echo(
        f"booked {participant} {visit} on {when.format('YYYY-MM-DD HH:mm')} {site.timezone} "
        f"(UTC{when.format('Z')}){replaced}; {len(updated)} "
        f"appointment{'s' if len(updated) != 1 else ''} in {bookings}"
    )
