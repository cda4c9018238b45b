"""The persistent roster: participants' facts in a database, re-planned by the engine.

Every change runs in one transaction that (1) reads the participant's current facts, (2)
re-plans them with the change applied through :func:`visitplan.plan`, which refuses facts the
protocol forbids, (3) writes the change and its audit rows, and only then commits. A refused
change, a crash or a ``kill -9`` leaves the database as it was before the change began.
The store never computes a date: dates come from the engine and :mod:`visitplan.dates`.
"""

from __future__ import annotations

import itertools
import math
import re
import time as _time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pendulum
import sqlalchemy as sa

from visitplan.dates import Span, local_datetime, shift, to_date
from visitplan.engine import plan
from visitplan.errors import VisitplanError
from visitplan.model import Protocol
from visitplan.participant import Count, Participant, Record, Status, check_code
from visitplan.schedule import FindingKind, PlannedVisit, Schedule, VisitStatus
from visitplan.store import backend, schema

T = TypeVar("T")

#: Findings that count as protocol deviations (``held`` is the engine's note, not a deviation).
DEVIATION_KINDS = (
    FindingKind.OUT_OF_WINDOW,
    FindingKind.DOSE_GAP,
    FindingKind.OVERDUE,
    FindingKind.MISSED,
)
_RETRIES = 50
#: The cached finding kind of a participant the engine refuses under the current protocol
#: (always re-planned by the queries, so they raise the engine's own error).
_UNPLANNABLE = "unplannable"
_FLAG = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@attrs.frozen
class AuditEntry:
    """One append-only audit row: who (by code), what field, old and new value, when, why."""

    id: int
    at: str
    participant: str | None
    action: str
    field: str
    old: str | None
    new: str | None
    reason: str | None


@attrs.frozen
class Appointment:
    """A booked appointment for a visit (the booking rules live elsewhere; this is storage)."""

    participant: str
    visit: str
    date: pendulum.Date
    time: str | None = None


@attrs.frozen
class UnscheduledVisit:
    """An unscheduled visit, numbered per participant: ``U1``, ``U2``, ..."""

    participant: str
    code: str
    date: pendulum.Date
    time: str | None
    reason: str | None


@attrs.frozen
class BcellCount:
    """A blood B-cell count taken at a visit."""

    participant: str
    date: pendulum.Date
    value: float
    unit: str


@attrs.frozen
class DueVisit:
    """A coming visit of one participant, with its window and any booked appointment."""

    participant: str
    site: str | None
    visit: PlannedVisit
    appointment: Appointment | None = None


@attrs.frozen
class Deviation:
    """A finding of the engine that a coordinator must act on (see :data:`DEVIATION_KINDS`)."""

    participant: str
    site: str | None
    kind: FindingKind
    visit: str
    message: str
    planned: PlannedVisit | None = None


