"""The roster commands: ``enroll``, ``record``, ``discontinue``, ``withdraw``, ``show``, ``due``,
``overdue``, ``deviations``, ``history`` and ``import``.

Every command takes ``--db`` (a SQLite file or a database URL; default ``$VISITPLAN_DB``, else
``./visitplan.db``), ``--protocol`` and ``--today`` (the date used for checks and for what is
due or overdue; default the real date, so scripts and tests can pin it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict, TypeVar

import click

from visitplan.cli.common import (
    error_line,
    excel_option,
    format_choice,
    load_protocol,
    machine_format,
    parse_date_option,
    protocol_option,
    wants_excel,
)
from visitplan.cli.render import Column, finding_line, visit_state
from visitplan.i18n import N_, _, ngettext

if TYPE_CHECKING:
    import pendulum

    from visitplan.model import Protocol
    from visitplan.store import Deviation, Roster

F = TypeVar("F", bound=Callable[..., object])
DEFAULT_DB = "visitplan.db"


class BookedJson(TypedDict):
    """A due visit's appointment in ``due --format json``."""

    date: str
    time: str | None
    problems: list[str]


class DueRow(TypedDict):
    """A row of ``due --format json`` (docs/roster.md)."""

    participant: str
    site: str | None
    visit: str
    name: str
    target: str
    earliest: str
    latest: str
    study_day: int
    tentative: bool
    appointment: BookedJson | None


class FindingRow(TypedDict):
    """A row of ``overdue`` and ``deviations --format json``."""

    participant: str
    site: str | None
    visit: str
    kind: str
    message: str
    target: str | None
    earliest: str | None
    latest: str | None
    actual: str | None


class HistoryRow(TypedDict):
    """A row of ``history --format json``: an audit entry, ``at`` in UTC as stored."""

    id: int
    at: str
    user: str | None
    action: str
    field: str
    old: str | None
    new: str | None
    reason: str | None


def roster_options(fn: F) -> F:
    """``--db``, ``--protocol``, ``--today`` and ``--wait``."""
    fn = click.option(
        "--wait",
        type=click.FloatRange(0, 86_400),
        default=10.0,
        show_default=True,
        help="Seconds to wait for a roster another process has locked.",
    )(fn)
    fn = click.option(
        "--today",
        callback=parse_date_option,
        help="The date of 'today' for checks and due/overdue (default: the real date).",
    )(fn)
    fn = protocol_option(fn)
    fn = click.option(
        "--db",
        envvar="VISITPLAN_DB",
        default=DEFAULT_DB,
        show_default=True,
        help="Roster database: a SQLite file path or a database URL (env VISITPLAN_DB).",
    )(fn)
    return fn


def user_option(fn: F) -> F:
    """``--user``: who makes the change (kept in the audit trail)."""
    return click.option(
        "--user",
        envvar="VISITPLAN_USER",
        help="Who makes the change, for the audit trail (env VISITPLAN_USER; default: login).",
    )(fn)


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    callback=machine_format,
)


#: ``--format`` of the daily lists (due, overdue, deviations, show, history): a terminal table,
#: CSV (formula-safe) or JSON, with ISO dates and English keys (docs/roster.md).
def list_format_option(fn: F) -> F:
    return excel_option(format_choice("table", "csv", "json", help=_LIST_FORMATS)(fn))


_LIST_FORMATS = "table (for a terminal), csv or json (for scripts; columns in docs/roster.md)."


def _open(
    db: str,
    protocol_spec: str,
    today: pendulum.Date | None,
    wait: float,
    *,
    create: bool = False,
    user: str | None = None,
) -> Roster:
    from visitplan.store import Roster

    return Roster.open(
        db,
        protocol=load_protocol(protocol_spec),
        today=today,
        create=create,
        wait=wait,
        user=user or None,
    )


def _today(roster: Roster) -> pendulum.Date:
    return roster.today()


def _echo_json(doc: object) -> None:
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False))


