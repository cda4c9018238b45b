"""What calendar exports read from the roster and the SEQUENCE state they keep in it.

A calendar of the whole roster is written a batch of participants at a time: each batch is
read in one read transaction (the participants' facts and the stored state of their events),
so memory stays flat however many participants there are. The state an export computes is
saved in batches too, and it only ever *rises*: a row is inserted for a new event, and a
stored row is replaced only by a higher SEQUENCE. Feed requests, ``visitplan ics --db`` and
``visitplan publish`` therefore share one state, whatever order they run in, and two of them
running at once cannot lower a SEQUENCE a client has already seen.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import sqlalchemy as sa

from visitplan.dates import to_date
from visitplan.participant import Participant
from visitplan.store import journal, rows, schema
from visitplan.store.backend import insert_rows
from visitplan.store.base import RosterBase
from visitplan.store.values import Appointment

#: Rows per statement when state is read or written by UID.
_CHUNK = 500
_STATE_COLUMNS = ("uid", "sequence", "fingerprint", "participant")


@attrs.frozen
class Revision:
    """The latest audit entry of a roster: what its calendars are computed from. ``at`` is
    its UTC time (``None`` for an empty roster)."""

    entry: int
    hash: str
    at: str | None


class Calendars(RosterBase):
    """Reads and writes for calendar exports (see the module's docstring)."""

    def calendar_revision(self) -> Revision:
        """The latest change to the roster's facts (the head of the audit trail).

        Every change to a fact (and to the feeds) is an audit entry, so a calendar computed
        from the same revision, on the same day, with the same protocol is the same calendar.
        """
        a = schema.audit

        def read(conn: sa.Connection) -> Revision:
            query = sa.select(a.c.id, a.c.hash, a.c.at).order_by(a.c.id.desc()).limit(1)
            last = conn.execute(query).first()
            if last is None:
                return Revision(0, journal.GENESIS, None)
            return Revision(int(last.id), str(last.hash), str(last.at))

        return self._db.read(read)

    def calendar_members(self) -> tuple[int, list[str | None], str | None]:
        """How many participants the roster has, their distinct sites, and the code of the
        first one (what a calendar's default name is made of)."""
        p = schema.participants

        def read(conn: sa.Connection) -> tuple[int, list[str | None], str | None]:
            count = int(conn.execute(sa.select(sa.func.count()).select_from(p)).scalar_one())
            sites = [s for s in conn.execute(sa.select(p.c.site).distinct()).scalars()]
            first = conn.execute(sa.select(p.c.code).order_by(p.c.code).limit(1)).scalar()
            return count, sites, None if first is None else str(first)

        return self._db.read(read)

    def calendar_batches(
        self, code: str | None = None, size: int = 500
    ) -> Iterator[tuple[list[Participant], dict[str, tuple[int, str]]]]:
        """The participants (every one, in code order, or only ``code``) ``size`` at a time,
        each batch with the stored ``uid -> (sequence, fingerprint)`` of their events."""
        p, c = schema.participants, schema.calendar_state

        def read(
            conn: sa.Connection, after: str | None
        ) -> tuple[list[Participant], dict[str, tuple[int, str]]]:
            if code is not None:
                people = [rows.load(conn, code)]
            else:
                query = sa.select(p.c.code).order_by(p.c.code).limit(size)
                if after is not None:
                    query = query.where(p.c.code > after)
                codes = [str(x) for x in conn.execute(query).scalars()]
                people = rows.load_codes(conn, codes) if codes else []
            state = {}
            if people:
                owners = [person.code for person in people]
                found = conn.execute(
                    sa.select(c.c.uid, c.c.sequence, c.c.fingerprint).where(
                        c.c.participant.in_(owners)
                    )
                )
                state = {str(r.uid): (int(r.sequence), str(r.fingerprint)) for r in found}
            return people, state

        last: str | None = None
        while True:
            people, state = self._db.read(functools.partial(read, after=last))
            if people:
                yield people, state
            if code is not None or len(people) < size:
                return
            last = people[-1].code

    def calendar_appointments(
        self, code: str | None = None
    ) -> list[tuple[Appointment, str | None]]:
        """The stored appointments (of everyone, or of ``code``), each with its participant's
        site: what an export turns into timed events."""
        a, p = schema.appointments, schema.participants
        query = sa.select(a, p.c.site).join(p, p.c.code == a.c.participant)
        if code is not None:
            query = query.where(a.c.participant == code)

        def read(conn: sa.Connection) -> list[tuple[Appointment, str | None]]:
            return [
                (Appointment(r.participant, r.visit, to_date(r.date), r.time), r.site)
                for r in conn.execute(query.order_by(a.c.participant, a.c.visit))
            ]

        return self._db.read(read)

    def raise_calendar_state(self, state: Mapping[str, tuple[int, str]]) -> int:
        """Save calendar events' ``uid -> (sequence, fingerprint)``, only ever raising one.

        A UID not stored yet is inserted; a stored one is replaced only when the new SEQUENCE
        is higher (a concurrent export that already raised it wins). One write transaction,
        a few statements per 500 UIDs. Returns how many rows were written.
        """
        from visitplan.export.ics import uid_participant

        if not state:
            return 0
        c = schema.calendar_state
        items = sorted(state.items())

        def change(conn: sa.Connection) -> int:
            written = 0
            for start in range(0, len(items), _CHUNK):
                part = items[start : start + _CHUNK]
                stored = {
                    str(r.uid): int(r.sequence)
                    for r in conn.execute(
                        sa.select(c.c.uid, c.c.sequence).where(c.c.uid.in_([u for u, _ in part]))
                    )
                }
                new: list[tuple[Any, ...]] = []
                higher: list[dict[str, Any]] = []
                for uid, (sequence, fingerprint) in part:
                    if uid not in stored:
                        new.append((uid, sequence, fingerprint, uid_participant(uid)))
                    elif sequence > stored[uid]:
                        higher.append({"u": uid, "s": sequence, "f": fingerprint})
                insert_rows(conn, c, _STATE_COLUMNS, new)
                if higher:
                    raise_one = c.update().where(c.c.uid == sa.bindparam("u"))
                    conn.execute(
                        raise_one.values(sequence=sa.bindparam("s"), fingerprint=sa.bindparam("f")),
                        higher,
                    )
                written += len(new) + len(higher)
            return written

        return self._db.write(change)
