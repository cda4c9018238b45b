"""Event-driven and conditional schedules: B-cell recovery, HBV monitoring, milestones.

Expected dates are written out by hand from default-protocol.md for a participant screened on
27 July 2022 with Day 1 on 31 August 2022: doses every 28 days, last dose (W20) 18 January
2023, EOT 15 February 2023, follow-up from 10 May 2023 every 12 weeks, EOS window
[18 June 2023, 18 January 2025].
"""

from __future__ import annotations

import datetime as dt
import itertools
import json

import attrs
import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.oracle import add_months

import visitplan
from visitplan import Participant, Record, VisitStatus
from visitplan.model import MergeRule
from visitplan.participant import Count
from visitplan.recovery import baseline, recovery_date, threshold

D = pendulum.date
SCREENING = "2022-07-27"
DAY1 = D(2022, 8, 31)
LAST_DOSE = D(2023, 1, 18)
FU_DATES = [
    D(2023, 5, 10), D(2023, 8, 2), D(2023, 10, 25), D(2024, 1, 17),
    D(2024, 4, 10), D(2024, 7, 3), D(2024, 9, 25), D(2024, 12, 18),
]  # fmt: skip


def person(**kw: object) -> Participant:
    args: dict[str, object] = {"records": {"D1": str(DAY1)}, **kw}
    return Participant("P1", SCREENING, **args)  # type: ignore[arg-type]


def fu(s: visitplan.Schedule) -> list[pendulum.Date]:
    return [v.target for v in s.visits if v.base_code == "FU"]


# -- B-cell recovery: explicit event and derived from counts -----------------------------------
# Each case: recovery date, expected EOS target, expected follow-up dates.
RECOVERY_CASES = {
    "3 months": (D(2023, 4, 18), D(2023, 6, 18), []),  # EOS held to last dose + 5 months
    "11 months": (D(2023, 12, 18), D(2023, 12, 18), FU_DATES[:3]),  # EOS on the recovery date
}


@pytest.mark.parametrize("case", RECOVERY_CASES)
def test_recorded_recovery_fixes_eos_and_ends_follow_up(study, case):
    recovery, eos, fus = RECOVERY_CASES[case]
    assert recovery == add_months(LAST_DOSE, 3 if case == "3 months" else 11)
    s = study.plan(person(events={"bcell_recovery": recovery}))
    assert (s.visit("EOS").target, s.visit("EOS").tentative) == (eos, False)
    assert s.visit("EOS").target == max(recovery, add_months(LAST_DOSE, 5))
    assert fu(s) == fus
    assert s.recovery == recovery


@pytest.mark.parametrize("case", RECOVERY_CASES)
def test_recovery_derived_from_counts_against_the_site_lln(study, case):
    recovery, eos, fus = RECOVERY_CASES[case]
    # Baseline 120 is above the LLN (80 cells/uL): the threshold is the LLN. Counts at the
    # follow-up visits before recovery stay below it; the count on the recovery date reaches it.
    counts = {str(d): 30 for d in FU_DATES if d < recovery}
    counts[str(recovery)] = 80
    s = study.plan(person(bcell_counts=counts, bcell_baseline=120))
    assert (s.visit("EOS").target, s.visit("EOS").tentative) == (eos, False)
    assert fu(s) == fus
    assert s.recovery == recovery


def test_threshold_is_the_lower_of_lln_and_the_participants_baseline(study):
    count = {"2023-04-18": 60}
    # Baseline 50 (below the LLN of 80): 60 is a recovery.
    low = study.plan(person(bcell_counts={"2022-08-31": 50, **count}))
    assert low.recovery == D(2023, 4, 18)
    assert low.visit("EOS").target == D(2023, 6, 18)
    # Baseline 120: the LLN (80) is the threshold and 60 is not a recovery.
    high = study.plan(person(bcell_counts=count, bcell_baseline=120))
    assert high.recovery is None
    assert (high.visit("EOS").target, high.visit("EOS").tentative) == (D(2025, 1, 18), True)


