"""``visitplan ics``: calendars (iCalendar files) for one participant or a whole site roster."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

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
    help="A roster database (SQLite file or URL): everyone in it (a site calendar), or one "
    "--participant; appointments and SEQUENCE bookkeeping come from the database.",
)
@click.option(
    "--today",
    callback=parse_date_option,
    help="With --db: the date the plans are made on (default: the real date).",
)
def ics(
    protocol_spec: str,
    participant: str | None,
    screening: Any,
    day1: Any,
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
    today: Any,
) -> None:
    """Write visit calendars (.ics) that Outlook, Google, Apple Calendar and Thunderbird read.

    Either one participant (--participant, --screening and the facts options of `plan`),
    a --roster CSV for a site calendar (and, with --per-participant DIR, one file each), or a
    roster database (--db, optionally --participant CODE) with its stored appointments and
    SEQUENCE bookkeeping. A stored appointment that cannot be written as a timed event is
    reported on stderr and its visit written as an all-day event; one that a re-plan has
    left outside its window or on a closed day is written flagged "(re-book)".
    """
    import datetime as dt

    from visitplan.export.ics import Reminders

    if name is not None:
        from visitplan.export.ics.writer import check_name

        check_name(name, "--name")
    protocol = load_protocol(protocol_spec)
    options: dict[str, Any] = {
        "duration": dt.timedelta(minutes=duration),
        "dtstamp": _dtstamp(dtstamp),
        "reminders": None if no_alarms else Reminders(),
        "window_spans": window_spans,
        # Only what checks appointments needs: a site file is read when there can be some.
        "site_calendars": _calendars(protocol, site_spec)
        if db is not None or appointments or site_spec is not None
        else {},
    }
    if db is not None:
        given = (roster, screening, day1, actuals, flags, events, bcell_counts, previous)
        if any(given) or bcell_baseline is not None:
            raise VisitplanError(
                "--db",
                db,
                "takes its facts and previous export from the database: give no --roster, "
                "--previous or facts options (only --participant)",
            )
        _from_roster(protocol, db, participant, today, per_participant, output, appointments,
                     options, name)  # fmt: skip
        return
    if today is not None:
        raise VisitplanError("--today", str(today), "needs --db")
    if roster is not None:
        facts = (participant, screening, day1, actuals, flags, events, bcell_counts)
        if any(facts) or bcell_baseline is not None:
            raise VisitplanError(
                "--roster", roster, "give either a roster or one participant's facts, not both"
            )
        from visitplan.roster_csv import load_roster

        people = load_roster(roster, day1_visit=protocol.day1_visit)
    else:
        if per_participant is not None:
            raise VisitplanError("--per-participant", per_participant, "needs --roster or --db")
        if participant is None or screening is None:
            raise VisitplanError(
                "--participant/--screening", "missing", "give both, or a --roster FILE"
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
    schedules: Iterable[Any]
    if per_participant is None and not appointments:
        # One calendar and nothing to look up across it: plan each participant as the stream
        # writes it, so a large roster's calendar needs no memory for all its schedules.
        schedules = (plan(protocol, p) for p in people)
        options["appointments"] = {}
    else:
        schedules = [plan(protocol, p) for p in people]
        options["appointments"] = _appointments(
            protocol, schedules, appointments, options["site_calendars"], {}
        )
    # Every file is made and staged before the first one replaces its target (all or none);
    # stdout gets its calendar whole, once every file is in place.
    files: list[tuple[Path, Iterable[bytes]]] = []
    if per_participant is not None:
        own_files = _participant_paths(per_participant, [p.code for p in people])
        for schedule in schedules:
            path = own_files[schedule.participant]
            own = {k: v for k, v in options["appointments"].items() if k[0] == schedule.participant}
            data = _export(protocol, [schedule], path, None, {**options, "appointments": own},
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
        click.echo(f"wrote {path}", err=True)


def _stream(path: Path, data: bytes) -> None:
    """``data`` written into a FIFO or device named by -o (never replaced by a file)."""
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise VisitplanError("-o", str(path), f"cannot be written: {exc.strerror}") from None


def _export(
    protocol: Any,
    schedules: Iterable[Any],
    target: Path | None,
    previous: str | None,
    options: dict[str, Any],
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
        raise VisitplanError("-o", str(target), "is a folder; name a file")
    return iter_ical(protocol, schedules, previous=state, name=name, **options)


def _from_roster(
    protocol: Any,
    db: str,
    code: str | None,
    today: Any,
    per_participant: str | None,
    output: str | None,
    extra: tuple[str, ...],
    options: dict[str, Any],
    name: str | None,
) -> None:
    """Calendars of a roster database, with SEQUENCE kept in the database.

    The previous state is the database's ``calendar_state``, not a file: every file written
    here from the same plans carries the same SEQUENCE for the same event, and the state of
    what was written is saved (one transaction) once the files are in place.
    """
    from visitplan.engine import plan
    from visitplan.export.ics import EventState, read_state, to_ical
    from visitplan.store import Roster

    with Roster.open(db, protocol=protocol, today=today, create=False) as store:
        day = store.today()
        people = [store.participant(code)] if code is not None else store.participants()
        schedules = [plan(protocol, p, today=day) for p in people]
        booked = _stored_appointments(protocol, schedules, store, code, options["duration"])
        booked.update(_appointments(protocol, schedules, extra, options["site_calendars"], booked))
        previous = {uid: EventState(seq, fp) for uid, (seq, fp) in store.calendar_state().items()}
        common = {**options, "previous": previous}
        if output is None and per_participant is None:
            output = "-"
        files: list[tuple[Path, Iterable[bytes]]] = []
        made: list[bytes] = []
        if per_participant is not None:
            own_files = _participant_paths(per_participant, [s.participant for s in schedules])
            for schedule in schedules:
                own = {k: v for k, v in booked.items() if k[0] == schedule.participant}
                data = to_ical(protocol, [schedule], **{**common, "appointments": own})
                files.append((own_files[schedule.participant], [data]))
                made.append(data)
        stdout = None
        if output is not None:
            data = to_ical(protocol, schedules, **{**common, "appointments": booked}, name=name)
            target = _output(output)
            if target is None:
                stdout = [data]
            elif target.is_dir():
                raise VisitplanError("-o", str(target), "is a folder; name a file")
            else:
                files.append((target, [data]))
            made.append(data)
        _write(files, stdout)
        state: dict[str, tuple[int, str]] = {}
        for data in made:
            state.update({u: (e.sequence, e.fingerprint) for u, e in read_state(data).items()})
        store.save_calendar_state(state)


def _stored_appointments(
    protocol: Any, schedules: list[Any], store: Any, code: str | None, duration: Any
) -> dict[Any, Any]:
    """The database's timed appointments of visits still in the plans, zone-aware.

    One booking must never block the site's export: a stored appointment the calendar
    cannot hold as a timed event (a wall time the zone's rules no longer give, or one
    before its current daylight-saving rule) is left out with a note on stderr, and its
    visit is written as an all-day event.
    """
    from visitplan.booking import timed_appointments
    from visitplan.export.ics import check_appointment

    by_code = {s.participant: s for s in schedules}
    sites = {s.participant: s.site for s in schedules}
    found: dict[Any, Any] = {}
    for row in store.appointments(code):
        schedule = by_code.get(row.participant)
        # A visit the re-plan dropped has no event, so its old booking has none either.
        if schedule is None or row.visit not in {v.code for v in schedule.visits}:
            continue
        try:
            zone = protocol.site_of(sites[row.participant]).timezone
            for key, start in timed_appointments([row], zone).items():
                check_appointment(protocol, schedule, row.visit, start, duration)
                found[key] = start
        except VisitplanError as exc:
            when = f"{row.date} {row.time or ''}".strip()
            click.echo(
                f"note: appointment {row.participant} {row.visit} on {when} is not written "
                f"as a timed event ({exc}); the visit is an all-day event",
                err=True,
            )
    return found


def _dtstamp(text: str | None) -> Any:
    if text is None:
        return None
    import pendulum

    if not _STAMP.match(text.strip()):
        raise VisitplanError(
            "--dtstamp", text, "must be a date and time with its offset, e.g. 2026-01-01T00:00Z"
        )
    try:
        return pendulum.parse(text.strip(), exact=True)
    except ValueError:
        raise VisitplanError("--dtstamp", text, "is not a valid date and time") from None


def _calendars(protocol: Any, site_spec: str | None) -> dict[str, Any]:
    """Site code -> site calendar: ``--site`` (a code or a site file), else each protocol
    site's built-in site file where there is one."""
    from visitplan.cli.sitectx import site_calendar_of
    from visitplan.site import site_for

    calendars = {}
    for site in protocol.sites:
        found = site_calendar_of(protocol, site.code)
        if found is not None:
            calendars[site.code] = found
    if site_spec is not None:
        chosen = site_for(site_spec, protocol.sites[0] if protocol.sites else None)
        calendars[chosen.code] = chosen
    return calendars


def _appointments(
    protocol: Any,
    schedules: list[Any],
    items: tuple[str, ...],
    calendars: dict[str, Any],
    held: dict[Any, Any],
) -> dict[Any, Any]:
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
                raise VisitplanError("--appointment", item, f"name the participant: {form}")
            who = schedules[0].participant
        day, sep, time = when.partition("T")
        if not sep:
            raise VisitplanError("--appointment", item, f"must be written {form}")
        schedule = next((s for s in schedules if s.participant == who), None)
        if schedule is None:
            raise VisitplanError("--appointment", item, "names no participant being exported")
        site = protocol.site_of(schedule.site)
        calendar = calendars.get(site.code)
        if calendar is None:
            raise VisitplanError(
                "--appointment",
                item,
                f"site {site.code} has no site file to check it against (clinic days, hours); "
                "give --site FILE.toml",
            )
        zone_day = parse_date(day, f"--appointment {key}")
        held = book(calendar, schedules, who, visit, zone_day, time, held)
        found[(who, visit)] = held[(who, visit)]
    return found