class Roster:
    """A study's participants, kept in a SQLite file (or a PostgreSQL database).

    Open it with :meth:`open`; use it as a context manager to close it. ``today`` fixes the
    date used to refuse facts from the future (default: the real date at each call).
    """

    def __init__(
        self, engine: sa.Engine, protocol: Protocol, where: str, today: pendulum.Date | None
    ) -> None:
        self._engine = engine
        self.protocol = protocol
        self.where = where
        self._today = today

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path_or_url: str | Path,
        *,
        protocol: Protocol | None = None,
        today: object = None,
        create: bool = True,
    ) -> Roster:
        """Open (creating and migrating if needed) the roster at a file path or database URL.

        ``protocol`` defaults to the built-in NCT05124925. A roster belongs to one protocol:
        opening it with another protocol id is refused. With ``create=False`` a SQLite file
        that does not exist yet is refused instead of created (for read-only commands).
        """
        from visitplan.protocol_file import builtin

        url = backend.database_url(path_or_url)
        where = str(path_or_url)
        if (
            not create
            and url.get_backend_name() == "sqlite"
            and not Path(url.database or "").exists()
        ):
            raise VisitplanError(
                "--db", where, "no roster there yet; 'visitplan enroll' or 'import' creates one"
            )
        study = protocol if protocol is not None else builtin("NCT05124925")
        day = None if today is None else to_date(today, "today")
        engine = backend.make_engine(url)
        roster = cls(engine, study, where, day)
        try:
            roster._prepare()
        except sa.exc.DatabaseError as exc:
            engine.dispose()
            raise VisitplanError(
                "--db", where, f"is not a usable roster database ({_first_line(exc.orig)})"
            ) from None
        except BaseException:
            engine.dispose()
            raise
        return roster

    def _prepare(self) -> None:
        fingerprint = self._fingerprint()

        def ready(conn: sa.Connection) -> bool:
            if schema.current_version(conn) != schema.VERSION:
                return False
            return (
                self._stored_protocol(conn) == self.protocol.id
                and self._setting(conn, "plan_fingerprint") == fingerprint
            )

        if self._read(ready):
            return

        def setup(conn: sa.Connection) -> None:
            schema.migrate(conn, self.where)
            stored = self._stored_protocol(conn)
            if stored is None:
                conn.execute(
                    schema.settings.insert().values(key="protocol", value=self.protocol.id)
                )
            elif stored != self.protocol.id:
                raise VisitplanError(
                    "--protocol",
                    self.protocol.id,
                    f"this roster belongs to protocol {stored}",
                )
            if self._setting(conn, "plan_fingerprint") != fingerprint:
                # A new or edited protocol (or visitplan): re-plan everyone, in this transaction.
                conn.execute(schema.planned_findings.delete())
                conn.execute(schema.planned_visits.delete())
                self._cache(conn, self._load_all(conn))
                s = schema.settings
                done = conn.execute(
                    s.update().where(s.c.key == "plan_fingerprint").values(value=fingerprint)
                )
                if done.rowcount == 0:
                    conn.execute(s.insert().values(key="plan_fingerprint", value=fingerprint))

        self._write(setup)

    @staticmethod
    def _stored_protocol(conn: sa.Connection) -> str | None:
        return Roster._setting(conn, "protocol")

    @staticmethod
    def _setting(conn: sa.Connection, key: str) -> str | None:
        if not sa.inspect(conn).has_table("settings"):
            return None
        value = conn.execute(
            sa.select(schema.settings.c.value).where(schema.settings.c.key == key)
        ).scalar_one_or_none()
        return None if value is None else str(value)

    def _fingerprint(self) -> str:
        """What the plan cache depends on: the protocol's full text, the schema and visitplan."""
        import hashlib

        from visitplan import __version__
        from visitplan.protocol_file import dumps

        digest = hashlib.sha256(dumps(self.protocol).encode()).hexdigest()
        return f"{digest}:schema{schema.VERSION}:visitplan{__version__}"

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Roster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ----------------------------------------------------------------------
    def _read(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn`` in one read transaction; retry if another process holds a lock."""
        return self._retrying(fn, write=False)

    def _write(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn`` in one write transaction; retry if another writer holds the lock."""
        return self._retrying(fn, write=True)

    def _retrying(self, fn: Callable[[sa.Connection], T], *, write: bool) -> T:
        # Reads retry too: while another process switches a new file to WAL (at its first
        # connection) a reader's connect or BEGIN can get "database is locked" at once,
        # without SQLite's busy handler waiting for it.
        for attempt in itertools.count(1):
            try:
                with self._engine.connect() as conn:
                    if write:
                        conn.execution_options(**{backend.WRITE: True})
                    with conn.begin():
                        return fn(conn)
            except sa.exc.OperationalError as exc:
                if not backend.is_retryable(exc) or attempt >= _RETRIES:
                    raise
                # busy_timeout already waited; back off a little more before starting over.
                _time.sleep(min(0.05 * attempt, 1.0))
        raise AssertionError("unreachable")

    def today(self) -> pendulum.Date:
        """The date facts are checked against (``today`` given at open, else the real date)."""
        return self._today if self._today is not None else pendulum.today().date()

    # -- changes ---------------------------------------------------------------------------
    def enroll(
        self,
        code: str,
        screening: object,
        site: str | None = None,
        flags: Iterable[str] = (),
        reason: str | None = None,
    ) -> Participant:
        """Enrol a participant by study code with their screening date, site and flags."""
        person = Participant(
            check_code(code),
            screening,
            flags=self._check_flags(flags),
            site=self._check_site(site),
        )
        self._plan(person)

        def change(conn: sa.Connection) -> Participant:
            if self._row(conn, person.code) is not None:
                raise VisitplanError("participant", person.code, "is already enrolled")
            self._insert_participant(conn, person)
            at = _now()
            for field, value in _enrol_fields(person):
                self._audit(conn, at, person.code, "enroll", field, None, value, reason)
            self._refresh(conn, person.code)
            return person

        return self._write(change)

    def import_participants(
        self, people: Sequence[Participant], source: str = "roster", reason: str | None = None
    ) -> list[Participant]:
        """Enrol many participants (with any recorded facts) all at once, or none of them.

        Every participant is checked and re-planned; all the problems are reported together
        as a :class:`~visitplan.roster_csv.RosterError` (one message per bad participant).
        """
        from visitplan.roster_csv import RosterError

        def change(conn: sa.Connection) -> list[Participant]:
            errors: list[str] = []
            kept: list[Participant] = []
            at = _now()
            for person in people:
                try:
                    person = attrs.evolve(
                        person,
                        site=self._check_site(person.site),
                        flags=self._check_flags(person.flags),
                    )
                    if self._row(conn, person.code) is not None:
                        raise VisitplanError("participant", person.code, "is already enrolled")
                    self._plan(person)
                except VisitplanError as exc:
                    who = "" if exc.field == "participant" else f"participant {person.code}: "
                    errors.append(f"{source}: {who}{exc}")
                    continue
                kept.append(person)
            if errors:
                raise RosterError(source, errors)
            # Rows are written in batches (one statement per table), in the order the
            # one-by-one path would write them, so audit ids keep that order.
            people_rows, record_rows, event_rows, audit_rows = [], [], [], []

            def audit(code: str, field: str, new: str) -> None:
                audit_rows.append(
                    {"at": at, "participant": code, "action": "import", "field": field,
                     "old": None, "new": new, "reason": reason}
                )  # fmt: skip

            for person in kept:
                people_rows.append(_participant_row(person, at))
                for field, value in _enrol_fields(person):
                    audit(person.code, field, value)
                for r in person.records:
                    record_rows.append(_record_row(person.code, r, None))
                    audit(person.code, r.code, _show_record(r, None))
                for name, day in person.events.items():
                    event_rows.append({"participant": person.code, "name": name, "date": day})
                    audit(person.code, name, str(day))
            for table, rows in (
                (schema.participants, people_rows),
                (schema.records, record_rows),
                (schema.events, event_rows),
                (schema.audit, audit_rows),
            ):
                if rows:
                    conn.execute(table.insert(), rows)
            # What was stored: import keeps neither B-cell counts nor a baseline.
            self._cache(conn, [attrs.evolve(p, bcell_counts=(), bcell_baseline=None) for p in kept])
            return kept

        return self._write(change)

    def record(
        self,
        code: str,
        visit: str,
        date: object = None,
        status: str | Status = "done",
        time: str | None = None,
        reason: str | None = None,
    ) -> Schedule:
        """Record what happened at a visit (done, missed or cancelled); returns the new plan.

        A visit marked done without a date is done today. A visit has one record: recording
        it twice is refused, as is a record for a visit on or after the participant's
        withdrawal, and any fact the engine refuses (Day 1 outside the run-in, a dose before
        Day 1, a date before screening or in the future, an unknown visit code).
        """
        state = _status(status)
        day = _optional_date(date, f"{visit}.date")
        if day is None and state is Status.DONE:
            day = self.today()
        if time is not None and day is None:
            raise VisitplanError(f"{visit}.time", time, "needs the visit's date")
        rec = Record(visit, day, state, reason or None)

        def change(conn: sa.Connection) -> Schedule:
            person = self._load(conn, code)
            old = person.record(visit)
            if old is not None:
                raise VisitplanError(
                    "visit",
                    visit,
                    f"is already recorded for participant {code} ({_show_record(old, None)}); "
                    "a visit has one record",
                )
            if person.withdrawn is not None and (day is None or day >= person.withdrawn):
                raise VisitplanError(
                    "participant",
                    code,
                    f"was withdrawn from the study on {person.withdrawn}; "
                    "no visit on or after it can be recorded",
                )
            after = person.with_record(rec)
            schedule = self._plan(after)
            if person.discontinued is not None and state is Status.DONE and day is not None:
                base = schedule.visit(visit).base_code
                if self.protocol.visit(base).is_dosing and day > person.discontinued:
                    raise VisitplanError(
                        f"{visit}.date",
                        day.isoformat(),
                        f"is after treatment was discontinued ({person.discontinued}); "
                        "no dose follows discontinuation",
                    )
            checked_time = self._check_time(time, day, person.site, f"{visit}.time")
            self._insert_record(conn, code, rec, checked_time)
            self._audit(
                conn, _now(), code, "record", visit, None, _show_record(rec, checked_time), reason
            )
            self._refresh(conn, code)
            return schedule

        return self._write(change)

    def record_unscheduled(
        self, code: str, date: object, time: str | None = None, reason: str | None = None
    ) -> UnscheduledVisit:
        """Record an unscheduled visit; it is numbered ``U1``, ``U2``, ... per participant."""
        day = to_date(date, "unscheduled.date")

        def change(conn: sa.Connection) -> UnscheduledVisit:
            person = self._load(conn, code)
            self._check_fact_date(person, day, "unscheduled.date")
            t = self._check_time(time, day, person.site, "unscheduled.time")
            u = schema.unscheduled
            number = 1 + int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(u.c.number), 0)).where(
                        u.c.participant == code
                    )
                ).scalar_one()
            )
            conn.execute(
                u.insert().values(participant=code, number=number, date=day, time=t, reason=reason)
            )
            visit = UnscheduledVisit(code, f"U{number}", day, t, reason)
            self._audit(conn, _now(), code, "unscheduled", visit.code, None, _when(day, t), reason)
            return visit

        return self._write(change)

    def record_bcell(
        self,
        code: str,
        date: object,
        value: float,
        unit: str = "cells/uL",
        *,
        baseline: bool = False,
        reason: str | None = None,
    ) -> BcellCount:
        """Record a blood B-cell count, or with ``baseline=True`` the participant's baseline."""
        day = to_date(date, "bcell.date")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise VisitplanError("bcell.value", value, "must be a number")
        if not math.isfinite(value) or value < 0:
            raise VisitplanError("bcell.value", value, "must be a finite number >= 0")
        if not unit or not unit.strip():
            raise VisitplanError("bcell.unit", unit, "must not be empty")
        count = BcellCount(code, day, float(value), unit.strip())

        def change(conn: sa.Connection) -> BcellCount:
            person = self._load(conn, code)
            self._check_fact_date(person, day, "bcell.date")
            site = self.protocol.site_of(person.site)
            if site.bcell_unit and count.unit != site.bcell_unit:
                # The engine compares counts with the site's limit as plain numbers.
                raise VisitplanError(
                    "bcell.unit",
                    count.unit,
                    f"must be {site.bcell_unit}, the unit of site {site.code}'s bcell_lln",
                )
            if baseline:
                after = attrs.evolve(person, bcell_baseline=count.value)
            elif any(c.date == day for c in person.bcell_counts):
                raise VisitplanError(
                    "bcell.date",
                    day.isoformat(),
                    f"a count is already recorded for {code} that day",
                )
            else:
                counts = (*person.bcell_counts, Count(day, count.value))
                after = attrs.evolve(person, bcell_counts=counts)
            self._plan(after)  # refuses counts the engine cannot use (no bcell_lln)
            at = _now()
            shown = f"{count.value:g} {count.unit} on {day}"
            if baseline:
                row = self._row(conn, code)
                assert row is not None
                old = None
                if row.baseline_bcell is not None:
                    old = f"{row.baseline_bcell:g} {row.baseline_unit}"
                conn.execute(
                    schema.participants.update()
                    .where(schema.participants.c.code == code)
                    .values(baseline_bcell=count.value, baseline_unit=count.unit)
                )
                self._audit(conn, at, code, "bcell", "baseline_bcell", old, shown, reason)
                self._refresh(conn, code)
                return count
            b = schema.bcell_counts
            conn.execute(
                b.insert().values(participant=code, date=day, value=count.value, unit=count.unit)
            )
            self._audit(conn, at, code, "bcell", "bcell_count", None, shown, reason)
            self._refresh(conn, code)
            return count

        return self._write(change)

    def record_event(
        self, code: str, name: str, date: object, reason: str | None = None
    ) -> Schedule:
        """Record a dated event the protocol waits for (e.g. ``bcell_recovery``); re-plans."""
        known = self._event_names()
        if name not in known:
            rule = f"is not an event of {self.protocol.id}; known: {', '.join(sorted(known))}"
            raise VisitplanError("event", name, rule)
        day = to_date(date, f"{name}.date")

        def change(conn: sa.Connection) -> Schedule:
            person = self._load(conn, code)
            if name in person.events:
                raise VisitplanError(
                    "event", name, f"is already recorded for {code} ({person.events[name]})"
                )
            self._check_fact_date(person, day, f"{name}.date")
            schedule = self._plan(attrs.evolve(person, events={**person.events, name: day}))
            conn.execute(schema.events.insert().values(participant=code, name=name, date=day))
            self._audit(conn, _now(), code, "event", name, None, day.isoformat(), reason)
            self._refresh(conn, code)
            return schedule

        return self._write(change)

    def discontinue(self, code: str, date: object, reason: str) -> Schedule:
        """Early discontinuation of treatment: doses not given are cancelled, EOT is planned
        from ``date``, follow-up continues. Returns the new plan."""
        return self._stop(code, "discontinued", date, reason)

    def withdraw(self, code: str, date: object, reason: str) -> Schedule:
        """Withdrawal from the study: visits from ``date`` on are cancelled."""
        return self._stop(code, "withdrawn", date, reason)

    def _stop(self, code: str, field: str, date: object, reason: str) -> Schedule:
        day = to_date(date, field)
        if not isinstance(reason, str) or not reason.strip():
            raise VisitplanError(f"{field}.reason", reason, "a reason is required")

        def change(conn: sa.Connection) -> Schedule:
            person = self._load(conn, code)
            if person.withdrawn is not None:
                raise VisitplanError(
                    "participant", code, f"was already withdrawn on {person.withdrawn}"
                )
            if field == "discontinued" and person.discontinued is not None:
                raise VisitplanError(
                    "participant",
                    code,
                    f"treatment was already discontinued on {person.discontinued}",
                )
            if day > self.today():
                raise VisitplanError(field, day.isoformat(), f"is after today ({self.today()})")
            for r in person.records:
                if r.status is not Status.DONE or r.date is None or r.date <= day:
                    continue
                dosing = self._is_dose(r.code)
                if field == "withdrawn" or dosing:
                    what = "a dose" if dosing else "a visit"
                    raise VisitplanError(
                        field,
                        day.isoformat(),
                        f"is before {r.code}, {what} done on {r.date}",
                    )
            after = (
                attrs.evolve(person, discontinued=day)
                if field == "discontinued"
                else attrs.evolve(person, withdrawn=day)
            )
            schedule = self._plan(after)
            conn.execute(
                schema.participants.update()
                .where(schema.participants.c.code == code)
                .values(**{field: day})
            )
            action = "discontinue" if field == "discontinued" else "withdraw"
            self._audit(conn, _now(), code, action, field, None, day.isoformat(), reason)
            self._refresh(conn, code)
            return schedule

        return self._write(change)

    def set_appointment(
        self,
        code: str,
        visit: str,
        date: object,
        time: str | None = None,
        reason: str | None = None,
        *,
        check: Callable[[list[Participant], list[Appointment]], None] | None = None,
    ) -> Appointment:
        """Store (or replace) the booked appointment of a visit; the old one is audited.

        ``check`` (e.g. the site's booking rules) is called inside the same write transaction,
        before anything is written, with every participant's facts and every stored
        appointment; it refuses the booking by raising. Because it runs under the write lock,
        two coordinators cannot both take the last place of a day.
        """
        day = to_date(date, f"{visit}.appointment")

        def change(conn: sa.Connection) -> Appointment:
            person = self._load(conn, code)
            if check is not None:
                check(self._load_all(conn), _stored_appointments(conn))
            schedule = self._plan(person)
            try:
                schedule.visit(visit)
            except KeyError:
                raise VisitplanError(
                    "visit", visit, f"is not in the plan of participant {code}"
                ) from None
            if day < person.screening:
                raise VisitplanError(
                    f"{visit}.appointment",
                    day.isoformat(),
                    f"is before the screening date {person.screening}",
                )
            t = self._check_time(time, day, person.site, f"{visit}.appointment time")
            a = schema.appointments
            key = (a.c.participant == code) & (a.c.visit == visit)
            old = conn.execute(sa.select(a.c.date, a.c.time).where(key)).first()
            if old is not None:
                conn.execute(a.update().where(key).values(date=day, time=t))
            else:
                conn.execute(a.insert().values(participant=code, visit=visit, date=day, time=t))
            before = None if old is None else _when(to_date(old.date), old.time)
            self._audit(conn, _now(), code, "appointment", visit, before, _when(day, t), reason)
            return Appointment(code, visit, day, t)

        return self._write(change)

    def save_calendar_state(self, state: Mapping[str, tuple[int, str]]) -> None:
        """Store calendar events' ``uid -> (sequence, fingerprint)`` in one transaction.

        UIDs not in ``state`` are kept (an export of one participant leaves the others').
        """
        rows = []
        for uid, (sequence, fingerprint) in state.items():
            if not isinstance(sequence, int) or sequence < 0:
                raise VisitplanError(f"calendar {uid}.sequence", sequence, "must be an int >= 0")
            rows.append({"uid": uid, "sequence": sequence, "fingerprint": str(fingerprint)})

        def change(conn: sa.Connection) -> None:
            c = schema.calendar_state
            for row in rows:
                done = conn.execute(
                    c.update()
                    .where(c.c.uid == row["uid"])
                    .values(sequence=row["sequence"], fingerprint=row["fingerprint"])
                )
                if done.rowcount == 0:
                    conn.execute(c.insert().values(**row))

        self._write(change)

    # -- reading ---------------------------------------------------------------------------
    def codes(self) -> list[str]:
        """Every enrolled participant's code, sorted."""
        p = schema.participants
        return self._read(
            lambda conn: [
                str(c) for c in conn.execute(sa.select(p.c.code).order_by(p.c.code)).scalars()
            ]
        )

    def participant(self, code: str) -> Participant:
        """A participant's facts, ready for the engine."""
        return self._read(lambda conn: self._load(conn, code))

    def participants(self) -> list[Participant]:
        """Every participant's facts, by code (read in one transaction)."""
        return self._read(self._load_all)

    def schedule(self, code: str, today: object = None) -> Schedule:
        """A participant's plan from the engine, with overdue visits as of ``today``."""
        day = None if today is None else to_date(today, "today")
        return plan(self.protocol, self.participant(code), today=day)

    def due(self, today: object, days: int) -> list[DueVisit]:
        """Open visits of every participant with a target up to ``today + days`` whose window
        has not closed before ``today``, in date order."""
        day = to_date(today, "today")
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise VisitplanError("--days", days, "must be a whole number of days >= 0")
        horizon = shift(day, Span(0, days))
        pv = schema.planned_visits
        among = sa.union(
            self._open_visits(day).where(pv.c.target <= horizon, pv.c.latest >= day),
            *self._refused(day),
        )
        booked = {(a.participant, a.visit): a for a in self.appointments()}

        def read(conn: sa.Connection) -> list[DueVisit]:
            return [
                DueVisit(person.code, person.site, v, booked.get((person.code, v.code)))
                for person, schedule in self._replanned(conn, among, day)
                for v in schedule.visits
                if v.status is VisitStatus.PLANNED and v.target <= horizon and v.latest >= day
            ]

        found = self._read(read)
        found.sort(key=lambda d: (d.visit.target, d.participant, d.visit.code))
        return found

    def deviations(
        self, today: object, kinds: Iterable[FindingKind] = DEVIATION_KINDS
    ) -> list[Deviation]:
        """Out-of-window visits, dose gaps, overdue and missed visits of every participant,
        in date order."""
        day = to_date(today, "today")
        wanted = set(kinds)
        pf = schema.planned_findings
        stored = [k.value for k in wanted if k is not FindingKind.OVERDUE]
        parts = [sa.select(pf.c.participant).where(pf.c.kind.in_(stored)), *self._refused(day)]
        if FindingKind.OVERDUE in wanted:
            parts.append(self._open_visits(day).where(schema.planned_visits.c.latest < day))
        among = sa.union(*parts)

        def read(conn: sa.Connection) -> list[Deviation]:
            found: list[Deviation] = []
            for person, schedule in self._replanned(conn, among, day):
                by_code = {v.code: v for v in schedule.visits}
                for f in schedule.findings:
                    if f.kind in wanted:
                        planned = by_code.get(f.visit)
                        found.append(
                            Deviation(person.code, person.site, f.kind, f.visit, f.message, planned)
                        )
            return found

        found = self._read(read)
        found.sort(
            key=lambda d: (
                d.planned.date if d.planned else day,
                d.participant,
                d.visit,
                d.kind.value,
            )
        )
        return found

    def overdue(self, today: object) -> list[Deviation]:
        """Visits past their latest date with nothing recorded, in date order."""
        return self.deviations(today, (FindingKind.OVERDUE,))

    def history(self, code: str) -> list[AuditEntry]:
        """A participant's audit trail, oldest first."""

        def read(conn: sa.Connection) -> list[AuditEntry]:
            if self._row(conn, code) is None:
                raise VisitplanError("participant", code, "is not enrolled")
            a = schema.audit
            rows = conn.execute(sa.select(a).where(a.c.participant == code).order_by(a.c.id)).all()
            return [AuditEntry(**row._asdict()) for row in rows]

        return self._read(read)

    def unscheduled(self, code: str) -> list[UnscheduledVisit]:
        """A participant's unscheduled visits, in order."""
        u = schema.unscheduled

        def read(conn: sa.Connection) -> list[UnscheduledVisit]:
            self._load(conn, code)
            rows = conn.execute(
                sa.select(u).where(u.c.participant == code).order_by(u.c.number)
            ).all()
            return [
                UnscheduledVisit(code, f"U{r.number}", to_date(r.date), r.time, r.reason)
                for r in rows
            ]

        return self._read(read)

    def bcell_counts(self, code: str) -> list[BcellCount]:
        """A participant's B-cell counts in date order (the baseline is on the participant)."""
        b = schema.bcell_counts

        def read(conn: sa.Connection) -> list[BcellCount]:
            self._load(conn, code)
            rows = conn.execute(
                sa.select(b).where(b.c.participant == code).order_by(b.c.date)
            ).all()
            return [BcellCount(code, to_date(r.date), r.value, r.unit) for r in rows]

        return self._read(read)

    def baseline_bcell(self, code: str) -> tuple[float, str] | None:
        """A participant's pre-treatment B-cell count and unit, if recorded."""

        def read(conn: sa.Connection) -> tuple[float, str] | None:
            self._load(conn, code)
            row = self._row(conn, code)
            assert row is not None
            if row.baseline_bcell is None:
                return None
            return float(row.baseline_bcell), str(row.baseline_unit)

        return self._read(read)

    def appointments(self, code: str | None = None) -> list[Appointment]:
        """Booked appointments (of one participant, or all), by date."""
        return self._read(lambda conn: _stored_appointments(conn, code))

    def calendar_state(self) -> dict[str, tuple[int, str]]:
        """Every stored calendar event's ``uid -> (sequence, fingerprint)``."""
        c = schema.calendar_state
        return self._read(
            lambda conn: {
                r.uid: (int(r.sequence), str(r.fingerprint)) for r in conn.execute(sa.select(c))
            }
        )

    # -- internals -------------------------------------------------------------------------
    def _plan(self, person: Participant) -> Schedule:
        return plan(self.protocol, person, today=self.today())

    # The plan cache (docs/roster.md): it only picks which participants a query re-plans with
    # the engine, so the answers are the engine's by construction. Each selection below must
    # be a superset of the participants the engine would report for that ``today``.
    def _open_visits(self, day: pendulum.Date) -> sa.Select[Any]:
        """Participants with a visit open on ``day``: cached as planned, and not the screening
        visit once the screening date has passed (the engine then counts it done)."""
        pv, p = schema.planned_visits, schema.participants
        query = sa.select(pv.c.participant).where(pv.c.status == VisitStatus.PLANNED.value)
        screening = self.protocol.screening_visit
        if screening:
            query = query.where(
                ~sa.and_(
                    pv.c.base_code == screening,
                    pv.c.participant.in_(sa.select(p.c.code).where(p.c.screening <= day)),
                )
            )
        return query

    @staticmethod
    def _refused(day: pendulum.Date) -> list[sa.Select[Any]]:
        """Participants whose plan the engine refuses on ``day``: those the protocol refuses
        (cached as unplannable) and those with a visit done after ``day``. Re-planning them
        raises the engine's error for the first of them by code, as planning everyone did."""
        pf, r = schema.planned_findings, schema.records
        return [
            sa.select(pf.c.participant).where(pf.c.kind == _UNPLANNABLE),
            sa.select(r.c.participant).where(
                r.c.status == Status.DONE.value, r.c.date.is_not(None), r.c.date > day
            ),
        ]

    def _refresh(self, conn: sa.Connection, code: str) -> None:
        """Re-plan one participant's cache from the facts now stored (same transaction)."""
        conn.execute(
            schema.planned_findings.delete().where(schema.planned_findings.c.participant == code)
        )
        conn.execute(
            schema.planned_visits.delete().where(schema.planned_visits.c.participant == code)
        )
        self._cache(conn, [self._load(conn, code)])

    def _cache(self, conn: sa.Connection, people: Iterable[Participant]) -> None:
        """Insert the cache rows of participants that have none: the engine's plan without a
        ``today`` (no overdue findings; the screening visit still planned)."""
        visits: list[dict[str, Any]] = []
        findings: list[dict[str, Any]] = []

        def flush() -> None:
            if visits:
                conn.execute(schema.planned_visits.insert(), visits)
                visits.clear()
            if findings:
                conn.execute(schema.planned_findings.insert(), findings)
                findings.clear()

        for person in people:
            try:
                schedule = plan(self.protocol, person)
            except VisitplanError:
                findings.append({"participant": person.code, "kind": _UNPLANNABLE, "visit": ""})
                continue
            for v in schedule.visits:
                visits.append(
                    {
                        "participant": person.code,
                        "code": v.code,
                        "base_code": v.base_code or v.code,
                        "kind": v.kind.value,
                        "target": v.target,
                        "earliest": v.earliest,
                        "latest": v.latest,
                        "status": v.status.value,
                        "tentative": v.tentative,
                    }
                )
            for f in schedule.findings:
                findings.append(
                    {"participant": person.code, "kind": f.kind.value, "visit": f.visit}
                )
            if len(visits) > 20_000:
                flush()
        flush()

    def _row(self, conn: sa.Connection, code: str) -> Any:
        p = schema.participants
        return conn.execute(sa.select(p).where(p.c.code == code)).first()

    def _load(self, conn: sa.Connection, code: str) -> Participant:
        row = self._row(conn, code)
        if row is None:
            raise VisitplanError("participant", code, "is not enrolled in this roster")
        r, e, b = schema.records, schema.events, schema.bcell_counts
        recs = conn.execute(_RECORD_FIELDS.where(r.c.participant == code).order_by(r.c.id)).all()
        evs = conn.execute(sa.select(e).where(e.c.participant == code)).all()
        counts = conn.execute(sa.select(b).where(b.c.participant == code)).all()
        return _participant(row, recs, evs, counts)

    def _load_all(self, conn: sa.Connection) -> list[Participant]:
        """Every participant's facts, by code."""
        return self._load_codes(conn, None)

    def _replanned(
        self, conn: sa.Connection, among: sa.CompoundSelect[Any], day: pendulum.Date
    ) -> Iterator[tuple[Participant, Schedule]]:
        """Each participant whose code ``among`` selects, by code, with the engine's plan on
        ``day``.

        Their facts are read 500 at a time, and a batch is planned before the next is read,
        inside the caller's read transaction: the query holds one batch of facts at a time
        instead of all of them (some 130,000 records for ``deviations`` over 100,000
        participants), and the garbage collector has fewer live objects to walk
        (docs/performance.md).
        """
        # Select the codes once; then read their facts by primary-key ranges of codes.
        codes = sorted({str(c) for c in conn.execute(among).scalars()})
        for i in range(0, len(codes), 500):
            for person in self._load_codes(conn, codes[i : i + 500]):
                yield person, plan(self.protocol, person, today=day)

    def _load_codes(self, conn: sa.Connection, codes: list[str] | None) -> list[Participant]:
        p, r, e, b = schema.participants, schema.records, schema.events, schema.bcell_counts

        def some(query: Any, column: Any) -> Any:
            return query if codes is None else query.where(column.in_(codes))

        recs: dict[str, list[Any]] = {}
        query = sa.select(r.c.participant, *_RECORD_FIELDS.selected_columns)
        for participant, *fields in conn.execute(some(query, r.c.participant).order_by(r.c.id)):
            recs.setdefault(participant, []).append(fields)
        evs: dict[str, list[Any]] = {}
        for row in conn.execute(some(sa.select(e), e.c.participant)):
            evs.setdefault(row.participant, []).append(row)
        counts: dict[str, list[Any]] = {}
        for row in conn.execute(some(sa.select(b), b.c.participant)):
            counts.setdefault(row.participant, []).append(row)
        return [
            _participant(
                row, recs.get(row.code, []), evs.get(row.code, []), counts.get(row.code, [])
            )
            for row in conn.execute(some(sa.select(p), p.c.code).order_by(p.c.code))
        ]

    def _insert_participant(self, conn: sa.Connection, person: Participant) -> None:
        conn.execute(schema.participants.insert().values(**_participant_row(person, _now())))

    @staticmethod
    def _insert_record(conn: sa.Connection, code: str, rec: Record, t: str | None) -> None:
        conn.execute(schema.records.insert().values(**_record_row(code, rec, t)))

    @staticmethod
    def _audit(
        conn: sa.Connection,
        at: str,
        code: str | None,
        action: str,
        field: str,
        old: str | None,
        new: str | None,
        reason: str | None,
    ) -> None:
        conn.execute(
            schema.audit.insert().values(
                at=at, participant=code, action=action, field=field, old=old, new=new, reason=reason
            )
        )

    def _check_site(self, site: str | None) -> str | None:
        known = [s.code for s in self.protocol.sites]
        if site is None or not site.strip():
            return known[0] if len(known) == 1 else None
        site = site.strip()
        if known and site not in known:
            raise VisitplanError(
                "site", site, f"is not a site of {self.protocol.id}; known: {', '.join(known)}"
            )
        return site

    @staticmethod
    def _check_flags(flags: Iterable[str]) -> frozenset[str]:
        if isinstance(flags, str):
            raise VisitplanError("flags", flags, "must be a list of flag names, not one string")
        checked = set()
        for flag in flags:
            if not isinstance(flag, str) or not _FLAG.match(flag):
                raise VisitplanError(
                    "flag", flag, "must be a lower-case name of letters, digits and '_'"
                )
            checked.add(flag)
        return frozenset(checked)

    def _check_time(
        self, time: str | None, day: pendulum.Date | None, site: str | None, field: str
    ) -> str | None:
        if time is None:
            return None
        if not isinstance(time, str) or not _TIME.match(time.strip()):
            raise VisitplanError(field, time, "must be a wall-clock time written HH:MM")
        time = time.strip()
        zone = self._zone(site)
        if zone is not None and day is not None:
            local_datetime(day, time, zone)  # refuses a time the DST change skips or repeats
        return time

    def _zone(self, site: str | None) -> str | None:
        for s in self.protocol.sites:
            if s.code == site:
                return s.timezone
        return self.protocol.sites[0].timezone if self.protocol.sites else None

    def _check_fact_date(self, person: Participant, day: pendulum.Date, field: str) -> None:
        if day < person.screening:
            raise VisitplanError(
                field, day.isoformat(), f"is before the screening date {person.screening}"
            )
        if day > self.today():
            raise VisitplanError(field, day.isoformat(), f"is after today ({self.today()})")
        if person.withdrawn is not None and day >= person.withdrawn:
            raise VisitplanError(
                "participant",
                person.code,
                f"was withdrawn from the study on {person.withdrawn}; "
                "nothing on or after it can be recorded",
            )

    def _is_dose(self, visit_code: str) -> bool:
        for v in self.protocol.visits:
            rest = visit_code[len(v.code) :]
            if visit_code == v.code or (
                v.repeat and visit_code.startswith(v.code) and rest.isdigit()
            ):
                return v.is_dosing
        return False

    def _event_names(self) -> set[str]:
        names: set[str] = set()
        for v in self.protocol.visits:
            if v.wait_for:
                names.add(v.wait_for)
            if v.repeat and v.repeat.stop_event:
                names.add(v.repeat.stop_event)
        return names


