"""The values the roster hands back: plain frozen records of what is stored or found."""

from __future__ import annotations

import attrs
import pendulum

# Re-exported: an unscheduled visit is the participant's value, which the SV export reads too.
from visitplan.participant import UnscheduledVisit as UnscheduledVisit

# Re-exported: the store's deviations are the engine's.
from visitplan.schedule import DEVIATION_KINDS as DEVIATION_KINDS
from visitplan.schedule import FindingKind, PlannedVisit


@attrs.frozen
class AuditEntry:
    """One append-only audit row: who did it (``user``), to which participant (by code),
    what field, old and new value, when (``at``, UTC) and why."""

    id: int
    at: str
    participant: str | None
    action: str
    field: str
    old: str | None
    new: str | None
    reason: str | None
    user: str | None = None


@attrs.frozen
class Appointment:
    """A booked appointment for a visit (the booking rules live elsewhere; this is storage)."""

    participant: str
    visit: str
    date: pendulum.Date
    time: str | None = None


@attrs.frozen
class BcellCount:
    """A blood B-cell count taken at a visit."""

    participant: str
    date: pendulum.Date
    value: float
    unit: str


@attrs.frozen
class DueVisit:
    """A coming visit of one participant, with its window and any booked appointment."""

    participant: str
    site: str | None
    visit: PlannedVisit
    appointment: Appointment | None = None


@attrs.frozen
class Deviation:
    """A finding of the engine that a coordinator must act on (see :data:`DEVIATION_KINDS`)."""

    participant: str
    site: str | None
    kind: FindingKind
    visit: str
    message: str
    planned: PlannedVisit | None = None


@attrs.frozen
class Verification:
    """What ``audit verify`` found: ``problem`` is None when the trail is intact."""

    entries: int
    head: str
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


@attrs.frozen
class Feed:
    """A calendar feed as the roster keeps it: never its token (only the token's hash is
    stored, and not handed back). ``participant`` None means the whole roster's calendar.
    Times are UTC, ISO 8601 with ``Z``."""

    label: str
    participant: str | None
    created_at: str
    created_by: str
    revoked_at: str | None
    last_used: str | None
