"""The timeline engine: one pure function from protocol + participant facts to a schedule.

Every date of visitplan is computed here (with the arithmetic of :mod:`visitplan.dates`).
Each offset is applied to its anchor in one step; nothing is derived by chaining visits.
"""

from __future__ import annotations

import graphlib
import itertools
import re
from collections.abc import Iterator

import pendulum

from visitplan.dates import shift, study_day, to_date
from visitplan.errors import ProtocolError, VisitplanError
from visitplan.model import (
    Anchor,
    AnchorKind,
    MergeRule,
    Milestone,
    Procedure,
    Protocol,
    Span,
    Visit,
)
from visitplan.participant import Participant, Record, Status
from visitplan.recovery import derived_recovery
from visitplan.schedule import (
    Finding,
    FindingKind,
    PlannedMilestone,
    PlannedVisit,
    Schedule,
    VisitStatus,
)

_LAST_DOSE = "@last_dose"
#: A repeat with no count and no end is refused at load; this only guards against a runaway.
MAX_OCCURRENCES = 1000
#: An occurrence number as written in a code (FU2): ASCII digits, no leading zero.
_OCCURRENCE = re.compile(r"[1-9][0-9]{0,5}", re.ASCII)


def plan(
    protocol: Protocol, participant: Participant, *, today: pendulum.Date | None = None
) -> Schedule:
    """Plan ``participant`` under ``protocol``.

    Returns every applicable visit with its target, earliest and latest date, study day and
    status, in date order, and the findings (out of window, dose gap, missed, overdue, held).
    ``today`` is only used to report overdue visits and to refuse visits recorded as done in
    the future; without it the result depends on the facts alone.

    Raises :class:`VisitplanError` when the facts contradict the protocol (an unknown visit,
    a Day 1 outside the run-in, a dose before Day 1, ...).
    """
    if not isinstance(protocol, Protocol):
        raise VisitplanError(
            "protocol", type(protocol).__name__, "must be a visitplan Protocol (see visitplan.load)"
        )
    if not isinstance(participant, Participant):
        raise VisitplanError(
            "participant", type(participant).__name__, "must be a visitplan Participant"
        )
    return _Planner(protocol, participant, None if today is None else to_date(today, "today")).run()


def dependency_order(protocol: Protocol) -> list[str]:
    """Visit codes in an order where every anchor comes before what depends on it.

    Raises :class:`ProtocolError` on an anchor cycle or an anchor to an unknown visit.
    """
    codes = {v.code for v in protocol.visits}
    graph: dict[str, set[str]] = {_LAST_DOSE: {v.code for v in protocol.visits if v.is_dosing}}
    for v in protocol.visits:
        deps: set[str] = set()
        anchors = [v.anchor] + ([v.not_before.anchor] if v.not_before else [])
        for a in anchors:
            if a.kind is AnchorKind.VISIT:
                if a.visit not in codes:
                    raise ProtocolError(f"visits.{v.code}.anchor", a.visit, "unknown visit")
                deps.add(a.visit)
            elif a.kind is AnchorKind.LAST_DOSE:
                deps.add(_LAST_DOSE)
        if v.repeat and v.repeat.stop_visit:
            if v.repeat.stop_visit not in codes:
                raise ProtocolError(
                    f"visits.{v.code}.repeat.stop_visit", v.repeat.stop_visit, "unknown visit"
                )
            deps.add(v.repeat.stop_visit)
        graph[v.code] = deps
    # Sorted predecessors: sets of strings iterate in a per-process hash order, and the cycle
    # reported (and the order of independent visits) must not change from one run to the next.
    ordered = {code: sorted(deps) for code, deps in graph.items()}
    try:
        return [c for c in graphlib.TopologicalSorter(ordered).static_order()]
    except graphlib.CycleError as exc:
        loop = [str(c).replace(_LAST_DOSE, "last dose") for c in exc.args[1][:-1]]
        start = loop.index(min(loop))
        loop = loop[start:] + loop[:start]
        raise ProtocolError(
            "visits", " -> ".join([*loop, loop[0]]), "anchors form a cycle"
        ) from None


#: code, name, protocol index, target span, earliest span, latest span of a visit occurrence.
_Occurrence = tuple[str, str, int, Span, Span, Span]


