"""``visitplan ics``: calendars (iCalendar files) for one participant or a whole site roster."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import click

from visitplan.cli.common import (
    facts_options,
    load_protocol,
    pair_option,
    parse_date_option,
    participant_from_options,
    protocol_option,
)
from visitplan.cli.sitectx import site_option
from visitplan.errors import VisitplanError
from visitplan.i18n import _

if TYPE_CHECKING:
    import datetime as dt

    import pendulum

    from visitplan.booking import Appointments
    from visitplan.export.ics import Reminders
    from visitplan.fileio import Staging
    from visitplan.model import Protocol
    from visitplan.publish import RosterCalendar
    from visitplan.schedule import Schedule
    from visitplan.site import SiteCalendar
    from visitplan.store import Roster


class CalendarOptions(NamedTuple):
    """How ``ics`` writes events, whatever the participants come from (a NamedTuple: nothing
    to import when the CLI starts). The fields are keyword arguments of
    :func:`visitplan.export.ics.iter_ical` and of :class:`visitplan.publish.RosterCalendar`."""

    duration: dt.timedelta
    dtstamp: dt.datetime | None
    reminders: Reminders | None
    window_spans: bool
    #: Site code -> site calendar, to check ``--appointment`` and flag stored appointments.
    site_calendars: dict[str, SiteCalendar]
    #: The timed appointments, (participant, visit) -> start; none with a roster database,
    #: whose calendar adds its own.
    appointments: Appointments


_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:\d{2})$")


@click.command()
@protocol_option
@facts_options(required=False)
@click.option(
    "--roster",
    type=click.Path(dir_okay=False),
    help="A roster CSV (participant,site,screening,day1,flags): a site calendar of everyone.",
)
@click.option(
    "--per-participant",
    "per_participant",
    type=click.Path(file_okay=False),
    help="With --roster or --db: also write DIR/<code>.ics for each participant.",
)
@click.option(
    "-o",
    "--output",
    "output",
    default=None,
    help="The calendar file to write; '-' for stdout (the default without --per-participant).",
)
@click.option(
    "--appointment",
    "appointments",
    multiple=True,
    metavar="[PARTICIPANT/]VISIT=YYYY-MM-DDTHH:MM",
    help="A booked time in the site's zone: a timed event instead of an all-day one. "
    "Checked as `visitplan book` checks a booking (window, closed days, clinic hours, "
    "capacity), with the same messages.",
)
@site_option
@click.option(
    "--duration",
    default=60,
    show_default=True,
    type=click.IntRange(min=1, max=24 * 60),
    help="Length of a timed event, in minutes.",
)
@click.option(
    "--dtstamp",
    help="DTSTAMP of every event, e.g. 2026-01-01T00:00:00Z (default: now): reproducible files.",
)
@click.option(
    "--previous",
    type=click.Path(dir_okay=False),
    help="The last export to the same place (default: the -o file if it exists): SEQUENCE "
    "rises only for events whose date, time or status changed.",
)
@click.option("--no-alarms", "no_alarms", is_flag=True, help="Write no VALARM reminders.")
@click.option(
    "--window-spans", "window_spans", is_flag=True, help="Add each visit window as an event."
)
@click.option("--name", help="The calendar name shown by clients.")
@click.option(
    "--db",
    envvar="VISITPLAN_DB",
    help="A roster database (SQLite file or URL; env VISITPLAN_DB; default ./visitplan.db "
    "when it exists and no --roster or facts are given): everyone in it (a site calendar), "
    "or one --participant; appointments and SEQUENCE bookkeeping come from the database.",
)
@click.option(
    "--today",
    callback=parse_date_option,
    help="With --db: the date the plans are made on (default: the real date).",
)
def ics(
    protocol_spec: str,
    participant: str | None,
    screening: pendulum.Date | None,
    day1: pendulum.Date | None,
    actuals: tuple[str, ...],
    flags: tuple[str, ...],
    events: tuple[str, ...],
    bcell_counts: tuple[str, ...],
    bcell_baseline: float | None,
    roster: str | None,
    per_participant: str | None,
    output: str | None,
    appointments: tuple[str, ...],
    site_spec: str | None,
    duration: int,
    dtstamp: str | None,
    previous: str | None,
    no_alarms: bool,
    window_spans: bool,
    name: str | None,
    db: str | None,
    today: pendulum.Date | None,
) -> None:
    """Write visit calendars (.ics) that Outlook, Google, Apple Calendar and Thunderbird read.

    Either one participant (--participant, --screening and the facts options of `plan`),
    a --roster CSV for a site calendar (and, with --per-participant DIR, one file each), or a
    roster database (--db, optionally --participant CODE) with its stored appointments and
    SEQUENCE bookkeeping. The database is --db, else $VISITPLAN_DB, else ./visitplan.db when
    it exists; a --roster or facts options typed win over the last two. A stored appointment
    that cannot be written as a timed event is reported on stderr and its visit written as an
    all-day event; one that a re-plan has left outside its window or on a closed day is
    written flagged "(re-book)".
    """
    import datetime as dt

    from visitplan.export.ics import Reminders

    if name is not None:
        from visitplan.export.ics.writer import check_name

        check_name(name, "--name")
    protocol = load_protocol(protocol_spec)
    options = CalendarOptions(
        duration=dt.timedelta(minutes=duration),
        dtstamp=_dtstamp(dtstamp),
        reminders=None if no_alarms else Reminders(),
        window_spans=window_spans,
        # Only what checks appointments needs: a site file is read when there can be some.
        site_calendars=_calendars(protocol, site_spec)
        if db is not None or appointments or site_spec is not None
        else {},
        appointments={},
    )
    from visitplan.cli.sitectx import choose_db

    typed = {"--screening": screening, "--day1": day1, "--actual": actuals, "--flag": flags,
             "--event": events, "--bcell-count": bcell_counts, "--bcell-baseline": bcell_baseline,
             "--previous": previous}  # fmt: skip
    chosen = choose_db(
        db,
        roster=roster,
        given=typed,
        conflict=_(
            "takes its facts and previous export from the database: give no --roster, "
            "--previous or facts options (only --participant)"
        ),
    )
    if chosen is not None:
        _from_roster(protocol, chosen, participant, today, per_participant, output,
                     appointments, options, name)  # fmt: skip
        return
    if today is not None:
        raise VisitplanError("--today", str(today), _("needs --db"))
    if roster is not None:
        facts = (participant, screening, day1, actuals, flags, events, bcell_counts)
        if any(facts) or bcell_baseline is not None:
            raise VisitplanError(
                "--roster", roster, _("give either a roster or one participant's facts, not both")
            )
        from visitplan.roster_csv import load_roster

        people = load_roster(roster, day1_visit=protocol.day1_visit)
    else:
        if per_participant is not None:
            raise VisitplanError("--per-participant", per_participant, _("needs --roster or --db"))
        if participant is None or screening is None:
            raise VisitplanError(
                "--participant/--screening",
                "missing",
                _("give both, or a --roster FILE, or a roster database (--db or VISITPLAN_DB)"),
            )
        people = [
            participant_from_options(
                protocol,
                participant,
                screening,
                day1,
                actuals,
                flags,
                events,
                bcell_counts=bcell_counts,
                bcell_baseline=bcell_baseline,
            )
        ]
    if output is None and per_participant is None:
        output = "-"
    from visitplan.engine import plan
    from visitplan.export.ics.writer import _default_name

    if name is None:
        name = _default_name(protocol, [(p.code, p.site) for p in people])
    # In participant-code order: the same calendar whatever the roster's row order, and the
    # order a stream of schedules needs (export.ics.iter_ical).
    people = sorted(people, key=lambda p: p.code)
    schedules: Iterable[Schedule]
    if per_participant is None and not appointments:
        # One calendar and nothing to look up across it: plan each participant as the stream
        # writes it, so a large roster's calendar needs no memory for all its schedules.
        schedules = (plan(protocol, p) for p in people)
    else:
        schedules = [plan(protocol, p) for p in people]
        options = options._replace(
            appointments=_appointments(
                protocol, schedules, appointments, options.site_calendars, {}
            )
        )
    # Every file is made and staged before the first one replaces its target (all or none);
    # stdout gets its calendar whole, once every file is in place.
    files: list[tuple[Path, Iterable[bytes]]] = []
    if per_participant is not None:
        own_files = _participant_paths(per_participant, [p.code for p in people])
        for schedule in schedules:
            path = own_files[schedule.participant]
            own = {k: v for k, v in options.appointments.items() if k[0] == schedule.participant}
            data = _export(protocol, [schedule], path, None, options._replace(appointments=own),
                           None)  # fmt: skip
            files.append((path, data))
    stdout: Iterable[bytes] | None = None
    if output is not None:
        target = _output(output)
        data = _export(protocol, schedules, target, previous, options, name)
        if target is None:
            stdout = data
        else:
            files.append((target, data))
    _write(files, stdout)


def _participant_paths(folder: str, codes: list[str]) -> dict[str, Path]:
    """``FOLDER/<code>.ics`` for each code: names that stay inside the folder and are the same
    files on every system (no Windows device names, no two codes differing only in case)."""
    from visitplan.fileio import inside, portable_names

    names = {code: f"{code}.ics" for code in codes}
    portable_names(names.values())
    return {code: inside(folder, name) for code, name in names.items()}


def _output(output: str) -> Path | None:
    """The file of ``-o``; None for stdout (``-``, ``/dev/stdout`` or another name of it), which
    gets the calendar as a stream: never replaced by a file, never read as a previous export."""
    if output == "-" or _is_stdout(Path(output)):
        return None
    return Path(output)


def _is_stdout(path: Path) -> bool:
    import os
    import sys

    if not path.exists() or path.is_file() or path.is_dir():
        return False
    try:
        return os.path.samefile(path, f"/dev/fd/{sys.stdout.fileno()}")
    except (OSError, ValueError, AttributeError):  # no /dev/fd, stdout without a descriptor
        return str(path) in ("/dev/stdout", "/dev/fd/1")


def _write(files: list[tuple[Path, Iterable[bytes]]], stdout: Iterable[bytes] | None) -> None:
    """Write every file (all or none), then stdout's calendar; say what was written.

    A file (-o, --per-participant) is streamed to a temporary file and renamed into place
    with the others; stdout's calendar and one for a FIFO or device (never replaced by a
    file) are made whole before their first byte, so an error found mid-stream writes nothing.
    """
    from visitplan.fileio import write_all

    def special(path: Path) -> bool:
        return path.exists() and not path.is_file() and not path.is_dir()

    ready = [(path, b"".join(data)) for path, data in files if special(path)]
    whole = None if stdout is None else b"".join(stdout)
    written = write_all((path, data) for path, data in files if not special(path))
    for path, chunk in ready:
        _stream(path, chunk)
        written.append(path)
    if whole is not None:
        click.echo(whole, nl=False)
    for path in written:
        click.echo(_("wrote {file}").format(file=path), err=True)


def _stream(path: Path, data: bytes) -> None:
    """``data`` written into a FIFO or device named by -o (never replaced by a file)."""
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise VisitplanError(
            "-o", str(path), _("cannot be written: {strerror}").format(strerror=exc.strerror)
        ) from None


def _export(
    protocol: Protocol,
    schedules: Iterable[Schedule],
    target: Path | None,
    previous: str | None,
    options: CalendarOptions,
    name: str | None,
) -> Iterator[bytes]:
    """The calendar as a stream of chunks; the previous export is read before it starts.

    The previous export is ``--previous``, else the file already at ``target`` (only a regular
    file is read; an empty one has no events).
    """
    from visitplan.export.ics import iter_ical
    from visitplan.export.ics.state import load_state

    state = {}
    if previous is not None:
        state = load_state(Path(previous), "--previous")
    elif target is not None and target.is_file():
        state = load_state(target, "-o")
    elif target is not None and target.is_dir():
        raise VisitplanError("-o", str(target), _("is a folder; name a file"))
    o = options
    return iter_ical(protocol, schedules, previous=state, name=name, duration=o.duration,
                     dtstamp=o.dtstamp, reminders=o.reminders, window_spans=o.window_spans,
                     site_calendars=o.site_calendars, appointments=o.appointments)  # fmt: skip


def _from_roster(
    protocol: Protocol,
    db: str,
    code: str | None,
    today: pendulum.Date | None,
    per_participant: str | None,
    output: str | None,
    extra: tuple[str, ...],
    options: CalendarOptions,
    name: str | None,
) -> None:
    """Calendars of a roster database, streamed, with SEQUENCE kept in the database.

    :class:`~visitplan.publish.RosterCalendar` reads and plans the participants a batch at a
    time and saves the SEQUENCE state it writes as it goes (raise-only, shared with the feed
    server and ``publish``); the site calendar and the per-participant files of one run are
    written from the same plans, so they carry the same SEQUENCE for the same event.
    """
    from visitplan.cli.progress import progress
    from visitplan.fileio import Staging
    from visitplan.publish import RosterCalendar
    from visitplan.store import Roster

    with Roster.open(db, protocol=protocol, today=today, create=False) as store:
        o = options
        # The appointments come from the database (calendar.booked() and add_appointments).
        calendar = RosterCalendar(store, code, name=name, note=_note, duration=o.duration,
                                  dtstamp=o.dtstamp, reminders=o.reminders,
                                  window_spans=o.window_spans,
                                  site_calendars=o.site_calendars)  # fmt: skip
        booked = _db_appointments(protocol, store, code, extra, options, calendar.booked())
        calendar.add_appointments(booked)
        if output is None and per_participant is None:
            output = "-"
        # Every file is staged as the batches stream and put in place only at the end, all
        # or none; stdout gets its calendar whole, after the files.
        whole = None
        with Staging() as staging, progress("Writing calendars", calendar.count) as advance:
            schedules = calendar.schedules(advance)
            if per_participant is not None:
                schedules = _each_file(calendar, schedules, per_participant, staging)
            target = None if output is None else _output(output)
            if output is None:
                for _schedule in schedules:
                    pass
            elif target is None:
                # Whole before the first byte, as for --roster: no half calendar on stdout.
                whole = b"".join(calendar.calendar(schedules))
            elif target.is_dir():
                raise VisitplanError("-o", str(target), _("is a folder; name a file"))
            else:
                staging.add(target, calendar.calendar(schedules))
        calendar.flush()
    if whole is not None:
        click.echo(whole, nl=False)
    for path in staging.written:
        click.echo(_("wrote {file}").format(file=path), err=True)


def _each_file(
    calendar: RosterCalendar, schedules: Iterator[Schedule], folder: str, staging: Staging
) -> Iterator[Schedule]:
    """Pass the schedules on, staging each participant's own calendar on the way, under a
    name that stays in the folder and is the same file on every system."""
    from visitplan.fileio import PortableNames, inside

    portable = PortableNames()
    for schedule in schedules:
        path = inside(folder, portable(f"{schedule.participant}.ics"))
        staging.add(path, calendar.participant_calendar(schedule))
        yield schedule


def _note(message: str) -> None:
    click.echo(_("note: {message}").format(message=message), err=True)


def _db_appointments(
    protocol: Protocol,
    store: Roster,
    code: str | None,
    items: tuple[str, ...],
    options: CalendarOptions,
    held: Mapping[tuple[str, str], dt.datetime],
) -> Appointments:
    """``--appointment`` options with ``--db``: each named participant is planned from the
    roster and each booking checked as ``visitplan book`` checks one, against the stored
    appointments (``held``) and each other."""
    from visitplan.engine import plan

    if not items:
        return {}
    form = "[PARTICIPANT/]VISIT=YYYY-MM-DDTHH:MM"
    named: set[str] = set()
    for item in items:
        key, _when = pair_option(item, "--appointment", form)
        who, sep, _visit = key.rpartition("/")
        if not sep and code is None:
            raise VisitplanError(
                "--appointment", item, _("name the participant: {form}").format(form=form)
            )
        who = who if sep else str(code)
        if code is not None and who != code:
            raise VisitplanError("--appointment", item, _("names no participant being exported"))
        try:
            store.participant(who)
        except VisitplanError:
            raise VisitplanError(
                "--appointment", item, _("names no participant being exported")
            ) from None
        named.add(who)
    # book() counts the places the stored appointments hold: their participants are planned
    # too, and a booking of a visit the re-plan dropped holds no place.
    day = store.today()
    owners = named | {who for who, _ in held}
    schedules = [plan(protocol, store.participant(w), today=day) for w in sorted(owners)]
    planned = {(s.participant, v.code) for s in schedules for v in s.visits}
    import pendulum

    kept = {key: pendulum.instance(start) for key, start in held.items() if key in planned}
    return _appointments(protocol, schedules, items, options.site_calendars, kept)


def _dtstamp(text: str | None) -> pendulum.DateTime | None:
    if text is None:
        return None
    import pendulum

    if not _STAMP.match(text.strip()):
        raise VisitplanError(
            "--dtstamp", text, _("must be a date and time with its offset, e.g. 2026-01-01T00:00Z")
        )
    try:
        when = pendulum.parse(text.strip(), exact=True)
    except ValueError:
        when = None
    if not isinstance(when, pendulum.DateTime):  # the pattern lets only a date and time by
        raise VisitplanError("--dtstamp", text, _("is not a valid date and time"))
    return when


def _calendars(protocol: Protocol, site_spec: str | None) -> dict[str, SiteCalendar]:
    """Site code -> site calendar: ``--site`` (a code or a site file), else each protocol
    site's built-in site file where there is one."""
    from visitplan.cli.common import speak_site
    from visitplan.cli.sitectx import site_calendar_of
    from visitplan.site import site_for

    calendars = {}
    for site in protocol.sites:
        found = site_calendar_of(protocol, site.code)
        if found is not None:
            calendars[site.code] = found
    if site_spec is not None:
        chosen = site_for(site_spec, protocol.sites[0] if protocol.sites else None)
        speak_site(chosen)
        calendars[chosen.code] = chosen
    return calendars


