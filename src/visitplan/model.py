"""The protocol model: pure, frozen data describing a study's schedule.

Nothing here computes a participant's dates; :mod:`visitplan.engine` does that. Every number
of a study (offsets, windows, gaps, limits) lives in these objects, never in code.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

import attrs

from visitplan.dates import Span
from visitplan.errors import VisitplanError
from visitplan.i18n import _, ngettext, speaking

if TYPE_CHECKING:
    import pendulum

    from visitplan.participant import Participant
    from visitplan.schedule import Schedule


#: A text's translations: (language, text) pairs in language order, e.g. ``(("fr", "Suivi"),)``.
#: The text itself (a visit's ``name``) is the protocol's own language; these are the others.
Translations = tuple[tuple[str, str], ...]


def translations(value: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> Translations:
    """``value`` (a mapping or pairs of language and text) as :data:`Translations`."""
    if value is None:
        return ()
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(lang), str(text)) for lang, text in items))


def translated(text: str, pairs: Translations, lang: str | None) -> str:
    """``text`` in ``lang`` when ``pairs`` has it, else ``text`` itself (``lang`` None: the
    text as written: what machine outputs such as CDISC and JSON carry)."""
    if lang is not None:
        for code, other in pairs:
            if code == lang:
                return other
    return text


class Unit(enum.Enum):
    """The unit of an offset or a window bound."""

    DAYS = "days"
    WEEKS = "weeks"
    MONTHS = "months"  # calendar months, end-of-month clamped


@attrs.frozen
class Offset:
    """A signed amount of time with an explicit unit, e.g. ``Offset(4, Unit.WEEKS)``."""

    value: int
    unit: Unit = Unit.DAYS

    def span(self) -> Span:
        """The offset as (calendar months, days); weeks are exact multiples of 7 days."""
        if self.unit is Unit.MONTHS:
            return Span(self.value, 0)
        if self.unit is Unit.WEEKS:
            return Span(0, 7 * self.value)
        return Span(0, self.value)

    def __str__(self) -> str:
        return f"{self.value} {self.unit.value}"


class AnchorKind(enum.Enum):
    """What a visit's offset counts from."""

    SCREENING = "screening"  # the participant's screening date (the planning entry point)
    VISIT = "visit"  # another visit: its actual date once recorded, else its target
    LAST_DOSE = "last_dose"  # the last dose given (or still planned), see the engine


@attrs.frozen
class Anchor:
    """The reference point of a visit's timing."""

    kind: AnchorKind
    visit: str | None = None

    @classmethod
    def screening(cls) -> Anchor:
        return cls(AnchorKind.SCREENING)

    @classmethod
    def of_visit(cls, code: str) -> Anchor:
        return cls(AnchorKind.VISIT, code)

    @classmethod
    def last_dose(cls) -> Anchor:
        return cls(AnchorKind.LAST_DOSE)

    def __str__(self) -> str:
        return self.visit if self.kind is AnchorKind.VISIT and self.visit else self.kind.value


@attrs.frozen
class Window:
    """The permitted dates around a target: ``before`` and ``after`` it, each with its unit.

    A ``strict`` window is a hard limit (an actual date outside it is refused as bad input);
    otherwise an actual date outside it is reported as a deviation.
    """

    before: Offset = Offset(0)
    after: Offset = Offset(0)
    strict: bool = False


class VisitKind(enum.Enum):
    """What kind of visit this is (used for calendars' categories and site capacity)."""

    SCREENING = "screening"
    DOSING = "dosing"
    ASSESSMENT = "assessment"
    BIOPSY = "biopsy"
    FOLLOW_UP = "follow-up"
    END_OF_STUDY = "end-of-study"
    UNSCHEDULED = "unscheduled"


class ProcedureKind(enum.Enum):
    """What kind of procedure is done at a visit."""

    CONSENT = "consent"
    DOSE = "dose"
    BIOPSY = "biopsy"
    IMAGING = "imaging"
    LAB = "lab"
    QUESTIONNAIRE = "questionnaire"
    EXAM = "exam"
    OTHER = "other"