class _Compiled:
    """What planning derives from the protocol alone, worked out once per protocol object.

    The profile of planning 100,000 participants (docs/performance.md) showed the engine
    redoing this for every participant: the graphlib dependency order, the spans of every
    offset and window (attrs ``Span`` objects), ``Visit.is_dosing`` (a scan of procedures)
    and the procedures that apply to a participant's flags. A protocol is frozen, so each is
    computed on first use and kept here; per-flag-set results are kept as they are asked for.
    """

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.order = dependency_order(protocol)
        self.index = {v.code: i for i, v in enumerate(protocol.visits)}
        self.epochs = {e.code: e for e in protocol.epochs}
        self.dosing = frozenset(v.code for v in protocol.visits if v.is_dosing)
        #: The flags the protocol looks at; other flags cannot change a plan, and keying the
        #: per-flag caches on these alone keeps them bounded whatever flags the data carries.
        self.conditions = frozenset(
            c
            for v in protocol.visits
            for c in (v.condition, *(p.condition for p in v.procedures))
            if c is not None
        )
        self._visits: dict[frozenset[str], tuple[Visit, ...]] = {}
        self._by_code: dict[frozenset[str], tuple[tuple[Visit, ...], dict[str, Visit]]] = {}
        self._occurrences: dict[tuple[str, int | None], _Occurrence] = {}
        self._procedures: dict[frozenset[str], dict[str, tuple[Procedure, ...]]] = {}
        #: Visit code -> the field names its date errors report. Built once: formatting them
        #: for every occurrence planned cost more than the error path they serve ever runs.
        self.fields = {
            v.code: (
                f"visits.{v.code}.offset",
                f"visits.{v.code}.window.before",
                f"visits.{v.code}.window.after",
                f"visits.{v.code}.not_before.offset",
                f"visits.{v.code}.repeat",
                f"visits.{v.code}.repeat.until",
                f"visits.{v.code}.repeat.every",
            )
            for v in protocol.visits
        }

    def visits(self, flags: frozenset[str]) -> tuple[Visit, ...]:
        """The visits that apply to a participant with these flags, in protocol order."""
        flags = flags & self.conditions
        found = self._visits.get(flags)
        if found is None:
            found = tuple(v for v in self.protocol.visits if _applies(v.condition, flags))
            self._visits[flags] = found
        return found

    def occurrence(self, v: Visit, occurrence: int | None) -> _Occurrence:
        """Code, name, protocol index and target/earliest/latest spans of ``v``'s occurrence.

        Everything about a visit occurrence that does not depend on the participant, in one
        look-up: planning asked for each of these separately for every occurrence of every
        participant, and formatting ``FU2`` / "Follow-up 2" alone was 4% of the profile.
        """
        key = (v.code, occurrence)
        found = self._occurrences.get(key)
        if found is None:
            span = v.offset.span()
            code, name = v.code, v.name
            if occurrence is not None:
                assert v.repeat is not None
                span = span + v.repeat.every.span().times(occurrence - 1)
                code, name = f"{v.code}{occurrence}", f"{v.name} {occurrence}"
            found = (code, name, self.index[v.code], *_window_spans(v, span))
            self._occurrences[key] = found
        return found

    def visits_by_code(self, flags: frozenset[str]) -> tuple[tuple[Visit, ...], dict[str, Visit]]:
        """:meth:`visits` and the same visits by code (read-only: shared by every plan)."""
        found = self._by_code.get(flags)
        if found is None:
            visits = self.visits(flags)
            found = (visits, {v.code: v for v in visits})
            if len(self._by_code) < 64:  # keyed on the raw flags, so bound it
                self._by_code[flags] = found
        return found

    def procedures(self, flags: frozenset[str]) -> dict[str, tuple[Procedure, ...]]:
        """Visit code -> the procedures that apply to a participant with these flags."""
        flags = flags & self.conditions
        found = self._procedures.get(flags)
        if found is None:
            found = {
                v.code: tuple(p for p in v.procedures if _applies(p.condition, flags))
                for v in self.protocol.visits
            }
            self._procedures[flags] = found
        return found


def _window_spans(v: Visit, span: Span) -> tuple[Span, Span, Span]:
    """``span`` and the spans of ``v``'s earliest and latest dates around it."""
    return span, span - v.window.before.span(), span + v.window.after.span()


#: id(protocol) -> (protocol, its _Compiled). The protocol is kept alive by the entry so that
#: its id cannot be reused by another object; hashing a Protocol (~20 µs, it hashes every
#: nested visit) would cost more than planning a participant, so identity is the key.
_COMPILED: dict[int, tuple[Protocol, _Compiled]] = {}
_COMPILED_MAX = 32


