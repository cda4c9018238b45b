"""``visitplan agenda``: every participant's visits by site day, with load and flags."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from visitplan.cli.common import (
    excel_option,
    machine_format,
    parse_date_option,
    protocol_option,
    wants_excel,
)
from visitplan.cli.render import Cell, Column
from visitplan.cli.sitectx import db_option, roster_option, site_option
from visitplan.i18n import N_, _, ngettext

if TYPE_CHECKING:
    import pendulum

    from visitplan.booking import AgendaDay, AgendaEntry, Proposal
    from visitplan.site import MovePolicy, SiteCalendar


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
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="table (for a terminal), csv (a row a visit) or json (docs/site-calendar.md).",
    callback=machine_format,
)
@excel_option
def agenda(
    protocol_spec: str,
    site_spec: str | None,
    db: str | None,
    roster: str | None,
    start: pendulum.Date,
    end: pendulum.Date,
    bookings: str | None,
    today: pendulum.Date | None,
    propose: bool,
    policy: str | None,
    fmt: str,
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
    from visitplan.booking import agenda as build_agenda
    from visitplan.booking import propose_dates
    from visitplan.cli.sitectx import choose_db, load_site_data
    from visitplan.dates import today_at
    from visitplan.errors import VisitplanError
    from visitplan.site import MovePolicy

    if end < start:
        raise VisitplanError(
            "--to", end.isoformat(), _("is before --from ({start})").format(start=start)
        )
    store_db = choose_db(db, roster=roster, bookings=bookings)
    protocol, site, schedules, held = load_site_data(
        protocol_spec, site_spec, db=store_db, roster=roster, bookings=bookings, today=today
    )
    days = build_agenda(site, schedules, held, start, end)
    proposals: list[Proposal] | None = None
    chosen = MovePolicy(policy) if policy else site.policy
    if propose:
        now = today if today is not None else today_at([site.timezone])
        proposals = propose_dates(site, schedules, held, chosen, start=start, end=end, today=now)
    if fmt == "json":
        from visitplan.cli.common import echo_json

        echo_json(_agenda_dict(site, start, end, days, chosen, proposals))
    elif fmt == "csv":
        from visitplan.csvfile import to_csv

        rows = _agenda_rows(site, days, proposals)
        click.echo(to_csv(AGENDA_CSV_COLUMNS, rows, excel=wants_excel(protocol)), nl=False)
    else:
        from visitplan.i18n import language

        lang = language()
        names = {
            (s.participant, v.code): protocol.visit_name(
                v.base_code or v.code, v.name, v.occurrence, lang
            )
            for s in schedules
            for v in s.visits
        }
        _print_agenda(site, start, end, days, chosen, proposals, names)


#: The columns of ``agenda --format csv``: one row a visit on a day (docs/site-calendar.md).
AGENDA_CSV_COLUMNS = (
    "date", "participant", "visit", "name", "state", "time", "earliest", "latest", "closed",
    "over_capacity", "open_days", "problems", "proposed_day", "proposal_reason",
)  # fmt: skip
#: The columns of the agenda's terminal table (a visit a row, under its day's line).
AGENDA_COLUMNS = (
    Column(N_("Participant")),
    Column(N_("Visit")),
    Column(N_("Name"), "text"),
    Column(N_("State"), "words"),
    Column(N_("Window")),
    Column(N_("Open days"), "words"),
)
#: The policies' names, shown in the current language.
_POLICIES = (N_("nearest"), N_("nearest-earlier"), N_("nearest-later"))
#: The columns of the proposals of ``agenda --propose``.
PROPOSAL_COLUMNS = (
    Column(N_("Participant")),
    Column(N_("Visit")),
    Column(N_("Target")),
    Column(N_("Proposed"), "words"),
    Column(N_("Why"), "text"),
)


def _state(site: SiteCalendar, e: AgendaEntry) -> str:
    """``09:30 booked`` (in the site's zone), or the entry's state, in the current language."""
    if e.when:
        return _("{time} booked").format(time=_time(site, e))
    return _(e.state)


def _time(site: SiteCalendar, e: AgendaEntry) -> str | None:
    return e.when.in_timezone(site.timezone).strftime("%H:%M") if e.when else None


def _limits(site: SiteCalendar) -> str:
    limits = ", ".join(
        _("{kind} {n}/day").format(kind=_(k.value), n=n) for k, n in site.capacity.items()
    )
    if site.daily_limit is not None:
        limits += ", " + _("all visits {n}/day").format(n=site.daily_limit)
    return limits


def _print_agenda(
    site: SiteCalendar,
    start: pendulum.Date,
    end: pendulum.Date,
    days: list[AgendaDay],
    policy: MovePolicy,
    proposals: list[Proposal] | None,
    names: dict[tuple[str, str], str],
) -> None:
    from visitplan.cli.render import Line, day_heading, make_console, print_rows, print_text

    console = make_console()
    heading = _("{site} ({zone}, clinic {hours}, capacity {limits}): {start} to {end}").format(
        site=site.code,
        zone=site.timezone,
        hours=site.hours,
        limits=_limits(site) or _("unlimited"),
        start=start,
        end=end,
    )
    print_text(heading, console)
    items: list[Line | list[Cell]] = []
    for d in days:
        flags = []
        if d.closed:
            flags.append(_("CLOSED ({why})").format(why=d.closed))
        if d.over:
            flags.append(_("OVER CAPACITY ({what})").format(what="; ".join(d.over)))
        load = _("load {n}").format(n=d.total)
        items.append(Line(f"{day_heading(d.day)}  {load}  {'  '.join(flags)}".rstrip()))
        for e in d.entries:
            shown = ", ".join(a.isoformat() for a in e.alternatives[:3])
            if not shown and d.closed and e.state in ("planned", "tentative"):
                shown = _("none in window")
            window = f"{e.earliest}..{e.latest}"
            name = names.get((e.participant, e.visit), e.name)
            items.append([e.participant, e.visit, name, _state(site, e), window, shown])
            items += [
                Line(_("! re-book: {problem}").format(problem=problem), indent=6)
                for problem in e.problems
            ]
    closed = sum(1 for d in days if d.closed)
    over = sum(1 for d in days if d.over)
    rebook = sum(1 for d in days for e in d.entries if e.problems)
    summary = ngettext(
        "{days} day with visits, {closed} closed, {over} over capacity",
        "{days} days with visits, {closed} closed, {over} over capacity",
        len(days),
    ).format(days=len(days), closed=closed, over=over)
    if rebook:
        summary += ngettext(
            ", {n} appointment to re-book", ", {n} appointments to re-book", rebook
        ).format(n=rebook)
    items.append(Line(summary))
    print_rows(AGENDA_COLUMNS, items, console)
    if proposals is None:
        return
    moved = [p for p in proposals if p.moved]
    print_text(
        _("proposals ({policy}; nothing booked): {moved} of {n} visits need another day").format(
            policy=_(policy.value), moved=len(moved), n=len(proposals)
        ),
        console,
    )
    rows: list[Line | list[Cell]] = [
        [
            p.participant,
            p.visit,
            p.target.isoformat(),
            p.day.isoformat() if p.day else _("no day with room in window"),
            p.reason,
        ]
        for p in moved
    ]
    print_rows(PROPOSAL_COLUMNS, rows, console)


def _agenda_rows(
    site: SiteCalendar, days: list[AgendaDay], proposals: list[Proposal] | None
) -> list[list[object]]:
    proposed = {(p.participant, p.visit): p for p in proposals or []}
    rows: list[list[object]] = []
    for d in days:
        for e in d.entries:
            p = proposed.get((e.participant, e.visit))
            rows.append(
                [
                    d.day.isoformat(),
                    e.participant,
                    e.visit,
                    e.name,
                    e.state,
                    _time(site, e),
                    e.earliest.isoformat(),
                    e.latest.isoformat(),
                    d.closed,
                    "; ".join(d.over),
                    " ".join(a.isoformat() for a in e.alternatives),
                    "; ".join(e.problems),
                    p.day.isoformat() if p is not None and p.day else None,
                    p.reason if p is not None else None,
                ]
            )
    return rows


def _agenda_dict(
    site: SiteCalendar,
    start: pendulum.Date,
    end: pendulum.Date,
    days: list[AgendaDay],
    policy: MovePolicy,
    proposals: list[Proposal] | None,
) -> dict[str, object]:
    return {
        "site": {
            "code": site.code,
            "timezone": site.timezone,
            "clinic": str(site.hours),
            "capacity": {k.value: n for k, n in site.capacity.items()},
            "daily_limit": site.daily_limit,
        },
        "from": start.isoformat(),
        "to": end.isoformat(),
        "days": [
            {
                "date": d.day.isoformat(),
                "load": d.total,
                "closed": d.closed,
                "over_capacity": list(d.over),
                "visits": [
                    {
                        "participant": e.participant,
                        "visit": e.visit,
                        "name": e.name,
                        "state": e.state,
                        "time": _time(site, e),
                        "earliest": e.earliest.isoformat(),
                        "latest": e.latest.isoformat(),
                        "open_days": [a.isoformat() for a in e.alternatives],
                        "problems": list(e.problems),
                    }
                    for e in d.entries
                ],
            }
            for d in days
        ],
        "policy": policy.value,
        "proposals": None
        if proposals is None
        else [
            {
                "participant": p.participant,
                "visit": p.visit,
                "target": p.target.isoformat(),
                "earliest": p.earliest.isoformat(),
                "latest": p.latest.isoformat(),
                "day": p.day.isoformat() if p.day else None,
                "moved": p.moved,
                "reason": p.reason,
            }
            for p in proposals
        ],
    }