def test_never_recovered_eos_at_the_latest_bound(study):
    latest = add_months(LAST_DOSE, 24)
    assert latest == D(2025, 1, 18)
    nothing = study.plan(person())
    below = {str(d): 10 for d in [*FU_DATES, D(2025, 1, 18), D(2025, 3, 1)]}
    counted = study.plan(person(bcell_counts=below, bcell_baseline=200))
    for s in (nothing, counted):
        assert (s.visit("EOS").target, s.visit("EOS").tentative) == (latest, True)
        assert fu(s) == FU_DATES
        assert s.recovery is None


def test_recovery_after_the_latest_bound_is_clamped(study):
    s = study.plan(person(events={"bcell_recovery": "2025-06-01"}))
    assert (s.visit("EOS").target, s.visit("EOS").tentative) == (D(2025, 1, 18), False)


def test_a_recorded_recovery_wins_over_counts(study):
    counts = {"2023-08-02": 200}
    s = study.plan(person(bcell_counts=counts, events={"bcell_recovery": "2023-12-18"}))
    assert s.visit("EOS").target == D(2023, 12, 18)


def test_counts_before_or_on_day1_are_baseline_not_recovery(study):
    s = study.plan(person(bcell_counts={"2022-08-20": 300, "2022-08-31": 250}))
    assert s.recovery is None
    assert s.visit("EOS").tentative


def test_a_new_count_recomputes_the_plan(study):
    before = person(bcell_counts={"2023-05-10": 20}, bcell_baseline=150)
    after = attrs.evolve(before, bcell_counts={"2023-05-10": 20, "2023-08-02": 95})
    a, b = study.plan(before), study.plan(after)
    assert (a.visit("EOS").target, a.visit("EOS").tentative) == (D(2025, 1, 18), True)
    assert (b.visit("EOS").target, b.visit("EOS").tentative) == (D(2023, 8, 2), False)
    assert fu(b) == [D(2023, 5, 10)]  # FU2 would fall on EOS: EOS replaces it


def test_counts_without_a_site_lln_are_refused_in_one_line(study):
    site = attrs.evolve(study.sites[0], bcell_lln=None, bcell_unit="")
    bare = attrs.evolve(study, sites=(site,))
    with pytest.raises(visitplan.VisitplanError) as err:
        bare.plan(person(bcell_counts={"2023-05-10": 95}))
    assert str(err.value).startswith("sites.BREST.bcell_lln None: is needed to derive")


def test_recovery_pure_functions():
    counts = [Count("2022-08-31", 40), Count("2023-05-10", 30), Count("2023-08-02", 45)]
    assert baseline(counts, DAY1, None) == 40
    assert baseline(counts, DAY1, 70) == 70
    assert baseline(counts[1:], DAY1, None) is None
    assert threshold(80, None) == 80 and threshold(80, 40) == 40 and threshold(80, 90) == 80
    assert recovery_date(counts, DAY1, 40) == D(2023, 8, 2)
    assert recovery_date(counts, DAY1, 46) is None
    assert recovery_date(counts, D(2022, 8, 30), 40) == D(2022, 8, 31)


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({"2023-05-10": -1}, "bcell_count.value -1: must be a finite count of at least 0"),
        ({"2023-02-30": 5}, "bcell_count.date '2023-02-30': is not a day of the calendar"),
        ([("2023-05-10", 5), ("2023-05-10", 6)], "bcell_count.date '2023-05-10': has two"),
    ],
)
def test_bad_counts_are_refused(counts, message):
    with pytest.raises(visitplan.VisitplanError) as err:
        person(bcell_counts=counts)
    assert str(err.value).startswith(message)


# -- HBV monitoring ------------------------------------------------------------------------------
def hbv_dates(s: visitplan.Schedule) -> list[tuple[str, pendulum.Date]]:
    return [
        (v.code, v.date)
        for v in s.visits
        if v.status is not VisitStatus.CANCELLED and any(p.code == "HBV" for p in v.procedures)
    ]