def _compiled(protocol: Protocol) -> _Compiled:
    hit = _COMPILED.get(id(protocol))
    if hit is not None and hit[0] is protocol:
        return hit[1]
    compiled = _Compiled(protocol)
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.clear()  # a simple bound, safe under threads; recompiling is well under 1 ms
    _COMPILED[id(protocol)] = (protocol, compiled)
    return compiled


class _Slot:
    """A visit occurrence while planning (before study days are known).

    A plain ``__slots__`` class rather than an attrs class: about 17 are made per participant,
    and attrs' generated ``__init__`` with defaults cost 3% of planning in the profile
    (docs/performance.md). It never leaves the engine.
    """

    __slots__ = (
        "actual",
        "code",
        "earliest",
        "index",
        "latest",
        "name",
        "occurrence",
        "reason",
        "status",
        "target",
        "tentative",
        "visit",
    )

    def __init__(
        self,
        visit: Visit,
        index: int,
        code: str,
        name: str,
        occurrence: int | None,
        target: pendulum.Date,
        earliest: pendulum.Date,
        latest: pendulum.Date,
    ) -> None:
        self.visit = visit
        self.index = index
        self.code = code
        self.name = name
        self.occurrence = occurrence
        self.target = target
        self.earliest = earliest
        self.latest = latest
        self.tentative = False
        self.status = VisitStatus.PLANNED
        self.actual: pendulum.Date | None = None
        self.reason: str | None = None

    @property
    def date(self) -> pendulum.Date:
        return self.actual if self.actual is not None else self.target