@click.command()
@click.argument("code")
@click.option("--screening", required=True, callback=parse_date_option, help="YYYY-MM-DD.")
@click.option("--site", help="Site code (default: the protocol's only site).")
@click.option("--flag", "flags", multiple=True, help="e.g. hbcab_positive, wocbp (repeatable).")
@click.option("--reason", help="Why (kept in the audit trail).")
@roster_options
@user_option
def enroll(
    code: str,
    screening: pendulum.Date,
    site: str | None,
    flags: tuple[str, ...],
    reason: str | None,
    db: str,
    protocol_spec: str,
    today: pendulum.Date | None,
    wait: float,
    user: str | None,
) -> None:
    """Enrol participant CODE (a study code, never a name) with a screening date."""
    from visitplan.engine import plan
    from visitplan.facts import check_site
    from visitplan.participant import Participant
    from visitplan.store.database import is_new

    # The rulebook first: a refused first enrolment must not leave an empty roster behind.
    protocol = load_protocol(protocol_spec)
    site = check_site(protocol, site)
    plan(protocol, Participant(code, screening, flags=flags, site=site), today=today)
    created = is_new(db)
    with _open(db, protocol_spec, today, wait, create=True, user=user) as roster:
        person = roster.enroll(code, screening, site=site, flags=flags, reason=reason)
        schedule = roster.schedule(person.code)
    if created:
        click.echo(_("created the roster {db}").format(db=db))
    click.echo(
        _("enrolled {code}: screening {screening}, Day 1 target {day1}").format(
            code=person.code, screening=person.screening, day1=schedule.day1
        )
    )


@click.command()
@click.argument("code")
@click.argument("visit", required=False)
@click.option("--date", "day", callback=parse_date_option, help="YYYY-MM-DD (done: default today).")
@click.option(
    "--status",
    type=click.Choice(["done", "missed", "cancelled"]),
    default="done",
    show_default=True,
)
@click.option("--time", help="Wall-clock time HH:MM in the site's zone.")
@click.option("--reason", help="Why (e.g. why missed); kept in the audit trail.")
@click.option("--unscheduled", is_flag=True, help="Record an unscheduled visit (U1, U2, ...).")
@click.option("--bcell", type=float, help="Record a blood B-cell count with this value.")
@click.option("--unit", default="cells/uL", show_default=True, help="Unit of --bcell.")
@click.option("--baseline", is_flag=True, help="--bcell is the pre-treatment baseline count.")
@click.option("--event", help="Record a dated event the protocol waits for (bcell_recovery).")
@roster_options
@user_option
def record(
    code: str,
    visit: str | None,
    day: pendulum.Date | None,
    status: str,
    time: str | None,
    reason: str | None,
    unscheduled: bool,
    bcell: float | None,
    unit: str,
    baseline: bool,
    event: str | None,
    db: str,
    protocol_spec: str,
    today: pendulum.Date | None,
    wait: float,
    user: str | None,
) -> None:
    """Record what happened: VISIT done/missed/cancelled, or --unscheduled, --bcell, --event."""
    from visitplan.errors import VisitplanError, printable

    kinds = [k for k, on in (("VISIT", visit), ("--unscheduled", unscheduled),
                             ("--bcell", bcell is not None), ("--event", event)) if on]  # fmt: skip
    if len(kinds) != 1:
        raise VisitplanError(
            "record",
            " ".join(kinds) or "nothing",
            _("give exactly one of VISIT, --unscheduled, --bcell VALUE or --event NAME"),
        )
    with _open(db, protocol_spec, today, wait, user=user) as roster:
        when = day if day is not None else _today(roster)
        if visit is not None:
            schedule = roster.record(code, visit, day, status=status, time=time, reason=reason)
            v = schedule.visit(visit)
            click.echo(
                _("recorded {code} {visit}: {state}").format(
                    code=code, visit=visit, state=visit_state(v.status, v.actual)
                )
            )
            for f in schedule.findings:
                if f.visit == visit:
                    click.echo(f"! {printable(finding_line(f))}")
        elif unscheduled:
            u = roster.record_unscheduled(code, when, time=time, reason=reason)
            click.echo(
                _("recorded {code} {visit} (unscheduled) on {day}").format(
                    code=code, visit=u.code, day=u.date
                )
            )
        elif bcell is not None:
            c = roster.record_bcell(code, when, bcell, unit, baseline=baseline, reason=reason)
            message = (
                _("recorded {code} baseline B-cell count {value:g} {unit} on {day}")
                if baseline
                else _("recorded {code} B-cell count {value:g} {unit} on {day}")
            )
            click.echo(message.format(code=code, value=c.value, unit=c.unit, day=c.date))
        else:
            assert event is not None
            roster.record_event(code, event, when, reason=reason)
            click.echo(
                _("recorded {code} {event} on {day}").format(code=code, event=event, day=when)
            )


