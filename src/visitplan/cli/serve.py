"""``visitplan serve`` (the workspace and the feeds) and ``visitplan feed create|list|revoke``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from visitplan import i18n
from visitplan.cli.render import Column
from visitplan.cli.roster import (
    _echo_json,
    _local,
    _open,
    format_option,
    roster_options,
    user_option,
)
from visitplan.i18n import N_, _

if TYPE_CHECKING:
    import pendulum


@click.command()
@roster_options
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to listen on; keep 127.0.0.1 behind a reverse proxy (docs/calendars.md).",
)
@click.option(
    "--port", default=8421, show_default=True, type=click.IntRange(1, 65535), help="TCP port."
)
def serve(
    db: str, protocol_spec: str, today: pendulum.Date | None, wait: float, host: str, port: int
) -> None:
    """Serve the coordinators' workspace (/login, /week, /participants/CODE) and the
    roster's calendar feeds (GET /feeds/<token>.ics) over HTTP.

    Logins are made with 'visitplan user add', feed links with 'visitplan feed create' (or
    in the workspace). Plans are made for the real date of each request (--today is refused:
    a server's day moves on). Behind a TLS reverse proxy: docs/workspace.md.
    """
    from visitplan.cli.common import load_protocol
    from visitplan.errors import VisitplanError
    from visitplan.server import serve as run

    if today is not None:
        raise VisitplanError("--today", str(today), _("a server plans for the real date"))
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            _(
                "warning: listening on {host}: put visitplan behind a TLS reverse proxy "
                "(docs/workspace.md); a feed's link is its only secret and logins need TLS"
            ).format(host=host),
            err=True,
        )
    protocol = load_protocol(protocol_spec)
    click.echo(
        _(
            "serving the workspace and calendar feeds of {db} on http://{host}:{port}/login "
            "(Ctrl+C stops)"
        ).format(db=db, host=host, port=port)
    )
    run(db, host=host, port=port, protocol=protocol, wait=wait, lang=i18n.language())


@click.group()
def feed() -> None:
    """Calendar feeds: secret links to the roster's calendars (see 'visitplan serve')."""


@feed.command()
@click.option("--name", "label", required=True, help="Who or what the link is for (unique).")
@click.option("--participant", help="Only this participant's calendar (default: everyone).")
@click.option(
    "--base-url",
    help="The server's public address, e.g. https://calendars.example.org: print the whole URL.",
)
@click.option("--reason", help="Why (kept in the audit trail).")
@roster_options
@user_option
def create(
    label: str,
    participant: str | None,
    base_url: str | None,
    reason: str | None,
    db: str,
    protocol_spec: str,
    today: pendulum.Date | None,
    wait: float,
    user: str | None,
) -> None:
    """Create a feed and print its link, once: only a hash of its token is kept."""
    with _open(db, protocol_spec, today, wait, user=user) as roster:
        made, token = roster.create_feed(label, participant, reason=reason)
    path = f"/feeds/{token}.ics"
    click.echo(f"{base_url.rstrip('/')}{path}" if base_url else path)
    scope = (
        _("the site calendar")
        if made.participant is None
        else _("participant {code}").format(code=participant)
    )
    click.echo(
        _(
            "created feed {label!r} ({scope}); the link is shown this once and is its only "
            "secret: give it to its user only ('visitplan feed revoke' ends it)"
        ).format(label=made.label, scope=scope),
        err=True,
    )


@feed.command("list")
@format_option
@roster_options
def list_(fmt: str, db: str, protocol_spec: str, today: pendulum.Date | None, wait: float) -> None:
    """Every feed: label, scope ('site', or a participant's code), created (when, by whom),
    last used, revoked. Never a token: none is kept."""
    with _open(db, protocol_spec, today, wait) as roster:
        found = roster.feeds()
        protocol = roster.protocol
    if fmt == "json":
        _echo_json(
            {
                "feeds": [
                    {
                        "label": f.label,
                        "participant": f.participant,
                        "created_at": f.created_at,
                        "created_by": f.created_by,
                        "last_used": f.last_used,
                        "revoked_at": f.revoked_at,
                    }
                    for f in found
                ]
            }
        )
        return
    from visitplan.cli.render import print_table

    zone = protocol.site.timezone if protocol.sites else "UTC"
    rows = [
        [
            f.label,
            _("site") if f.participant is None else f.participant,
            _local(f.created_at, zone)[:16],
            f.created_by,
            _local(f.last_used, zone)[:16] if f.last_used else _("never"),
            _local(f.revoked_at, zone)[:16] if f.revoked_at else "",
        ]
        for f in found
    ]
    print_table(_("Calendar feeds (times in {zone})").format(zone=zone), FEED_COLUMNS, rows)


#: The terminal table of ``feed list``.
FEED_COLUMNS = (
    Column(N_("Label"), "text"),
    Column(N_("Scope")),
    Column(N_("Created")),
    Column(N_("By"), "text"),
    Column(N_("Last used"), "words"),
    Column(N_("Revoked"), "words"),
)


@feed.command()
@click.argument("label")
@click.option("--reason", help="Why (kept in the audit trail).")
@roster_options
@user_option
def revoke(
    label: str,
    reason: str | None,
    db: str,
    protocol_spec: str,
    today: pendulum.Date | None,
    wait: float,
    user: str | None,
) -> None:
    """Revoke feed LABEL: its link answers 404 from now on."""
    with _open(db, protocol_spec, today, wait, user=user) as roster:
        roster.revoke_feed(label, reason=reason)
    click.echo(_("revoked feed {label!r}").format(label=label))
