"""Shared loading for the site commands (agenda, book, chart): protocol, site, roster, bookings.

The participants and appointments come either from the roster database (``--db``, or
``$VISITPLAN_DB``, or ``./visitplan.db`` when it exists, as for the roster commands) or from
CSV files (``--roster``, ``--bookings``; without them, the shipped sample roster).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

from visitplan.i18n import _

if TYPE_CHECKING:
    import pendulum

    from visitplan.booking import Appointments
    from visitplan.model import Protocol
    from visitplan.schedule import Schedule
    from visitplan.site import SiteCalendar

# Shared with the web workspace, which may not import the CLI.
from visitplan.siteroster import appointment_deviations, from_store, site_calendar_of

__all__ = [
    "appointment_deviations",
    "choose_db",
    "from_store",
    "load_context",
    "load_site",
    "load_site_data",
    "site_calendar_of",
]

site_option = click.option(
    "--site",
    "site_spec",
    help="A built-in site code (e.g. BREST) or a site file (.toml); default: the protocol's site.",
)
roster_option = click.option(
    "--roster",
    type=click.Path(dir_okay=False),
    help="A roster CSV (participant,site,screening,day1,flags) instead of a roster database; "
    "default: the shipped sample when there is no database.",
)
db_option = click.option(
    "--db",
    envvar="VISITPLAN_DB",
    help="Roster database (SQLite file or URL; env VISITPLAN_DB; default ./visitplan.db when "
    "it exists): participants, plans and appointments come from it.",
)


def choose_db(
    db: str | None,
    *,
    roster: str | None = None,
    bookings: str | None = None,
    given: Mapping[str, object] | None = None,
    conflict: str | None = None,
) -> str | None:
    """The roster database a command uses, or None for the files or facts typed instead.

    ``given`` holds the other options (name -> value) that stand in for a database, besides
    ``--roster`` and ``--bookings``: a command's facts options, for ``ics``. ``--db`` on the
    command line cannot be mixed with them (``conflict`` says why, else a message naming
    them); they do win over ``$VISITPLAN_DB`` (what is typed beats the environment). With
    neither, ``./visitplan.db`` is used when it exists, like the roster commands' default.
    """
    from pathlib import Path

    from click.core import ParameterSource

    from visitplan.cli.roster import DEFAULT_DB
    from visitplan.errors import VisitplanError

    options = {"--roster": roster, "--bookings": bookings, **(given or {})}
    files = [name for name, value in options.items() if value not in (None, (), "")]
    typed = click.get_current_context().get_parameter_source("db") is ParameterSource.COMMANDLINE
    if db is not None and typed:
        if files:
            raise VisitplanError(
                "--db",
                db,
                conflict
                or _("holds the roster and its appointments; drop {items}").format(
                    items=" and ".join(files)
                ),
            )
        return db
    if files:
        return None
    if db is not None:
        return db
    return DEFAULT_DB if Path(DEFAULT_DB).exists() else None


def load_context(
    protocol_spec: str, site_spec: str | None, roster: str | None
) -> tuple[Protocol, SiteCalendar, list[Schedule]]:
    """The protocol, the site calendar, and the schedules of the roster's participants there.

    Participants of another site are left out; those with no site are taken as this site's.
    """
    from importlib import resources

    from visitplan.engine import plan
    from visitplan.roster_csv import load_roster, read_roster

    protocol, site = load_site(protocol_spec, site_spec)
    if roster is None:
        text = (resources.files("visitplan") / "data" / "sample-roster.csv").read_text("utf-8")
        people = read_roster(text, source="sample-roster.csv", day1_visit=protocol.day1_visit)
    else:
        people = load_roster(roster, day1_visit=protocol.day1_visit)
    schedules = [plan(protocol, p) for p in people if p.site in (None, site.code)]
    return protocol, site, schedules


def load_site(protocol_spec: str, site_spec: str | None) -> tuple[Protocol, SiteCalendar]:
    """The protocol and the site calendar (which must agree with the protocol's site)."""
    from visitplan.cli.common import load_protocol, speak_site
    from visitplan.site import site_for

    protocol = load_protocol(protocol_spec)
    site = site_for(site_spec, protocol.sites[0] if protocol.sites else None)
    speak_site(site)
    return protocol, site


def load_site_data(
    protocol_spec: str,
    site_spec: str | None,
    *,
    db: str | None,
    roster: str | None,
    bookings: str | None,
    today: pendulum.Date | None,
) -> tuple[Protocol, SiteCalendar, list[Schedule], Appointments]:
    """The protocol, site, schedules and appointments a read-only site command shows.

    From the roster database when ``db`` is given (read in one transaction, planned as of
    ``today``), else from the roster CSV (or the sample) and the bookings CSV.
    """
    from visitplan.booking import load_bookings

    if db is None:
        protocol, site, schedules = load_context(protocol_spec, site_spec, roster)
        held = load_bookings(bookings, site.timezone) if bookings else {}
        return protocol, site, schedules, held
    from visitplan.store import Roster

    protocol, site = load_site(protocol_spec, site_spec)
    with Roster.open(db, protocol=protocol, today=today, create=False) as store:
        people = store.participants()
        rows = store.appointments()
        day = store.today()
    schedules, held, stale = from_store(protocol, site, people, rows, day)
    for r in stale:
        click.echo(
            _(
                "note: appointment {participant} {visit} on {day} names a visit that is no "
                "longer planned; left out"
            ).format(participant=r.participant, visit=r.visit, day=r.date),
            err=True,
        )
    return protocol, site, schedules, held
