"""The persistent roster: participants' facts in SQLite (or PostgreSQL), audited, re-planned.

>>> from visitplan.store import Roster
>>> with Roster.open("visitplan.db", today="2022-09-30") as roster:  # doctest: +SKIP
...     roster.enroll("1001", "2022-07-27")
...     roster.record("1001", "D1", "2022-08-31")

See docs/roster.md for the coordinator's daily use, the schema and the audit guarantees.
"""

from visitplan.store.roster import (
    DEVIATION_KINDS,
    Appointment,
    AuditEntry,
    BcellCount,
    Deviation,
    DueVisit,
    Roster,
    UnscheduledVisit,
)

__all__ = [
    "DEVIATION_KINDS",
    "Appointment",
    "AuditEntry",
    "BcellCount",
    "Deviation",
    "DueVisit",
    "Roster",
    "UnscheduledVisit",
]