@click.command()
@click.argument("code")
@click.option("--date", "day", required=True, callback=parse_date_option, help="YYYY-MM-DD.")
@click.option("--reason", required=True, help="Why treatment stopped (audited).")
@roster_options
@user_option
def discontinue(
    code: str,
    day: pendulum.Date,
    reason: str,
    db: str,
    protocol_spec: str,
    today: pendulum.Date | None,
    wait: float,
    user: str | None,
) -> None:
    """Stop CODE's treatment early: remaining doses cancelled, EOT re-planned, follow-up goes on."""
    with _open(db, protocol_spec, today, wait, user=user) as roster:
        schedule = roster.discontinue(code, day, reason)
    eot = roster.protocol.rules.early_end_visit
    message = _("discontinued treatment of {code} on {day}").format(code=code, day=day)
    if eot:
        message += "; " + _("{visit} target {target}").format(
            visit=eot, target=schedule.visit(eot).target
        )
    click.echo(message)


@click.command()
@click.argument("code")
@click.option("--date", "day", required=True, callback=parse_date_option, help="YYYY-MM-DD.")
@click.option("--reason", required=True, help="Why the participant left (audited).")
@roster_options
@user_option
def withdraw(
    code: str,
    day: pendulum.Date,
    reason: str,
    db: str,
    protocol_spec: str,
    today: pendulum.Date | None,
    wait: float,
    user: str | None,
) -> None:
    """Withdraw CODE from the study: every visit from the date on is cancelled."""
    with _open(db, protocol_spec, today, wait, user=user) as roster:
        schedule = roster.withdraw(code, day, reason)
    cancelled = sum(1 for v in schedule.visits if v.status.value == "cancelled")
    click.echo(
        ngettext(
            "withdrew {code} on {day}; {n} visit cancelled",
            "withdrew {code} on {day}; {n} visits cancelled",
            cancelled,
        ).format(code=code, day=day, n=cancelled)
    )


@click.command()
@click.argument("code")
@list_format_option
@roster_options
def show(
    code: str, fmt: str, db: str, protocol_spec: str, today: pendulum.Date | None, wait: float
) -> None:
    """CODE's plan (re-planned from what is recorded), unscheduled visits and B-cell counts."""
    with _open(db, protocol_spec, today, wait) as roster:
        day = _today(roster)
        person = roster.participant(code)
        schedule = roster.schedule(code, day)
        extra = roster.unscheduled(code)
        counts = roster.bcell_counts(code)
        baseline = roster.baseline_bcell(code)
        booked = roster.appointments(code)
    if fmt == "json":
        from visitplan.export.tabular import schedule_dict

        doc = schedule_dict(roster.protocol, person, schedule)
        doc["today"] = day.isoformat()
        doc["participant"].update(
            site=person.site,
            flags=sorted(person.flags),
            discontinued=_iso(person.discontinued),
            withdrawn=_iso(person.withdrawn),
            baseline_bcell=None
            if baseline is None
            else {"value": baseline[0], "unit": baseline[1]},
        )
        doc["unscheduled"] = [
            {"code": u.code, "date": u.date.isoformat(), "time": u.time, "reason": u.reason}
            for u in extra
        ]
        doc["bcell_counts"] = [
            {"date": c.date.isoformat(), "value": c.value, "unit": c.unit} for c in counts
        ]
        doc["appointments"] = [
            {"visit": a.visit, "date": a.date.isoformat(), "time": a.time} for a in booked
        ]
        _echo_json(doc)
        return
    if fmt == "csv":
        from visitplan.export.tabular import to_csv

        click.echo(to_csv([schedule], excel=wants_excel(roster.protocol)), nl=False)
        return
    from visitplan.cli.render import make_console, print_schedule, print_text

    console = make_console()
    print_schedule(roster.protocol, schedule, console)
    facts = [_("site {site}").format(site=person.site or "-")]
    if person.flags:
        facts.append(_("flags {flags}").format(flags=", ".join(sorted(person.flags))))
    if person.discontinued:
        facts.append(_("treatment discontinued {day}").format(day=person.discontinued))
    if person.withdrawn:
        facts.append(_("withdrawn {day}").format(day=person.withdrawn))
    if baseline:
        facts.append(
            _("baseline B-cells {value:g} {unit}").format(value=baseline[0], unit=baseline[1])
        )
    lines = ["; ".join(facts)]
    lines += [
        _("{visit} unscheduled {day} {time} {reason}").format(
            visit=u.code, day=u.date, time=u.time or "", reason=u.reason or ""
        )
        for u in extra
    ]
    lines += [
        _("B-cell count {day}: {value:g} {unit}").format(day=c.date, value=c.value, unit=c.unit)
        for c in counts
    ]
    lines += [
        _("appointment {visit}: {day} {time}").format(visit=a.visit, day=a.date, time=a.time or "")
        for a in booked
    ]
    for line in lines:
        print_text(line, console)


