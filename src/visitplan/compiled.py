"""What planning derives from a protocol alone, worked out when it is first planned.

The engine (:mod:`visitplan.engine`) plans every participant against these tables: the
dependency order of anchors, the spans of offsets and windows, the visits, procedures and
planning steps that apply to a set of flags. They are kept per protocol object in a bounded
cache (a protocol pushed out is worked out again). Nothing here computes a participant's date.
"""

from __future__ import annotations

import graphlib

import attrs

from visitplan import facts
from visitplan.codes import occurrence_number
from visitplan.dates import Span, Spans
from visitplan.errors import ProtocolError, VisitplanError
from visitplan.i18n import _
from visitplan.model import (
    AnchorKind,
    Epoch,
    MergeRule,
    Procedure,
    Protocol,
    Visit,
    VisitKind,
)

_LAST_DOSE = "@last_dose"
#: The most occurrences of a repeat. A protocol file's repeat needs a count (at most this) or
#: an until, and is refused without; a Protocol built in Python is not checked, so the engine
#: refuses a repeat that has not ended after this many occurrences.
MAX_OCCURRENCES = 1000


def dependency_order(protocol: Protocol) -> list[str]:
    """Visit codes, and ``"@last_dose"`` for the last dose, in an order where every anchor
    comes before what depends on it.

    Raises :class:`ProtocolError` on an anchor cycle, an anchor or stop visit that names an
    unknown visit, or a ``merge = "gap"`` visit without a repeat.
    """
    return _topological(_dependencies(protocol))


def _topological(graph: dict[str, set[str]]) -> list[str]:
    """The codes of a dependency graph (see _dependencies) in planning order."""
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
            "visits", " -> ".join([*loop, loop[0]]), _("anchors form a cycle")
        ) from None


def _dependencies(protocol: Protocol) -> dict[str, set[str]]:
    """Visit code (or the last dose) -> what must be planned before it."""
    codes = {v.code for v in protocol.visits}
    graph: dict[str, set[str]] = {_LAST_DOSE: {v.code for v in protocol.visits if v.is_dosing}}
    for v in protocol.visits:
        if v.merge is MergeRule.GAP and v.repeat is None:
            raise ProtocolError(
                f"visits.{v.code}.merge", "gap", _("needs a repeat: its every is the longest gap")
            )
        deps: set[str] = set()
        anchors = [v.anchor] + ([v.not_before.anchor] if v.not_before else [])
        for a in anchors:
            if a.kind is AnchorKind.VISIT:
                if a.visit not in codes:
                    raise ProtocolError(f"visits.{v.code}.anchor", a.visit, _("unknown visit"))
                deps.add(a.visit)
            elif a.kind is AnchorKind.LAST_DOSE:
                deps.add(_LAST_DOSE)
        if v.repeat and v.repeat.stop_visit:
            if v.repeat.stop_visit not in codes:
                raise ProtocolError(
                    f"visits.{v.code}.repeat.stop_visit", v.repeat.stop_visit, _("unknown visit")
                )
            deps.add(v.repeat.stop_visit)
        graph[v.code] = deps
    return graph


# The values below are made once per protocol (or flag set) and read for every visit of every
# plan: frozen slotted classes, not NamedTuples, because CPython 3.11 reads a slot with one
# specialised instruction, while a NamedTuple's field reads and its unpacking take the
# interpreter's generic paths (docs/performance.md, "Names in the engine").
@attrs.frozen
class _Occurrence:
    """A visit occurrence, as far as it does not depend on the participant."""

    #: ``W4``; ``FU2`` for the second occurrence of repeating visit ``FU``.
    code: str
    #: ``Week 4``; ``Follow-up 2``.
    name: str
    #: The target, earliest and latest spans from the visit's anchor.
    spans: Spans


@attrs.frozen
class _Copied:
    """What a PlannedVisit copies from its visit, for one set of flags."""

    kind: VisitKind
    epoch: Epoch
    #: The visit's procedures that apply to those flags.
    procedures: tuple[Procedure, ...]


@attrs.frozen
class _Step:
    """One visit of the planning order."""

    visit: Visit
    #: None for a repeat: its occurrences are worked out as it is planned.
    occurrence: _Occurrence | None
    copied: _Copied


@attrs.frozen
class _FieldNames:
    """The protocol fields a visit's date errors name (``visits.W4.offset``, ...)."""

    offset: str
    before: str
    after: str
    not_before: str
    repeat: str
    until: str
    every: str


