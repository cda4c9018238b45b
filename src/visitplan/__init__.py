"""visitplan: clinical-trial visit schedules as data, per-participant dates and calendars.

>>> import visitplan
>>> study = visitplan.builtin("NCT05124925")
>>> schedule = study.plan(visitplan.Participant("1001", screening="2022-07-27"))
>>> schedule.visit("D1").target
Date(2022, 8, 31)
"""

from visitplan.engine import plan
from visitplan.errors import ProtocolError, VisitplanError
from visitplan.model import Protocol
from visitplan.participant import Participant, Record, Status
from visitplan.protocol_file import builtin, load
from visitplan.schedule import Finding, FindingKind, PlannedVisit, Schedule, VisitStatus

__all__ = [
    "Finding",
    "FindingKind",
    "Participant",
    "PlannedVisit",
    "Protocol",
    "ProtocolError",
    "Record",
    "Schedule",
    "Status",
    "VisitStatus",
    "VisitplanError",
    "builtin",
    "load",
    "plan",
]
__version__ = "0.1.0"
