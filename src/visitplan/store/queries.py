"""The roster's reads: facts, plans, what is due, overdue or off-protocol, the audit trail."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from visitplan.dates import to_date
from visitplan.engine import plan
from visitplan.errors import VisitplanError
from visitplan.i18n import _
from visitplan.participant import Participant
from visitplan.schedule import FindingKind, Schedule, VisitStatus
from visitplan.store import cache, journal, rows, schema
from visitplan.store.base import RosterBase
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


class Queries(RosterBase):
    """Reads, each in one read transaction. ``due``, ``overdue`` and ``deviations`` ask the
    plan cache which participants to re-plan, then plan them with the engine."""

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
        from visitplan.dates import Span, shift

        day = to_date(today, "today")
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise VisitplanError("--days", days, _("must be a whole number of days >= 0"))
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
                raise VisitplanError("participant", code, _("is not enrolled"))
            return journal.entries(conn, code)

        return self._db.read(read)

    def verify(self, expect: str | None = None) -> Verification:
        """Check the audit trail: its hash chain, and that replaying it gives exactly the
        facts stored (see :mod:`visitplan.store.journal`)."""
        if expect is not None and (
            len(expect) < 8 or not all(c in "0123456789abcdef" for c in expect)
        ):
            raise VisitplanError(
                "--expect", expect, _("must be a head hash (at least 8 hex digits)")
            )
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
                raise VisitplanError("participant", code, _("is not enrolled in this roster"))
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