@attrs.frozen
class Dose:
    """An administration of the study drug, e.g. 300 mg s.c. as 2 injections of 150 mg/1 mL."""

    drug: str
    amount: float
    unit: str = "mg"
    route: str = "s.c."
    injections: int = 1
    presentation: str = ""
    #: The CDISC intervention type (C99078 term, e.g. ``BIOLOGIC``); empty: ``DRUG``.
    intervention_type: str = ""
    #: The presentation in other languages.
    translations: Translations = attrs.field(default=(), converter=translations)

    def __str__(self) -> str:
        return self.describe()

    def describe(self, lang: str | None = None) -> str:
        """One line, e.g. "ianalumab 300 mg s.c. as 2 injections of 150 mg/1 mL" (``lang``:
        in that language, see :meth:`Procedure.describe`; None: as written, in English)."""
        amount = f"{self.amount:g} {self.unit}"
        text = f"{self.drug} {amount} {self.route}".strip()
        if self.injections > 1 or self.presentation:
            presentation = translated(self.presentation, self.translations, lang)
            if lang is None:
                plural = "s" if self.injections > 1 else ""
                each = f" of {presentation}" if presentation else ""
                return text + f" as {self.injections} injection{plural}{each}"
            with speaking(lang):
                return self._injections(text, presentation)
        return text

    def _injections(self, text: str, presentation: str) -> str:
        if presentation:
            how = ngettext(
                "{dose} as {n} injection of {presentation}",
                "{dose} as {n} injections of {presentation}",
                self.injections,
            )
        else:
            how = ngettext("{dose} as {n} injection", "{dose} as {n} injections", self.injections)
        return how.format(dose=text, n=self.injections, presentation=presentation)


@attrs.frozen
class Procedure:
    """Something done at a visit; ``condition`` names a participant flag it depends on."""

    code: str
    name: str
    kind: ProcedureKind = ProcedureKind.OTHER
    condition: str | None = None
    dose: Dose | None = None
    #: The name in other languages (see :data:`Translations`).
    translations: Translations = attrs.field(default=(), converter=translations)

    def name_in(self, lang: str | None) -> str:
        """The name in ``lang`` (as written when it has no translation, or ``lang`` is None)."""
        return translated(self.name, self.translations, lang)

    def describe(self, lang: str | None = None) -> str:
        """A one-line human description (used in tables and calendar descriptions): in
        ``lang`` where the protocol translates it, as written when ``lang`` is None (what
        machine outputs carry)."""
        name = self.name_in(lang)
        if self.dose is None:
            return name
        dose = self.dose.describe(lang)
        if self.name.casefold() == self.dose.drug.casefold():
            return dose  # "ianalumab 300 mg s.c.", not "Ianalumab: ianalumab 300 ..."
        return f"{name}: {dose}"


@attrs.frozen
class Repeat:
    """A visit that recurs ``every`` interval after its first occurrence.

    Occurrence k (from 0) is at ``anchor + offset + k * every``, computed from the anchor.
    It stops after ``count`` occurrences, or when a target would fall after ``anchor + until``,
    or after the participant's ``stop_event`` date, or on or after the date of ``stop_visit``.
    Occurrence codes are the visit code followed by the occurrence number (FU1, FU2, ...).
    """

    every: Offset
    count: int | None = None
    until: Offset | None = None
    stop_event: str | None = None
    stop_visit: str | None = None


@attrs.frozen
class NotBefore:
    """A floor on a visit's date: never planned before ``anchor + offset``."""

    anchor: Anchor
    offset: Offset


class MergeRule(enum.Enum):
    """When a monitoring occurrence is done at another visit instead of on its own."""

    #: The other visit's date lies inside the occurrence's own window.
    WINDOW = "window"
    #: The other visit's date is the occurrence's target.
    SAME_DAY = "same-day"
    #: A maximum gap: the visits doing all its procedures (and the anchor) may be at most
    #: ``repeat.every`` apart; an occurrence is planned only where they would leave a longer
    #: gap, ``every`` after the last of them (the first one ``offset`` after the anchor), and
    #: left out when one of them falls inside its window. Occurrences are numbered in date
    #: order of need (HBV1 is the first trip needed).
    GAP = "gap"


