"""What the engine returns: a participant's planned visits and milestones, and the findings."""

from __future__ import annotations

import enum
from typing import Any

import attrs
import pendulum

from visitplan.model import Epoch, Procedure, VisitKind


class VisitStatus(enum.Enum):
    """Where a visit stands."""

    PLANNED = "planned"
    DONE = "done"
    MISSED = "missed"
    CANCELLED = "cancelled"


class FindingKind(enum.Enum):
    """Kinds of finding: the engine's, which reports a recorded fact it disagrees with instead
    of fixing it, and the bookings' (``APPOINTMENT``)."""

    OUT_OF_WINDOW = "out-of-window"
    DOSE_GAP = "dose-gap"
    OVERDUE = "overdue"
    MISSED = "missed"
    HELD = "held"  # a target moved later by a not-before rule (e.g. EOT after last dose + 21 d)
    #: A recorded occurrence the plan does not have (e.g. FU9 past last dose + 24 months, a
    #: follow-up visit after B-cell recovery or after the end of study).
    UNPLANNED = "unplanned"
    #: An appointment the current plan leaves outside its visit's window, on a closed day or
    #: outside clinic hours (see :func:`visitplan.booking.appointment_findings`).
    APPOINTMENT = "appointment"


#: The findings a coordinator or data manager must act on: what ``visitplan deviations`` lists.
#: ``held`` is the engine's note on a date it moved, not a deviation; ``appointment`` findings
#: come from the bookings (:func:`visitplan.booking.appointment_findings`), not from the engine.
DEVIATION_KINDS = (
    FindingKind.OUT_OF_WINDOW,
    FindingKind.DOSE_GAP,
    FindingKind.OVERDUE,
    FindingKind.MISSED,
    FindingKind.UNPLANNED,
)


@attrs.frozen
class Finding:
    """Something a coordinator or data manager should look at."""

    kind: FindingKind
    visit: str
    message: str

    def __str__(self) -> str:
        return f"{self.visit}: {self.kind.value}: {self.message}"


class _VisitSlots:
    """The storage of a :class:`PlannedVisit`, writable, for :func:`new_visit` alone.

    attrs initialises a frozen slotted instance through ``object.__setattr__`` (the class's
    own ``__setattr__`` refuses), one call per field for every visit of every participant
    planned, a large part of the engine's time (figures in docs/performance.md). The slots
    live here instead, attrs reuses them for PlannedVisit (which adds none), so an object of
    this class can be filled with plain attribute stores and then become a PlannedVisit by
    ``__class__`` assignment.
    """

    __slots__ = (
        "__weakref__",
        "actual",
        "base_code",
        "code",
        "earliest",
        "epoch",
        "kind",
        "latest",
        "name",
        "occurrence",
        "procedures",
        "reason",
        "status",
        "study_day",
        "target",
        "tentative",
    )


@attrs.frozen
class PlannedVisit(_VisitSlots):
    """One visit of one participant.

    ``target``, ``earliest`` and ``latest`` are the protocol's dates for the visit, computed
    from its anchor and the rules that move it (a wait for an event, a not-before floor);
    recording the visit does not change them, so that an ``actual`` outside the window can be
    reported. ``study_day`` is the study day of :attr:`date` (the actual date once done, else
    the target), counted from the date of the protocol's Day 1 visit, with no Day 0.
    ``tentative`` is true while an open visit's date waits for an event (EOS before B-cell
    recovery is known); a visit done, missed or cancelled is never tentative.
    """

    code: str
    name: str
    kind: VisitKind
    epoch: Epoch
    target: pendulum.Date
    earliest: pendulum.Date
    latest: pendulum.Date
    study_day: int
    tentative: bool
    procedures: tuple[Procedure, ...]
    status: VisitStatus = VisitStatus.PLANNED
    actual: pendulum.Date | None = None
    reason: str | None = None
    base_code: str = ""
    occurrence: int | None = None

    @property
    def date(self) -> pendulum.Date:
        """The date that counts: the actual date once done, else the target."""
        return self.actual if self.actual is not None else self.target

    @property
    def open(self) -> bool:
        """True while the visit still has to happen (planned, nothing recorded)."""
        return self.status is VisitStatus.PLANNED


_new_slots = object.__new__


def new_visit(
    code: str,
    name: str,
    kind: VisitKind,
    epoch: Epoch,
    target: pendulum.Date,
    earliest: pendulum.Date,
    latest: pendulum.Date,
    study_day: int,
    tentative: bool,
    procedures: tuple[Procedure, ...],
    status: VisitStatus,
    actual: pendulum.Date | None,
    reason: str | None,
    base_code: str,
    occurrence: int | None,
) -> PlannedVisit:
    """``PlannedVisit(code, name, ...)``, the same frozen value, built faster.

    Internal to visitplan: for the engine, which builds every visit of every participant (see
    :class:`_VisitSlots`). Everyone else calls ``PlannedVisit(...)``.
    """
    v: Any = _new_slots(_VisitSlots)
    v.code = code
    v.name = name
    v.kind = kind
    v.epoch = epoch
    v.target = target
    v.earliest = earliest
    v.latest = latest
    v.study_day = study_day
    v.tentative = tentative
    v.procedures = procedures
    v.status = status
    v.actual = actual
    v.reason = reason
    v.base_code = base_code
    v.occurrence = occurrence
    v.__class__ = PlannedVisit
    return v  # type: ignore[no-any-return]  # typing.cast is a call, once per visit


@attrs.frozen
class PlannedMilestone:
    """A date of the participant's plan that is not a visit (e.g. the end of contraception).

    ``tentative`` is true while its anchor is still a planned date (e.g. the last dose has not
    been given yet), so the milestone will move with it.
    """

    code: str
    name: str
    date: pendulum.Date
    tentative: bool


@attrs.frozen
class Schedule:
    """A participant's plan: visits in date order, and findings.

    ``last_dose`` is the last dose given, or still to come; None when no dose was given and
    none is to come (e.g. Day 1 missed, then treatment discontinued): nothing is then
    planned from it (see docs/events-and-conditions.md).
    """

    protocol: str
    participant: str
    day1: pendulum.Date
    last_dose: pendulum.Date | None
    visits: tuple[PlannedVisit, ...]
    findings: tuple[Finding, ...] = ()
    site: str | None = None
    milestones: tuple[PlannedMilestone, ...] = ()
    #: The B-cell recovery date the plan used (recorded, or derived from counts), if any.
    recovery: pendulum.Date | None = None

    def milestone(self, code: str) -> PlannedMilestone:
        """The milestone with this code (e.g. ``CONTRACEPTION_END``)."""
        for m in self.milestones:
            if m.code == code:
                return m
        raise KeyError(code)

    def visit(self, code: str) -> PlannedVisit:
        """The planned visit with this code (e.g. ``W4`` or ``FU2``)."""
        for v in self.visits:
            if v.code == code:
                return v
        raise KeyError(code)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.visits)

    def __len__(self) -> int:
        return len(self.visits)