@click.command()
@click.option("--days", default=14, show_default=True, type=click.IntRange(min=0))
@list_format_option
@roster_options
def due(
    days: int, fmt: str, db: str, protocol_spec: str, today: pendulum.Date | None, wait: float
) -> None:
    """Visits coming up in the next N days for the whole site, in date order, with windows.

    An appointment that a re-plan has left outside its visit's window, on a closed day or
    outside clinic hours is flagged with `!` and the rule of `book` it breaks.
    """
    from visitplan.booking import booking_errors
    from visitplan.cli.sitectx import site_calendar_of

    with _open(db, protocol_spec, today, wait) as roster:
        day = _today(roster)
        found = roster.due(day, days)
    calendars = {s: site_calendar_of(roster.protocol, s) for s in {d.site for d in found}}
    problems = {
        (d.participant, d.visit.code): [
            str(e)
            for e in booking_errors(
                calendars[d.site], d.visit, d.appointment.date, d.appointment.time
            )
        ]
        for d in found
        if d.appointment is not None
    }
    rows: list[DueRow] = [
        {
            "participant": d.participant,
            "site": d.site,
            "visit": d.visit.code,
            "name": d.visit.name,
            "target": d.visit.target.isoformat(),
            "earliest": d.visit.earliest.isoformat(),
            "latest": d.visit.latest.isoformat(),
            "study_day": d.visit.study_day,
            "tentative": d.visit.tentative,
            "appointment": None
            if d.appointment is None
            else {
                "date": d.appointment.date.isoformat(),
                "time": d.appointment.time,
                "problems": problems[(d.participant, d.visit.code)],
            },
        }
        for d in found
    ]
    if fmt == "json":
        _echo_json({"today": day.isoformat(), "days": days, "due": rows})
        return
    if fmt == "csv":
        _echo_csv(DUE_CSV_COLUMNS, [_due_csv_row(r) for r in rows], roster.protocol)
        return
    from visitplan.cli.render import make_console, print_table, print_text
    from visitplan.i18n import language

    console = make_console()
    lang = language()
    protocol = roster.protocol
    print_table(
        ngettext(
            "Due from {day} for {days} days ({n} visit)",
            "Due from {day} for {days} days ({n} visits)",
            len(rows),
        ).format(day=day, days=days, n=len(rows)),
        DUE_COLUMNS,
        [
            [
                r["participant"],
                r["visit"],
                protocol.visit_name(
                    d.visit.base_code or d.visit.code, d.visit.name, d.visit.occurrence, lang
                ),
                r["target"] + ("?" if r["tentative"] else ""),
                f"{r['earliest']}..{r['latest']}",
                r["study_day"],
                _appointment(r["appointment"]),
            ]
            for r, d in zip(rows, found, strict=True)
        ],
        console,
    )
    for r in rows:
        for problem in r["appointment"]["problems"] if r["appointment"] else []:
            print_text(
                _("! {participant} {visit}: re-book: {problem}").format(
                    participant=r["participant"], visit=r["visit"], problem=problem
                ),
                console,
            )


#: The terminal table of ``due``.
DUE_COLUMNS = (
    Column(N_("Participant")),
    Column(N_("Visit")),
    Column(N_("Name"), "text"),
    Column(N_("Target")),
    Column(N_("Window")),
    Column(N_("Day"), justify="right"),
    Column(N_("Appointment"), "words"),
)
#: ``due --format csv``: one row a visit (docs/roster.md).
DUE_CSV_COLUMNS = (
    "participant", "site", "visit", "name", "target", "earliest", "latest", "study_day",
    "tentative", "appointment_date", "appointment_time", "appointment_problems",
)  # fmt: skip


