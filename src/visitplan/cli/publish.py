"""``visitplan publish``: the roster's calendar pushed to a CalDAV calendar collection."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from visitplan.cli.roster import _open, roster_options
from visitplan.i18n import _

if TYPE_CHECKING:
    import pendulum


PASSWORD_VARIABLE = "VISITPLAN_CALDAV_PASSWORD"


@click.command()
@click.option(
    "--caldav",
    "url",
    required=True,
    metavar="URL",
    help="The calendar collection, e.g. https://cal.example.org/coordinators/study/.",
)
@click.option("--username", help=f"The CalDAV user; the password comes from ${PASSWORD_VARIABLE}.")
@click.option("--participant", help="Only this participant's events (default: everyone's).")
@roster_options
def publish(
    url: str,
    username: str | None,
    participant: str | None,
    db: str,
    protocol_spec: str,
    today: pendulum.Date | None,
    wait: float,
) -> None:
    """Push the roster's calendar to a CalDAV calendar, one resource per event.

    New events are created, changed ones updated, and events that left the plan deleted;
    other resources of the collection are left alone. A second run with nothing changed
    sends no write. SEQUENCE is the same as in 'ics --db' and the feeds.
    """
    from visitplan.cli.progress import progress
    from visitplan.errors import VisitplanError
    from visitplan.publish import RosterCalendar
    from visitplan.publish.push import publish as push

    password = os.environ.get(PASSWORD_VARIABLE)
    if username is not None and not password:
        raise VisitplanError(
            "--username",
            username,
            _("needs the password in ${PASSWORD_VARIABLE}").format(
                PASSWORD_VARIABLE=PASSWORD_VARIABLE
            ),
        )
    with _open(db, protocol_spec, today, wait) as roster:
        calendar = RosterCalendar(roster, participant)
        with progress("Publishing", calendar.count) as advance:
            done = push(calendar, url, username=username, password=password, progress=advance)
    click.echo(_("published to {url}: {done}").format(url=url, done=done))