DOSING_AND_EOT = [
    ("D1", D(2022, 8, 31)), ("W4", D(2022, 9, 28)), ("W8", D(2022, 10, 26)),
    ("W12", D(2022, 11, 23)), ("W16", D(2022, 12, 21)), ("W20", D(2023, 1, 18)),
    ("EOT", D(2023, 2, 15)),
]  # fmt: skip


def test_hbv_monitoring_after_recovery_until_eos_date_by_date(study):
    # Recovery 3 months after the last dose: no follow-up visit, EOS on 18 June 2023. HBsAg and
    # HBV DNA are still due 12 weeks after EOT (10 May 2023), on their own visit, then at EOS.
    s = study.plan(person(flags={"hbcab_positive"}, events={"bcell_recovery": "2023-04-18"}))
    assert hbv_dates(s) == [*DOSING_AND_EOT, ("HBV1", D(2023, 5, 10)), ("EOS", D(2023, 6, 18))]
    hbv1 = s.visit("HBV1")
    assert (hbv1.earliest, hbv1.latest, hbv1.study_day) == (D(2023, 5, 3), D(2023, 5, 17), 253)
    # Every 4 weeks during treatment, at most 12 weeks apart after EOT.
    days = [d for _, d in hbv_dates(s)]
    gaps = [(b - a).days for a, b in itertools.pairwise(days)]
    assert gaps == [28] * 6 + [84, 39]


def test_hbv_monitoring_merges_into_follow_up_visits(study):
    s = study.plan(person(flags={"hbcab_positive"}))
    expected = [*DOSING_AND_EOT, *((f"FU{i}", d) for i, d in enumerate(FU_DATES, 1))]
    assert hbv_dates(s) == [*expected, ("EOS", D(2025, 1, 18))]
    assert not [v for v in s.visits if v.base_code == "HBV"]


def test_hbv_monitoring_at_11_months_recovery(study):
    s = study.plan(person(flags={"hbcab_positive"}, events={"bcell_recovery": "2023-12-18"}))
    fus = [("FU1", D(2023, 5, 10)), ("FU2", D(2023, 8, 2)), ("FU3", D(2023, 10, 25))]
    assert hbv_dates(s) == [*DOSING_AND_EOT, *fus, ("EOS", D(2023, 12, 18))]


@pytest.mark.parametrize(
    ("eot", "standalone"),
    [
        ("2023-02-21", []),  # HBV1 16 May, window 9-23 May holds FU1 (10 May): merged
        # EOT outside its window (+8 days): HBV1 on 18 May, window 11-25 May, misses FU1 on
        # 10 May; every later occurrence is 8 days after its follow-up visit too.
        (
            "2023-02-23",
            [("HBV1", D(2023, 5, 18)), ("HBV2", D(2023, 8, 10)), ("HBV3", D(2023, 11, 2))],
        ),
    ],
)
def test_merge_rule_is_the_monitoring_window(study, eot, standalone):
    # The window rule (merge = "window"), no longer the built-in one: see the gap rule below.
    hbv = attrs.evolve(study.visit("HBV"), merge=MergeRule.WINDOW)
    window = attrs.evolve(study, visits=tuple(hbv if v.code == "HBV" else v for v in study.visits))
    p = person(
        flags={"hbcab_positive"},
        records=[Record("D1", DAY1), Record("EOT", eot)],
        events={"bcell_recovery": "2023-12-18"},
    )
    s = window.plan(p)
    assert [(v.code, v.target) for v in s.visits if v.base_code == "HBV"] == standalone
    # The built-in gap rule: FU1 is 76 days after an EOT done on 23 February, FU2 and FU3 12
    # weeks apart, EOS 8 weeks after FU3: never more than 12 weeks without HBV tests.
    assert not [v for v in study.plan(p).visits if v.base_code == "HBV"]