class _Planner:
    def __init__(
        self, protocol: Protocol, participant: Participant, today: pendulum.Date | None
    ) -> None:
        self.protocol = protocol
        self.p = participant
        self.today = today
        self.c = _compiled(protocol)
        self.visits, self.by_code = self.c.visits_by_code(participant.flags)
        self.index = self.c.index
        self.records = self._check_records()
        self.slots: dict[str, list[_Slot]] = {}
        self.last_dose: pendulum.Date | None = None
        self.last_dose_actual = False
        self.findings: list[Finding] = []
        #: The facts other than records that can change a visit's status (see ``_plan``).
        self._dated_facts = (
            today is not None
            or participant.discontinued is not None
            or participant.withdrawn is not None
        )
        self._derived: dict[str, pendulum.Date | None] = {}

    # -- facts -----------------------------------------------------------------------------
    def _check_records(self) -> dict[str, Record]:
        p = self.p
        for field, day in (("discontinued", p.discontinued), ("withdrawn", p.withdrawn)):
            if day is not None and day < p.screening:
                raise VisitplanError(
                    field, day.isoformat(), f"is before the screening date {p.screening}"
                )
        records: dict[str, Record] = {}
        for r in p.records:
            self._visit_of(r.code)
            if r.date is not None and r.date < p.screening:
                raise VisitplanError(
                    f"{r.code}.date",
                    r.date.isoformat(),
                    f"is before the screening date {p.screening}; no visit precedes screening",
                )
            future = self.today is not None and r.date is not None and r.date > self.today
            if r.status is Status.DONE and future:
                assert r.date is not None
                raise VisitplanError(
                    f"{r.code}.date",
                    r.date.isoformat(),
                    f"is after today ({self.today}); only a visit that happened is done",
                )
            records[r.code] = r
        return records

    def _visit_of(self, code: str) -> tuple[Visit, int | None]:
        """The definition and occurrence number a recorded code refers to."""
        if code in self.by_code and self.by_code[code].repeat is None:
            return self.by_code[code], None
        for v in self.visits:
            n = self._occurrence_of(v, code) if v.repeat else None
            if n is not None and n > MAX_OCCURRENCES:
                raise VisitplanError(
                    "visit", code, f"a repeat has at most {MAX_OCCURRENCES} occurrences"
                )
            if n is not None:
                return v, n
        known = [v.code if v.repeat is None else f"{v.code}<n>" for v in self.visits]
        missing = [v for v in self.protocol.visits if v.code == code and v not in self.visits]
        rule = (
            f"applies only to participants flagged {missing[0].condition}"
            if missing
            else f"unknown visit code for {self.protocol.id}; known: {', '.join(known)}"
        )
        raise VisitplanError("visit", code, rule)

    # -- planning --------------------------------------------------------------------------
    def run(self) -> Schedule:
        for code in self.c.order:
            if code == _LAST_DOSE:
                self._resolve_last_dose()
            elif code in self.by_code:
                v = self.by_code[code]
                self.slots[code] = list(self._plan_repeat(v) if v.repeat else [self._plan(v)])
        self._merge()
        self._check_dose_gaps()
        return self._schedule()

    def _event(self, name: str) -> pendulum.Date | None:
        """A participant event: its recorded date, else (the recovery event) derived from counts."""
        if name in self.p.events:
            return self.p.events[name]
        if name != self.protocol.rules.recovery_event:
            return None
        if name not in self._derived:
            if not self.slots.get(self.protocol.day1_visit):
                raise ProtocolError(
                    "rules.recovery_event",
                    name,
                    "is derived from counts after Day 1: a visit waiting or stopping on it "
                    "must be planned after Day 1 (anchor it on Day 1 or the last dose)",
                )
            day1 = self.slots[self.protocol.day1_visit][0].date
            self._derived[name] = derived_recovery(self.protocol, self.p, day1)
        return self._derived[name]

    def _merge(self) -> None:
        """Leave out monitoring occurrences done at another visit (see ``Visit.merge``)."""
        dropped: set[str] = set()
        for v in self.visits:
            if v.merge is None or v.code not in self.slots:
                continue
            needs = {p.code for p in v.procedures if _applies(p.condition, self.p.flags)}
            hosts = [
                h
                for code, ss in self.slots.items()
                if code != v.code
                for h in ss
                if h.status in (VisitStatus.PLANNED, VisitStatus.DONE)
                and needs
                <= {p.code for p in h.visit.procedures if _applies(p.condition, self.p.flags)}
            ]
            kept = []
            for s in self.slots[v.code]:
                merged = s.code not in self.records and any(
                    (s.earliest <= h.date <= s.latest)
                    if v.merge is MergeRule.WINDOW
                    else h.date == s.target
                    for h in hosts
                )
                if merged:
                    dropped.add(s.code)
                else:
                    kept.append(s)
            self.slots[v.code] = kept
        self.findings = [f for f in self.findings if f.visit not in dropped]

    def _milestones(self) -> tuple[PlannedMilestone, ...]:
        out = []
        for m in self.protocol.milestones:
            if not _applies(m.condition, self.p.flags):
                continue
            anchor_date, actual = self._anchor_date(m.anchor, m)
            out.append(
                PlannedMilestone(m.code, m.name, shift(anchor_date, m.offset.span()), not actual)
            )
        return tuple(sorted(out, key=lambda m: m.date))

    def _anchor_date(self, anchor: Anchor, owner: Visit | Milestone) -> tuple[pendulum.Date, bool]:
        """The anchor's date, and whether it is an actual (recorded) date."""
        if anchor.kind is AnchorKind.SCREENING:
            return self.p.screening, True
        if anchor.kind is AnchorKind.LAST_DOSE:
            assert self.last_dose is not None
            return self.last_dose, self.last_dose_actual
        slots = self.slots.get(anchor.visit or "")
        if not slots:
            raise ProtocolError(
                f"{'visits' if isinstance(owner, Visit) else 'milestones'}.{owner.code}.anchor",
                anchor.visit,
                "anchors on a visit that does not apply to this participant",
            )
        first = slots[0]
        return first.date, first.actual is not None

    def _plan(
        self,
        v: Visit,
        *,
        occurrence: int | None = None,
        target: pendulum.Date | None = None,
        anchor: tuple[pendulum.Date, bool] | None = None,
    ) -> _Slot:
        """Plan one occurrence.

        A repeat passes the ``anchor`` it resolved once for all its occurrences and the
        ``target`` it already shifted to decide whether the repeat has ended.
        """
        anchor_date, anchor_actual = anchor or self._anchor_date(v.anchor, v)
        code, name, index, span, early, late = self.c.occurrence(v, occurrence)
        fields = self.c.fields[v.code]
        if self.p.discontinued is not None and v.code == self.protocol.rules.early_end_visit:
            anchor_date, anchor_actual = self.p.discontinued, True
            span, early, late = _window_spans(v, Span())
            target = None
        if target is None:
            target = shift(anchor_date, span, fields[0])
        earliest = shift(anchor_date, early, fields[1])
        latest = shift(anchor_date, late, fields[2])
        slot = _Slot(v, index, code, name, occurrence, target, earliest, latest)
        if v.wait_for:
            event = self._event(v.wait_for)
            if event is None:
                slot.target, slot.tentative = latest, True
            else:
                slot.target = min(max(event, earliest), latest)
        if v.not_before:
            floor_anchor, _ = self._anchor_date(v.not_before.anchor, v)
            floor = shift(floor_anchor, v.not_before.offset.span(), fields[3])
            if slot.target < floor:
                self.findings.append(
                    Finding(
                        FindingKind.HELD,
                        code,
                        f"target {slot.target} held to {floor} "
                        f"({v.not_before.anchor} + {v.not_before.offset})",
                    )
                )
                slot.target = floor
                slot.earliest = max(slot.earliest, floor)
                slot.latest = max(slot.latest, floor)
        # Without a record for this occurrence, _apply_record only acts on today, a
        # discontinuation or a withdrawal; most participants have none of them, so skip it.
        if self._dated_facts or code in self.records:
            self._apply_record(slot, anchor_date if anchor_actual else None, v.anchor)
        return slot

    def _plan_repeat(self, v: Visit) -> Iterator[_Slot]:
        rep = v.repeat
        assert rep is not None
        anchor = self._anchor_date(v.anchor, v)
        anchor_date = anchor[0]
        fields = self.c.fields[v.code]
        where = fields[4]
        limit = shift(anchor_date, rep.until.span(), fields[5]) if rep.until else None
        stop_event = self._event(rep.stop_event) if rep.stop_event else None
        stop_visit = self.slots[rep.stop_visit][0].date if rep.stop_visit else None
        recorded = [n for c in self.records if (n := self._occurrence_of(v, c)) is not None]
        last_recorded = max(recorded, default=0)
        for k in range(MAX_OCCURRENCES + 1):
            n = k + 1
            target = shift(anchor_date, self.c.occurrence(v, n)[3], fields[6])
            ended = (
                (rep.count is not None and k >= rep.count)
                or (limit is not None and target > limit)
                or (stop_event is not None and target > stop_event)
                or (stop_visit is not None and target >= stop_visit)
            )
            if ended and f"{v.code}{n}" not in self.records:
                if n > last_recorded:
                    return
                continue
            if n > MAX_OCCURRENCES:
                # Never cut a schedule short quietly: a repeat this long is a protocol mistake.
                raise ProtocolError(
                    where, str(rep.every), f"does not end within {MAX_OCCURRENCES} occurrences"
                )
            yield self._plan(v, occurrence=n, target=target, anchor=anchor)

    @staticmethod
    def _occurrence_of(v: Visit, code: str) -> int | None:
        """The occurrence number ``code`` names (FU2 -> 2); None unless written canonically."""
        rest = code[len(v.code) :]
        return int(rest) if code.startswith(v.code) and _OCCURRENCE.fullmatch(rest) else None

    def _apply_record(
        self, slot: _Slot, anchor_actual: pendulum.Date | None, anchor: Anchor
    ) -> None:
        v, record = slot.visit, self.records.get(slot.code)
        if (
            record is None
            and v.code == self.protocol.screening_visit
            and self.today is not None
            and self.p.screening <= self.today
        ):
            # The screening date is a fact: once it is past, the screening visit took place.
            record = Record(v.code, self.p.screening)
        if record is None:
            if v.code in self.c.dosing and self.p.discontinued is not None:
                slot.status = VisitStatus.CANCELLED
                slot.reason = f"treatment discontinued on {self.p.discontinued}"
            elif self.p.withdrawn is not None and slot.target >= self.p.withdrawn:
                slot.status = VisitStatus.CANCELLED
                slot.reason = f"withdrawn from the study on {self.p.withdrawn}"
            elif self.today is not None and self.today > slot.latest:
                self.findings.append(
                    Finding(
                        FindingKind.OVERDUE,
                        slot.code,
                        f"latest date {slot.latest} has passed and nothing is recorded",
                    )
                )
            return
        slot.reason = record.reason
        if record.status is Status.MISSED:
            slot.status = VisitStatus.MISSED
            note = f": {record.reason}" if record.reason else ""
            self.findings.append(
                Finding(FindingKind.MISSED, slot.code, f"recorded as missed{note}")
            )
            return
        if record.status is Status.CANCELLED:
            slot.status = VisitStatus.CANCELLED
            return
        assert record.date is not None
        day = record.date
        if anchor_actual is not None and day < anchor_actual:
            what = "Day 1" if anchor.visit == self.protocol.day1_visit else str(anchor)
            raise VisitplanError(
                f"{slot.code}.date",
                day.isoformat(),
                f"is before {what} ({anchor_actual}); a visit cannot precede its anchor",
            )
        if not slot.earliest <= day <= slot.latest:
            if v.window.strict:
                raise VisitplanError(
                    f"{slot.code}.date",
                    day.isoformat(),
                    f"must be between {slot.earliest} and {slot.latest} "
                    f"(the strict window of {v.name})",
                )
            self.findings.append(
                Finding(
                    FindingKind.OUT_OF_WINDOW,
                    slot.code,
                    f"done {day}, outside its window {slot.earliest} to {slot.latest}",
                )
            )
        slot.status, slot.actual = VisitStatus.DONE, day

    def _resolve_last_dose(self) -> None:
        given: list[pendulum.Date] = []
        planned: list[pendulum.Date] = []
        for v in self.visits:
            if v.code not in self.c.dosing:
                continue
            for s in self.slots.get(v.code, []):
                if s.status is VisitStatus.DONE and s.actual is not None:
                    given.append(s.actual)
                elif s.status is VisitStatus.PLANNED:
                    planned.append(s.target)
        if planned and (not given or max(planned) > max(given)):
            self.last_dose, self.last_dose_actual = max(planned), False
        elif given:
            self.last_dose, self.last_dose_actual = max(given), True
        else:
            # No dose given and none to come (e.g. discontinued before Day 1): count from Day 1.
            d1 = self.slots[self.protocol.day1_visit][0]
            self.last_dose, self.last_dose_actual = d1.date, d1.actual is not None

    def _check_dose_gaps(self) -> None:
        gap = self.protocol.rules.min_dose_gap
        if gap is None:
            return
        given = sorted(
            (s.actual, s.code)
            for v in self.visits
            if v.code in self.c.dosing
            for s in self.slots.get(v.code, [])
            if s.actual is not None
        )
        for (before, _), (after, code) in itertools.pairwise(given):
            if after < shift(before, gap.span(), "rules.min_dose_gap"):
                days = after.toordinal() - before.toordinal()
                self.findings.append(
                    Finding(
                        FindingKind.DOSE_GAP,
                        code,
                        f"dose on {after} is {days} days after the previous one ({before}); "
                        f"the minimum is {gap}",
                    )
                )

    def _schedule(self) -> Schedule:
        day1 = self.slots[self.protocol.day1_visit][0].date
        epochs, procedures = self.c.epochs, self.c.procedures(self.p.flags)
        # A date is always truthy, so ``actual or target`` is ``_Slot.date`` without the
        # property call; the key runs once per visit planned.
        slots = sorted(
            (s for ss in self.slots.values() for s in ss),
            key=lambda s: (s.actual or s.target, s.index, s.occurrence or 0),
        )
        # Positional arguments in PlannedVisit's field order: attrs' __init__ binds them
        # faster than keywords, and this runs for every visit of every participant.
        visits = tuple(
            PlannedVisit(
                s.code,
                s.name,
                s.visit.kind,
                epochs[s.visit.epoch],
                s.target,
                s.earliest,
                s.latest,
                study_day(s.actual or s.target, day1),
                s.tentative,
                procedures[s.visit.code],
                s.status,
                s.actual,
                s.reason,
                s.visit.code,
                s.occurrence,
            )
            for s in slots
        )
        findings: tuple[Finding, ...] = ()
        if self.findings:
            order = {v.code: i for i, v in enumerate(visits)}
            findings = tuple(
                sorted(self.findings, key=lambda f: (order.get(f.visit, 0), f.kind.value))
            )
        return Schedule(
            protocol=self.protocol.id,
            participant=self.p.code,
            day1=day1,
            last_dose=self.last_dose,
            visits=visits,
            findings=findings,
            site=self.p.site,
            milestones=self._milestones(),
            recovery=(
                self._event(self.protocol.rules.recovery_event)
                if self.protocol.rules.recovery_event
                else None
            ),
        )


def _applies(condition: str | None, flags: frozenset[str]) -> bool:
    return condition is None or condition in flags
