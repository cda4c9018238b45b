"""The persistent roster: participants' facts in SQLite (or PostgreSQL), audited, re-planned.

>>> from visitplan.store import Roster
>>> with Roster.open("visitplan.db", today="2022-09-30") as roster:  # doctest: +SKIP
...     roster.enroll("1001", "2022-07-27")
...     roster.record("1001", "D1", "2022-08-31")

See docs/roster.md for the coordinator's daily use, corrections, the schema and the audit
guarantees. The package's modules, by seam: ``roster`` (the Roster: changes and queries),
``database`` (opening, locks, transactions), ``backend`` (dialect specifics), ``schema``
(tables, migrations), ``journal`` (the hash-chained audit trail and its verification),
``rows`` (rows to values), ``cache`` (the plan cache), ``values`` (what is handed back),
``calendars`` (what calendar exports read, and their SEQUENCE state), ``feeds`` (calendar
feeds: secret links, audited).
"""

from visitplan.store.journal import default_user
from visitplan.store.roster import Roster
from visitplan.store.values import (
    DEVIATION_KINDS,
    Appointment,
    AuditEntry,
    BcellCount,
    Deviation,
    DueVisit,
    Feed,
    UnscheduledVisit,
    Verification,
)

__all__ = [
    "DEVIATION_KINDS",
    "Appointment",
    "AuditEntry",
    "BcellCount",
    "Deviation",
    "DueVisit",
    "Feed",
    "Roster",
    "UnscheduledVisit",
    "Verification",
    "default_user",
]