def test_same_day_merge_rule_keeps_a_shifted_occurrence(study):
    hbv = attrs.evolve(study.visit("HBV"), merge=MergeRule.SAME_DAY)
    same_day = attrs.evolve(
        study, visits=tuple(hbv if v.code == "HBV" else v for v in study.visits)
    )
    p = person(
        flags={"hbcab_positive"},
        records=[Record("D1", DAY1), Record("EOT", "2023-02-21")],
        events={"bcell_recovery": "2023-08-01"},
    )
    s = same_day.plan(p)
    assert [(v.code, v.target) for v in s.visits if v.base_code == "HBV"] == [
        ("HBV1", D(2023, 5, 16))
    ]


def test_hbv_monitoring_only_for_hbcab_positive(study):
    s = study.plan(person(events={"bcell_recovery": "2023-04-18"}))
    assert hbv_dates(s) == []
    assert not [v for v in s.visits if v.base_code == "HBV"]


def test_a_recorded_monitoring_visit_is_kept(study):
    p = person(flags={"hbcab_positive"}).done("HBV1", "2023-05-12")
    s = study.plan(p)
    assert s.visit("HBV1").actual == D(2023, 5, 12)


# -- milestones and early discontinuation --------------------------------------------------------
def test_milestones_follow_flags_and_the_planned_last_dose(study):
    s = study.plan(person(flags={"hbcab_positive", "wocbp"}))
    got = {m.code: (m.date, m.tentative) for m in s.milestones}
    assert got == {
        "CONTRACEPTION_END": (D(2023, 7, 18), True),  # last dose + 6 months
        "PROPHYLAXIS_END": (D(2024, 1, 18), True),  # last dose + 12 months
    }
    assert study.plan(person()).milestones == ()
    only = study.plan(person(flags={"wocbp"}))
    assert [m.code for m in only.milestones] == ["CONTRACEPTION_END"]


def test_milestones_clamp_at_month_ends(study):
    d1 = dt.date(2023, 3, 15)  # W20 on 2 August 2023; pick a last dose on 31 August instead
    records = [Record("D1", d1)] + [
        Record(f"W{w}", d1 + dt.timedelta(days=7 * w)) for w in (4, 8, 12, 16)
    ]
    records.append(Record("W20", "2023-08-31"))
    s = study.plan(
        Participant("P2", "2023-02-10", records=records, flags={"wocbp", "hbcab_positive"})
    )
    assert s.last_dose == D(2023, 8, 31)
    assert s.milestone("CONTRACEPTION_END").date == D(2024, 2, 29)  # 31 Feb 2024: clamped
    assert s.milestone("PROPHYLAXIS_END").date == D(2024, 8, 31)
    assert not s.milestone("CONTRACEPTION_END").tentative


def test_discontinuation_after_dose_3_moves_every_last_dose_date(study):
    flags = {"hbcab_positive", "wocbp"}
    full = study.plan(person(flags=flags))
    records = [Record("D1", DAY1), Record("W4", "2022-09-28"), Record("W8", "2022-10-26")]
    stop = study.plan(person(flags=flags, records=records, discontinued="2022-11-10"))
    ld = D(2022, 10, 26)
    assert (full.last_dose, stop.last_dose) == (LAST_DOSE, ld)
    # Every date anchored on the last dose moves from 18 January 2023 to 26 October 2022.
    assert stop.visit("EOT").target == D(2022, 11, 16)  # held: last dose + 21 days
    assert fu(stop)[:2] == [D(2023, 2, 15), D(2023, 5, 10)]  # last dose + 16 weeks, + 12 weeks
    assert fu(full)[0] == D(2023, 5, 10)
    eos = stop.visit("EOS")
    assert (eos.earliest, eos.latest, eos.tentative) == (D(2023, 3, 26), D(2024, 10, 26), True)
    assert {m.code: (m.date, m.tentative) for m in stop.milestones} == {
        "CONTRACEPTION_END": (D(2023, 4, 26), False),
        "PROPHYLAXIS_END": (D(2023, 10, 26), False),
    }
    # HBV monitoring: D1, W4, W8, then EOT; the cancelled doses do not count.
    assert hbv_dates(stop)[:4] == [
        ("D1", DAY1), ("W4", D(2022, 9, 28)), ("W8", D(2022, 10, 26)), ("EOT", D(2022, 11, 16)),
    ]  # fmt: skip
    # 12 weeks after EOT is 8 February 2023, done at FU1 (15 February, inside its window).
    assert hbv_dates(stop)[4] == ("FU1", D(2023, 2, 15))
    # With recovery 3 months after the last dose, EOS moves to last dose + 5 months and HBV
    # monitoring stands on its own 12 weeks after EOT.
    rec = study.plan(
        person(
            flags=flags,
            records=records,
            discontinued="2022-11-10",
            events={"bcell_recovery": "2023-01-26"},
        )
    )
    assert hbv_dates(rec)[4:] == [("HBV1", D(2023, 2, 8)), ("EOS", D(2023, 3, 26))]


