"""Rows to values and back: a participant's facts read from the tables, and the ops that
write them (see :mod:`visitplan.store.journal`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pendulum
import sqlalchemy as sa

from visitplan.dates import to_date
from visitplan.errors import VisitplanError
from visitplan.i18n import _
from visitplan.participant import Count, Participant, Record
from visitplan.store import schema
from visitplan.store.journal import Op
from visitplan.store.values import Appointment, BcellCount, UnscheduledVisit

#: The columns of a stored record that make a Record, in Record's field order.
RECORD_FIELDS = sa.select(
    schema.records.c.visit, schema.records.c.date, schema.records.c.status, schema.records.c.reason
)


def participant_row(person: Participant, at: str) -> dict[str, Any]:
    """The ``participants`` values of a new participant (the key is ``code``)."""
    return {
        "site": person.site,
        "screening": person.screening,
        "flags": ";".join(sorted(person.flags)),
        "discontinued": person.discontinued,
        "withdrawn": person.withdrawn,
        "baseline_bcell": None,
        "baseline_unit": None,
        "enrolled_at": at,
    }


def enrol_ops(person: Participant, at: str) -> list[Op]:
    """The rows of a new participant with their recorded visits and events."""
    ops = [Op("participants", {"code": person.code}, participant_row(person, at), new=True)]
    ops += [record_op(person.code, r, None, new=True) for r in person.records]
    ops += [
        Op("events", {"participant": person.code, "name": n}, {"date": d}, new=True)
        for n, d in person.events.items()
    ]
    return ops


def record_op(
    code: str, rec: Record | None, time: str | None, *, visit: str = "", new: bool = False
) -> Op:
    """Set (or with ``rec`` None delete) the record of a visit."""
    key = {"participant": code, "visit": rec.code if rec is not None else visit}
    if rec is None:
        return Op("records", key, None)
    values = {"status": rec.status.value, "date": rec.date, "time": time, "reason": rec.reason}
    return Op("records", key, values, new=new)


def update_participant(code: str, **values: Any) -> Op:
    """Change some columns of a participant's row."""
    return Op("participants", {"code": code}, values)


def row(conn: sa.Connection, code: str) -> Any:
    """The participant's row, or None."""
    p = schema.participants
    return conn.execute(sa.select(p).where(p.c.code == code)).first()


def load(conn: sa.Connection, code: str) -> Participant:
    """A participant's facts, ready for the engine; refused when not enrolled."""
    found = row(conn, code)
    if found is None:
        raise VisitplanError("participant", code, _("is not enrolled in this roster"))
    r, e, b = schema.records, schema.events, schema.bcell_counts
    recs = conn.execute(RECORD_FIELDS.where(r.c.participant == code).order_by(r.c.id)).all()
    evs = conn.execute(sa.select(e).where(e.c.participant == code)).all()
    counts = conn.execute(sa.select(b).where(b.c.participant == code)).all()
    return participant(found, recs, evs, counts)


def load_codes(conn: sa.Connection, codes: list[str] | None) -> list[Participant]:
    """The facts of these participants (every one with None), by code."""
    p, r, e, b = schema.participants, schema.records, schema.events, schema.bcell_counts

    def some(query: Any, column: Any) -> Any:
        return query if codes is None else query.where(column.in_(codes))

    recs: dict[str, list[Any]] = {}
    query = sa.select(r.c.participant, *RECORD_FIELDS.selected_columns)
    for owner, *fields in conn.execute(some(query, r.c.participant).order_by(r.c.id)):
        recs.setdefault(owner, []).append(fields)
    evs: dict[str, list[Any]] = {}
    for found in conn.execute(some(sa.select(e), e.c.participant)):
        evs.setdefault(found.participant, []).append(found)
    counts: dict[str, list[Any]] = {}
    for found in conn.execute(some(sa.select(b), b.c.participant)):
        counts.setdefault(found.participant, []).append(found)
    return [
        participant(
            found, recs.get(found.code, []), evs.get(found.code, []), counts.get(found.code, [])
        )
        for found in conn.execute(some(sa.select(p), p.c.code).order_by(p.c.code))
    ]


def participant(
    found: Any, recs: Sequence[Any], evs: Sequence[Any], counts: Sequence[Any] = ()
) -> Participant:
    """A Participant from its row and the rows of its records, events and counts."""
    return Participant(
        found.code,
        to_date(found.screening, "screening"),
        # Rows of RECORD_FIELDS, unpacked: read by name, the row's attributes cost as much
        # as the Record they make (a roster query loads 100,000s of records).
        # Record's converters check and convert each field (dates to pendulum, the status).
        records=tuple(Record(visit, day, status, reason) for visit, day, status, reason in recs),
        flags=frozenset(f for f in found.flags.split(";") if f),
        events={ev.name: to_date(ev.date) for ev in evs},
        discontinued=None if found.discontinued is None else to_date(found.discontinued),
        withdrawn=None if found.withdrawn is None else to_date(found.withdrawn),
        site=found.site,
        bcell_counts=tuple(Count(to_date(c.date), float(c.value)) for c in counts),
        bcell_baseline=None if found.baseline_bcell is None else float(found.baseline_bcell),
    )


def record_time(conn: sa.Connection, code: str, visit: str) -> str | None:
    """The stored wall-clock time of a visit's record."""
    r = schema.records
    found = conn.execute(
        sa.select(r.c.time).where(r.c.participant == code, r.c.visit == visit)
    ).scalar_one_or_none()
    return None if found is None else str(found)


def appointments(conn: sa.Connection, code: str | None = None) -> list[Appointment]:
    """Booked appointments (of one participant, or all), by date."""
    a = schema.appointments
    query = sa.select(a).order_by(a.c.date, a.c.time, a.c.participant, a.c.visit)
    if code is not None:
        query = query.where(a.c.participant == code)
    return [
        Appointment(r.participant, r.visit, to_date(r.date), r.time) for r in conn.execute(query)
    ]


def unscheduled(conn: sa.Connection, code: str) -> list[UnscheduledVisit]:
    """A participant's unscheduled visits, in order."""
    u = schema.unscheduled
    rows = conn.execute(sa.select(u).where(u.c.participant == code).order_by(u.c.number)).all()
    return [UnscheduledVisit(code, f"U{r.number}", to_date(r.date), r.time, r.reason) for r in rows]


def bcell_counts(conn: sa.Connection, code: str) -> list[BcellCount]:
    """A participant's B-cell counts with their units, in date order."""
    b = schema.bcell_counts
    rows = conn.execute(sa.select(b).where(b.c.participant == code).order_by(b.c.date)).all()
    return [BcellCount(code, to_date(r.date), r.value, r.unit) for r in rows]


def count_unit(conn: sa.Connection, code: str, day: pendulum.Date) -> str | None:
    """The unit of the count a participant has on ``day``."""
    b = schema.bcell_counts
    found = conn.execute(
        sa.select(b.c.unit).where(b.c.participant == code, b.c.date == day)
    ).scalar_one_or_none()
    return None if found is None else str(found)


def when(day: pendulum.Date, time: str | None) -> str:
    """A date with its optional time, as the audit trail shows it."""
    return day.isoformat() + (f" {time}" if time else "")
