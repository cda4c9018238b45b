"""Washout rules: earliest permissible Day 1 per rule, the binding rule, broken dates, CLI.

Screening on 27 July 2022 plans Day 1 on 31 August 2022 (window 28 July to 31 August). Each
expected date is worked out by hand from the reference table of default-protocol.md.
"""

from __future__ import annotations

import json

import pendulum
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.test_cli_plan import run

from visitplan import Participant, VisitplanError
from visitplan.dates import Span, earliest_clear, shift
from visitplan.eligibility import HistoryItem, check, parse_half_life, read_history

D = pendulum.date
S = "2022-07-27"


def one(study, item: HistoryItem, **kw: object):
    report = check(study, S, [item], **kw)  # type: ignore[arg-type]
    (c,) = [c for c in report.checks if c.code == item.rule]
    return report, c


@pytest.mark.parametrize(
    ("half_life", "earliest", "interval"),
    [
        ("12 hours", D(2022, 8, 14), "longer of 5 half-lives (3 days) and 30 days"),  # 30 d wins
        ("6 days", D(2022, 8, 14), "longer of 5 half-lives (30 days) and 30 days"),  # a tie
        ("6.1 days", D(2022, 8, 15), "longer of 5 half-lives (31 days) and 30 days"),  # 30.5 up
        ("10 days", D(2022, 9, 3), "longer of 5 half-lives (50 days) and 30 days"),  # 50 d win
    ],
)
def test_investigational_drug_longer_of_5_half_lives_and_30_days(
    study, half_life, earliest, interval
):
    item = HistoryItem("investigational", "drug X", last_dose="2022-07-15", half_life=half_life)
    report, c = one(study, item)
    assert (c.last_exposure, c.earliest, c.interval, c.binds) == (
        D(2022, 7, 15), earliest, interval, "D1",
    )  # fmt: skip
    assert c.ok is (D(2022, 8, 31) >= earliest)
    assert report.binding == ("investigational" if earliest > D(2022, 7, 28) else None)
    assert report.within_window is (earliest <= D(2022, 8, 31))


def test_bcell_depleting_36_weeks_and_the_reported_requirement(study):
    item = HistoryItem("bcell_depleting", "rituximab", last_dose="2021-12-20")
    report, c = one(study, item)
    assert c.earliest == D(2022, 8, 29)  # 252 days
    assert c.ok and report.ok
    assert c.requirement == "B cells back to min(LLN, pre-therapy baseline)"
    _, early = one(study, item, day1="2022-08-28")
    assert not early.ok and early.date == D(2022, 8, 28)


def test_prednisone_counts_from_the_later_of_last_high_dose_and_dose_change(study):
    _, c = one(study, HistoryItem("prednisone", last_dose="2022-08-10"))
    assert (c.earliest, c.ok) == (D(2022, 8, 24), True)
    _, c = one(study, HistoryItem("prednisone", last_dose="2022-08-10", last_change="2022-08-20"))
    assert (c.last_exposure, c.earliest, c.ok) == (D(2022, 8, 20), D(2022, 9, 3), False)


def test_six_month_rule_is_counted_back_from_day1_with_month_end_clamping(study):
    # Abatacept on 31 August 2022: 28 February 2023 - 6 months = 28 August 2022, so that
    # exposure is within 6 months of 28 February; 1 March is the first permissible Day 1.
    item = HistoryItem("immunomodulator", "abatacept", last_dose="2022-08-31")
    report = check(study, "2023-02-01", [item], day1="2023-02-28")
    (c,) = [c for c in report.checks if c.code == "immunomodulator"]
    assert (c.earliest, c.ok) == (D(2023, 3, 1), False)
    assert check(study, "2023-02-01", [item], day1="2023-03-01").ok
    # Exposure on 28 August: 28 February is exactly 6 months later and permissible.
    ok = check(study, "2023-02-01", [HistoryItem("immunomodulator", last_dose="2022-08-28")])
    assert ok.checks[3].earliest == D(2023, 2, 28)


