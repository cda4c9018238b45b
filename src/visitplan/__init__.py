"""visitplan: clinical-trial visit schedules as data, per-participant dates and calendars.

>>> import visitplan
>>> study = visitplan.builtin("NCT05124925")
>>> schedule = study.plan(visitplan.Participant("1001", screening="2022-07-27"))
>>> schedule.visit("D1").target
Date(2022, 8, 31)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    #: The installed distribution's version (pyproject.toml's, the one place it is written).
    __version__: str

    from visitplan.engine import plan
    from visitplan.errors import ProtocolError, VisitplanError
    from visitplan.model import Protocol
    from visitplan.participant import Participant, Record, Status
    from visitplan.protocol_file import builtin, load
    from visitplan.schedule import Finding, FindingKind, PlannedVisit, Schedule, VisitStatus

# The public names are imported on first use (PEP 562), not with the package: importing any
# submodule imports this package first, and `visitplan --help` (which needs only click and
# visitplan.cli) would otherwise pay for pendulum, attrs and the engine (docs/performance.md).
_WHERE = {
    "Finding": "visitplan.schedule",
    "FindingKind": "visitplan.schedule",
    "Participant": "visitplan.participant",
    "PlannedVisit": "visitplan.schedule",
    "Protocol": "visitplan.model",
    "ProtocolError": "visitplan.errors",
    "Record": "visitplan.participant",
    "Schedule": "visitplan.schedule",
    "Status": "visitplan.participant",
    "VisitStatus": "visitplan.schedule",
    "VisitplanError": "visitplan.errors",
    "builtin": "visitplan.protocol_file",
    "load": "visitplan.protocol_file",
    "plan": "visitplan.engine",
}
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


def __getattr__(name: str) -> Any:
    if name == "__version__":
        # Read from the installed metadata on first use: importlib.metadata is not free, and
        # `visitplan --help` never asks (tests/test_cold_start.py).
        from importlib.metadata import version

        globals()[name] = value = version("visitplan")
        return value
    module = _WHERE.get(name)
    if module is None:
        # `import visitplan` used to load the submodules too; keep `visitplan.engine` working.
        try:
            return importlib.import_module(f"visitplan.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"visitplan.{name}":
                raise
            raise AttributeError(f"module 'visitplan' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups are ordinary attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE, "__version__"})
