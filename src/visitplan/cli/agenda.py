"""``visitplan agenda``: every participant's visits by site day, with load and flags."""

from __future__ import annotations

from typing import Any

import click

from visitplan.cli.common import parse_date_option, protocol_option
from visitplan.cli.sitectx import db_option, roster_option, site_option


@click.command()
@protocol_option
@site_option
@db_option
@roster_option
@click.option("--from", "start", required=True, callback=parse_date_option, help="First day.")
@click.option("--to", "end", required=True, callback=parse_date_option, help="Last day.")
@click.option(
    "--bookings",
    type=click.Path(dir_okay=False),
    help="Without a database: a bookings CSV (participant,visit,date,time), local times in "
    "the site's zone.",
)
@click.option(
    "--today",
    callback=parse_date_option,
    help="The date of 'today' (default: the real date): with --db the stored facts are "
    "planned as of it, and --propose never proposes a day before it.",
)
@click.option(
    "--propose",
    is_flag=True,
    help="Also propose a bookable day, with room left, for each visit not booked yet.",
)
@click.option(
    "--policy",
    type=click.Choice(["nearest", "nearest-earlier", "nearest-later"]),
    help="How --propose picks a day off the target; default: the site's policy.",
)
def agenda(
    protocol_spec: str,
    site_spec: str | None,
    db: str | None,
    roster: str | None,
    start: Any,
    end: Any,
    bookings: str | None,
    today: Any,
    propose: bool,
    policy: str | None,
) -> None:
    """List the site's days from --from to --to with each participant visit on them.

    A day is flagged CLOSED (weekend, public holiday with its name, closure) or OVER
    CAPACITY; a visit on a closed day lists the open days of its window, nearest first.
    A booked appointment that a re-plan has left outside its visit's window, on a closed day or
    outside clinic hours is flagged with `!` and the rule it breaks (the rules of `book`).
    Nothing is moved: book a day with `visitplan book`. Participants and appointments come
    from the roster database (--db, $VISITPLAN_DB or ./visitplan.db), else from --roster and
    --bookings (or the shipped sample roster).
    """
    import pendulum

    from visitplan.booking import agenda as build_agenda
    from visitplan.booking import propose_dates
    from visitplan.cli.sitectx import choose_db, load_site_data
    from visitplan.errors import VisitplanError, printable
    from visitplan.site import MovePolicy

    if end < start:
        raise VisitplanError("--to", end.isoformat(), f"is before --from ({start})")
    store_db = choose_db(db, roster=roster, bookings=bookings)
    _, site, schedules, held = load_site_data(
        protocol_spec, site_spec, db=store_db, roster=roster, bookings=bookings, today=today
    )
    days = build_agenda(site, schedules, held, start, end)
    limits = ", ".join(f"{k.value} {n}/day" for k, n in site.capacity.items())
    if site.daily_limit is not None:
        limits += f", all visits {site.daily_limit}/day"
    click.echo(
        printable(
            f"{site.code} ({site.timezone}, clinic {site.hours}, capacity {limits or 'unlimited'}"
            f"): {start} to {end}"
        )
    )
    for d in days:
        flags = []
        if d.closed:
            flags.append(f"CLOSED ({d.closed})")
        if d.over:
            flags.append(f"OVER CAPACITY ({'; '.join(d.over)})")
        day_line = f"{d.day} {d.day.format('ddd')}  load {d.total}  {'  '.join(flags)}"
        click.echo(printable(day_line.rstrip()))
        for e in d.entries:
            state = e.when.strftime("%H:%M") + " booked" if e.when else e.state
            line = f"    {e.participant:<8} {e.visit:<5} {e.name:<22} {state:<13}"
            line += f" window {e.earliest}..{e.latest}"
            if e.alternatives:
                shown = ", ".join(a.isoformat() for a in e.alternatives[:3])
                line += f"  open days: {shown}"
            elif d.closed and e.state in ("planned", "tentative"):
                line += "  open days: none in window"
            click.echo(printable(line.rstrip()))
            for problem in e.problems:
                click.echo(printable(f"      ! re-book: {problem}"))
    closed = sum(1 for d in days if d.closed)
    over = sum(1 for d in days if d.over)
    rebook = sum(1 for d in days for e in d.entries if e.problems)
    summary = f"{len(days)} days with visits, {closed} closed, {over} over capacity"
    plural = "s" if rebook != 1 else ""
    click.echo(summary + (f", {rebook} appointment{plural} to re-book" if rebook else ""))
    if propose:
        chosen = MovePolicy(policy) if policy else site.policy
        now = today if today is not None else pendulum.today(site.timezone).date()
        proposals = propose_dates(site, schedules, held, chosen, start=start, end=end, today=now)
        moved = [p for p in proposals if p.moved]
        click.echo(f"proposals ({chosen.value}; nothing booked): {len(moved)} of "
                   f"{len(proposals)} visits need another day")  # fmt: skip
        for p in moved:
            day = p.day.isoformat() if p.day else "no day with room in window"
            click.echo(
                printable(f"    {p.participant:<8} {p.visit:<5} {p.target} -> {day}  ({p.reason})")
            )
