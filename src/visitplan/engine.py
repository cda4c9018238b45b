"""The timeline engine: one pure function from protocol + participant facts to a schedule.

Every visit's and milestone's date is computed here, with the arithmetic of
:mod:`visitplan.dates`. A date is its anchor moved in one step by the sum of its spans
(offset, window, ``k * every`` for a repeat's k-th step), never by chaining steps. A visit
anchored on another counts from that visit's date (its actual date once done); a target
held by a not-before rule keeps the window after it, counted from the held date.
"""

from __future__ import annotations

import itertools
import operator

import attrs
import pendulum

from visitplan import facts, reasons
from visitplan.codes import occurrence_number

# The per-protocol tables; names the protocol checks and the cache tests read through here.
from visitplan.compiled import _COMPILED as _COMPILED
from visitplan.compiled import _COMPILED_MAX as _COMPILED_MAX
from visitplan.compiled import _LAST_DOSE as _LAST_DOSE
from visitplan.compiled import MAX_OCCURRENCES as MAX_OCCURRENCES
from visitplan.compiled import _compiled, _Copied, _Occurrence, _window_spans
from visitplan.compiled import _topological as _topological
from visitplan.compiled import dependency_order as dependency_order
from visitplan.dates import Span, Spans, shift, study_day, to_date
from visitplan.errors import ProtocolError, VisitplanError
from visitplan.i18n import _, language, ngettext
from visitplan.model import (
    Anchor,
    AnchorKind,
    MergeRule,
    Milestone,
    Protocol,
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
    new_visit,
)


def plan(
    protocol: Protocol, participant: Participant, *, today: pendulum.Date | None = None
) -> Schedule:
    """Plan ``participant`` under ``protocol``.

    Returns every visit that applies to the participant's flags, with its target, earliest
    and latest date, study day and status, in date order (monitoring occurrences done at
    another visit left out, see ``Visit.merge``); the milestones, the last dose and the
    recovery date the plan used; and the findings (out of window, dose gap, missed, overdue,
    held, unplanned). ``today`` reports overdue visits, counts the screening visit as done
    from its date on, and refuses a visit done, an event, a count, a discontinuation or a
    withdrawal dated after it; without it the result depends on the facts alone. The engine
    keeps per-protocol tables between calls; a result never depends on them.

    Raises :class:`VisitplanError` when the facts contradict the protocol (an unknown visit,
    a Day 1 outside the run-in, a dose before Day 1, ...), and its subclass
    :class:`ProtocolError` when the protocol cannot plan these facts (a repeat that does not
    end, a visit anchored on one that does not apply to the participant).
    """
    if not isinstance(protocol, Protocol):
        raise VisitplanError(
            "protocol",
            type(protocol).__name__,
            _("must be a visitplan Protocol (see visitplan.load)"),
        )
    if not isinstance(participant, Participant):
        raise VisitplanError(
            "participant", type(participant).__name__, _("must be a visitplan Participant")
        )
    return _Planner(protocol, participant, None if today is None else to_date(today, "today")).run()


#: An anchor's date for one participant, and whether it is an actual (recorded) date.
_Anchored = tuple[pendulum.Date, bool]


#: What ends a repeat for one participant, in this order: its anchor, the last target
#: ``anchor + until`` allows, the stop event's date, the stop visit's date and actual date,
#: whether no dose was given (the repeat hangs on a last dose that does not exist), and the
#: highest occurrence number recorded. A plain tuple, built and unpacked by these names
#: (see _repeat_ends): a NamedTuple's construction and unpacking cost more.
_RepeatEnds = tuple[
    _Anchored,
    pendulum.Date | None,
    pendulum.Date | None,
    pendulum.Date | None,
    pendulum.Date | None,
    bool,
    int,
]


