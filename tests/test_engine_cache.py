"""The engine's per-protocol precomputation (compiled._Compiled) must never change a result.

It is keyed on the protocol object's identity: an edited copy (attrs.evolve) is another
object and must be planned from its own data, and a broken protocol must fail every time.
"""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.test_properties import STUDY, histories

import visitplan
from visitplan import Participant, ProtocolError, engine
from visitplan.model import Anchor, Offset

PERSON = Participant("1001", screening="2022-07-27")


def with_visit(study: visitplan.Protocol, code: str, **changes: object) -> visitplan.Protocol:
    visits = tuple(attrs.evolve(v, **changes) if v.code == code else v for v in study.visits)
    return attrs.evolve(study, visits=visits)


def test_an_edited_copy_is_planned_from_its_own_data(study):
    before = study.plan(PERSON).visit("W4").target
    later = with_visit(study, "W4", offset=Offset(5, visitplan.model.Unit.WEEKS))
    assert later.plan(PERSON).visit("W4").target == before.add(days=7)
    assert study.plan(PERSON).visit("W4").target == before  # the original is unchanged


def test_equal_protocols_plan_alike_and_many_protocols_stay_bounded(study):
    expected = [(v.code, v.target, v.earliest, v.latest) for v in study.plan(PERSON).visits]
    for weeks in range(engine._COMPILED_MAX + 5):
        copy = with_visit(study, "W4", offset=Offset(4 + weeks % 2, visitplan.model.Unit.WEEKS))
        got = copy.plan(PERSON).visit("W4").target
        assert got == study.plan(PERSON).visit("W4").target.add(days=7 * (weeks % 2))
    assert len(engine._COMPILED) <= engine._COMPILED_MAX
    fresh = visitplan.builtin("NCT05124925")
    assert [(v.code, v.target, v.earliest, v.latest) for v in fresh.plan(PERSON)] == expected


def test_an_anchor_cycle_fails_on_every_call(study):
    broken = with_visit(study, "D1", anchor=Anchor.of_visit("W4"))
    for _ in range(2):
        with pytest.raises(ProtocolError, match="cycle"):
            broken.plan(PERSON)


def test_procedures_follow_each_participants_flags_in_any_order(study):
    flagged = Participant("1002", screening="2022-07-27", flags={"hbcab_positive"})
    for person, has_hbv in ((PERSON, False), (flagged, True), (PERSON, False)):
        codes = {p.code for p in study.plan(person).visit("W4").procedures}
        assert ("HBV" in codes) is has_hbv


def test_flags_the_protocol_does_not_know_are_refused_and_not_cached(study):
    # A misspelt flag would silently drop a conditional schedule (HBV monitoring): refused.
    compiled = engine._compiled(study)
    for i in range(50):
        odd = Participant("1003", screening="2022-07-27", flags={f"typo{i}"})
        with pytest.raises(visitplan.VisitplanError) as err:
            study.plan(odd)
        assert str(err.value) == (
            f"flag 'typo{i}': is not a flag of NCT05124925; known: hbcab_positive, wocbp"
        )
    assert len(compiled._flagged) <= 2 ** len(compiled.conditions)
    assert len(compiled._raw) <= 64


def _general_plan(study: visitplan.Protocol, person: Participant) -> visitplan.Schedule:
    """Plan through the general path: every occurrence goes through ``_apply_record``."""
    planner = engine._Planner(study, person, None)
    planner._dated_facts = True
    return planner.run()


@settings(max_examples=200, deadline=None)
@given(histories())
def test_skipping_record_checks_without_facts_changes_nothing(person):
    # Planning skips _apply_record for an occurrence with no record when the participant has
    # no today, discontinuation or withdrawal (the common case); it must equal the full path.
    assert STUDY.plan(person) == _general_plan(STUDY, person)


@settings(max_examples=50, deadline=None)
@given(histories(), st.sets(st.sampled_from(["hbcab_positive", "wocbp"])))
def test_shared_visit_tables_follow_each_participants_flags(person, flags):
    # The per-flag-set visit tables are shared by every plan: planning one participant must
    # not leak into the next, whatever flags come in between.
    other = attrs.evolve(person, flags=frozenset(flags))
    first = STUDY.plan(person)
    STUDY.plan(other)
    assert STUDY.plan(person) == first == _general_plan(STUDY, person)


def test_visits_planned_before_day1_get_study_days_from_it(study):
    # Day 1 anchored on the screening visit is planned after it, so the screening visit is
    # built before Day 1 is known and must be given its study day afterwards.
    after_scr = with_visit(study, "D1", anchor=Anchor.of_visit("SCR"), offset=Offset(35))
    person = Participant("1002", "2022-07-27", records={"SCR": "2022-07-28", "D1": "2022-08-20"})
    for protocol in (study, after_scr):
        schedule = protocol.plan(person)
        assert schedule.day1 == visitplan.dates.to_date("2022-08-20")
        for v in schedule.visits:
            assert v.study_day == visitplan.dates.study_day(v.date, schedule.day1), v.code
        assert schedule.visit("SCR").study_day == -23


@settings(max_examples=60, deadline=None)
@given(histories())
def test_the_engines_fast_visit_constructor_builds_the_same_frozen_value(history):
    # new_visit fills PlannedVisit's slots directly (docs/performance.md); what it returns
    # must be indistinguishable from the attrs constructor's result.
    import copy
    import pickle

    from visitplan.schedule import PlannedVisit, new_visit

    schedule = STUDY.plan(history)
    assert schedule.visits
    for fast in schedule.visits:
        values = [getattr(fast, f.name) for f in attrs.fields(PlannedVisit)]
        slow = PlannedVisit(*values)
        assert type(fast) is PlannedVisit
        assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
        assert new_visit(*values) == slow
        assert pickle.loads(pickle.dumps(fast)) == fast == copy.deepcopy(fast)
        assert attrs.evolve(fast, code="X").code == "X" and fast.code != "X"
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            fast.code = "X"  # type: ignore[misc]


def test_the_fast_constructor_sets_every_field_of_planned_visit():
    from visitplan.schedule import PlannedVisit, _VisitSlots, new_visit

    names = [f.name for f in attrs.fields(PlannedVisit)]
    # PlannedVisit must add no slot of its own, or __class__ assignment fails.
    assert PlannedVisit.__slots__ == ()
    assert sorted(_VisitSlots.__slots__) == sorted([*names, "__weakref__"])
    marks = [object() for _ in names]
    built = new_visit(*marks)  # type: ignore[arg-type]
    assert [getattr(built, n) for n in names] == marks