def _due_csv_row(r: DueRow) -> list[object]:
    booked = r["appointment"]
    return [
        r["participant"], r["site"], r["visit"], r["name"], r["target"], r["earliest"],
        r["latest"], r["study_day"], "yes" if r["tentative"] else "no",
        booked and booked["date"], booked and booked["time"],
        "; ".join(booked["problems"]) if booked else "",
    ]  # fmt: skip


@click.command()
@list_format_option
@roster_options
def overdue(
    fmt: str, db: str, protocol_spec: str, today: pendulum.Date | None, wait: float
) -> None:
    """Visits past their latest date with nothing recorded, for the whole site."""
    with _open(db, protocol_spec, today, wait) as roster:
        day = _today(roster)
        found = roster.overdue(day)
    title = _("Overdue on {day}").format(day=day)
    _print_deviations(title, day, found, fmt, "overdue", roster.protocol)


@click.command()
@list_format_option
@roster_options
def deviations(
    fmt: str, db: str, protocol_spec: str, today: pendulum.Date | None, wait: float
) -> None:
    """Out-of-window visits, doses too close together, overdue and missed visits, visits
    recorded outside the plan, and appointments a re-plan has left breaking a rule of `book`."""
    from visitplan.cli.sitectx import appointment_deviations

    with _open(db, protocol_spec, today, wait) as roster:
        day = _today(roster)
        found = roster.deviations(day) + appointment_deviations(roster, day)
    found.sort(key=lambda d: (d.planned.date if d.planned else day, d.participant, d.visit,
                              d.kind.value))  # fmt: skip
    title = _("Deviations on {day}").format(day=day)
    _print_deviations(title, day, found, fmt, "deviations", roster.protocol)


@click.command()
@click.argument("code")
@list_format_option
@roster_options
def history(
    code: str, fmt: str, db: str, protocol_spec: str, today: pendulum.Date | None, wait: float
) -> None:
    """CODE's audit trail: every change, old and new value, who, when and why.

    Times are shown in the site's zone (the JSON keeps ``at`` in UTC, as stored).
    """
    with _open(db, protocol_spec, today, wait) as roster:
        entries = roster.history(code)
        person = roster.participant(code)
        zone = roster.protocol.site_of(person.site).timezone if roster.protocol.sites else "UTC"
    rows: list[HistoryRow] = [
        {
            "id": e.id,
            "at": e.at,
            "user": e.user,
            "action": e.action,
            "field": e.field,
            "old": e.old,
            "new": e.new,
            "reason": e.reason,
        }
        for e in entries
    ]
    if fmt == "json":
        _echo_json({"participant": code, "history": rows})
        return
    if fmt == "csv":
        # The JSON's fields, in the order of HISTORY_CSV_COLUMNS.
        _echo_csv(HISTORY_CSV_COLUMNS, [list(r.values()) for r in rows], roster.protocol)
        return
    from visitplan.cli.render import print_table

    print_table(
        _("History of {code} (times in {zone})").format(code=code, zone=zone),
        HISTORY_COLUMNS,
        [
            [
                r["id"],
                _local(r["at"], zone),
                r["user"],
                r["action"],
                r["field"],
                r["old"],
                r["new"],
                r["reason"],
            ]
            for r in rows
        ],
    )


#: The terminal table of ``history``.
HISTORY_COLUMNS = (
    Column("#", justify="right", translate=False),
    Column(N_("At")),
    Column(N_("User"), "text"),
    Column(N_("Action")),
    Column(N_("Field")),
    Column(N_("Old"), "words"),
    Column(N_("New"), "words"),
    Column(N_("Reason"), "text"),
)
#: ``history --format csv``: one row a change, ``at`` in UTC as stored (docs/roster.md).
HISTORY_CSV_COLUMNS = ("id", "at", "user", "action", "field", "old", "new", "reason")


def _local(at: str, zone: str) -> str:
    """A stored UTC time shown in the site's zone, to the second."""
    import pendulum

    when = pendulum.parse(at)
    assert isinstance(when, pendulum.DateTime)
    return when.in_timezone(zone).format("YYYY-MM-DD HH:mm:ss")


