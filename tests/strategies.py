"""Hypothesis strategies: random valid protocols and participant histories for them.

A random protocol has visits V0..Vn. V0 is Day 1 (a dosing visit anchored on screening); each
later visit anchors on screening, on an earlier non-repeating visit or on the last dose, so
the anchors never form a cycle. A visit that depends (even indirectly) on the last dose never
gives a dose (that would be a cycle too). Offsets mix days, weeks and months, windows are
asymmetric, some visits repeat (by count or until), some have a not-before floor, some wait for
an event and some apply only to flagged participants.
"""

from __future__ import annotations

import datetime as dt
import functools

from hypothesis import strategies as st

from visitplan import Participant, Record
from visitplan.model import (
    Anchor,
    AnchorKind,
    Dose,
    Epoch,
    NotBefore,
    Offset,
    Procedure,
    ProcedureKind,
    Protocol,
    Repeat,
    Unit,
    Visit,
    VisitKind,
    Window,
)

DOSE = Procedure("DOSE", "Study drug", ProcedureKind.DOSE, None, Dose("drug", 100.0))
EXAM = Procedure("EXAM", "Exam", ProcedureKind.EXAM)
EPOCHS = (Epoch("RUNIN", "Run-in"), Epoch("TREAT", "Treatment"), Epoch("FOLLOW", "Follow-up"))
FLAGS = ("flag_a", "flag_b")
EVENTS = ("event_a",)

screenings = st.dates(dt.date(1990, 1, 1), dt.date(2140, 12, 31))