def test_three_month_rule_boundary_and_clamp(study):
    # 31 August - 3 months = 31 May: a last change on 31 May is just permissible.
    _, c = one(study, HistoryItem("dmard", "leflunomide", last_change="2022-05-31"))
    assert (c.earliest, c.ok) == (D(2022, 8, 31), True)
    _, c = one(study, HistoryItem("dmard", "methotrexate", last_dose="2022-06-01"))
    assert (c.earliest, c.ok) == (D(2022, 9, 1), False)
    # 30 November + 3 months is clamped to 28 February, which is too early (28 Feb - 3 months
    # = 28 November): 1 March.
    report = check(study, "2023-02-10", [HistoryItem("dmard", last_dose="2022-11-30")])
    assert report.checks[4].earliest == D(2023, 3, 1)


def test_live_vaccine_four_weeks(study):
    _, c = one(study, HistoryItem("live_vaccine", "yellow fever", last_dose="2022-08-03"))
    assert (c.earliest, c.ok) == (D(2022, 8, 31), True)
    _, c = one(study, HistoryItem("live_vaccine", "yellow fever", last_dose="2022-08-04"))
    assert (c.earliest, c.ok) == (D(2022, 9, 1), False)


def test_dry_mouth_medication_binds_screening_not_day1(study):
    report, c = one(study, HistoryItem("dry_mouth_eyes", "oxybutynin", last_change="2022-06-27"))
    assert (c.binds, c.earliest, c.date, c.ok) == ("SCR", D(2022, 7, 27), D(2022, 7, 27), True)
    report, c = one(study, HistoryItem("dry_mouth_eyes", "oxybutynin", last_change="2022-06-28"))
    assert (c.earliest, c.ok, report.ok) == (D(2022, 7, 28), False, False)
    assert report.earliest_day1 == D(2022, 7, 28) and report.binding is None


def test_topical_ocular_ninety_days_before_treatment_start(study):
    _, c = one(
        study, HistoryItem("topical_ocular", "cyclosporine eye drops", last_change="2022-06-02")
    )
    assert (c.anchor, c.binds, c.earliest, c.ok) == ("treatment start", "D1", D(2022, 8, 31), True)
    _, c = one(study, HistoryItem("topical_ocular", last_change="2022-06-03"))
    assert (c.earliest, c.ok) == (D(2022, 9, 1), False)


def test_the_binding_rule_is_the_latest_earliest_date(study):
    history = [
        HistoryItem("live_vaccine", last_dose="2022-07-20"),  # 17 August
        HistoryItem("bcell_depleting", last_dose="2021-12-20"),  # 29 August
        HistoryItem("prednisone", last_change="2022-08-01"),  # 15 August
    ]
    report = check(study, S, history)
    assert (report.earliest_day1, report.binding, report.ok) == (
        D(2022, 8, 29),
        "bcell_depleting",
        True,
    )
    assert report.day1_source == "planned"
    assert not check(study, S, history, day1="2022-08-20").ok
    rules = [c.code for c in report.checks]
    assert rules == ["investigational", "bcell_depleting", "prednisone", "immunomodulator",
                     "dmard", "live_vaccine", "dry_mouth_eyes", "topical_ocular"]  # fmt: skip


def test_a_recorded_day1_is_checked(study):
    p = Participant("P1", S, records={"D1": "2022-08-10"})
    report = check(study, p, [HistoryItem("live_vaccine", last_dose="2022-07-20")])
    assert (report.day1, report.day1_source, report.ok) == (D(2022, 8, 10), "recorded", False)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (HistoryItem("nope", last_dose="2022-01-01"), "history item 1 rule 'nope': unknown"),
        (
            HistoryItem("investigational", last_dose="2022-07-01"),
            "history item 1 half_life None: is needed: rule investigational counts 5 half-lives",
        ),
        (
            HistoryItem("live_vaccine", last_change="2022-07-01"),
            "history item 1 last_change '2022-07-01': is not used by rule live_vaccine",
        ),
        (
            HistoryItem("topical_ocular"),
            "history item 1 'topical_ocular': needs a last_change date",
        ),
        (
            HistoryItem("live_vaccine", last_dose="2022-07-01", half_life="3 days"),
            "history item 1 half_life 72.0: is not used by rule live_vaccine",
        ),
    ],
)
def test_incomplete_history_is_refused_in_one_line(study, item, message):
    with pytest.raises(VisitplanError) as err:
        check(study, S, [item])
    assert str(err.value).startswith(message)