class _Planner:
    def __init__(
        self, protocol: Protocol, participant: Participant, today: pendulum.Date | None
    ) -> None:
        self.protocol = protocol
        self.person = participant
        self.today = today
        self.compiled = _compiled(protocol)
        self.flagged = self.compiled.flagged(participant.flags)
        self.records = self._check_records()
        #: Visit code -> its planned occurrences. Every fact that moves or marks one is
        #: applied inside _plan; afterwards _merge only leaves some out, and study days are
        #: set again only when visits were planned before Day 1, or _merge left Day 1's first
        #: occurrence out (_with_study_days).
        self.slots: dict[str, list[PlannedVisit]] = {}
        #: Day 1's date once its visit is planned; visits planned before it get their study
        #: day (counted from Day 1) when it is known.
        self.day1: pendulum.Date | None = None
        self.last_dose: pendulum.Date | None = None
        self.last_dose_actual = False
        #: Why there is no last dose (no dose given and none to come), else None; the date
        #: that stands in for it (see _resolve_last_dose).
        self._no_dose: str | None = None
        self._no_dose_date: pendulum.Date | None = None
        self.findings: list[Finding] = []
        #: The facts other than records that can change a visit's status (see ``_plan``).
        self._dated_facts = (
            today is not None
            or participant.discontinued is not None
            or participant.withdrawn is not None
        )
        self._derived: dict[str, pendulum.Date | None] = {}
        self._doses_given: list[tuple[pendulum.Date, str]] = []
        #: The visit re-planned from the discontinuation date, once treatment has stopped.
        self._early_end = (
            protocol.rules.early_end_visit if participant.discontinued is not None else None
        )

    # -- facts -----------------------------------------------------------------------------
    def _check_records(self) -> dict[str, Record]:
        person = self.person
        facts.check(
            self.protocol,
            person,
            self.today,
            flags=self.compiled.conditions,
            events=self.compiled.known_events,
            is_dose=self._is_dose,
        )
        records: dict[str, Record] = {}
        for r in person.records:
            self.flagged.visit_of(r.code)
            if r.date is not None and r.date < person.screening:
                raise VisitplanError(
                    f"{r.code}.date",
                    r.date.isoformat(),
                    reasons.before_screening(person.screening),
                )
            future = self.today is not None and r.date is not None and r.date > self.today
            if r.status is Status.DONE and future:
                assert r.date is not None and self.today is not None
                raise VisitplanError(
                    f"{r.code}.date", r.date.isoformat(), reasons.after_today(self.today)
                )
            records[r.code] = r
        return records

    def _is_dose(self, code: str) -> bool:
        visit, _n = self.flagged.visit_of(code)
        return visit.code in self.compiled.dosing

    # -- planning --------------------------------------------------------------------------
    def run(self) -> Schedule:
        slots = self.slots
        day1_visit = self.protocol.day1_visit
        for step in self.flagged.steps:
            if step is None:
                self._resolve_last_dose()
                continue
            v, occurrence = step.visit, step.occurrence
            if occurrence is None:
                slots[v.code] = self._plan_repeat(v, step.copied)
            else:
                anchor = self._anchor_date(v.anchor, v)
                slots[v.code] = [self._plan(v, occurrence, step.copied, anchor)]
            if self.day1 is None and v.code == day1_visit and slots[v.code]:
                self._found_day1(slots[v.code][0].date)
        for v, copied in self.flagged.gapped:
            slots[v.code] = self._plan_gap(v, copied)
        if self.flagged.merging:
            self._merge()
        self._check_dose_gaps()
        return self._schedule()

    def _found_day1(self, day1: pendulum.Date) -> None:
        """Day 1 is known: give the visits planned before it their study day."""
        self.day1 = day1
        self._with_study_days(day1, skip=self.protocol.day1_visit)

    def _with_study_days(self, day1: pendulum.Date, skip: str | None = None) -> None:
        """Redo the planned visits (but ``skip``'s) with study days counted from ``day1``.

        Rare: Day 1 is planned as early as its anchors allow (see _Compiled).
        """
        for code, planned in self.slots.items():
            if code != skip:
                self.slots[code] = [
                    attrs.evolve(v, study_day=study_day(v.date, day1)) for v in planned
                ]

    def _event(self, name: str) -> pendulum.Date | None:
        """A participant event: its recorded date, else (the recovery event) derived from counts."""
        if name in self.person.events:
            return self.person.events[name]
        if name != self.protocol.rules.recovery_event:
            return None
        if name not in self._derived:
            if not self.slots.get(self.protocol.day1_visit):
                raise ProtocolError(
                    "rules.recovery_event",
                    name,
                    _(
                        "is derived from counts after Day 1: a visit waiting or stopping on it "
                        "must be planned after Day 1 (anchor it on Day 1 or the last dose)"
                    ),
                )
            day1 = self.slots[self.protocol.day1_visit][0].date
            self._derived[name] = derived_recovery(self.protocol, self.person, day1)
        return self._derived[name]

    def _merge(self) -> None:
        """Leave out monitoring occurrences done at another visit (see ``Visit.merge``)."""
        dropped: set[str] = set()
        for v in self.flagged.merging:
            if v.code not in self.slots:
                continue
            needs = {p.code for p in self.flagged.procedures[v.code]}
            hosts = [
                h
                for code, ss in self.slots.items()
                if code != v.code
                for h in ss
                if h.status in (VisitStatus.PLANNED, VisitStatus.DONE)
                and needs <= {p.code for p in h.procedures}
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
        for m, span in self.flagged.milestones:
            if self._no_dose is not None and m.anchor.kind is AnchorKind.LAST_DOSE:
                continue  # no dose given: no date after it (docs/events-and-conditions.md)
            anchor_date, actual = self._anchor_date(m.anchor, m)
            out.append(PlannedMilestone(m.code, m.name, shift(anchor_date, span), not actual))
        return tuple(sorted(out, key=lambda m: m.date))

    def _anchor_date(self, anchor: Anchor, owner: Visit | Milestone) -> _Anchored:
        """The anchor's date, and whether it is an actual (recorded) date."""
        kind = anchor.kind
        if kind is AnchorKind.VISIT:
            slots = self.slots.get(anchor.visit or "")
            if not slots:
                raise ProtocolError(
                    f"{'visits' if isinstance(owner, Visit) else 'milestones'}.{owner.code}.anchor",
                    anchor.visit,
                    _("anchors on a visit that does not apply to this participant"),
                )
            actual = slots[0].actual
            return (slots[0].target, False) if actual is None else (actual, True)
        if kind is AnchorKind.SCREENING:
            return self.person.screening, True
        if self.last_dose is None:
            assert self._no_dose_date is not None
            return self._no_dose_date, False
        return self.last_dose, self.last_dose_actual

    def _plan(
        self,
        v: Visit,
        occ: _Occurrence,
        copied: _Copied,
        anchor: _Anchored,
        number: int | None = None,
        dates: tuple[pendulum.Date, pendulum.Date, pendulum.Date] | None = None,
    ) -> PlannedVisit:
        """Plan one occurrence (``number`` of a repeat) of ``v`` from its ``anchor``.

        A repeat passes the target, earliest and latest ``dates`` it already computed to
        decide whether it has ended. Every fact that moves or marks the occurrence is applied
        here; only its study day may be set again (see ``self.slots``).
        """
        anchor_date, anchor_actual = anchor
        code = occ.code
        if self._no_dose is not None and v.anchor.kind is AnchorKind.LAST_DOSE:
            # No dose given: not planned, on the date standing in for it, with no window.
            assert self._no_dose_date is not None
            target = earliest = latest = self._no_dose_date
            tentative = False
            status, actual, reason = self._not_planned(code, number)
        else:
            if v.code == self._early_end:
                assert self.person.discontinued is not None
                anchor_date, anchor_actual = self.person.discontinued, True
                fields = self.compiled.fields[v.code]
                spans = Spans(
                    _window_spans(v, Span()), (fields.offset, fields.before, fields.after)
                )
                dates = spans.apply(anchor_date)
            elif dates is None:
                dates = occ.spans.apply(anchor_date)
            target, earliest, latest = dates
            tentative = False
            if v.wait_for:
                event = self._event(v.wait_for)
                if event is None:
                    target, tentative = latest, True
                else:
                    target = min(max(event, earliest), latest)
            if v.not_before and not (
                # No dose given: no floor counts from a dose that does not exist.
                self._no_dose is not None and v.not_before.anchor.kind is AnchorKind.LAST_DOSE
            ):
                floor_anchor, _actual = self._anchor_date(v.not_before.anchor, v)
                fields = self.compiled.fields[v.code]
                floor = shift(floor_anchor, self.compiled.not_before[v.code], fields.not_before)
                if target < floor:
                    self.findings.append(
                        Finding(
                            FindingKind.HELD,
                            code,
                            _("target {target} held to {floor} ({anchor} + {offset})").format(
                                target=target,
                                floor=floor,
                                anchor=v.not_before.anchor,
                                offset=v.not_before.offset,
                            ),
                        )
                    )
                    # The held target keeps the protocol's window after it (EOT held to last
                    # dose + 21 days is still due up to 7 days later), never opens before it.
                    target = floor
                    earliest = max(earliest, floor)
                    latest = max(latest, shift(floor, self.compiled.after[v.code], fields.after))
            status, actual, reason = _PLANNED, None, None
            # Without a record for this occurrence, _apply_record only acts on today, a
            # discontinuation or a withdrawal; most participants have none of them, so skip it.
            if self._dated_facts or code in self.records:
                status, actual, reason = self._apply_record(
                    v, code, target, earliest, latest, anchor_date if anchor_actual else None
                )
            if status is not _PLANNED:
                tentative = False  # done, missed or cancelled: the date waits for nothing
        day1 = self.day1
        if day1 is None and v.code == self.protocol.day1_visit:
            day1 = actual or target  # the first occurrence of Day 1's visit is Day 1
        # This runs for every visit of every participant: see new_visit.
        return new_visit(
            code,
            occ.name,
            copied.kind,
            copied.epoch,
            target,
            earliest,
            latest,
            0 if day1 is None else study_day(actual or target, day1),
            tentative,
            copied.procedures,
            status,
            actual,
            reason,
            v.code,
            number,
        )

    def _not_planned(
        self, code: str, number: int | None
    ) -> tuple[VisitStatus, pendulum.Date | None, str | None]:
        """Status, actual date and reason of an occurrence anchored on the last dose when no
        dose was given (_resolve_last_dose): cancelled with the reason; a record of it is kept
        as recorded, and flagged as outside the plan (a repeat's own loop flags its
        occurrences)."""
        assert self._no_dose is not None
        record = self.records.get(code)
        if record is None:
            return (
                VisitStatus.CANCELLED,
                None,
                _("not planned: {why}").format(why=self._no_dose),
            )
        if number is None:
            self._unplanned(code, self._no_dose)
        actual = record.date if record.status is Status.DONE else None
        return _RECORDED[record.status], actual, record.reason

    def _repeat_ends(self, v: Visit) -> _RepeatEnds:
        """What ends repeat ``v`` for this participant (see _RepeatEnds)."""
        rep = v.repeat
        assert rep is not None
        anchor = self._anchor_date(v.anchor, v)
        anchor_date, _ = anchor
        stop = self.slots[rep.stop_visit][0] if rep.stop_visit else None
        limit = None
        if rep.until:
            fields = self.compiled.fields[v.code]
            limit = shift(anchor_date, self.compiled.until[v.code], fields.until)
        stop_event = self._event(rep.stop_event) if rep.stop_event else None
        stop_visit = None if stop is None else stop.date
        # Once the stop visit is done, an occurrence done after it is outside the plan.
        stop_done = None if stop is None else stop.actual
        # No dose given: nothing anchored on the last dose is planned (_resolve_last_dose).
        no_dose = self._no_dose is not None and v.anchor.kind is AnchorKind.LAST_DOSE
        records = self.records
        last_recorded = (
            max((n for c in records if (n := occurrence_number(c, v.code)) is not None), default=0)
            if records
            else 0
        )
        return anchor, limit, stop_event, stop_visit, stop_done, no_dose, last_recorded

    def _plan_repeat(self, v: Visit, copied: _Copied) -> list[PlannedVisit]:
        rep = v.repeat
        assert rep is not None
        anchor, limit, stop_event, stop_visit, stop_done, no_dose, last_recorded = (
            self._repeat_ends(v)
        )
        anchor_date, _actual = anchor
        fields = self.compiled.fields[v.code]
        records = self.records
        known = self.compiled.repeat(v, 16)
        planned: list[PlannedVisit] = []
        for k in range(MAX_OCCURRENCES + 1):
            n = k + 1
            if k == len(known):
                known = self.compiled.repeat(v, min(2 * n, MAX_OCCURRENCES + 1))
            occ = known[k]
            spans = occ.spans
            dates: tuple[pendulum.Date, pendulum.Date, pendulum.Date] | None
            try:
                dates = spans.apply(anchor_date)
                target, _earliest, _latest = dates
            except VisitplanError:
                # A date beyond the calendar: the target's error comes first, and the window's
                # only if the occurrence is planned (the repeat may have ended before it).
                dates = None
                target = shift(anchor_date, spans.spans[0], fields.every)
            ended = (
                no_dose
                or (rep.count is not None and k >= rep.count)
                or (limit is not None and target > limit)
                or (stop_event is not None and target > stop_event)
                or (stop_visit is not None and target >= stop_visit)
            )
            if ended and occ.code not in records:
                if n > last_recorded:
                    return planned
                continue
            if n > MAX_OCCURRENCES:
                # Never cut a schedule short quietly: a repeat this long is a protocol mistake.
                raise ProtocolError(
                    fields.repeat,
                    str(rep.every),
                    reasons.no_end(MAX_OCCURRENCES),
                )
            pv = self._plan(v, occ, copied, anchor, n, dates)
            planned.append(pv)
            if ended:
                # A record of an occurrence the plan does not have: kept, and flagged.
                why = self._ended_why(v, k, target, limit, stop_event, stop_visit)
                self._unplanned(occ.code, why)
            elif stop_done is not None and pv.actual is not None and pv.actual > stop_done:
                self._unplanned(
                    occ.code, reasons.done_after_stop(pv.actual, rep.stop_visit, stop_done)
                )
        return planned  # not reached: the loop returns or raises at MAX_OCCURRENCES + 1

    def _ended_why(
        self,
        v: Visit,
        k: int,
        target: pendulum.Date,
        limit: pendulum.Date | None,
        stop_event: pendulum.Date | None,
        stop_visit: pendulum.Date | None,
    ) -> str:
        """Why occurrence ``k`` (from 0) of repeat ``v``, at ``target``, is not in the plan."""
        if self._no_dose is not None and v.anchor.kind is AnchorKind.LAST_DOSE:
            return self._no_dose
        return reasons.ended(v, k, target, limit, stop_event, stop_visit)

    def _unplanned(self, code: str, why: str) -> None:
        self.findings.append(
            Finding(
                FindingKind.UNPLANNED,
                code,
                _("recorded, but not in the plan: {why}").format(why=why),
            )
        )

    def _plan_gap(self, v: Visit, copied: _Copied) -> list[PlannedVisit]:
        """The occurrences of maximum-gap visit ``v`` (merge = "gap", see MergeRule.GAP).

        Walks forward from the anchor: the next occurrence would be ``offset`` after the
        anchor, or ``k * every`` after the last visit doing its procedures (its actual date
        once done, else its target), each computed from that date in one step. When one of
        those visits falls after that date and on or before the occurrence's latest date, the
        walk moves on to the last of them; otherwise the occurrence is needed and gets the next
        number. The repeat's end (count, until, stop event, stop visit) applies as for any
        repeat. A recorded occurrence keeps its number; once done, the next gap counts from
        its actual date. Records beyond the occurrences needed are kept and flagged.
        """
        rep = v.repeat
        assert rep is not None
        anchor, limit, stop_event, stop_visit, stop_done, no_dose, last_recorded = (
            self._repeat_ends(v)
        )
        fields = self.compiled.fields[v.code]
        records = self.records
        hosts = sorted(
            h.date
            for code in self.flagged.hosts[v.code]
            for h in self.slots.get(code, ())
            if h.status is _PLANNED or h.status is VisitStatus.DONE
        )
        known = self.compiled.repeat(v, 4)
        planned: list[PlannedVisit] = []
        # The walk: ``base`` is the anchor (k-th occurrence from it: offset + k * every) or,
        # once one is found, the last visit doing the procedures (k * every after it).
        anchor_date, _actual = anchor
        base, from_anchor, k = anchor_date, True, 0
        n = 0  # occurrences numbered so far
        needed = -1  # how many the plan needs, once the repeat has ended
        i = 0  # hosts[i:] are the visits after base
        while True:
            spans = (
                self.compiled.repeat(v, k + 1)[k].spans if from_anchor else self.compiled.gap(v, k)
            )
            dates = spans.apply(base)
            target, _earliest, latest = dates
            ended = (
                no_dose
                or (rep.count is not None and n >= rep.count)
                or (limit is not None and target > limit)
                or (stop_event is not None and target > stop_event)
                or (stop_visit is not None and target >= stop_visit)
            )
            if not ended:
                while i < len(hosts) and hosts[i] <= base:
                    i += 1
                j = i
                while j < len(hosts) and hosts[j] <= latest:
                    j += 1
                if j > i:  # done at the last visit doing the procedures by its latest date
                    base, from_anchor, k, i = hosts[j - 1], False, 1, j
                    continue
            else:
                if needed < 0:
                    needed = n  # the occurrences the plan needs; records after it are extra
                if n >= last_recorded:
                    return planned
            n += 1
            if n > MAX_OCCURRENCES:
                raise ProtocolError(
                    fields.repeat,
                    str(rep.every),
                    reasons.no_end(MAX_OCCURRENCES),
                )
            if n > len(known):
                known = self.compiled.repeat(v, min(2 * n, MAX_OCCURRENCES))
            occ = known[n - 1]
            if ended and occ.code not in records:
                k += 1
                continue
            record = records.get(occ.code)
            if ended and record is not None and record.date is not None:
                dates = (record.date, record.date, record.date)  # no position: its own date
            pv = self._plan(v, occ, copied, anchor, n, dates)
            planned.append(pv)
            if ended:
                why = (
                    self._no_dose
                    if self._no_dose is not None and no_dose
                    else ngettext(
                        "{n} occurrence of {code} needed: the visits doing its procedures leave "
                        "no other gap over {every}",
                        "{n} occurrences of {code} needed: the visits doing its procedures "
                        "leave no other gap over {every}",
                        needed,
                    ).format(n=needed, code=v.code, every=rep.every)
                )
                self._unplanned(occ.code, why)
            elif stop_done is not None and pv.actual is not None and pv.actual > stop_done:
                self._unplanned(
                    occ.code, reasons.done_after_stop(pv.actual, rep.stop_visit, stop_done)
                )
            if pv.actual is not None and pv.actual > base:
                base, from_anchor, k = pv.actual, False, 1
            else:
                k += 1

    def _apply_record(
        self,
        v: Visit,
        code: str,
        target: pendulum.Date,
        earliest: pendulum.Date,
        latest: pendulum.Date,
        anchor_actual: pendulum.Date | None,
    ) -> tuple[VisitStatus, pendulum.Date | None, str | None]:
        """Status, actual date and reason of occurrence ``code`` from what is recorded."""
        record = self.records.get(code)
        if (
            record is None
            and v.code == self.protocol.screening_visit
            and self.today is not None
            and self.person.screening <= self.today
        ):
            # The screening date is a fact: once it is past, the screening visit took place.
            record = Record(v.code, self.person.screening)
        if record is None:
            if v.code in self.compiled.dosing and self.person.discontinued is not None:
                reason = _("treatment discontinued on {day}").format(day=self.person.discontinued)
                return VisitStatus.CANCELLED, None, reason
            if self.person.withdrawn is not None and target >= self.person.withdrawn:
                reason = _("withdrawn from the study on {day}").format(day=self.person.withdrawn)
                return VisitStatus.CANCELLED, None, reason
            if self.today is not None and self.today > latest:
                self.findings.append(
                    Finding(
                        FindingKind.OVERDUE,
                        code,
                        _("latest date {latest} has passed and nothing is recorded").format(
                            latest=latest
                        ),
                    )
                )
            return VisitStatus.PLANNED, None, None
        if record.status is Status.MISSED:
            self.findings.append(Finding(FindingKind.MISSED, code, reasons.missed(record.reason)))
            return VisitStatus.MISSED, None, record.reason
        if record.status is Status.CANCELLED:
            return VisitStatus.CANCELLED, None, record.reason
        assert record.date is not None
        day = record.date
        if anchor_actual is not None and day < anchor_actual:
            what = _("Day 1") if v.anchor.visit == self.protocol.day1_visit else str(v.anchor)
            raise VisitplanError(
                f"{code}.date",
                day.isoformat(),
                _("is before {what} ({anchor_actual}); a visit cannot precede its anchor").format(
                    what=what, anchor_actual=anchor_actual
                ),
            )
        if not earliest <= day <= latest:
            if v.window.strict:
                raise VisitplanError(
                    f"{code}.date",
                    day.isoformat(),
                    reasons.outside_strict_window(earliest, latest, v.name_in(language())),
                )
            self.findings.append(
                Finding(
                    FindingKind.OUT_OF_WINDOW,
                    code,
                    _("done {day}, outside its window {earliest} to {latest}").format(
                        day=day, earliest=earliest, latest=latest
                    ),
                )
            )
        return VisitStatus.DONE, day, record.reason

    def _resolve_last_dose(self) -> None:
        given = self._doses_given = self._given_doses()
        planned: list[pendulum.Date] = []
        for code in self.flagged.dosing:
            for s in self.slots.get(code, ()):
                if s.status is VisitStatus.PLANNED:
                    planned.append(s.target)
        if planned and (not given or max(planned) > given[-1][0]):
            self.last_dose, self.last_dose_actual = max(planned), False
        elif given:
            self.last_dose, self.last_dose_actual = given[-1][0], True
        else:
            # No dose given and none to come (Day 1 missed, then discontinued; or withdrawn
            # before it): there is no last dose, and nothing is hung on a dose never given.
            # Visits anchored on it are not planned (cancelled, with this reason), milestones
            # anchored on it left out, floors on it do not apply. The date standing in for it
            # only places those cancelled visits: the day treatment ended (discontinuation),
            # else the withdrawal, else the last dosing visit's date.
            self.last_dose = None
            self._no_dose = _("no dose of the study drug was given")
            person = self.person
            stops = [d for d in (person.discontinued, person.withdrawn) if d is not None]
            if person.discontinued is not None:
                self._no_dose = _("{why} (treatment discontinued on {day})").format(
                    why=self._no_dose, day=person.discontinued
                )
            dosing = [s.date for code in self.flagged.dosing for s in self.slots.get(code, ())]
            self._no_dose_date = stops[0] if stops else max(dosing, default=person.screening)

    def _given_doses(self) -> list[tuple[pendulum.Date, str]]:
        """(actual date, code) of every dose given, in date order."""
        return sorted(
            (s.actual, s.code)
            for code in self.flagged.dosing
            for s in self.slots.get(code, ())
            if s.actual is not None
        )

    def _check_dose_gaps(self) -> None:
        span = self.compiled.min_gap
        if span is None:
            return
        # The doses found for the last dose, unless _merge has since left some visits out.
        given = self._given_doses() if self.flagged.merging else self._doses_given
        if len(given) < 2:
            return
        for (before, _code), (after, code) in itertools.pairwise(given):
            if after < shift(before, span, "rules.min_dose_gap"):
                days = after.toordinal() - before.toordinal()
                self.findings.append(
                    Finding(
                        FindingKind.DOSE_GAP,
                        code,
                        reasons.dose_gap(after, before, days, self.protocol.rules.min_dose_gap),
                    )
                )

    def _schedule(self) -> Schedule:
        day1 = self.slots[self.protocol.day1_visit][0].date
        facts.check_day1(self.protocol, self.person, day1)
        if day1 != self.day1:  # Day 1's first occurrence was left out by _merge
            self._with_study_days(day1)
        # In date order, ties in the protocol's order of visits, then by occurrence. A study
        # day grows with the date, so a stable sort on it of the visits in protocol order
        # (each repeat's occurrences in order) gives exactly that, with a key written in C
        # instead of a Python function called for every visit planned.
        slots = self.slots
        visits = tuple(
            sorted(
                (
                    v
                    for visit in self.flagged.visits
                    if visit.code in slots
                    for v in slots[visit.code]
                ),
                key=_STUDY_DAY,
            )
        )
        findings: tuple[Finding, ...] = ()
        if self.findings:
            order = {v.code: i for i, v in enumerate(visits)}
            findings = tuple(
                sorted(self.findings, key=lambda f: (order.get(f.visit, 0), f.kind.value))
            )
        recovery = self.protocol.rules.recovery_event
        # Positional, in Schedule's field order.
        return Schedule(
            self.protocol.id,
            self.person.code,
            day1,
            self.last_dose,
            visits,
            findings,
            self.person.site,
            self._milestones() if self.flagged.milestones else (),
            self._event(recovery) if recovery else None,
        )


_PLANNED = VisitStatus.PLANNED
_RECORDED = {
    Status.DONE: VisitStatus.DONE,
    Status.MISSED: VisitStatus.MISSED,
    Status.CANCELLED: VisitStatus.CANCELLED,
}
_STUDY_DAY = operator.attrgetter("study_day")
