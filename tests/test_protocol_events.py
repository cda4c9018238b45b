"""Protocol-file fields for events and conditions: read, validated, written back."""

from __future__ import annotations

import pytest

from visitplan.model import MergeRule, Since
from visitplan.protocol_file import ProtocolErrors, dumps, from_dict, loads, to_dict


def test_builtin_fields_are_read(study):
    assert (study.site.bcell_lln, study.site.bcell_unit) == (80.0, "cells/uL")
    assert study.rules.recovery_event == "bcell_recovery"
    assert study.visit("HBV").merge is MergeRule.GAP
    assert [m.code for m in study.milestones] == ["PROPHYLAXIS_END", "CONTRACEPTION_END"]
    assert [(w.code, str(w.interval), w.binds) for w in study.washouts] == [
        ("investigational", "30 days", "D1"), ("bcell_depleting", "36 weeks", "D1"),
        ("prednisone", "2 weeks", "D1"), ("immunomodulator", "6 months", "D1"),
        ("dmard", "3 months", "D1"), ("live_vaccine", "4 weeks", "D1"),
        ("dry_mouth_eyes", "30 days", "SCR"), ("topical_ocular", "90 days", "D1"),
    ]  # fmt: skip
    assert study.washouts[0].half_lives == 5
    assert study.washouts[2].since == (Since.LAST_DOSE, Since.LAST_CHANGE)


def test_round_trip_keeps_the_new_fields(study):
    assert loads(dumps(study), source="again") == study


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["sites"][0].update(bcell_lln=-3),
            "sites.BREST.bcell_lln -3: must be a positive",
        ),
        (lambda d: d["sites"][0].pop("bcell_unit"), "sites.BREST.bcell_unit None: is required"),
        (
            lambda d: d["visits"][-1].update(merge="sometimes"),
            "visits.HBV.merge 'sometimes': must be",
        ),
        (
            lambda d: d["milestones"][0].update(anchor="FU"),
            "milestones.PROPHYLAXIS_END.anchor 'FU': cannot anchor on a repeating visit",
        ),
        (
            lambda d: d["milestones"][1].update(offset="6 moons"),
            "milestones.CONTRACEPTION_END.offset '6 moons': unknown unit 'moons'",
        ),
        (
            lambda d: d["washouts"][0].update(binds="XX"),
            "washouts.investigational.binds 'XX': unknown visit",
        ),
        (
            lambda d: d["washouts"][1].update(since=["last-week"]),
            "washouts.bcell_depleting.since 'last-week': must be 'last-dose' or 'last-change'",
        ),
        (lambda d: d["washouts"][0].update(half_lives=0), "washouts.investigational.half_lives 0"),
        (lambda d: d["washouts"][2].update(code="dmard"), "washouts.dmard 'dmard': duplicate"),
        (lambda d: d["rules"].update(recovery_event="B cells"), "rules.recovery_event 'B cells'"),
    ],
)
def test_bad_fields_are_reported_with_their_path(study, change, message):
    doc = to_dict(study)
    change(doc)
    with pytest.raises(ProtocolErrors) as err:
        from_dict(doc, source="p.toml")
    assert any(str(e).startswith(f"p.toml: {message}") for e in err.value.errors), [
        str(e) for e in err.value.errors
    ]
