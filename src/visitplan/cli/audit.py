"""``visitplan audit verify``: is the roster's audit trail intact?"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from visitplan.cli.roster import _open, roster_options
from visitplan.i18n import _

if TYPE_CHECKING:
    import pendulum


@click.group()
def audit() -> None:
    """The roster's audit trail."""


@audit.command()
@click.option(
    "--expect",
    metavar="HEAD",
    help="A head hash printed by an earlier verify: the trail must still contain it.",
)
@roster_options
def verify(
    expect: str | None, db: str, protocol_spec: str, today: pendulum.Date | None, wait: float
) -> None:
    """Check the hash chain of the audit trail, and that replaying it gives exactly the facts
    stored. Exit 0 when intact, 1 naming the first problem found.

    Keep the printed head somewhere else (a monitor's report): --expect HEAD then also finds
    entries removed from the end of the trail.
    """
    with _open(db, protocol_spec, today, wait) as roster:
        found = roster.verify(expect)
    if found.intact:
        click.echo(
            _("intact ({entries} entries; head {head})").format(
                entries=found.entries, head=found.head
            )
        )
        return
    from visitplan.errors import printable

    click.echo(_("NOT intact: {problem}").format(problem=printable(found.problem or "")))
    raise SystemExit(1)
