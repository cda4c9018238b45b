"""``visitplan book``: an appointment for one participant visit, checked before it is kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from visitplan.cli.common import parse_date_option, protocol_option
from visitplan.cli.sitectx import db_option, roster_option, site_option
from visitplan.i18n import _, ngettext

if TYPE_CHECKING:
    import pendulum

    from visitplan.site import SiteCalendar


@click.command()
@protocol_option
@site_option
@db_option
@roster_option
@click.option(
    "--bookings",
    type=click.Path(dir_okay=False),
    help="Without a database: the bookings CSV to add to (created if missing), rewritten "
    "atomically; the roster then comes from --roster.",
)
@click.option(
    "--today",
    callback=parse_date_option,
    help="With --db: the date of 'today' (no booking before it; default: the real date).",
)
@click.option("--reason", help="With --db: why (kept in the audit trail with the booking).")
@click.argument("participant")
@click.argument("visit")
@click.argument("day", metavar="DATE")
@click.argument("time", metavar="HH:MM")
def book(
    protocol_spec: str,
    site_spec: str | None,
    db: str | None,
    roster: str | None,
    bookings: str | None,
    today: pendulum.Date | None,
    reason: str | None,
    participant: str,
    visit: str,
    day: str,
    time: str,
) -> None:
    """Book PARTICIPANT's VISIT on DATE at HH:MM (site local time).

    Refused, and nothing written, when the day is outside the visit's window, closed
    (weekend, holiday, closure), full, or the time is outside clinic hours or skipped or
    repeated by a DST change. Booking a visit again replaces its earlier appointment.
    With a roster database (--db, $VISITPLAN_DB or ./visitplan.db) the appointment is stored
    there, audited, checked and written in one transaction; else in the --bookings CSV.
    """
    from visitplan.cli.sitectx import choose_db
    from visitplan.dates import parse_date
    from visitplan.errors import VisitplanError

    chosen = choose_db(db, roster=roster, bookings=bookings)
    when_day = parse_date(day, "date")
    if chosen is not None:
        _book_in_store(
            protocol_spec, site_spec, chosen, today, reason, participant, visit, when_day, time
        )
        return
    if bookings is None:
        from visitplan.cli.roster import DEFAULT_DB

        raise VisitplanError(
            "--db",
            DEFAULT_DB,
            _(
                "does not exist and VISITPLAN_DB is not set; give --db FILE, or --bookings FILE "
                "(with --roster FILE) to book without a database"
            ),
        )
    from visitplan.booking import book as book_visit
    from visitplan.booking import load_bookings, save_bookings
    from visitplan.cli.sitectx import load_context

    _protocol, site, schedules = load_context(protocol_spec, site_spec, roster)
    held = load_bookings(bookings, site.timezone, missing_ok=True)
    updated = book_visit(site, schedules, participant, visit, when_day, time, held)
    save_bookings(bookings, updated, site.timezone)
    when = updated[(participant, visit)]
    stored = ngettext(
        "{n} appointment in {file}", "{n} appointments in {file}", len(updated)
    ).format(n=len(updated), file=bookings)
    click.echo(_booked(participant, visit, when, site, (participant, visit) in held) + stored)


def _booked(
    participant: str, visit: str, when: pendulum.DateTime, site: SiteCalendar, replaced: bool
) -> str:
    """``booked 1001 W8 on 2026-12-30 09:30 Europe/Paris (UTC+01:00); `` and more."""
    text = _("booked {participant} {visit} on {when} {zone} (UTC{offset})").format(
        participant=participant,
        visit=visit,
        when=when.format("YYYY-MM-DD HH:mm"),
        zone=site.timezone,
        offset=when.format("Z"),
    )
    if replaced:
        text += " " + _("(replaces the earlier appointment)")
    # Translators: what follows is where the appointment is stored (French: ' ; ').
    return text + _("; ")


def _book_in_store(
    protocol_spec: str,
    site_spec: str | None,
    db: str,
    today: pendulum.Date | None,
    reason: str | None,
    participant: str,
    visit: str,
    day: pendulum.Date,
    time: str,
) -> None:
    """Check the booking against the stored roster and store it, in one write transaction."""
    from visitplan.cli.sitectx import load_site
    from visitplan.siteroster import book_in_store
    from visitplan.store import Roster

    protocol, site = load_site(protocol_spec, site_spec)
    with Roster.open(db, protocol=protocol, today=today, create=False) as store:
        when, held, count = book_in_store(store, site, participant, visit, day, time, reason=reason)
    stored = ngettext(
        "{n} appointment at {site} in {db} (audited)",
        "{n} appointments at {site} in {db} (audited)",
        count,
    ).format(n=count, site=site.code, db=db)
    click.echo(_booked(participant, visit, when, site, bool(held)) + stored)
