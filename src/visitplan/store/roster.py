"""The persistent roster: participants' facts in a database, re-planned by the engine.

Every change is one write transaction that (1) loads the participant's facts, (2) applies the
change through the domain's rulebook (:mod:`visitplan.facts`) and re-plans the result with
:func:`visitplan.plan`, which refuses facts the protocol forbids, (3) writes the rows and their
audit entries through the :class:`~visitplan.store.journal.Journal`, and only then commits. A
refused change, a crash or a ``kill -9`` leaves the database as it was before the change began.
The store holds no rule of its own about facts and computes no date.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import attrs
import pendulum
import sqlalchemy as sa

from visitplan import facts
from visitplan.dates import to_date
from visitplan.engine import plan
from visitplan.errors import VisitplanError
from visitplan.model import Protocol
from visitplan.participant import Participant, Record, Status, check_code, parse_status
from visitplan.schedule import FindingKind, Schedule, VisitStatus
from visitplan.store import cache, journal, rows, schema
from visitplan.store.database import DEFAULT_WAIT, Database
from visitplan.store.journal import Journal, Op
from visitplan.store.values import (
    DEVIATION_KINDS,
    Appointment,
    AuditEntry,
    BcellCount,
    Deviation,
    DueVisit,
    UnscheduledVisit,
    Verification,
)

T = TypeVar("T")


class Roster:
    """A study's participants, kept in a SQLite file (or a PostgreSQL database).

    Open it with :meth:`open`; use it as a context manager to close it. ``today`` fixes the
    date used to refuse facts from the future (default: the real date at each call). ``user``
    names who makes the changes (default: ``$VISITPLAN_USER``, else the login name); each
    change also takes ``user=`` for one call.
    """

    def __init__(
        self,
        db: Database,
        protocol: Protocol,
        today: pendulum.Date | None,
        user: str | None = None,
    ) -> None:
        self._db = db
        self.protocol = protocol
        self.where = db.where
        self._today = today
        self._user = user

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path_or_url: str | Path,
        *,
        protocol: Protocol | None = None,
        today: object = None,
        create: bool = True,
        wait: float = DEFAULT_WAIT,
        user: str | None = None,
    ) -> Roster:
        """Open (creating and migrating if needed) the roster at a file path or database URL.

        ``protocol`` defaults to the built-in NCT05124925. A roster belongs to one protocol:
        opening it with another protocol id is refused. With ``create=False`` a database that
        holds no roster yet is refused instead of created (for commands that only read). A
        database of another application is always refused, untouched. ``wait`` bounds the
        seconds spent waiting for another process's lock.
        """
        from visitplan.protocol_file import builtin

        study = protocol if protocol is not None else builtin("NCT05124925")
        day = None if today is None else to_date(today, "today")
        who = None if user is None else journal.check_user(user)
        db = Database.open(path_or_url, create=create, wait=wait)
        roster = cls(db, study, day, who)
        try:
            roster._prepare()
        except BaseException:
            db.close()
            raise
        return roster

    def _prepare(self) -> None:
        fingerprint = self._fingerprint()

        def ready(conn: sa.Connection) -> bool:
            if schema.current_version(conn) != schema.VERSION:
                return False
            return (
                _setting(conn, "protocol") == self.protocol.id
                and _setting(conn, "plan_fingerprint") == fingerprint
            )

        if self._db.read(ready):
            return

        def setup(conn: sa.Connection) -> None:
            schema.migrate(conn, self.where)
            stored = _setting(conn, "protocol")
            if stored is None:
                conn.execute(
                    schema.settings.insert().values(key="protocol", value=self.protocol.id)
                )
            elif stored != self.protocol.id:
                raise VisitplanError(
                    "--protocol", self.protocol.id, f"this roster belongs to protocol {stored}"
                )
            if _setting(conn, "plan_fingerprint") != fingerprint:
                # A new or edited protocol (or visitplan): re-plan everyone, in this transaction.
                cache.rebuild(conn, self.protocol)
                s = schema.settings
                done = conn.execute(
                    s.update().where(s.c.key == "plan_fingerprint").values(value=fingerprint)
                )
                if done.rowcount == 0:
                    conn.execute(s.insert().values(key="plan_fingerprint", value=fingerprint))

        self._db.write(setup)

    def _fingerprint(self) -> str:
        """What the plan cache depends on: the protocol's full text, the schema and visitplan."""
        from visitplan import __version__
        from visitplan.protocol_file import dumps

        digest = hashlib.sha256(dumps(self.protocol).encode()).hexdigest()
        return f"{digest}:schema{schema.VERSION}:visitplan{__version__}"

    def close(self) -> None:
        """Release the database connections."""
        self._db.close()

    def __enter__(self) -> Roster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def today(self) -> pendulum.Date:
        """The date facts are checked against (``today`` given at open, else the real date)."""
        return self._today if self._today is not None else pendulum.today().date()

    # -- the shape of every change -----------------------------------------------------------
    def _who(self, user: str | None) -> str:
        if user is not None:
            return journal.check_user(user)
        return self._user if self._user is not None else journal.default_user()

    def _write(
        self,
        fn: Callable[[sa.Connection, Journal], T],
        *,
        user: str | None,
        reason: str | None,
    ) -> T:
        who = self._who(user)
        why = reason if reason and reason.strip() else None

        def run(conn: sa.Connection) -> T:
            book = Journal(conn, user=who, reason=why)
            result = fn(conn, book)
            book.flush()
            return result

        return self._db.write(run)

    def _plan(self, person: Participant) -> Schedule:
        return plan(self.protocol, person, today=self.today())

    def _checked_time(
        self, person: Participant, day: pendulum.Date | None, time: str | None, field: str
    ) -> str | None:
        return facts.check_time(self.protocol, person.site, day, time, field)

    # -- changes ---------------------------------------------------------------------------
    def enroll(
        self,
        code: str,
        screening: object,
        site: str | None = None,
        flags: Iterable[str] = (),
        reason: str | None = None,
        *,
        user: str | None = None,
    ) -> Participant:
        """Enrol a participant by study code with their screening date, site and flags."""
        person = Participant(
            check_code(code), screening, flags=flags, site=facts.check_site(self.protocol, site)
        )
        self._plan(person)

        def change(conn: sa.Connection, book: Journal) -> Participant:
            if rows.row(conn, person.code) is not None:
                raise VisitplanError("participant", person.code, "is already enrolled")
            _enrol_entries(book, person, "enroll")
            cache.refresh(conn, self.protocol, person.code)
            return person

        return self._write(change, user=user, reason=reason)

    def import_participants(
        self,
        people: Sequence[Participant],
        source: str = "roster",
        reason: str | None = None,
        *,
        user: str | None = None,
    ) -> list[Participant]:
        """Enrol many participants (with any recorded facts) all at once, or none of them.

        Every participant is checked and re-planned; all the problems are reported together
        as a :class:`~visitplan.roster_csv.RosterError` (one message per bad participant).
        """
        from visitplan.roster_csv import RosterError

        def change(conn: sa.Connection, book: Journal) -> list[Participant]:
            errors: list[str] = []
            kept: list[Participant] = []
            enrolled = {
                str(c) for c in conn.execute(sa.select(schema.participants.c.code)).scalars()
            }
            for person in people:
                try:
                    person = attrs.evolve(person, site=facts.check_site(self.protocol, person.site))
                    if person.code in enrolled:
                        raise VisitplanError("participant", person.code, "is already enrolled")
                    self._plan(person)
                except VisitplanError as exc:
                    who = "" if exc.field == "participant" else f"participant {person.code}: "
                    errors.append(f"{source}: {who}{exc}")
                    continue
                enrolled.add(person.code)
                kept.append(person)
            if errors:
                raise RosterError(source, errors)
            # Rows are written in batches (one statement per table), after every entry is made.
            ops: list[Op] = []
            for person in kept:
                ops += _enrol_entries(book, person, "import", write=False)
            order = list(journal.AUDITED)
            journal.apply(conn, sorted(ops, key=lambda o: order.index(o.table)))
            # What was stored: import keeps neither B-cell counts nor a baseline.
            plain = [attrs.evolve(p, bcell_counts=(), bcell_baseline=None) for p in kept]
            cache.fill(conn, self.protocol, plain)
            return kept

        return self._write(change, user=user, reason=reason)

    def record(
        self,
        code: str,
        visit: str,
        date: object = None,
        status: str | Status = "done",
        time: str | None = None,
        reason: str | None = None,
        *,
        user: str | None = None,
    ) -> Schedule:
        """Record what happened at a visit (done, missed or cancelled); returns the new plan.

        A visit marked done without a date is done today. A visit has one record: a second
        is refused (see :meth:`correct` and :meth:`void`), as is every fact the rulebook
        refuses (:mod:`visitplan.facts`: a visit on or after withdrawal, a dose after
        discontinuation, a date before screening or in the future, an unknown visit code).
        """
        state = parse_status(status)
        day = None if date is None else to_date(date, f"{visit}.date")
        if day is None and state is Status.DONE:
            day = self.today()
        rec = Record(visit, day, state, reason or None)

        def change(conn: sa.Connection, book: Journal) -> Schedule:
            person = rows.load(conn, code)
            schedule = self._plan(facts.add_record(person, rec))
            t = self._checked_time(person, day, time, f"{visit}.time")
            op = rows.record_op(code, rec, t, new=True)
            book.entry(code, "record", visit, None, facts.show_record(rec, t), [op])
            cache.refresh(conn, self.protocol, code)
            return schedule

        return self._write(change, user=user, reason=reason)

    def correct(
        self,
        code: str,
        visit: str,
        *,
        date: object = None,
        status: str | Status | None = None,
        time: str | None = None,
        reason: str | None,
        user: str | None = None,
    ) -> Schedule:
        """Replace a visit's record (its date, status or time), with a mandatory reason.

        What is not given keeps its recorded value; the old and new values go to the audit
        trail. Returns the new plan.
        """
        why = facts.require_reason(reason)
        state = None if status is None else parse_status(status)
        day = None if date is None else to_date(date, f"{visit}.date")

        def change(conn: sa.Connection, book: Journal) -> Schedule:
            person = rows.load(conn, code)
            old_time = rows.record_time(conn, code, visit)
            old, new, after = facts.correct_record(
                person, visit, date=day, status=state, time_changed=time not in (None, old_time)
            )
            schedule = self._plan(after)
            kept_time = old_time if new.date is not None else None
            t = self._checked_time(
                person, new.date, time if time is not None else kept_time, f"{visit}.time"
            )
            book.entry(
                code,
                "correct",
                visit,
                facts.show_record(old, old_time),
                facts.show_record(new, t),
                [rows.record_op(code, new, t)],
            )
            cache.refresh(conn, self.protocol, code)
            return schedule

        return self._write(change, user=user, reason=why)

    def void(
        self, code: str, visit: str, *, reason: str | None, user: str | None = None
    ) -> Schedule:
        """Remove a visit's record entered in error (the visit is planned again)."""
        why = facts.require_reason(reason)

        def change(conn: sa.Connection, book: Journal) -> Schedule:
            person = rows.load(conn, code)
            old, after = facts.void_record(person, visit)
            schedule = self._plan(after)
            shown = facts.show_record(old, rows.record_time(conn, code, visit))
            book.entry(
                code, "void", visit, shown, None, [rows.record_op(code, None, None, visit=visit)]
            )
            cache.refresh(conn, self.protocol, code)
            return schedule

        return self._write(change, user=user, reason=why)

    def record_unscheduled(
        self,
        code: str,
        date: object,
        time: str | None = None,
        reason: str | None = None,
        *,
        user: str | None = None,
    ) -> UnscheduledVisit:
        """Record an unscheduled visit; it is numbered ``U1``, ``U2``, ... per participant."""
        day = to_date(date, "unscheduled.date")

        def change(conn: sa.Connection, book: Journal) -> UnscheduledVisit:
            person = rows.load(conn, code)
            facts.check_fact_date(person, day, "unscheduled.date", self.today())
            t = self._checked_time(person, day, time, "unscheduled.time")
            u = schema.unscheduled
            number = 1 + int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(u.c.number), 0)).where(
                        u.c.participant == code
                    )
                ).scalar_one()
            )
            visit = UnscheduledVisit(code, f"U{number}", day, t, reason or None)
            op = Op(
                "unscheduled",
                {"participant": code, "number": number},
                {"date": day, "time": t, "reason": reason or None},
                new=True,
            )
            book.entry(code, "unscheduled", visit.code, None, rows.when(day, t), [op])
            return visit

        return self._write(change, user=user, reason=reason)

    def correct_unscheduled(
        self,
        code: str,
        visit: str,
        *,
        date: object = None,
        time: str | None = None,
        reason: str | None,
        user: str | None = None,
    ) -> UnscheduledVisit:
        """Correct the date or time of an unscheduled visit (``U1``, ...)."""
        why = facts.require_reason(reason)
        day = None if date is None else to_date(date, "unscheduled.date")

        def change(conn: sa.Connection, book: Journal) -> UnscheduledVisit:
            person = rows.load(conn, code)
            old = _unscheduled(conn, code, visit)
            new_day = old.date if day is None else day
            facts.check_fact_date(person, new_day, "unscheduled.date", self.today())
            t = self._checked_time(
                person, new_day, time if time is not None else old.time, "unscheduled.time"
            )
            if (new_day, t) == (old.date, old.time):
                raise VisitplanError("visit", visit, "the correction changes nothing")
            number = int(visit[1:])
            op = Op("unscheduled", {"participant": code, "number": number},
                    {"date": new_day, "time": t, "reason": old.reason})  # fmt: skip
            book.entry(
                code, "correct", visit, rows.when(old.date, old.time), rows.when(new_day, t), [op]
            )
            return attrs.evolve(old, date=new_day, time=t)

        return self._write(change, user=user, reason=why)

    def void_unscheduled(
        self, code: str, visit: str, *, reason: str | None, user: str | None = None
    ) -> None:
        """Remove an unscheduled visit entered in error (its number is not reused)."""
        why = facts.require_reason(reason)

        def change(conn: sa.Connection, book: Journal) -> None:
            rows.load(conn, code)
            old = _unscheduled(conn, code, visit)
            op = Op("unscheduled", {"participant": code, "number": int(visit[1:])}, None)
            book.entry(code, "void", visit, rows.when(old.date, old.time), None, [op])

        self._write(change, user=user, reason=why)

    def record_bcell(
        self,
        code: str,
        date: object,
        value: float,
        unit: str = "cells/uL",
        *,
        baseline: bool = False,
        reason: str | None = None,
        user: str | None = None,
    ) -> BcellCount:
        """Record a blood B-cell count, or with ``baseline=True`` the participant's baseline."""
        day = to_date(date, "bcell_count.date")
        number = facts.check_count_value(value)

        def change(conn: sa.Connection, book: Journal) -> BcellCount:
            person = rows.load(conn, code)
            facts.check_fact_date(person, day, "bcell_count.date", self.today())
            checked = facts.check_count_unit(self.protocol, person.site, unit)
            count = BcellCount(code, day, number, checked)
            shown = f"{number:g} {checked} on {day}"
            if baseline:
                if person.bcell_baseline is not None:
                    raise VisitplanError(
                        "bcell_baseline",
                        person.bcell_baseline,
                        f"is already recorded for {code}; use 'correct' or 'void' with a reason",
                    )
                self._plan(facts.set_baseline(person, number))
                op = rows.update_participant(code, baseline_bcell=number, baseline_unit=checked)
                book.entry(code, "bcell", "baseline_bcell", None, shown, [op])
            else:
                _, after = facts.set_count(person, day, number, replace=False)
                self._plan(after)  # refuses counts the engine cannot use (no bcell_lln)
                op = Op("bcell_counts", {"participant": code, "date": day},
                        {"value": number, "unit": checked}, new=True)  # fmt: skip
                book.entry(code, "bcell", "bcell_count", None, shown, [op])
            cache.refresh(conn, self.protocol, code)
            return count

        return self._write(change, user=user, reason=reason)

    def correct_bcell(
        self,
        code: str,
        date: object,
        value: float,
        *,
        baseline: bool = False,
        reason: str | None,
        user: str | None = None,
    ) -> Schedule:
        """Correct the value of the count recorded on ``date`` (or of the baseline)."""
        why = facts.require_reason(reason)
        number = facts.check_count_value(value)
        day = None if baseline else to_date(date, "bcell_count.date")

        def change(conn: sa.Connection, book: Journal) -> Schedule:
            person = rows.load(conn, code)
            if day is None:
                if person.bcell_baseline is None:
                    raise VisitplanError("bcell_baseline", None, f"is not recorded for {code}")
                after = facts.set_baseline(person, number)
                schedule = self._plan(after)
                op = rows.update_participant(code, baseline_bcell=number)
                book.entry(
                    code,
                    "correct",
                    "baseline_bcell",
                    f"{person.bcell_baseline:g}",
                    f"{number:g}",
                    [op],
                )
            else:
                old, after = facts.set_count(person, day, number, replace=True)
                schedule = self._plan(after)
                unit = rows.count_unit(conn, code, day)
                op = Op(
                    "bcell_counts",
                    {"participant": code, "date": day},
                    {"value": number, "unit": unit},
                )
                shown_old = f"{old.value:g} {unit} on {day}" if old else None
                book.entry(
                    code, "correct", "bcell_count", shown_old, f"{number:g} {unit} on {day}", [op]
                )
            cache.refresh(conn, self.protocol, code)
            return schedule

        return self._write(change, user=user, reason=why)

    def void_bcell(
        self,
        code: str,
        date: object = None,
        *,
        baseline: bool = False,
        reason: str | None,
        user: str | None = None,
    ) -> Schedule:
        """Remove the count recorded on ``date`` (or the baseline) entered in error."""
        why = facts.require_reason(reason)
        day = None if baseline else to_date(date, "bcell_count.date")

        def change(conn: sa.Connection, book: Journal) -> Schedule:
            person = rows.load(conn, code)
            if day is None:
                if person.bcell_baseline is None:
                    raise VisitplanError("bcell_baseline", None, f"is not recorded for {code}")
                schedule = self._plan(facts.set_baseline(person, None))
                op = rows.update_participant(code, baseline_bcell=None, baseline_unit=None)
                book.entry(code, "void", "baseline_bcell", f"{person.bcell_baseline:g}", None, [op])
            else:
                old, after = facts.void_count(person, day)
                schedule = self._plan(after)
                unit = rows.count_unit(conn, code, day)
                op = Op("bcell_counts", {"participant": code, "date": day}, None)
                book.entry(
                    code, "void", "bcell_count", f"{old.value:g} {unit} on {day}", None, [op]
                )
            cache.refresh(conn, self.protocol, code)
            return schedule

        return self._write(change, user=user, reason=why)

    def record_event(
        self,
        code: str,
        name: str,
        date: object,
        reason: str | None = None,
        *,
        user: str | None = None,
    ) -> Schedule:
        """Record a dated event the protocol waits for (e.g. ``bcell_recovery``); re-plans."""
        facts.check_event(self.protocol, name)
        day = to_date(date, f"{name}.date")

        def change(conn: sa.Connection, book: Journal) -> Schedule:
            person = rows.load(conn, code)
            _, after = facts.set_event(self.protocol, person, name, day, replace=False)
            schedule = self._plan(after)
            op = Op("events", {"participant": code, "name": name}, {"date": day}, new=True)
            book.entry(code, "event", name, None, day.isoformat(), [op])
            cache.refresh(conn, self.protocol, code)
            return schedule

        return self._write(change, user=user, reason=reason)

    def correct_event(
        self, code: str, name: str, date: object, *, reason: str | None, user: str | None = None
    ) -> Schedule:
        """Correct the date of a recorded event."""
        why = facts.require_reason(reason)
        facts.check_event(self.protocol, name)
        day = to_date(date, f"{name}.date")

        def change(conn: sa.Connection, book: Journal) -> Schedule:
            person = rows.load(conn, code)
            old, after = facts.set_event(self.protocol, person, name, day, replace=True)
            schedule = self._plan(after)
            op = Op("events", {"participant": code, "name": name}, {"date": day})
            book.entry(code, "correct", name, _iso(old), day.isoformat(), [op])
            cache.refresh(conn, self.protocol, code)
            return schedule

        return self._write(change, user=user, reason=why)

    def void_event(
        self, code: str, name: str, *, reason: str | None, user: str | None = None
    ) -> Schedule:
        """Remove a recorded event entered in error."""
        why = facts.require_reason(reason)

        def change(conn: sa.Connection, book: Journal) -> Schedule:
            person = rows.load(conn, code)
            old, after = facts.void_event(self.protocol, person, name)
            schedule = self._plan(after)
            op = Op("events", {"participant": code, "name": name}, None)
            book.entry(code, "void", name, old.isoformat(), None, [op])
            cache.refresh(conn, self.protocol, code)
            return schedule

        return self._write(change, user=user, reason=why)

    def discontinue(
        self, code: str, date: object, reason: str, *, user: str | None = None
    ) -> Schedule:
        """Early discontinuation of treatment: doses not given are cancelled, EOT is planned
        from ``date``, follow-up continues. Returns the new plan."""
        return self._stop(code, "discontinued", date, reason, user, replace=False)

    def withdraw(
        self, code: str, date: object, reason: str, *, user: str | None = None
    ) -> Schedule:
        """Withdrawal from the study: visits from ``date`` on are cancelled."""
        return self._stop(code, "withdrawn", date, reason, user, replace=False)

    def correct_stop(
        self, code: str, field: str, date: object, *, reason: str | None, user: str | None = None
    ) -> Schedule:
        """Correct the date of a discontinuation (``field="discontinued"``) or withdrawal."""
        return self._stop(code, field, date, reason, user, replace=True)

    def void_stop(
        self, code: str, field: str, *, reason: str | None, user: str | None = None
    ) -> Schedule:
        """Remove a discontinuation or withdrawal entered in error."""
        return self._stop(code, field, None, reason, user, replace=True)

    def _stop(
        self,
        code: str,
        field: str,
        date: object,
        reason: str | None,
        user: str | None,
        *,
        replace: bool,
    ) -> Schedule:
        if field not in ("discontinued", "withdrawn"):
            raise VisitplanError("field", field, "must be discontinued or withdrawn")
        why = facts.require_reason(reason, f"{field}.reason")
        day = None if date is None else to_date(date, field)

        def change(conn: sa.Connection, book: Journal) -> Schedule:
            person = rows.load(conn, code)
            old = getattr(person, field)
            schedule = self._plan(facts.stop(person, field, day, replace=replace))
            action = (
                ("correct" if day else "void")
                if replace
                else ("discontinue" if field == "discontinued" else "withdraw")
            )
            op = rows.update_participant(code, **{field: day})
            book.entry(code, action, field, _iso(old), _iso(day), [op])
            cache.refresh(conn, self.protocol, code)
            return schedule

        return self._write(change, user=user, reason=why)

    def correct_screening(
        self, code: str, date: object, *, reason: str | None, user: str | None = None
    ) -> Schedule:
        """Correct the screening date (every visit anchored on it moves)."""
        why = facts.require_reason(reason)
        day = to_date(date, "screening")

        def change(conn: sa.Connection, book: Journal) -> Schedule:
            person = rows.load(conn, code)
            schedule = self._plan(facts.correct_screening(person, day))
            op = rows.update_participant(code, screening=day)
            book.entry(
                code, "correct", "screening", person.screening.isoformat(), day.isoformat(), [op]
            )
            cache.refresh(conn, self.protocol, code)
            return schedule

        return self._write(change, user=user, reason=why)

    def correct_flags(
        self, code: str, flags: Iterable[str], *, reason: str | None, user: str | None = None
    ) -> Schedule:
        """Replace the participant's flags (conditional schedules switch on or off)."""
        why = facts.require_reason(reason)
        wanted = list(flags)

        def change(conn: sa.Connection, book: Journal) -> Schedule:
            person = rows.load(conn, code)
            after = facts.correct_flags(self.protocol, person, wanted)
            schedule = self._plan(after)
            old, new = ";".join(sorted(person.flags)), ";".join(sorted(after.flags))
            op = rows.update_participant(code, flags=new)
            book.entry(code, "correct", "flags", old or None, new or None, [op])
            cache.refresh(conn, self.protocol, code)
            return schedule

        return self._write(change, user=user, reason=why)

    def set_appointment(
        self,
        code: str,
        visit: str,
        date: object,
        time: str | None = None,
        reason: str | None = None,
        *,
        check: Callable[[list[Participant], list[Appointment]], None] | None = None,
        user: str | None = None,
    ) -> Appointment:
        """Store (or move) the booked appointment of a visit; a move keeps the old one in the
        audit trail. An appointment is a plan, not a fact: moving one needs no reason (give one
        anyway), cancelling one does (:meth:`void_appointment`).

        ``check`` (e.g. the site's booking rules) is called inside the same write transaction,
        before anything is written, with every participant's facts and every stored
        appointment; it refuses the booking by raising. Because it runs under the write lock,
        two coordinators cannot both take the last place of a day.
        """
        day = to_date(date, f"{visit}.appointment")

        def change(conn: sa.Connection, book: Journal) -> Appointment:
            person = rows.load(conn, code)
            a = schema.appointments
            key = (a.c.participant == code) & (a.c.visit == visit)
            old = conn.execute(sa.select(a.c.date, a.c.time).where(key)).first()
            if check is not None:
                check(rows.load_codes(conn, None), rows.appointments(conn))
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
            t = self._checked_time(person, day, time, f"{visit}.appointment time")
            before = None if old is None else rows.when(to_date(old.date), old.time)
            op = Op("appointments", {"participant": code, "visit": visit},
                    {"date": day, "time": t}, new=old is None)  # fmt: skip
            book.entry(code, "appointment", visit, before, rows.when(day, t), [op])
            return Appointment(code, visit, day, t)

        return self._write(change, user=user, reason=reason)

    def void_appointment(
        self, code: str, visit: str, *, reason: str | None, user: str | None = None
    ) -> None:
        """Cancel a visit's booked appointment (the visit stays planned)."""
        why = facts.require_reason(reason)

        def change(conn: sa.Connection, book: Journal) -> None:
            rows.load(conn, code)
            a = schema.appointments
            old = conn.execute(
                sa.select(a.c.date, a.c.time).where(a.c.participant == code, a.c.visit == visit)
            ).first()
            if old is None:
                raise VisitplanError("appointment", visit, f"is not booked for {code}")
            op = Op("appointments", {"participant": code, "visit": visit}, None)
            book.entry(
                code,
                "void",
                f"{visit} appointment",
                rows.when(to_date(old.date), old.time),
                None,
                [op],
            )

        self._write(change, user=user, reason=why)

    def save_calendar_state(self, state: Mapping[str, tuple[int, str]]) -> None:
        """Store calendar events' ``uid -> (sequence, fingerprint)`` in one transaction.

        UIDs not in ``state`` are kept (an export of one participant leaves the others').
        """
        found = []
        for uid, (sequence, fingerprint) in state.items():
            if not isinstance(sequence, int) or sequence < 0:
                raise VisitplanError(f"calendar {uid}.sequence", sequence, "must be an int >= 0")
            found.append({"uid": uid, "sequence": sequence, "fingerprint": str(fingerprint)})

        def change(conn: sa.Connection) -> None:
            c = schema.calendar_state
            for row in found:
                done = conn.execute(
                    c.update()
                    .where(c.c.uid == row["uid"])
                    .values(sequence=row["sequence"], fingerprint=row["fingerprint"])
                )
                if done.rowcount == 0:
                    conn.execute(c.insert().values(**row))

        self._db.write(change)

    # -- reading ---------------------------------------------------------------------------
    def codes(self) -> list[str]:
        """Every enrolled participant's code, sorted."""
        p = schema.participants
        return self._db.read(
            lambda conn: [
                str(c) for c in conn.execute(sa.select(p.c.code).order_by(p.c.code)).scalars()
            ]
        )

    def participant(self, code: str) -> Participant:
        """A participant's facts, ready for the engine."""
        return self._db.read(lambda conn: rows.load(conn, code))

    def participants(self) -> list[Participant]:
        """Every participant's facts, by code (read in one transaction)."""
        return self._db.read(lambda conn: rows.load_codes(conn, None))

    def schedule(self, code: str, today: object = None) -> Schedule:
        """A participant's plan from the engine, with overdue visits as of ``today``."""
        day = None if today is None else to_date(today, "today")
        return plan(self.protocol, self.participant(code), today=day)

    def due(self, today: object, days: int) -> list[DueVisit]:
        """Open visits of every participant with a target up to ``today + days`` whose window
        has not closed before ``today``, in date order."""
        from visitplan.dates import shift
        from visitplan.model import Span

        day = to_date(today, "today")
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise VisitplanError("--days", days, "must be a whole number of days >= 0")
        horizon = shift(day, Span(0, days))
        pv = schema.planned_visits
        among = sa.union(
            cache.open_visits(self.protocol, day).where(pv.c.target <= horizon, pv.c.latest >= day),
            *cache.refused(day),
        )

        def read(conn: sa.Connection) -> list[DueVisit]:
            booked = {(a.participant, a.visit): a for a in rows.appointments(conn)}
            return [
                DueVisit(person.code, person.site, v, booked.get((person.code, v.code)))
                for person, schedule in cache.replanned(conn, self.protocol, among, day)
                for v in schedule.visits
                if v.status is VisitStatus.PLANNED and v.target <= horizon and v.latest >= day
            ]

        found = self._db.read(read)
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
        parts = [sa.select(pf.c.participant).where(pf.c.kind.in_(stored)), *cache.refused(day)]
        if FindingKind.OVERDUE in wanted:
            parts.append(
                cache.open_visits(self.protocol, day).where(schema.planned_visits.c.latest < day)
            )
        among = sa.union(*parts)

        def read(conn: sa.Connection) -> list[Deviation]:
            found: list[Deviation] = []
            for person, schedule in cache.replanned(conn, self.protocol, among, day):
                by_code = {v.code: v for v in schedule.visits}
                for f in schedule.findings:
                    if f.kind in wanted:
                        planned = by_code.get(f.visit)
                        found.append(
                            Deviation(person.code, person.site, f.kind, f.visit, f.message, planned)
                        )
            return found

        found = self._db.read(read)
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
        """A participant's audit trail, oldest first, with the user of each change."""

        def read(conn: sa.Connection) -> list[AuditEntry]:
            if rows.row(conn, code) is None:
                raise VisitplanError("participant", code, "is not enrolled")
            return journal.entries(conn, code)

        return self._db.read(read)

    def verify(self, expect: str | None = None) -> Verification:
        """Check the audit trail: its hash chain, and that replaying it gives exactly the
        facts stored (see :mod:`visitplan.store.journal`)."""
        if expect is not None and (
            len(expect) < 8 or not all(c in "0123456789abcdef" for c in expect)
        ):
            raise VisitplanError("--expect", expect, "must be a head hash (at least 8 hex digits)")
        return self._db.read(lambda conn: journal.verify(conn, expect))

    def unscheduled(self, code: str) -> list[UnscheduledVisit]:
        """A participant's unscheduled visits, in order."""

        def read(conn: sa.Connection) -> list[UnscheduledVisit]:
            rows.load(conn, code)
            return rows.unscheduled(conn, code)

        return self._db.read(read)

    def bcell_counts(self, code: str) -> list[BcellCount]:
        """A participant's B-cell counts in date order (the baseline is on the participant)."""

        def read(conn: sa.Connection) -> list[BcellCount]:
            rows.load(conn, code)
            return rows.bcell_counts(conn, code)

        return self._db.read(read)

    def baseline_bcell(self, code: str) -> tuple[float, str] | None:
        """A participant's pre-treatment B-cell count and unit, if recorded."""

        def read(conn: sa.Connection) -> tuple[float, str] | None:
            found = rows.row(conn, code)
            if found is None:
                raise VisitplanError("participant", code, "is not enrolled in this roster")
            if found.baseline_bcell is None:
                return None
            return float(found.baseline_bcell), str(found.baseline_unit)

        return self._db.read(read)

    def appointments(self, code: str | None = None) -> list[Appointment]:
        """Booked appointments (of one participant, or all), by date."""
        return self._db.read(lambda conn: rows.appointments(conn, code))

    def calendar_state(self) -> dict[str, tuple[int, str]]:
        """Every stored calendar event's ``uid -> (sequence, fingerprint)``."""
        c = schema.calendar_state
        return self._db.read(
            lambda conn: {
                r.uid: (int(r.sequence), str(r.fingerprint)) for r in conn.execute(sa.select(c))
            }
        )


