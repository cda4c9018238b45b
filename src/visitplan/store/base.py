"""The shape every roster change has, shared by its parts (changes, corrections, queries).

A change is one write transaction: load the participant's facts, apply the change through
the domain's rulebook (:mod:`visitplan.facts`), re-plan with :func:`visitplan.plan` (which
refuses facts the protocol forbids), write the rows and their audit entries through a
:class:`~visitplan.store.journal.Journal`, and commit. A refused change, a crash or a
``kill -9`` leaves the database as it was before the change began.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pendulum
import sqlalchemy as sa

from visitplan import facts
from visitplan.dates import to_date, today_at
from visitplan.engine import plan
from visitplan.errors import VisitplanError
from visitplan.i18n import _
from visitplan.model import Protocol
from visitplan.participant import Participant
from visitplan.schedule import Schedule
from visitplan.store import cache, journal, rows
from visitplan.store.database import Database
from visitplan.store.journal import Journal

T = TypeVar("T")


class RosterBase:
    """The roster's state (database, protocol, today, user) and how a change runs."""

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

    def today(self) -> pendulum.Date:
        """The date facts are checked against: ``today`` given at open, else the real date at
        the protocol's sites (:func:`visitplan.dates.today_at`)."""
        if self._today is not None:
            return self._today
        return today_at(site.timezone for site in self.protocol.sites)

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
            raise VisitplanError("field", field, _("must be discontinued or withdrawn"))
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


def _iso(day: pendulum.Date | None) -> str | None:
    return None if day is None else day.isoformat()