@attrs.frozen
class Visit:
    """One visit definition of the schedule of activities.

    ``wait_for`` names a participant event (such as ``bcell_recovery``): until the event is
    recorded the visit is tentative and planned at its latest permitted date; once it is, the
    target is the event date clamped into the window.
    """

    code: str
    name: str
    kind: VisitKind
    epoch: str
    anchor: Anchor
    offset: Offset = Offset(0)
    window: Window = Window()
    procedures: tuple[Procedure, ...] = ()
    repeat: Repeat | None = None
    condition: str | None = None
    wait_for: str | None = None
    not_before: NotBefore | None = None
    #: For a repeating monitoring visit: leave an occurrence out when another visit doing all
    #: its procedures is planned inside its window (``window``) or on its target (``same-day``),
    #: or plan one only where those visits leave more than ``repeat.every`` between them
    #: (``gap``, see :class:`MergeRule`).
    merge: MergeRule | None = None
    #: The name in other languages (see :data:`Translations`).
    translations: Translations = attrs.field(default=(), converter=translations)

    def name_in(self, lang: str | None) -> str:
        """The name in ``lang`` (as written when it has no translation, or ``lang`` is None)."""
        return translated(self.name, self.translations, lang)

    @property
    def is_dosing(self) -> bool:
        """True when the visit gives the study drug (it then counts for the last dose)."""
        return any(p.dose is not None for p in self.procedures)


@attrs.frozen
class Epoch:
    """A period of the study (run-in, treatment, follow-up).

    ``type`` is its CDISC EPOCH term (codelist C99079, e.g. ``RUN-IN``); None when the code or
    the name spells one (``FOLLOWUP`` is ``FOLLOW-UP``). ``etcd`` is its SDTM element code (at
    most 8 characters); None: the epoch code.
    """

    code: str
    name: str
    type: str | None = None
    etcd: str | None = None
    #: The name in other languages (see :data:`Translations`).
    translations: Translations = attrs.field(default=(), converter=translations)

    def name_in(self, lang: str | None) -> str:
        """The name in ``lang`` (as written when it has no translation, or ``lang`` is None)."""
        return translated(self.name, self.translations, lang)


@attrs.frozen
class Criterion:
    """An eligibility criterion as written in the protocol: ``inclusion`` or ``exclusion``."""

    code: str
    category: str
    text: str


@attrs.frozen
class Objective:
    """A study objective (``primary``, ``secondary`` or ``exploratory``) and its endpoints."""

    code: str
    level: str
    text: str
    endpoints: tuple[str, ...] = ()


@attrs.frozen
class Population:
    """Who the study plans to enrol: ages in years, sex (``BOTH``, ``F``, ``M``), numbers."""

    min_age: int
    max_age: int | None = None
    sex: str = "BOTH"
    healthy: bool = False
    planned_enrollment: int | None = None


@attrs.frozen
class Site:
    """Where visits happen: the zone appointments are in and the public-holiday calendar."""

    code: str
    name: str
    timezone: str
    country: str
    subdivision: str | None = None
    #: The lab's lower limit of normal of the blood B-cell count, in ``bcell_unit``.
    bcell_lln: float | None = None
    bcell_unit: str = ""


@attrs.frozen
class Rules:
    """Protocol-wide checks on what actually happened."""

    min_dose_gap: Offset | None = None
    #: The visit re-planned at the discontinuation date when treatment stops early (EOT).
    early_end_visit: str | None = None
    #: The participant event derived from B-cell counts when it is not recorded explicitly.
    recovery_event: str | None = None


@attrs.frozen
class Milestone:
    """A date that is not a visit (e.g. the end of contraception): ``anchor + offset``.

    ``condition`` names a participant flag it depends on, as for visits.
    """

    code: str
    name: str
    anchor: Anchor
    offset: Offset
    condition: str | None = None
    #: The name in other languages (see :data:`Translations`).
    translations: Translations = attrs.field(default=(), converter=translations)

    def name_in(self, lang: str | None) -> str:
        """The name in ``lang`` (as written when it has no translation, or ``lang`` is None)."""
        return translated(self.name, self.translations, lang)