class _Flagged:
    """What planning derives from the protocol and one set of participant flags.

    Built once per flag set (only the flags the protocol looks at) and shared, read-only, by
    every plan with those flags, so that no plan rebuilds these tables or scans every visit of
    the protocol for the few it needs (figures in docs/performance.md).
    """

    __slots__ = (
        "by_code",
        "copied",
        "dosing",
        "gapped",
        "hosts",
        "merging",
        "milestones",
        "procedures",
        "protocol",
        "steps",
        "visits",
    )

    def __init__(self, compiled: _Compiled, flags: frozenset[str]) -> None:
        protocol = self.protocol = compiled.protocol
        self.visits = tuple(v for v in protocol.visits if _applies(v.condition, flags))
        self.by_code = {v.code: v for v in self.visits}
        self.procedures = {
            v.code: tuple(p for p in v.procedures if _applies(p.condition, flags))
            for v in protocol.visits
        }
        #: Visit code -> what a PlannedVisit copies from its visit.
        self.copied = {
            v.code: _Copied(v.kind, compiled.epochs[v.epoch], self.procedures[v.code])
            for v in self.visits
        }
        #: The planning order: each applicable visit with its occurrence (None for a repeat,
        #: whose occurrences are worked out as it is planned) and what its PlannedVisits copy
        #: from it, and None where the last dose resolves.
        steps: list[_Step | None] = []
        #: Maximum-gap monitoring visits (merge = "gap"): planned last, once every visit that
        #: could do their procedures is (nothing can anchor on them: they repeat).
        self.gapped = tuple(
            (v, self.copied[v.code]) for v in self.visits if v.merge is MergeRule.GAP
        )
        #: Gap visit code -> the codes of the other visits doing all its procedures.
        self.hosts = {
            v.code: tuple(
                h.code
                for h in self.visits
                if h is not v
                and {p.code for p in self.procedures[v.code]}
                <= {p.code for p in self.procedures[h.code]}
            )
            for v, _ in self.gapped
        }
        for code in compiled.order:
            if code == _LAST_DOSE:
                steps.append(None)
            elif code in self.by_code and self.by_code[code].merge is not MergeRule.GAP:
                v = self.by_code[code]
                occurrence = None if v.repeat else compiled.occurrence(v, None)
                steps.append(_Step(v, occurrence, self.copied[code]))
        self.steps = tuple(steps)
        self.dosing = tuple(v.code for v in self.visits if v.code in compiled.dosing)
        self.merging = tuple(
            v for v in self.visits if v.merge is not None and v.merge is not MergeRule.GAP
        )
        #: Each applicable milestone with the span of its offset.
        self.milestones = tuple(
            (m, m.offset.span()) for m in protocol.milestones if _applies(m.condition, flags)
        )

    def visit_of(self, code: str) -> tuple[Visit, int | None]:
        """The definition and occurrence number a recorded visit code names (FU2: FU, 2), or a
        one-line refusal: a code the protocol does not have, or a visit for other flags."""
        by_code = self.by_code
        if code in by_code and by_code[code].repeat is None:
            return by_code[code], None
        for v in self.visits:
            n = occurrence_number(code, v.code) if v.repeat else None
            if n is not None and n > MAX_OCCURRENCES:
                raise VisitplanError(
                    "visit",
                    code,
                    _("a repeat has at most {MAX_OCCURRENCES} occurrences").format(
                        MAX_OCCURRENCES=MAX_OCCURRENCES
                    ),
                )
            if n is not None:
                return v, n
        known = [v.code if v.repeat is None else f"{v.code}<n>" for v in self.visits]
        missing = [v for v in self.protocol.visits if v.code == code and v not in self.visits]
        rule = (
            _("applies only to participants flagged {flag}").format(flag=missing[0].condition)
            if missing
            else _("unknown visit code for {study}; known: {known}").format(
                study=self.protocol.id, known=", ".join(known)
            )
        )
        raise VisitplanError("visit", code, rule)