def _participant_row(person: Participant, at: str) -> dict[str, Any]:
    return {
        "code": person.code,
        "site": person.site,
        "screening": person.screening,
        "flags": ";".join(sorted(person.flags)),
        "discontinued": person.discontinued,
        "withdrawn": person.withdrawn,
        "enrolled_at": at,
    }


def _record_row(code: str, rec: Record, t: str | None) -> dict[str, Any]:
    return {
        "participant": code,
        "visit": rec.code,
        "status": rec.status.value,
        "date": rec.date,
        "time": t,
        "reason": rec.reason,
    }


def _stored_appointments(conn: sa.Connection, code: str | None = None) -> list[Appointment]:
    a = schema.appointments
    query = sa.select(a).order_by(a.c.date, a.c.time, a.c.participant, a.c.visit)
    if code is not None:
        query = query.where(a.c.participant == code)
    return [
        Appointment(r.participant, r.visit, to_date(r.date), r.time) for r in conn.execute(query)
    ]


#: The columns of a stored record that make a Record, in Record's field order.
_RECORD_FIELDS = sa.select(
    schema.records.c.visit, schema.records.c.date, schema.records.c.status, schema.records.c.reason
)


def _participant(
    row: Any, recs: Sequence[Any], evs: Sequence[Any], counts: Sequence[Any] = ()
) -> Participant:
    return Participant(
        row.code,
        to_date(row.screening, "screening"),
        # Rows of _RECORD_FIELDS, unpacked: read by name, the row's attributes cost as much
        # as the Record they make (a roster query loads 100,000s of records).
        # Record's converters check and convert each field (dates to pendulum, the status).
        records=tuple(Record(visit, day, status, reason) for visit, day, status, reason in recs),
        flags=frozenset(f for f in row.flags.split(";") if f),
        events={e.name: to_date(e.date) for e in evs},
        discontinued=None if row.discontinued is None else to_date(row.discontinued),
        withdrawn=None if row.withdrawn is None else to_date(row.withdrawn),
        site=row.site,
        bcell_counts=tuple(Count(to_date(c.date), float(c.value)) for c in counts),
        bcell_baseline=None if row.baseline_bcell is None else float(row.baseline_bcell),
    )


def _enrol_fields(person: Participant) -> list[tuple[str, str]]:
    fields = [("screening", person.screening.isoformat())]
    if person.site:
        fields.append(("site", person.site))
    if person.flags:
        fields.append(("flags", ";".join(sorted(person.flags))))
    return fields


def _status(value: str | Status) -> Status:
    try:
        return Status(value)
    except ValueError:
        known = ", ".join(s.value for s in Status)
        raise VisitplanError("status", value, f"must be one of {known}") from None


def _optional_date(value: object, field: str) -> pendulum.Date | None:
    return None if value is None else to_date(value, field)


def _show_record(rec: Record, t: str | None) -> str:
    parts = [rec.status.value]
    if rec.date is not None:
        parts.append(_when(rec.date, t))
    return " ".join(parts)


def _when(day: pendulum.Date, t: str | None) -> str:
    return day.isoformat() + (f" {t}" if t else "")


def _now() -> str:
    return pendulum.now("UTC").format("YYYY-MM-DDTHH:mm:ss.SSSSSS") + "Z"


def _first_line(value: object) -> str:
    return str(value).splitlines()[0] if str(value) else type(value).__name__
