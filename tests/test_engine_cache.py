"""The engine's per-protocol precomputation (engine._Compiled) must never change a result.

It is keyed on the protocol object's identity: an edited copy (attrs.evolve) is another
object and must be planned from its own data, and a broken protocol must fail every time.
"""

from __future__ import annotations

import attrs
import pytest

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


def test_flags_the_protocol_ignores_change_nothing_and_are_not_cached(study):
    plain = study.plan(PERSON)
    compiled = engine._compiled(study)
    for i in range(50):
        odd = Participant("1003", screening="2022-07-27", flags={f"typo{i}"})
        assert study.plan(odd).visits == plain.visits
    assert len(compiled._visits) <= 2 ** len(compiled.conditions)
