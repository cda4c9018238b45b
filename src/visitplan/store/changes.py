"""The roster's changes: enrolment, import, records, counts, events, stops, bookings."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import attrs
import sqlalchemy as sa

from visitplan import facts
from visitplan.dates import to_date
from visitplan.errors import VisitplanError
from visitplan.i18n import _
from visitplan.participant import Participant, Record, Status, check_code, parse_status
from visitplan.schedule import Schedule
from visitplan.store import cache, journal, rows, schema
from visitplan.store.base import RosterBase
from visitplan.store.journal import Journal, Op
from visitplan.store.values import Appointment, BcellCount, UnscheduledVisit


class Changes(RosterBase):
    """Changes that add facts (each takes ``user=``; see :class:`~visitplan.store.Roster`)."""

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
                raise VisitplanError("participant", person.code, _("is already enrolled"))
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
                        raise VisitplanError("participant", person.code, _("is already enrolled"))
                    self._plan(person)
                except VisitplanError as exc:
                    who = ""
                    if exc.field != "participant":
                        who = _("participant {code}: {field}").format(code=person.code, field="")
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
                        _(
                            "is already recorded for {code}; use 'correct' or 'void' with a reason"
                        ).format(code=code),
                    )
                self._plan(facts.set_baseline(person, number))
                op = rows.update_participant(code, baseline_bcell=number, baseline_unit=checked)
                book.entry(code, "bcell", "baseline_bcell", None, shown, [op])
            else:
                _old, after = facts.set_count(person, day, number, replace=False)
                self._plan(after)  # refuses counts the engine cannot use (no bcell_lln)
                op = Op("bcell_counts", {"participant": code, "date": day},
                        {"value": number, "unit": checked}, new=True)  # fmt: skip
                book.entry(code, "bcell", "bcell_count", None, shown, [op])
            cache.refresh(conn, self.protocol, code)
            return count

        return self._write(change, user=user, reason=reason)

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
            _old, after = facts.set_event(self.protocol, person, name, day, replace=False)
            schedule = self._plan(after)
            op = Op("events", {"participant": code, "name": name}, {"date": day}, new=True)
            book.entry(code, "event", name, None, day.isoformat(), [op])
            cache.refresh(conn, self.protocol, code)
            return schedule

        return self._write(change, user=user, reason=reason)

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
                    "visit", visit, _("is not in the plan of participant {code}").format(code=code)
                ) from None
            if day < person.screening:
                raise VisitplanError(
                    f"{visit}.appointment",
                    day.isoformat(),
                    _("is before the screening date {screening}").format(
                        screening=person.screening
                    ),
                )
            t = self._checked_time(person, day, time, f"{visit}.appointment time")
            before = None if old is None else rows.when(to_date(old.date), old.time)
            op = Op("appointments", {"participant": code, "visit": visit},
                    {"date": day, "time": t}, new=old is None)  # fmt: skip
            book.entry(code, "appointment", visit, before, rows.when(day, t), [op])
            return Appointment(code, visit, day, t)

        return self._write(change, user=user, reason=reason)

    def save_calendar_state(self, state: Mapping[str, tuple[int, str]]) -> None:
        """Store calendar events' ``uid -> (sequence, fingerprint)`` in one transaction.

        UIDs not in ``state`` are kept (an export of one participant leaves the others').
        """
        from visitplan.export.ics import uid_participant

        found = []
        for uid, (sequence, fingerprint) in state.items():
            if not isinstance(sequence, int) or sequence < 0:
                raise VisitplanError(f"calendar {uid}.sequence", sequence, _("must be an int >= 0"))
            found.append({"uid": uid, "sequence": sequence, "fingerprint": str(fingerprint)})
        owners = {uid: uid_participant(uid) for uid in state}

        def change(conn: sa.Connection) -> None:
            c = schema.calendar_state
            for row in found:
                done = conn.execute(
                    c.update()
                    .where(c.c.uid == row["uid"])
                    .values(sequence=row["sequence"], fingerprint=row["fingerprint"])
                )
                if done.rowcount == 0:
                    conn.execute(c.insert().values(**row, participant=owners[str(row["uid"])]))

        self._db.write(change)


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