def _setting(conn: sa.Connection, key: str) -> str | None:
    if not sa.inspect(conn).has_table("settings"):
        return None
    value = conn.execute(
        sa.select(schema.settings.c.value).where(schema.settings.c.key == key)
    ).scalar_one_or_none()
    return None if value is None else str(value)


def _enrol_entries(
    book: Journal, person: Participant, action: str, *, write: bool = True
) -> list[Op]:
    """The audit entries of a new participant (screening, site, flags, then each record and
    event), each with the rows it writes; returns those rows."""
    code = person.code
    first = Op("participants", {"code": code}, rows.participant_row(person, book.at), new=True)
    done = [first]
    book.entry(code, action, "screening", None, person.screening.isoformat(), [first], write=write)
    if person.site:
        book.entry(code, action, "site", None, person.site)
    if person.flags:
        book.entry(code, action, "flags", None, ";".join(sorted(person.flags)))
    for r in person.records:
        op = rows.record_op(code, r, None, new=True)
        book.entry(code, action, r.code, None, facts.show_record(r), [op], write=write)
        done.append(op)
    for name, day in person.events.items():
        op = Op("events", {"participant": code, "name": name}, {"date": day}, new=True)
        book.entry(code, action, name, None, day.isoformat(), [op], write=write)
        done.append(op)
    return done


def _unscheduled(conn: sa.Connection, code: str, visit: str) -> UnscheduledVisit:
    for u in rows.unscheduled(conn, code):
        if u.code == visit:
            return u
    raise VisitplanError("visit", visit, f"is not an unscheduled visit of {code} (U1, U2, ...)")


def _iso(day: pendulum.Date | None) -> str | None:
    return None if day is None else day.isoformat()


__all__ = [
    "DEVIATION_KINDS",
    "Appointment",
    "AuditEntry",
    "BcellCount",
    "Deviation",
    "DueVisit",
    "Roster",
    "UnscheduledVisit",
    "Verification",
]
