"""The timeline engine against the reference schedule of NCT05124925."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest
from tests.oracle import add_months, reference, study_day

import visitplan
from visitplan import FindingKind, Participant, Record, Status, VisitplanError, VisitStatus


def dates(schedule: visitplan.Schedule) -> dict[str, tuple[dt.date, dt.date, dt.date]]:
    return {v.code: (v.target, v.earliest, v.latest) for v in schedule.visits}


def test_reference_schedule_pinned_for_the_first_participant(study):
    s = study.plan(Participant("1001", screening="2022-07-27"))
    got = {v.code: (str(v.target), v.study_day) for v in s.visits}
    # Written out by hand from default-protocol.md: Day 1 = S + 35, doses every 28 days,
    # EOT Day 169, FU from Week 36 every 12 weeks, EOS at last dose + 24 months until recovery.
    assert got["SCR"] == ("2022-07-27", -35)
    assert got["D1"] == ("2022-08-31", 1)
    assert [got[c] for c in ("W4", "W8", "W12", "W16", "W20")] == [
        ("2022-09-28", 29), ("2022-10-26", 57), ("2022-11-23", 85),
        ("2022-12-21", 113), ("2023-01-18", 141),
    ]  # fmt: skip
    assert got["EOT"] == ("2023-02-15", 169)
    assert got["FU1"] == ("2023-05-10", 253)
    eos = s.visit("EOS")
    assert (str(eos.earliest), str(eos.latest), eos.tentative) == ("2023-06-18", "2025-01-18", True)
    assert s.visit("W4").earliest == pendulum.date(2022, 9, 25)
    assert s.visit("EOT").latest == pendulum.date(2023, 2, 22)
    assert s.last_dose == pendulum.date(2023, 1, 18)


@pytest.mark.parametrize(
    "screening",
    [
        "2023-01-31",  # month end: run-in crosses February
        "2024-01-31",  # ... in a leap year
        "2024-02-29",  # leap day
        "2023-02-28",
        "2024-03-30",  # just before the spring DST change (31 March 2024)
        "2023-10-28",  # just before the autumn DST change (29 October 2023)
        "2022-12-31",  # year end
    ],
)
def test_reference_schedule_matches_the_oracle(study, screening):
    s = study.plan(Participant("X1", screening=screening))
    assert dates(s) == reference(dt.date.fromisoformat(screening))
    for v in s.visits:
        assert v.study_day == study_day(v.target, s.day1)
        assert v.study_day != 0


def test_screening_on_31_january_clamps_nothing_but_counts_days(study):
    s = study.plan(Participant("X1", screening="2023-01-31"))
    assert s.visit("D1").target == pendulum.date(2023, 3, 7)  # 35 days across a 28-day February
    assert s.visit("D1").earliest == pendulum.date(2023, 2, 1)


@pytest.mark.parametrize(
    ("last_dose", "earliest", "latest"),
    [
        ("2023-09-30", "2024-02-29", "2025-09-30"),  # 30 Feb does not exist in 2024: clamped
        ("2024-01-31", "2024-06-30", "2026-01-31"),  # 31 June does not exist: clamped
        ("2023-10-31", "2024-03-31", "2025-10-31"),
        ("2022-02-28", "2022-07-28", "2024-02-28"),
    ],
)
def test_end_of_study_months_are_clamped_from_the_anchor(study, last_dose, earliest, latest):
    ld = dt.date.fromisoformat(last_dose)
    d1 = ld - dt.timedelta(days=140)
    records = [Record("D1", d1)] + [
        Record(f"W{w}", d1 + dt.timedelta(days=7 * w)) for w in (4, 8, 12, 16, 20)
    ]
    s = study.plan(Participant("X1", screening=d1 - dt.timedelta(days=35), records=records))
    eos = s.visit("EOS")
    assert (str(eos.earliest), str(eos.latest)) == (earliest, latest)
    assert eos.earliest == add_months(ld, 5) and eos.latest == add_months(ld, 24)


def test_actual_day1_shifts_every_dose_and_eot(study):
    screening = dt.date(2022, 7, 27)
    early = study.plan(Participant("X1", screening=screening, records={"D1": "2022-08-16"}))
    on_time = study.plan(Participant("X1", screening=screening))
    for code in ("W4", "W8", "W12", "W16", "W20", "EOT"):
        assert on_time.visit(code).target - early.visit(code).target == pendulum.duration(days=15)
    assert early.visit("W4").target == pendulum.date(2022, 9, 13)  # D1 + 28
    assert early.day1 == pendulum.date(2022, 8, 16)
    assert early.visit("D1").study_day == 1
    assert early.visit("SCR").study_day == -20


def test_late_last_dose_moves_follow_up_and_end_of_study(study):
    p = Participant("X1", screening="2022-07-27", records={"D1": "2022-08-31", "W20": "2023-01-20"})
    s = study.plan(p)
    assert s.last_dose == pendulum.date(2023, 1, 20)
    assert s.visit("FU1").target == pendulum.date(2023, 1, 20).add(weeks=16)
    assert s.visit("EOS").latest == pendulum.date(2025, 1, 20)
    assert s.visit("EOT").target == pendulum.date(2023, 2, 15)  # EOT stays on Day 169


def test_eot_is_held_after_a_late_last_dose_and_reported(study):
    p = Participant("X1", screening="2022-07-27", records={"D1": "2022-08-31", "W20": "2023-02-01"})
    s = study.plan(p)
    eot = s.visit("EOT")
    assert eot.target == pendulum.date(2023, 2, 22)  # last dose + 21 days, not Day 169
    assert [f.kind for f in s.findings if f.visit == "EOT"] == [FindingKind.HELD]
    assert any(f.kind is FindingKind.OUT_OF_WINDOW and f.visit == "W20" for f in s.findings)


def test_doses_closer_than_21_days_are_reported(study):
    p = Participant("X1", screening="2022-07-27", records={"D1": "2022-08-31", "W4": "2022-09-19"})
    s = study.plan(p)
    gaps = [f for f in s.findings if f.kind is FindingKind.DOSE_GAP]
    assert [f.visit for f in gaps] == ["W4"]
    assert "19 days" in gaps[0].message


def test_recovery_fixes_end_of_study_and_ends_follow_up(study):
    base = Participant("X1", screening="2022-07-27")
    early = study.plan(attrs_evolve(base, events={"bcell_recovery": "2023-04-01"}))
    eos = early.visit("EOS")
    assert (eos.target, eos.tentative) == (pendulum.date(2023, 6, 18), False)  # LD + 5 months
    assert not [v for v in early.visits if v.base_code == "FU"]
    late = study.plan(attrs_evolve(base, events={"bcell_recovery": "2023-12-01"}))
    assert late.visit("EOS").target == pendulum.date(2023, 12, 1)
    assert [v.code for v in late.visits if v.base_code == "FU"] == ["FU1", "FU2", "FU3"]


def attrs_evolve(p: Participant, **changes: object) -> Participant:
    import attrs

    return attrs.evolve(p, **changes)


def test_missed_dose_is_reported_and_not_the_last_dose(study):
    records = [Record("D1", "2022-08-31"), Record("W20", None, Status.MISSED, "flu")]
    s = study.plan(Participant("X1", screening="2022-07-27", records=records))
    assert s.visit("W20").status is VisitStatus.MISSED
    assert s.last_dose == s.visit("W16").target
    assert any(f.kind is FindingKind.MISSED and "flu" in f.message for f in s.findings)


def test_overdue_only_with_today(study):
    p = Participant("X1", screening="2022-07-27", records={"D1": "2022-08-31"})
    assert not [f for f in study.plan(p).findings if f.kind is FindingKind.OVERDUE]
    s = study.plan(p, today=pendulum.date(2022, 10, 2))
    assert [f.visit for f in s.findings if f.kind is FindingKind.OVERDUE] == ["W4"]
    assert s.visit("SCR").status is VisitStatus.DONE  # the screening date is past


def test_conditional_procedures_follow_flags(study):
    plain = study.plan(Participant("X1", screening="2022-07-27"))
    hbv = study.plan(Participant("X1", screening="2022-07-27", flags={"hbcab_positive"}))
    assert "HBV" not in [p.code for p in plain.visit("W4").procedures]
    assert "HBV" in [p.code for p in hbv.visit("W4").procedures]
    assert "HBV" in [p.code for p in hbv.visit("FU1").procedures]


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ({"D1": "2022-07-27"}, "D1.date '2022-07-27': must be between 2022-07-28 and 2022-08-31"),
        ({"D1": "2022-09-01"}, "D1.date '2022-09-01': must be between 2022-07-28 and 2022-08-31"),
        ({"D1": "2022-07-01"}, "D1.date '2022-07-01': is before the screening date 2022-07-27"),
        (
            {"D1": "2022-08-20", "W4": "2022-08-19"},
            "W4.date '2022-08-19': is before Day 1 (2022-08-20); a visit cannot precede its anchor",
        ),
        ({"W5": "2022-09-20"}, "visit 'W5': unknown visit code for NCT05124925"),
    ],
)
def test_contradictory_facts_are_refused_with_one_line(study, records, message):
    with pytest.raises(VisitplanError) as err:
        study.plan(Participant("X1", screening="2022-07-27", records=records))
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"screening": "2023-02-29"}, "screening '2023-02-29': is not a day of the calendar"),
        ({"screening": "27/07/2022"}, "screening '27/07/2022': must be a date written YYYY-MM-DD"),
        ({"screening": "0222-07-27"}, "screening '0222-07-27': year must be between 1900 and 2199"),
        ({"code": "Jean Dupont"}, "participant 'Jean Dupont': must be a study code"),
    ],
)
def test_bad_participant_input(kwargs, message):
    args = {"code": "1001", "screening": "2022-07-27", **kwargs}
    with pytest.raises(VisitplanError) as err:
        Participant(args.pop("code"), **args)
    assert str(err.value).startswith(message)


def test_a_visit_recorded_twice_is_refused():
    with pytest.raises(VisitplanError, match="recorded twice"):
        Participant(
            "1", "2022-07-27", records=[Record("D1", "2022-08-30"), Record("D1", "2022-08-31")]
        )


def test_discontinuation_cancels_remaining_doses_and_plans_early_eot(study):
    records = [Record("D1", "2022-08-31"), Record("W4", "2022-09-28"), Record("W8", "2022-10-26")]
    s = study.plan(Participant("X1", "2022-07-27", records=records, discontinued="2022-11-10"))
    assert [s.visit(c).status for c in ("W12", "W16", "W20")] == [VisitStatus.CANCELLED] * 3
    assert s.last_dose == pendulum.date(2022, 10, 26)
    assert s.visit("EOT").target == pendulum.date(2022, 11, 16)  # held: last dose + 21 days
    assert s.visit("FU1").target == pendulum.date(2022, 10, 26).add(weeks=16)
    assert s.visit("EOS").latest == pendulum.date(2024, 10, 26)


def test_withdrawal_cancels_future_visits(study):
    s = study.plan(
        Participant("X1", "2022-07-27", records={"D1": "2022-08-31"}, withdrawn="2022-10-01")
    )
    assert s.visit("W4").status is VisitStatus.PLANNED
    assert all(
        v.status is VisitStatus.CANCELLED
        for v in s.visits
        if v.target >= pendulum.date(2022, 10, 1)
    )


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("FU0", "unknown visit code"),
        ("FU01", "unknown visit code"),
        ("FUX", "unknown visit code"),
        ("FU1001", "a repeat has at most 1000 occurrences"),
    ],
)
def test_repeat_occurrence_codes_are_exact(study, code, rule):
    with pytest.raises(VisitplanError, match=rule):
        study.plan(
            Participant("X1", "2022-07-27", records={"D1": "2022-08-31", code: "2023-05-10"})
        )


def test_a_recorded_follow_up_occurrence_is_kept(study):
    s = study.plan(
        Participant("X1", "2022-07-27", records={"D1": "2022-08-31", "FU2": "2023-08-03"})
    )
    assert s.visit("FU2").actual == pendulum.date(2023, 8, 3)
    assert s.visit("FU2").status is VisitStatus.DONE


def test_visits_on_the_same_day_follow_the_protocols_order_not_the_planning_order():
    # PRE is listed before D1 but anchored on W4, so it is planned after W4, on W4's day: the
    # schedule lists same-day visits in the protocol's order whatever order they are planned.
    from pathlib import Path

    from visitplan.protocol_file import loads

    text = (Path(__file__).parent / "protocols" / "valid-minimal.toml").read_text()
    pre = '[[visits]]\ncode = "PRE"\nname = "Pre-dose check"\nkind = "assessment"\n'
    pre += 'epoch = "TREAT"\nanchor = "W4"\nprocedures = ["LAB"]\n\n'
    at = text.index('[[visits]]\ncode = "D1"')
    study = loads(text[:at] + pre + text[at:])
    s = study.plan(Participant("X1", screening="2024-01-10"))
    assert [v.code for v in s.visits][:5] == ["SCR", "D1", "PRE", "W4", "FU1"]
    assert s.visit("PRE").date == s.visit("W4").date
