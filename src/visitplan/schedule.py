"""What the engine returns: a participant's planned visits and the findings on them."""

from __future__ import annotations

import enum

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
    """Kinds of finding the engine reports (it never silently fixes a date)."""

    OUT_OF_WINDOW = "out-of-window"
    DOSE_GAP = "dose-gap"
    OVERDUE = "overdue"
    MISSED = "missed"
    HELD = "held"  # a target moved later by a not-before rule (e.g. EOT after last dose + 21 d)


@attrs.frozen
class Finding:
    """Something a coordinator or data manager should look at."""

    kind: FindingKind
    visit: str
    message: str

    def __str__(self) -> str:
        return f"{self.visit}: {self.kind.value}: {self.message}"


@attrs.frozen
class PlannedVisit:
    """One visit of one participant.

    ``target``, ``earliest`` and ``latest`` are the protocol's dates computed from the visit's
    anchor; they stay what the protocol says even once the visit is done, so that an ``actual``
    outside the window can be reported. ``study_day`` is the study day of :attr:`date` (the
    actual date once done, else the target; Day 1 = first dose, no Day 0). ``tentative`` is
    true while the date waits for an event (EOS before B-cell recovery is known).
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
    """A participant's plan: visits in date order, and findings."""

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
