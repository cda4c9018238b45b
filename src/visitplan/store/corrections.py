"""The roster's corrections and voids: each replaces or removes a recorded fact, with a
mandatory reason; the audit trail keeps the old value and the new one."""

from __future__ import annotations

from collections.abc import Iterable

import attrs
import sqlalchemy as sa

from visitplan import facts
from visitplan.dates import to_date
from visitplan.errors import VisitplanError
from visitplan.i18n import _
from visitplan.participant import Status, parse_status
from visitplan.schedule import Schedule
from visitplan.store import cache, rows, schema
from visitplan.store.base import RosterBase, _iso
from visitplan.store.journal import Journal, Op
from visitplan.store.values import UnscheduledVisit


class Corrections(RosterBase):
    """Corrections (``correct*``) and voids (``void*``); each needs ``reason=``."""

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
                raise VisitplanError("visit", visit, _("the correction changes nothing"))
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
                    raise VisitplanError(
                        "bcell_baseline", None, _("is not recorded for {code}").format(code=code)
                    )
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
                    raise VisitplanError(
                        "bcell_baseline", None, _("is not recorded for {code}").format(code=code)
                    )
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
                raise VisitplanError(
                    "appointment", visit, _("is not booked for {code}").format(code=code)
                )
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


def _unscheduled(conn: sa.Connection, code: str, visit: str) -> UnscheduledVisit:
    for u in rows.unscheduled(conn, code):
        if u.code == visit:
            return u
    raise VisitplanError(
        "visit", visit, _("is not an unscheduled visit of {code} (U1, U2, ...)").format(code=code)
    )