def test_a_late_last_dose_moves_milestones(study):
    late = study.plan(
        person(flags={"wocbp"}, records=[Record("D1", DAY1), Record("W20", "2023-01-25")])
    )
    assert late.milestone("CONTRACEPTION_END").date == D(2023, 7, 25)
    assert not late.milestone("CONTRACEPTION_END").tentative


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=-7, max_value=7))
def test_hbv_merges_into_follow_up_for_any_eot_inside_its_window(study, shift_days):
    eot = D(2023, 2, 15).add(days=shift_days)
    s = study.plan(
        person(flags={"hbcab_positive"}, records=[Record("D1", DAY1), Record("EOT", eot)])
    )
    assert not [v for v in s.visits if v.base_code == "HBV"]
    assert fu(s) == FU_DATES


def test_plan_cli_shows_milestones_and_uses_counts():
    from tests.test_cli_plan import run

    base = ["plan", "--participant", "1001", "--screening", SCREENING, "--flag", "wocbp"]
    r = run(*base, "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["milestones"] == [
        {"code": "CONTRACEPTION_END", "name": "End of highly effective contraception",
         "date": "2023-07-18", "tentative": True},
    ]  # fmt: skip
    assert {"schema_version", "protocol", "participant", "visits", "findings"} <= set(doc)
    counts = ["--bcell-count", "2022-08-31=60", "--bcell-count", "2023-08-02=61"]
    r = run(*base, *counts, "--format", "json")
    eos = json.loads(r.stdout)["visits"][-1]
    assert (eos["code"], eos["target"], eos["tentative"]) == ("EOS", "2023-08-02", False)
    r = run(*base)
    assert "CONTRACEPTION_END" in r.stdout and "2023-07-18" in r.stdout
    r = run(*base, "--bcell-count", "2023-08-02=lots")
    assert (r.returncode, r.stderr) == (
        2, "error: --bcell-count '2023-08-02=lots': the count must be a number\n",
    )  # fmt: skip


def test_a_missed_follow_up_does_not_absorb_the_monitoring(study):
    missed = Record("FU2", None, visitplan.Status.MISSED, "travel")
    s = study.plan(person(flags={"hbcab_positive"}, records=[Record("D1", DAY1), missed]))
    # FU1 10 May, FU2 missed, FU3 25 October: 24 weeks without HBV tests, so the first trip
    # needed is 12 weeks after FU1, on FU2's date.
    assert [(v.code, v.target) for v in s.visits if v.base_code == "HBV"] == [
        ("HBV1", D(2023, 8, 2))
    ]


def test_waiting_on_derived_recovery_before_day1_is_a_protocol_error(study):
    from visitplan.model import Anchor, Visit, VisitKind

    # X waits for recovery and Day 1 anchors on X, so X is planned before Day 1 is known.
    early = Visit("X", "Waits early", VisitKind.ASSESSMENT, "RUNIN", Anchor.screening(),
                  wait_for="bcell_recovery")  # fmt: skip
    d1 = attrs.evolve(study.visit("D1"), anchor=Anchor.of_visit("X"))
    visits = (early, *(d1 if v.code == "D1" else v for v in study.visits))
    odd = attrs.evolve(study, visits=visits)
    with pytest.raises(visitplan.ProtocolError, match="must be planned after Day 1"):
        odd.plan(Participant("P1", SCREENING))