class _Compiled:
    """What planning derives from the protocol alone, worked out when it is first planned.

    Without it the engine would redo this for every participant: the graphlib dependency
    order, the spans of offsets and windows (attrs ``Span`` objects), ``Visit.is_dosing`` (a
    scan of procedures) and the visits and procedures that apply to a participant's flags
    (figures in docs/performance.md). A protocol is frozen, so the order and the tables that
    need no participant are made when it is first planned, and the occurrences, gap spans and
    per-flag-set tables as they are asked for.
    """

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        graph = _dependencies(protocol)
        self.order = _topological(graph)
        # Day 1 as early as its own anchors allow: every study day counts from it, and a visit
        # planned before it must be built again once it is known (_found_day1).
        day1 = protocol.day1_visit
        if day1 in self.order:
            before = graph[day1]
            place = max((self.order.index(c) for c in before), default=-1) + 1
            self.order.insert(place, self.order.pop(self.order.index(day1)))
        self.epochs = {e.code: e for e in protocol.epochs}
        self.dosing = frozenset(v.code for v in protocol.visits if v.is_dosing)
        #: The flags the protocol looks at; other flags cannot change a plan, and keying the
        #: per-flag caches on these alone keeps them bounded whatever flags the data carries.
        self.conditions = facts.known_flags(protocol)
        self.known_events = facts.known_events(protocol)
        #: The spans every plan applies, made once (``Offset.span()`` builds a new Span).
        self.not_before = {
            v.code: v.not_before.offset.span() for v in protocol.visits if v.not_before
        }
        #: The window's after-span of a visit with a floor: a held target keeps it (rule 1 of
        #: docs/events-and-conditions.md, "Held dates").
        self.after = {v.code: v.window.after.span() for v in protocol.visits if v.not_before}
        self.until = {
            v.code: v.repeat.until.span() for v in protocol.visits if v.repeat and v.repeat.until
        }
        gap = protocol.rules.min_dose_gap
        self.min_gap = None if gap is None else gap.span()
        self._flagged: dict[frozenset[str], _Flagged] = {}
        self._raw: dict[frozenset[str], _Flagged] = {}
        self._occurrences: dict[tuple[str, int | None], _Occurrence] = {}
        self._repeats: dict[str, list[_Occurrence]] = {}
        self._gaps: dict[tuple[str, int], Spans] = {}
        #: Visit code -> the field names its date errors report. Built once: formatting them
        #: for every occurrence planned cost more than the error path they serve ever runs.
        self.fields = {
            v.code: _FieldNames(
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

    def flagged(self, flags: frozenset[str]) -> _Flagged:
        """The visits, steps and procedures that apply to a participant with these flags."""
        found = self._raw.get(flags)
        if found is None:
            relevant = flags & self.conditions
            found = self._flagged.get(relevant)
            if found is None:
                found = self._flagged[relevant] = _Flagged(self, relevant)
            if len(self._raw) < 64:  # keyed on the raw flags, so bound it
                self._raw[flags] = found
        return found

    def repeat(self, v: Visit, count: int) -> list[_Occurrence]:
        """The first ``count`` (at least) occurrences of repeating visit ``v``, in order."""
        known = self._repeats.get(v.code, [])
        if len(known) < count:
            # A new list, never one extended in place: another thread may be reading it.
            known = known + [self.occurrence(v, n) for n in range(len(known) + 1, count + 1)]
            self._repeats[v.code] = known
        return known

    def gap(self, v: Visit, k: int) -> Spans:
        """Target/earliest/latest spans of ``k`` times ``v.repeat.every`` (a maximum-gap
        visit's occurrence after the last visit doing its procedures), made once."""
        key = (v.code, k)
        found = self._gaps.get(key)
        if found is None:
            assert v.repeat is not None
            fields = self.fields[v.code]
            span = v.repeat.every.span().times(k)
            found = Spans(_window_spans(v, span), (fields.every, fields.before, fields.after))
            if len(self._gaps) < 4096:
                self._gaps[key] = found
        return found

    def occurrence(self, v: Visit, occurrence: int | None) -> _Occurrence:
        """Code, name and target/earliest/latest spans of ``v``'s occurrence.

        Everything about a visit occurrence that does not depend on the participant, in one
        look-up made once: otherwise every occurrence of every plan would format ``FU2`` /
        "Follow-up 2" and make its spans again (docs/performance.md).
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
            fields = self.fields[v.code]
            # A repeat's target is reported as its ``every`` (the occurrence's own offset).
            first = fields.offset if occurrence is None else fields.every
            spans = Spans(_window_spans(v, span), (first, fields.before, fields.after))
            found = _Occurrence(code, name, spans)
            self._occurrences[key] = found
        return found


def _window_spans(v: Visit, span: Span) -> tuple[Span, Span, Span]:
    """``span`` and the spans of ``v``'s earliest and latest dates around it."""
    return span, span - v.window.before.span(), span + v.window.after.span()


#: id(protocol) -> (protocol, its _Compiled). The protocol is kept alive by the entry so that
#: its id cannot be reused by another object. Identity is the key because hashing a Protocol
#: hashes every nested visit, which would cost more than planning a participant.
_COMPILED: dict[int, tuple[Protocol, _Compiled]] = {}
_COMPILED_MAX = 32


def _compiled(protocol: Protocol) -> _Compiled:
    hit = _COMPILED.get(id(protocol))
    if hit is not None:
        kept, compiled = hit
        if kept is protocol:
            return compiled
    compiled = _Compiled(protocol)
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.clear()  # a simple bound, safe under threads; recompiling is cheap
    _COMPILED[id(protocol)] = (protocol, compiled)
    return compiled


def _applies(condition: str | None, flags: frozenset[str]) -> bool:
    return condition is None or condition in flags