def _appointments(
    protocol: Protocol,
    schedules: list[Schedule],
    items: tuple[str, ...],
    calendars: dict[str, SiteCalendar],
    held: Appointments,
) -> Appointments:
    """The ``--appointment`` items, each checked as ``visitplan book`` checks a booking (one
    rule, one place: :func:`visitplan.booking.book`), against ``held`` and each other."""
    from visitplan.booking import book
    from visitplan.dates import parse_date

    found = {}
    held = dict(held)
    form = "[PARTICIPANT/]VISIT=YYYY-MM-DDTHH:MM"
    for item in items:
        key, when = pair_option(item, "--appointment", form)
        who, sep, visit = key.rpartition("/")
        if not sep:
            if len(schedules) != 1:
                raise VisitplanError(
                    "--appointment", item, _("name the participant: {form}").format(form=form)
                )
            who = schedules[0].participant
        day, sep, time = when.partition("T")
        if not sep:
            raise VisitplanError(
                "--appointment", item, _("must be written {form}").format(form=form)
            )
        schedule = next((s for s in schedules if s.participant == who), None)
        if schedule is None:
            raise VisitplanError("--appointment", item, _("names no participant being exported"))
        site = protocol.site_of(schedule.site)
        calendar = calendars.get(site.code)
        if calendar is None:
            raise VisitplanError(
                "--appointment",
                item,
                _(
                    "site {code} has no site file to check it against (clinic days, hours); give "
                    "--site FILE.toml"
                ).format(code=site.code),
            )
        zone_day = parse_date(day, f"--appointment {key}")
        held = book(calendar, schedules, who, visit, zone_day, time, held)
        found[(who, visit)] = held[(who, visit)]
    return found