@click.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--reason", help="Why (kept in the audit trail).")
@click.option(
    "--dayfirst",
    is_flag=True,
    help="Dates written DD/MM/YYYY are day first (31/01/2023), as a French spreadsheet writes "
    "them; without it only YYYY-MM-DD is read, never a guess.",
)
@roster_options
@user_option
def import_(
    path: str,
    reason: str | None,
    dayfirst: bool,
    db: str,
    protocol_spec: str,
    today: pendulum.Date | None,
    wait: float,
    user: str | None,
) -> None:
    """Enrol every participant of a roster file (CSV, or .xlsx), all of them or none.

    Columns: participant, site, screening, day1, flags (';'-separated). Cells are separated
    by ',' or, as a French spreadsheet saves them, ';'. Every bad row is reported, and nothing
    is stored unless every row is good.
    """
    from visitplan.cli.progress import Counted, progress
    from visitplan.roster_csv import RosterError
    from visitplan.store import Roster
    from visitplan.store.database import is_new
    from visitplan.store.importing import read_roster_file

    protocol = load_protocol(protocol_spec)
    created = is_new(db)
    try:
        # The file is read first: a missing or unreadable file creates no empty database.
        people = read_roster_file(path, day1_visit=protocol.day1_visit, dayfirst=dayfirst)
        with (
            Roster.open(db, protocol=protocol, today=today, wait=wait, user=user or None) as roster,
            progress("Importing", len(people)) as advance,
        ):
            kept = roster.import_participants(Counted(people, advance), source=path, reason=reason)
    except RosterError as exc:
        for row in exc.rows:
            click.echo(error_line(row), err=True)
        raise SystemExit(2) from None
    if created:
        click.echo(_("created the roster {db}").format(db=db))
    click.echo(
        ngettext(
            "imported {n} participant from {file}",
            "imported {n} participants from {file}",
            len(kept),
        ).format(n=len(kept), file=path)
    )


def _print_deviations(
    title: str, day: pendulum.Date, found: list[Deviation], fmt: str, key: str, study: Protocol
) -> None:
    rows: list[FindingRow] = [
        {
            "participant": d.participant,
            "site": d.site,
            "visit": d.visit,
            "kind": d.kind.value,
            "message": d.message,
            "target": _iso(d.planned.target if d.planned else None),
            "earliest": _iso(d.planned.earliest if d.planned else None),
            "latest": _iso(d.planned.latest if d.planned else None),
            "actual": _iso(d.planned.actual if d.planned else None),
        }
        for d in found
    ]
    if fmt == "json":
        _echo_json({"today": day.isoformat(), key: rows})
        return
    if fmt == "csv":
        # The JSON's fields, in the order of DEVIATION_CSV_COLUMNS.
        _echo_csv(DEVIATION_CSV_COLUMNS, [list(r.values()) for r in rows], study)
        return
    from visitplan.cli.render import print_table

    print_table(
        f"{title} ({len(rows)})",
        DEVIATION_COLUMNS,
        [
            [
                r["participant"],
                r["visit"],
                _(r["kind"]),
                f"{r['earliest']}..{r['latest']}" if r["earliest"] else "",
                r["message"],
            ]
            for r in rows
        ],
    )


#: The terminal table of ``overdue`` and ``deviations``.
DEVIATION_COLUMNS = (
    Column(N_("Participant")),
    Column(N_("Visit")),
    Column(N_("Kind"), "words"),
    Column(N_("Window")),
    Column(N_("What"), "text"),
)
#: ``overdue``/``deviations --format csv``: one row a finding (docs/roster.md).
DEVIATION_CSV_COLUMNS = (
    "participant", "site", "visit", "kind", "message", "target", "earliest", "latest", "actual",
)  # fmt: skip


def _echo_csv(header: tuple[str, ...], rows: list[list[object]], study: Protocol) -> None:
    from visitplan.csvfile import to_csv

    click.echo(to_csv(header, rows, excel=wants_excel(study)), nl=False)


def _appointment(value: BookedJson | None) -> str:
    if value is None:
        return ""
    flag = " !" if value.get("problems") else ""
    return f"{value['date']} {value['time'] or ''}".strip() + flag


def _iso(day: pendulum.Date | None) -> str | None:
    return None if day is None else day.isoformat()
