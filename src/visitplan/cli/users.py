"""``visitplan user``: the logins of the coordinators' workspace (``visitplan serve``)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from visitplan.cli.common import machine_format
from visitplan.cli.render import Column
from visitplan.cli.roster import _open, roster_options, user_option
from visitplan.i18n import N_, _


@click.group()
def user() -> None:
    """The workspace's logins: add, list, disable, change a password."""


def _password(from_stdin: bool) -> str:
    if from_stdin:
        # One line: the password, without its line break (a script pipes it in).
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@user.command("add")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["coordinator", "investigator", "monitor"]),
    help="coordinator and investigator may change facts; a monitor only reads.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@roster_options
@user_option
def add(
    name: str,
    role: str,
    password_stdin: bool,
    db: str,
    protocol_spec: str,
    today: pendulum.Date | None,
    wait: float,
    user: str | None,
) -> None:
    """Add the login NAME with a role; the password is asked for (or read from stdin)."""
    password = _password(password_stdin)
    with _open(db, protocol_spec, today, wait, user=user) as roster:
        added = roster.add_user(name, role, password)
    click.echo(_("added user {name} ({role})").format(name=added.name, role=_(added.role)))


@user.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@roster_options
@user_option
def password(
    name: str,
    password_stdin: bool,
    db: str,
    protocol_spec: str,
    today: pendulum.Date | None,
    wait: float,
    user: str | None,
) -> None:
    """Set a new password for NAME."""
    secret = _password(password_stdin)
    with _open(db, protocol_spec, today, wait, user=user) as roster:
        roster.set_password(name, secret)
    click.echo(_("changed the password of {name}").format(name=name))


@user.command("disable")
@click.argument("name")
@click.option("--reason", help="Why (kept in the audit trail).")
@roster_options
@user_option
def disable(
    name: str,
    reason: str | None,
    db: str,
    protocol_spec: str,
    today: pendulum.Date | None,
    wait: float,
    user: str | None,
) -> None:
    """Disable the login NAME (it can no longer log in; its changes stay in the trail)."""
    with _open(db, protocol_spec, today, wait, user=user) as roster:
        roster.disable_user(name, reason)
    click.echo(_("disabled user {name}").format(name=name))


@user.command("list")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    callback=machine_format,
)
@roster_options
def list_(fmt: str, db: str, protocol_spec: str, today: pendulum.Date | None, wait: float) -> None:
    """Every login with its role and state (never a password)."""
    with _open(db, protocol_spec, today, wait) as roster:
        found = roster.users()
        protocol = roster.protocol
    rows = [
        {
            "name": u.name,
            "role": u.role,
            "created_at": u.created_at,
            "created_by": u.created_by,
            "disabled_at": u.disabled_at,
        }
        for u in found
    ]
    if fmt == "json":
        click.echo(json.dumps({"users": rows}, indent=2, ensure_ascii=False))
        return
    from visitplan.cli.render import print_table
    from visitplan.cli.roster import _local

    zone = protocol.site.timezone if protocol.sites else "UTC"
    print_table(
        _("Users (times in {zone})").format(zone=zone),
        USER_COLUMNS,
        [
            [
                u.name,
                _(u.role),
                _local(u.created_at, zone)[:16],
                u.created_by,
                _local(u.disabled_at, zone)[:16] if u.disabled_at else "",
            ]
            for u in found
        ],
    )


#: The terminal table of ``user list``.
USER_COLUMNS = (
    Column(N_("Name"), "text"),
    Column(N_("Role")),
    Column(N_("Created")),
    Column(N_("By"), "text"),
    Column(N_("Disabled")),
)

if TYPE_CHECKING:
    import pendulum