class Since(enum.Enum):
    """Which fact of a medication history entry a washout counts from."""

    LAST_DOSE = "last-dose"
    LAST_CHANGE = "last-change"


@attrs.frozen
class Washout:
    """An eligibility rule: no exposure within ``interval`` before the visit it ``binds``.

    ``anchor`` is the protocol's word as written (enrollment, randomization, dosing, ...);
    ``binds`` is the visit whose date that word means here (``D1`` or ``SCR``). With
    ``half_lives`` the interval is the longer of ``interval`` and that many half-lives of the
    drug. ``since`` lists the history facts it counts from (the latest given counts).
    ``requirement`` is a further condition that is reported, not computed.
    """

    code: str
    name: str
    interval: Offset
    anchor: str
    binds: str
    since: tuple[Since, ...] = (Since.LAST_DOSE,)
    half_lives: int | None = None
    requirement: str = ""


@attrs.frozen
class Protocol:
    """A study's schedule of activities as data. Plan a participant with :meth:`plan`."""

    id: str
    title: str
    sponsor_id: str
    day1_visit: str
    epochs: tuple[Epoch, ...]
    visits: tuple[Visit, ...]
    sites: tuple[Site, ...] = ()
    rules: Rules = Rules()
    description: str = ""
    #: The visit that happens on the participant's screening date (done on it once it is past).
    screening_visit: str | None = None
    milestones: tuple[Milestone, ...] = ()
    washouts: tuple[Washout, ...] = ()
    #: The sponsor organisation's name and the study phase (CDISC C66737 term), for USDM.
    sponsor: str = ""
    phase: str = ""
    population: Population | None = None
    criteria: tuple[Criterion, ...] = ()
    objectives: tuple[Objective, ...] = ()

    def visit_name(self, code: str, name: str, occurrence: int | None, lang: str | None) -> str:
        """The name of a planned visit (``code`` its base code, ``name`` as planned, e.g.
        "Follow-up 2" for ``occurrence`` 2) in ``lang``; ``name`` itself when the protocol
        has no such visit or no translation."""
        if lang is None:
            return name
        for v in self.visits:
            if v.code == code:
                if not v.translations:
                    return name
                text = v.name_in(lang)
                return text if occurrence is None else f"{text} {occurrence}"
        return name

    def milestone_name(self, code: str, name: str, lang: str | None) -> str:
        """The name of milestone ``code`` in ``lang`` (``name`` when there is none)."""
        for m in self.milestones:
            if m.code == code:
                return m.name_in(lang)
        return name

    def visit(self, code: str) -> Visit:
        """The visit definition with this code (a repeat's base code, e.g. ``FU``)."""
        for v in self.visits:
            if v.code == code:
                return v
        raise KeyError(code)

    def __iter__(self) -> Iterator[Visit]:
        return iter(self.visits)

    @property
    def site(self) -> Site:
        """The study's first (for NCT05124925 the only) site."""
        if not self.sites:
            raise LookupError(f"protocol {self.id} defines no site")
        return self.sites[0]

    def site_of(self, code: str | None) -> Site:
        """The site with this code; without a code, the study's first site."""
        if code is None:
            return self.site
        for s in self.sites:
            if s.code == code:
                return s
        known = ", ".join(s.code for s in self.sites) or _("none")
        raise VisitplanError(
            "site",
            code,
            _("is not a site of {study}; known: {known}").format(study=self.id, known=known),
        )

    def plan(self, participant: Participant, *, today: pendulum.Date | None = None) -> Schedule:
        """Plan a participant's visits: a shortcut for ``visitplan.engine.plan(self, ...)``.

        For users at a prompt or in a notebook; visitplan's own code calls the engine. The
        model sits below the engine, so the engine is imported here, on call: the one import
        that runs upward (tests/test_architecture.py lists it).
        """
        from visitplan.engine import plan

        return plan(self, participant, today=today)
