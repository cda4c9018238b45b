"""``visitplan correct`` and ``visitplan void``: change a recorded fact, always with a reason.

Both go through the roster's corrections (:mod:`visitplan.store`), which apply the domain's
rulebook; the old value, the new one, the reason and the user are kept in the audit trail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import click

from visitplan.cli.common import parse_date_option
from visitplan.cli.render import finding_line
from visitplan.cli.roster import _open, roster_options, user_option
from visitplan.i18n import _

if TYPE_CHECKING:
    import pendulum

    from visitplan.store import Roster

_UNSCHEDULED = "U"


def _one(choices: dict[str, bool]) -> str:
    from visitplan.errors import VisitplanError

    chosen = [name for name, on in choices.items() if on]
    if len(chosen) != 1:
        raise VisitplanError(
            "what",
            " ".join(chosen) or "nothing",
            _("give exactly one of {items}").format(items=", ".join(choices)),
        )
    return chosen[0]


def _is_unscheduled(visit: str | None) -> bool:
    return bool(visit) and visit is not None and visit[:1] == _UNSCHEDULED and visit[1:].isdecimal()


@click.command()
@click.argument("code")
@click.argument("visit", required=False)
@click.option("--date", "day", callback=parse_date_option, help="The right date, YYYY-MM-DD.")
@click.option(
    "--status", type=click.Choice(["done", "missed", "cancelled"]), help="VISIT's status."
)
@click.option("--time", help="VISIT's wall-clock time HH:MM in the site's zone.")
@click.option("--screening", callback=parse_date_option, help="The right screening date.")
@click.option("--flag", "flags", multiple=True, help="The participant's flags, all of them.")
@click.option("--no-flags", is_flag=True, help="The participant has no flag.")
@click.option("--event", help="Correct this event's date (with --date).")
@click.option("--bcell", type=float, help="The right count of the day --date (or --baseline).")
@click.option("--baseline", is_flag=True, help="--bcell corrects the baseline count.")
@click.option("--discontinued", callback=parse_date_option, help="The right discontinuation date.")
@click.option("--withdrawn", callback=parse_date_option, help="The right withdrawal date.")
@click.option("--reason", help="Why (required; kept in the audit trail).")
@roster_options
@user_option
def correct(
    code: str,
    visit: str | None,
    day: pendulum.Date | None,
    status: str | None,
    time: str | None,
    screening: pendulum.Date | None,
    flags: tuple[str, ...],
    no_flags: bool,
    event: str | None,
    bcell: float | None,
    baseline: bool,
    discontinued: pendulum.Date | None,
    withdrawn: pendulum.Date | None,
    reason: str | None,
    db: str,
    protocol_spec: str,
    today: pendulum.Date | None,
    wait: float,
    user: str | None,
) -> None:
    """Correct a recorded fact of CODE, with a reason: VISIT's date, status or time, or
    --screening, --flag, --event, --bcell, --discontinued or --withdrawn."""
    what = _one(
        {
            "VISIT": visit is not None,
            "--screening": screening is not None,
            "--flag/--no-flags": bool(flags) or no_flags,
            "--event": event is not None,
            "--bcell": bcell is not None,
            "--discontinued": discontinued is not None,
            "--withdrawn": withdrawn is not None,
        }
    )
    wanted = _Correction(
        what, code, visit, day, status, time, screening, flags, event, bcell, baseline,
        discontinued, withdrawn, reason,
    )  # fmt: skip
    with _open(db, protocol_spec, today, wait, user=user) as roster:
        click.echo(_correct(roster, wanted))


class _Correction(NamedTuple):
    """What ``correct`` was asked, as typed."""

    what: str
    code: str
    visit: str | None
    day: pendulum.Date | None
    status: str | None
    time: str | None
    screening: pendulum.Date | None
    flags: tuple[str, ...]
    event: str | None
    bcell: float | None
    baseline: bool
    discontinued: pendulum.Date | None
    withdrawn: pendulum.Date | None
    reason: str | None


def _correct(roster: Roster, c: _Correction) -> str:
    from visitplan.errors import VisitplanError

    what, code, visit, day, reason = c.what, c.code, c.visit, c.day, c.reason
    status, time, screening, flags, event = c.status, c.time, c.screening, c.flags, c.event
    bcell, baseline, discontinued, withdrawn = c.bcell, c.baseline, c.discontinued, c.withdrawn

    if what == "VISIT":
        assert visit is not None
        if _is_unscheduled(visit):
            u = roster.correct_unscheduled(code, visit, date=day, time=time, reason=reason)
            return (
                _("corrected {code} {visit} (unscheduled): {day} {time}")
                .format(code=code, visit=visit, day=u.date, time=u.time or "")
                .rstrip()
            )
        if day is None and status is None and time is None:
            raise VisitplanError("correct", visit, _("give the right --date, --status or --time"))
        schedule = roster.correct(code, visit, date=day, status=status, time=time, reason=reason)
        v = schedule.visit(visit)
        findings = [f"\n! {finding_line(f)}" for f in schedule.findings if f.visit == visit]
        shown = _(v.status.value) + (f" {v.actual}" if v.actual else "")
        done = _("corrected {code} {visit}: {state}").format(code=code, visit=visit, state=shown)
        return done + "".join(findings)
    if what == "--screening":
        schedule = roster.correct_screening(code, screening, reason=reason)
        return _("corrected {code} screening: {screening}; Day 1 {day1}").format(
            code=code, screening=screening, day1=schedule.day1
        )
    if what == "--flag/--no-flags":
        roster.correct_flags(code, flags, reason=reason)
        return _("corrected {code} flags: {flags}").format(
            code=code, flags=", ".join(sorted(flags)) or _("none")
        )
    if what == "--event":
        assert event is not None
        if day is None:
            raise VisitplanError("--event", event, _("give the right --date"))
        roster.correct_event(code, event, day, reason=reason)
        return _("corrected {code} {event}: {day}").format(code=code, event=event, day=day)
    if what == "--bcell":
        assert bcell is not None
        if day is None and not baseline:
            raise VisitplanError(
                "--bcell", bcell, _("give the --date of the count (or --baseline)")
            )
        roster.correct_bcell(code, day, bcell, baseline=baseline, reason=reason)
        which = _count_name(baseline, day)
        return _("corrected {code} {which}: {value:g}").format(code=code, which=which, value=bcell)
    field, value = (
        ("discontinued", discontinued) if what == "--discontinued" else ("withdrawn", withdrawn)
    )
    roster.correct_stop(code, field, value, reason=reason)
    return _("corrected {code} {field}: {value}").format(code=code, field=field, value=value)


def _count_name(baseline: bool, day: pendulum.Date | None) -> str:
    return _("baseline B-cell count") if baseline else _("B-cell count of {day}").format(day=day)


@click.command()
@click.argument("code")
@click.argument("visit", required=False)
@click.option("--appointment", is_flag=True, help="Cancel VISIT's booked appointment.")
@click.option("--event", help="Remove this recorded event.")
@click.option("--bcell", is_flag=True, help="Remove the B-cell count of the day --date.")
@click.option("--date", "day", callback=parse_date_option, help="The day of the --bcell count.")
@click.option("--baseline", is_flag=True, help="Remove the baseline B-cell count.")
@click.option("--discontinued", is_flag=True, help="Remove the discontinuation of treatment.")
@click.option("--withdrawn", is_flag=True, help="Remove the withdrawal.")
@click.option("--reason", help="Why (required; kept in the audit trail).")
@roster_options
@user_option
def void(
    code: str,
    visit: str | None,
    appointment: bool,
    event: str | None,
    bcell: bool,
    day: pendulum.Date | None,
    baseline: bool,
    discontinued: bool,
    withdrawn: bool,
    reason: str | None,
    db: str,
    protocol_spec: str,
    today: pendulum.Date | None,
    wait: float,
    user: str | None,
) -> None:
    """Remove a fact of CODE entered in error, with a reason: VISIT's record (the visit is
    planned again), its --appointment, an --event, a --bcell count, the --baseline, or the
    --discontinued or --withdrawn date."""
    from visitplan.errors import VisitplanError

    what = _one(
        {
            "VISIT": visit is not None and not appointment,
            "VISIT --appointment": appointment,
            "--event": event is not None,
            "--bcell": bcell,
            "--baseline": baseline,
            "--discontinued": discontinued,
            "--withdrawn": withdrawn,
        }
    )
    with _open(db, protocol_spec, today, wait, user=user) as roster:
        if what == "VISIT":
            assert visit is not None
            if _is_unscheduled(visit):
                roster.void_unscheduled(code, visit, reason=reason)
                click.echo(_("voided {code} {visit} (unscheduled)").format(code=code, visit=visit))
                return
            schedule = roster.void(code, visit, reason=reason)
            v = schedule.visit(visit)
            click.echo(
                _("voided {code} {visit}: planned again on {day}").format(
                    code=code, visit=visit, day=v.target
                )
            )
        elif what == "VISIT --appointment":
            if visit is None:
                raise VisitplanError(
                    "--appointment", None, _("name the VISIT whose appointment goes")
                )
            roster.void_appointment(code, visit, reason=reason)
            click.echo(_("voided {code} {visit} appointment").format(code=code, visit=visit))
        elif what == "--event":
            assert event is not None
            roster.void_event(code, event, reason=reason)
            click.echo(_("voided {code} {what}").format(code=code, what=event))
        elif what in ("--bcell", "--baseline"):
            if what == "--bcell" and day is None:
                raise VisitplanError("--bcell", None, _("give the --date of the count"))
            roster.void_bcell(code, day, baseline=what == "--baseline", reason=reason)
            which = _count_name(what == "--baseline", day)
            click.echo(_("voided {code} {what}").format(code=code, what=which))
        else:
            field = what[2:]
            roster.void_stop(code, field, reason=reason)
            click.echo(_("voided {code} {what}").format(code=code, what=field))
