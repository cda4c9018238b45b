"""The plan cache (docs/roster.md): each participant's plan as the engine makes it without a
``today``, kept only to pick which participants a query re-plans.

The answers are the engine's by construction: a query selects participants here, then plans
them with :func:`visitplan.plan` on the query's day. Each selection must be a superset of the
participants the engine would report (or refuse) for that day.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pendulum
import sqlalchemy as sa

from visitplan.engine import plan
from visitplan.errors import VisitplanError
from visitplan.model import Protocol
from visitplan.participant import Participant, Status
from visitplan.schedule import Schedule, VisitStatus
from visitplan.store import rows, schema
from visitplan.store.backend import insert_rows

#: The cached finding kind of a participant the engine refuses under the current protocol
#: (always re-planned by the queries, so they raise the engine's own error).
UNPLANNABLE = "unplannable"


def open_visits(protocol: Protocol, day: pendulum.Date) -> sa.Select[Any]:
    """Participants with a visit open on ``day``: cached as planned, and not the screening
    visit once the screening date has passed (the engine then counts it done)."""
    pv, p = schema.planned_visits, schema.participants
    query = sa.select(pv.c.participant).where(pv.c.status == VisitStatus.PLANNED.value)
    screening = protocol.screening_visit
    if screening:
        query = query.where(
            ~sa.and_(
                pv.c.base_code == screening,
                pv.c.participant.in_(sa.select(p.c.code).where(p.c.screening <= day)),
            )
        )
    return query


def refused(day: pendulum.Date) -> list[sa.Select[Any]]:
    """Participants whose plan the engine refuses on ``day``: those the protocol refuses
    (cached as unplannable) and those with a fact dated after ``day`` (a visit done, an
    event, a count, a discontinuation or withdrawal). Re-planning them raises the engine's
    error for the first of them by code, as planning everyone would."""
    pf, r, e, b, p = (
        schema.planned_findings,
        schema.records,
        schema.events,
        schema.bcell_counts,
        schema.participants,
    )
    return [
        sa.select(pf.c.participant).where(pf.c.kind == UNPLANNABLE),
        sa.select(r.c.participant).where(
            r.c.status == Status.DONE.value, r.c.date.is_not(None), r.c.date > day
        ),
        sa.select(e.c.participant).where(e.c.date > day),
        sa.select(b.c.participant).where(b.c.date > day),
        sa.select(p.c.code).where(sa.or_(p.c.discontinued > day, p.c.withdrawn > day)),
    ]


def refresh(conn: sa.Connection, protocol: Protocol, code: str) -> None:
    """Re-plan one participant's cache from the facts now stored (same transaction)."""
    forget(conn, code)
    fill(conn, protocol, [rows.load(conn, code)])


def forget(conn: sa.Connection, code: str) -> None:
    """Drop one participant's cache rows."""
    pf, pv = schema.planned_findings, schema.planned_visits
    conn.execute(pf.delete().where(pf.c.participant == code))
    conn.execute(pv.delete().where(pv.c.participant == code))


#: The plan cache's columns, in the order :func:`fill` writes them.
_VISIT_COLUMNS = ("participant", "code", "base_code", "kind", "target", "earliest", "latest",
                  "status", "tentative")  # fmt: skip
_FINDING_COLUMNS = ("participant", "kind", "visit")


def fill(conn: sa.Connection, protocol: Protocol, people: Iterable[Participant]) -> None:
    """Insert the cache rows of participants that have none: the engine's plan without a
    ``today`` (no overdue findings; the screening visit still planned)."""
    visits: list[tuple[Any, ...]] = []
    findings: list[tuple[Any, ...]] = []

    def flush() -> None:
        # Plain values through the driver: SQLAlchemy's per-row processing cost an import
        # of thousands of participants as much as planning them.
        insert_rows(conn, schema.planned_visits, _VISIT_COLUMNS, visits)
        insert_rows(conn, schema.planned_findings, _FINDING_COLUMNS, findings)
        visits.clear()
        findings.clear()

    for person in people:
        try:
            schedule = plan(protocol, person)
        except VisitplanError:
            findings.append((person.code, UNPLANNABLE, ""))
            continue
        for v in schedule.visits:
            visits.append(
                (
                    person.code,
                    v.code,
                    v.base_code or v.code,
                    v.kind.value,
                    v.target.isoformat(),
                    v.earliest.isoformat(),
                    v.latest.isoformat(),
                    v.status.value,
                    bool(v.tentative),
                )
            )
        for f in schedule.findings:
            findings.append((person.code, f.kind.value, f.visit))
        if len(visits) > 20_000:
            flush()
    flush()


def rebuild(conn: sa.Connection, protocol: Protocol) -> None:
    """Re-plan everyone's cache (a new or edited protocol, or visitplan)."""
    conn.execute(schema.planned_findings.delete())
    conn.execute(schema.planned_visits.delete())
    fill(conn, protocol, rows.load_codes(conn, None))


def replanned(
    conn: sa.Connection, protocol: Protocol, among: sa.CompoundSelect[Any], day: pendulum.Date
) -> Iterator[tuple[Participant, Schedule]]:
    """Each participant whose code ``among`` selects, by code, with the engine's plan on
    ``day``.

    Their facts are read 500 at a time, and a batch is planned before the next is read,
    inside the caller's read transaction: the query holds one batch of facts at a time, and
    the garbage collector has fewer live objects to walk (docs/performance.md).
    """
    codes = sorted({str(c) for c in conn.execute(among).scalars()})
    for i in range(0, len(codes), 500):
        for person in rows.load_codes(conn, codes[i : i + 500]):
            try:
                schedule = plan(protocol, person, today=day)
            except VisitplanError as e:
                # A site-wide list stops on one participant's facts (a --today before what
                # is recorded, a protocol edited under them): the line must say whose.
                raise e.about(person.code) from e
            yield person, schedule