def test_a_day1_outside_the_run_in_is_refused(study):
    with pytest.raises(VisitplanError, match=r"D1\.date '2022-09-05': must be between"):
        check(study, S, [], day1="2022-09-05")


def test_half_life_parsing():
    assert parse_half_life("36 hours") == 36
    assert parse_half_life("1.5 days") == 36
    assert parse_half_life("2 weeks") == 336
    for bad in ("0 days", "3 months", "", "ten days"):
        with pytest.raises(VisitplanError):
            parse_half_life(bad)


def test_history_csv_and_json_read_the_same():
    csv_text = "rule,what,last_dose,last_change,half_life\nlive_vaccine,MMR,2022-07-20,,\n"
    js = '[{"rule": "live_vaccine", "what": "MMR", "last_dose": "2022-07-20"}]'
    assert read_history(csv_text) == read_history(js, fmt="json")
    with pytest.raises(VisitplanError) as err:
        read_history("rule,last_dose\nlive_vaccine,2022-02-30\n", source="h.csv")
    assert str(err.value) == "h.csv row 2 last_dose '2022-02-30': is not a day of the calendar"
    with pytest.raises(VisitplanError, match=r"h\.csv row 2 dose 'x': unknown column"):
        read_history("rule,dose\nlive_vaccine,x\n", source="h.csv")


@given(
    st.dates(min_value=pendulum.date(2000, 1, 1), max_value=pendulum.date(2100, 1, 1)),
    st.integers(min_value=0, max_value=36),
    st.integers(min_value=0, max_value=400),
)
def test_earliest_clear_is_the_first_day_counted_back_past_the_exposure(day, months, days):
    exposure = pendulum.date(day.year, day.month, day.day)
    span = Span(months, days)
    first = earliest_clear(exposure, span)
    assert shift(first, -span) >= exposure
    assert shift(first.subtract(days=1), -span) < exposure


# -- the CLI ------------------------------------------------------------------------------------
def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_cli_table_and_json(tmp_path):
    history = write(
        tmp_path,
        "h.csv",
        "rule,what,last_dose,last_change,half_life\n"
        "investigational,drug X,2022-07-15,,10 days\n"
        "bcell_depleting,rituximab,2021-12-20,,\n",
    )
    r = run("eligibility", "--screening", S, "--history", history)
    assert r.returncode == 0, r.stderr
    assert "Earliest permissible Day 1: 2022-09-03 (binding rule: investigational)" in r.stdout
    assert "no permissible Day 1 is left in the run-in" in r.stdout
    assert "bcell_depleting: also requires B cells back to min(LLN" in r.stdout
    r = run("eligibility", "--screening", S, "--day1", "2022-08-30", "--history", history,
            "--format", "json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["earliest_day1"], doc["binding"], doc["ok"]) == (
        "2022-09-03",
        "investigational",
        False,
    )
    assert doc["participant"] == {"code": "candidate", "screening": S, "day1": "2022-08-30",
                                  "day1_source": "given"}  # fmt: skip
    inv = doc["rules"][0]
    assert (inv["last_exposure"], inv["earliest"], inv["ok"]) == ("2022-07-15", "2022-09-03", False)


@pytest.mark.parametrize(
    ("history", "args", "message"),
    [
        ("rule\nnope\n", [], "error: history item 1 rule 'nope': unknown washout rule"),
        (None, [], "error: history file"),
        ("rule,last_dose\nlive_vaccine,2022-13-01\n", [], "error: h.csv row 2 last_dose"),
        ("rule\n", ["--day1", "2022-09-30"], "error: D1.date '2022-09-30': must be between"),
    ],
)
def test_cli_errors_are_one_line_with_exit_2(tmp_path, history, args, message):
    path = write(tmp_path, "h.csv", history) if history is not None else str(tmp_path / "no.csv")
    r = run("eligibility", "--screening", S, "--history", path, *args)
    assert r.returncode == 2
    assert r.stderr.startswith(message), r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