@functools.cache  # building strategies is costly; these are drawn from thousands of times
def offsets(lo_days: int, hi_days: int) -> st.SearchStrategy[Offset]:
    """An offset of roughly ``lo_days``..``hi_days`` in days, weeks or months."""
    return st.one_of(
        st.builds(Offset, st.integers(lo_days, hi_days), st.just(Unit.DAYS)),
        st.builds(Offset, st.integers(lo_days // 7, hi_days // 7), st.just(Unit.WEEKS)),
        st.builds(Offset, st.integers(lo_days // 30, hi_days // 30), st.just(Unit.MONTHS)),
    )


windows = st.builds(Window, offsets(0, 60), offsets(0, 60), st.just(False))


@st.composite
def protocols(draw: st.DrawFn, max_visits: int = 8) -> Protocol:
    n = draw(st.integers(1, max_visits))
    day1 = Visit(
        "V0",
        "Visit 0",
        VisitKind.DOSING,
        "TREAT",
        Anchor.screening(),
        draw(offsets(0, 40)),
        Window(draw(offsets(0, 30)), Offset(0)),
        (DOSE,),
    )
    visits = [day1]
    on_last_dose = {"V0": False}  # does the visit depend (transitively) on the last dose?
    for i in range(1, n):
        code = f"V{i}"
        anchors = [v.code for v in visits if v.repeat is None]
        kind = draw(st.sampled_from(["screening", "visit", "visit", "last-dose"]))
        if kind == "visit":
            target = draw(st.sampled_from(anchors))
            anchor, late = Anchor.of_visit(target), on_last_dose[target]
        elif kind == "last-dose":
            anchor, late = Anchor.last_dose(), True
        else:
            anchor, late = Anchor.screening(), False
        not_before = None
        if draw(st.integers(0, 5)) == 0:
            floor_on = draw(st.sampled_from(anchors))
            not_before = NotBefore(Anchor.of_visit(floor_on), draw(offsets(0, 200)))
            late = late or on_last_dose[floor_on]
        dosing = not late and draw(st.booleans())
        repeat = None
        if not dosing and draw(st.integers(0, 3)) == 0:
            every = draw(offsets(7, 120).filter(lambda o: o.value > 0))
            if draw(st.booleans()):
                repeat = Repeat(every, count=draw(st.integers(1, 8)))
            else:
                repeat = Repeat(every, until=draw(offsets(0, 900)))
        visit = Visit(
            code,
            f"Visit {i}",
            VisitKind.DOSING if dosing else VisitKind.ASSESSMENT,
            draw(st.sampled_from([e.code for e in EPOCHS])),
            anchor,
            draw(offsets(-30, 400)),
            draw(windows),
            (DOSE,) if dosing else (EXAM,),
            repeat=repeat,
            # Only leaves may be conditional: an anchor that does not apply cannot be planned.
            condition=None,
            wait_for=draw(st.sampled_from([None, None, None, *EVENTS])) if not dosing else None,
            not_before=not_before,
        )
        visits.append(visit)
        on_last_dose[code] = late
    anchored = {a for v in visits for a in _anchors_of(v)}
    final = []
    for v in visits:
        if v.code not in anchored and v.code != "V0" and draw(st.integers(0, 4)) == 0:
            v = Visit(**{**_fields(v), "condition": draw(st.sampled_from(FLAGS))})
        final.append(v)
    return Protocol(
        id="RANDOM",
        title="A random protocol",
        sponsor_id="",
        day1_visit="V0",
        epochs=EPOCHS,
        visits=tuple(final),
    )


def _anchors_of(v: Visit) -> list[str]:
    out = [v.anchor.visit] if v.anchor.kind is AnchorKind.VISIT and v.anchor.visit else []
    if v.not_before and v.not_before.anchor.visit:
        out.append(v.not_before.anchor.visit)
    return out


def _fields(v: Visit) -> dict[str, object]:
    import attrs

    return attrs.asdict(v, recurse=False)


def depends_on(protocol: Protocol, code: str) -> set[str]:
    """Base codes of the visits whose dates may change when visit ``code`` is recorded."""
    dosing = {v.code for v in protocol.visits if v.is_dosing}
    out: set[str] = {code}
    changed = True
    while changed:
        changed = False
        for v in protocol.visits:
            if v.code in out:
                continue
            needs = set(_anchors_of(v))
            if v.anchor.kind is AnchorKind.LAST_DOSE and out & dosing:
                needs.add(next(iter(out & dosing)))
            if needs & out:
                out.add(v.code)
                changed = True
    return out


@st.composite
def histories(draw: st.DrawFn, protocol: Protocol) -> Participant:
    """A participant of ``protocol`` with some visits done near their targets, in anchor order.

    Each actual date is drawn after re-planning with the earlier facts, and is never before its
    anchor's actual date (the engine refuses that as impossible).
    """
    from visitplan.engine import dependency_order
    from visitplan.facts import known_events, known_flags

    # Only flags and events the protocol knows: any other is refused (visitplan.facts).
    flags = sorted(known_flags(protocol))
    p = Participant(
        "P1",
        draw(screenings),
        flags=frozenset(draw(st.sets(st.sampled_from(flags)))) if flags else frozenset(),
    )
    if "event_a" in known_events(protocol) and draw(st.booleans()):
        p = _with_events(p, {"event_a": p.screening + dt.timedelta(days=draw(st.integers(0, 900)))})
    for code in dependency_order(protocol):
        if code.startswith("@") or draw(st.integers(0, 2)) != 0:
            continue
        visit = protocol.visit(code)
        if visit.repeat is not None or visit.condition not in (None, *p.flags):
            continue
        sched = p_plan(protocol, p)
        planned = sched.visit(code)
        day = planned.target + dt.timedelta(days=draw(st.integers(-10, 10)))
        floor = p.screening
        if visit.anchor.kind is AnchorKind.VISIT:
            anchor = sched.visit(visit.anchor.visit or "")
            if anchor.actual is not None:
                floor = max(floor, anchor.actual)
        elif visit.anchor.kind is AnchorKind.LAST_DOSE and sched.last_dose is not None:
            floor = max(floor, sched.last_dose)
        p = p.with_record(Record(code, max(day, floor)))
    return p


def _with_events(p: Participant, events: dict[str, object]) -> Participant:
    import attrs

    return attrs.evolve(p, events=events)


def p_plan(protocol: Protocol, p: Participant):  # type: ignore[no-untyped-def]
    from visitplan.engine import plan

    return plan(protocol, p)
