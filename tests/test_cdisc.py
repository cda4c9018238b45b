"""CDISC exports: SDTM variable names, the study-day rule, VISITNUM, USDM v4 structure."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path

import pendulum
import pytest
from tests import cli as harness
from tests.cli import Result

import visitplan
from visitplan.export import cdisc
from visitplan.participant import Participant, Record, Status
from visitplan.protocol_file import load

EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "weekly-oncology.toml"

# Variable names and order as published in SDTMIG v3.4 (restated here, not imported from the
# code under test). TV and SV list the variables this export fills.
SDTMIG = {
    "TV": ["STUDYID", "DOMAIN", "VISITNUM", "VISIT", "VISITDY", "ARMCD", "TVSTRL", "TVENRL"],
    "TE": ["STUDYID", "DOMAIN", "ETCD", "ELEMENT", "TESTRL", "TEENRL", "TEDUR"],
    "TA": [
        "STUDYID", "DOMAIN", "ARMCD", "ARM", "TAETORD", "ETCD", "ELEMENT", "TABRANCH",
        "TATRANS", "EPOCH",
    ],
    "SV": [
        "STUDYID", "DOMAIN", "USUBJID", "VISITNUM", "VISIT", "SVPRESP", "SVOCCUR", "SVREASOC",
        "EPOCH", "SVSTDTC", "SVENDTC", "SVSTDY", "SVENDY", "SVUPDES",
    ],
}  # fmt: skip
ISO_DURATION = re.compile(r"^P(\d+M)?(\d+[DW])?$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def oracle_study_day(day: str, day1: str) -> int:
    """The SDTM rule restated with the standard library: no Day 0, negative before Day 1."""
    delta = (dt.date.fromisoformat(day) - dt.date.fromisoformat(day1)).days
    return delta + 1 if delta >= 0 else delta


def parse(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


def run(*args: str) -> Result:
    return harness.run(*args)


@pytest.fixture(scope="module")
def study() -> visitplan.Protocol:
    return visitplan.builtin("NCT05124925")


# -- TV -----------------------------------------------------------------------------------------
def test_tv_variables_and_values(study):
    header, rows = parse(cdisc.to_csv(cdisc.tv_rows(study), cdisc.TV_COLUMNS))
    assert header == SDTMIG["TV"]
    assert {r["DOMAIN"] for r in rows} == {"TV"}
    assert {r["STUDYID"] for r in rows} == {"CVAY736A2103"}
    assert {r["ARMCD"] for r in rows} == {""}  # timing does not depend on the arm
    by_visit = {r["VISIT"]: r for r in rows}
    days = {name: by_visit[name]["VISITDY"] for name in ("Screening", "Baseline and dose 1")}
    assert days == {"Screening": "-35", "Baseline and dose 1": "1"}  # no Day 0
    # Dose k at Day 1 + 4(k-1) weeks is study day 28(k-1) + 1.
    assert [by_visit[f"Dose {k}"]["VISITDY"] for k in range(2, 7)] == [
        "29",
        "57",
        "85",
        "113",
        "141",
    ]
    assert by_visit["End of treatment"]["VISITDY"] == "169"
    assert by_visit["End of study"]["VISITDY"] == ""  # calendar months and event-driven
    assert all(r["VISITDY"] != "0" for r in rows)


def test_tv_visitnum_is_stable_and_ordered(study):
    rows = cdisc.tv_rows(study)
    nums = [r["VISITNUM"] for r in rows]
    assert nums[:9] == ["100", "200", "300", "400", "500", "600", "700", "800", "901"]
    assert nums[-1] == "1000"
    fu = [r for r in rows if r["VISIT"].startswith("Follow-up")]
    assert [r["VISITNUM"] for r in fu] == [str(901 + k) for k in range(len(fu))]
    assert len(fu) == 8  # Week 36 to Week 120, before EOS at last dose + 24 months
    days = [int(r["VISITDY"]) for r in rows if r["VISITDY"]]
    assert days == sorted(days)
    assert cdisc.tv_rows(study) == rows  # deterministic
    assert cdisc.visitnum(study, "FU", 3) == 903


def test_tv_windows_live_in_the_rules(study):
    w4 = next(r for r in cdisc.tv_rows(study) if r["VISIT"] == "Dose 2")
    assert (
        w4["TVSTRL"]
        == "Target D1 (Baseline and dose 1) + 4 weeks; earliest 3 days before the target"
    )
    assert w4["TVENRL"] == "Latest 3 days after the target"


def test_tv_of_the_example_protocol():
    rows = {r["VISIT"]: r for r in cdisc.tv_rows(load(EXAMPLE))}
    assert rows["Cycle 1 day 1"]["VISITNUM"] == "200"
    assert rows["Cycle 1 day 2 PK sample"]["VISITDY"] == "2"
    assert [rows[f"Cycle 1 weekly dose {k}"]["VISITNUM"] for k in (1, 2, 3)] == [
        "401",
        "402",
        "403",
    ]
    assert [rows[f"Cycle 1 weekly dose {k}"]["VISITDY"] for k in (1, 2, 3)] == ["8", "15", "22"]
    assert rows["End of treatment"]["VISITDY"] == "85"
    assert rows["Follow-up 1"]["VISITDY"] == ""  # 3 calendar months: no fixed study day
    assert "only for participants flagged pk_substudy" in rows["Cycle 1 day 2 PK sample"]["TVSTRL"]


# -- TE and TA ----------------------------------------------------------------------------------
def test_te_and_ta(study):
    header, te = parse(cdisc.to_csv(cdisc.te_rows(study), cdisc.TE_COLUMNS))
    assert header == SDTMIG["TE"]
    assert [r["ETCD"] for r in te] == ["RUNIN", "TRT", "FU"]  # the protocol file's etcd
    assert all(len(r["ETCD"]) <= 8 for r in te)
    assert [r["TEDUR"] for r in te] == ["P35D", "", ""]
    assert all(ISO_DURATION.match(r["TEDUR"]) for r in te if r["TEDUR"])
    assert te[0]["TESTRL"] == "Start of visit SCR (Screening)"
    assert te[0]["TEENRL"] == "Start of visit D1 (Baseline and dose 1)"
    header, ta = parse(cdisc.to_csv(cdisc.ta_rows(study), cdisc.TA_COLUMNS))
    assert header == SDTMIG["TA"]
    assert [r["TAETORD"] for r in ta] == ["1", "2", "3"]
    assert [r["ETCD"] for r in ta] == [r["ETCD"] for r in te]
    # EPOCH is the CDISC EPOCH codelist's submission value (C99079), not the epoch's name.
    assert [r["EPOCH"] for r in ta] == ["RUN-IN", "TREATMENT", "FOLLOW-UP"]
    assert {(r["ARMCD"], r["ARM"]) for r in ta} == {("IANALUMAB", "ianalumab 300 mg s.c.")}
    custom = cdisc.ta_rows(study, armcd="IAN300", arm="Ianalumab 300 mg")
    assert {r["ARMCD"] for r in custom} == {"IAN300"}


def test_example_te_duration_in_weeks_and_months():
    te = cdisc.te_rows(load(EXAMPLE))
    assert [(r["ETCD"], r["TEDUR"]) for r in te] == [
        ("SCREEN", "P14D"),
        ("TREAT", ""),
        ("FOLLOWUP", ""),
    ]
    assert cdisc.iso_duration(visitplan.model.Offset(5, visitplan.model.Unit.MONTHS)) == "P5M"
    assert cdisc.iso_duration(visitplan.model.Offset(4, visitplan.model.Unit.WEEKS)) == "P4W"
    assert cdisc.iso_duration(visitplan.model.Span(2, 10)) == "P2M10D"


# -- SV -----------------------------------------------------------------------------------------
def sv_people() -> list[Participant]:
    return [
        Participant("1001", "2022-07-27"),  # screened, no Day 1 yet
        Participant(
            "1002",
            "2022-09-12",
            records=[
                Record("D1", "2022-10-10"),
                Record("W4", None, Status.MISSED, "participant had flu"),
                Record("W8", "2022-12-06"),
            ],
        ),
        Participant(
            "1003",
            "2023-01-31",
            records={"D1": "2023-03-06", "W4": "2023-04-03"},
            discontinued="2023-04-20",
        ),
    ]


def sv_table(study, unscheduled=()):
    people = sv_people()
    today = pendulum.date(2023, 5, 1)
    schedules = [study.plan(p, today=today) for p in people]
    text = cdisc.to_csv(cdisc.sv_rows(study, people, schedules, unscheduled), cdisc.SV_COLUMNS)
    return parse(text)


def test_sv_variables_and_occurrence(study):
    header, rows = sv_table(study)
    assert header == SDTMIG["SV"]
    assert {r["DOMAIN"] for r in rows} == {"SV"}
    assert {r["USUBJID"] for r in rows} == {f"CVAY736A2103-{c}" for c in ("1001", "1002", "1003")}
    got = {(r["USUBJID"][-4:], r["VISITNUM"]): r for r in rows}
    w4 = got[("1002", "300")]
    assert (w4["SVPRESP"], w4["SVOCCUR"], w4["SVSTDTC"], w4["SVSTDY"]) == ("Y", "N", "", "")
    assert w4["SVREASOC"] == "participant had flu"
    # Discontinued: the doses not given did not occur, with the reason.
    w8 = got[("1003", "400")]
    assert (w8["SVOCCUR"], w8["SVREASOC"]) == ("N", "treatment discontinued on 2023-04-20")
    # Visits still to come are not subject visits.
    assert ("1002", "500") not in got and ("1002", "901") not in got
    for r in rows:
        assert r["SVPRESP"] == "Y" and r["SVOCCUR"] in ("Y", "N")
        if r["SVOCCUR"] == "Y":
            assert ISO_DATE.match(r["SVSTDTC"]) and r["SVENDTC"] == r["SVSTDTC"]


def test_sv_study_day_rule(study):
    _, rows = sv_table(study)
    day1 = {r["USUBJID"]: r["SVSTDTC"] for r in rows if r["VISITNUM"] == "200"}
    checked = 0
    for r in rows:
        if not r["SVSTDTC"]:
            continue
        if r["USUBJID"] not in day1:
            assert r["SVSTDY"] == ""  # no Day 1 (RFSTDTC) yet: no study day
            continue
        expected = oracle_study_day(r["SVSTDTC"], day1[r["USUBJID"]])
        assert int(r["SVSTDY"]) == expected == int(r["SVENDY"])
        assert expected != 0
        checked += 1
    screening = [r for r in rows if r["VISITNUM"] == "100" and r["SVSTDY"]]
    assert sorted(int(r["SVSTDY"]) for r in screening) == [-34, -28]  # negative before Day 1
    assert checked >= 6


def test_sv_unscheduled_visits_get_decimal_visitnum(study):
    extra = [
        cdisc.UnscheduledVisit("1002", "U1", "2022-10-20", reason="=rash check"),
        cdisc.UnscheduledVisit("1002", "U2", "2022-10-25", reason="rash follow-up"),
        cdisc.UnscheduledVisit("1003", "U1", "2023-03-05", reason="headache"),
    ]
    _, rows = sv_table(study, extra)
    un = [r for r in rows if r["SVUPDES"]]
    assert [(r["USUBJID"][-4:], r["VISITNUM"]) for r in un] == [
        ("1002", "200.01"),
        ("1002", "200.02"),
        ("1003", "100.01"),
    ]
    first = un[0]
    assert first["SVUPDES"] == "'=rash check"  # formula-safe cell
    assert (first["SVPRESP"], first["SVOCCUR"]) == ("", "")
    assert first["SVSTDY"] == str(oracle_study_day("2022-10-20", "2022-10-10")) == "11"
    assert un[2]["SVSTDY"] == "-1"  # the day before Day 1 is -1, never 0
    # Sorted by subject, then VISITNUM.
    nums = [(r["USUBJID"], float(r["VISITNUM"])) for r in rows]
    assert nums == sorted(nums)


def test_sv_refuses_mismatched_inputs(study):
    people = sv_people()
    schedules = [study.plan(p) for p in people]
    with pytest.raises(visitplan.VisitplanError, match="must be one per participant"):
        cdisc.sv_rows(study, people, schedules[:1])
    with pytest.raises(visitplan.VisitplanError, match="is not in the roster"):
        cdisc.sv_rows(
            study, people, schedules, [cdisc.UnscheduledVisit("9999", "U1", "2023-01-01")]
        )


# -- CLI ----------------------------------------------------------------------------------------
def test_cli_writes_each_export(tmp_path):
    for domain in ("tv", "te", "ta"):
        out = tmp_path / f"{domain}.csv"
        r = run("cdisc", domain, "-o", str(out))
        assert r.returncode == 0, r.stderr
        header = out.read_text().splitlines()[0].split(",")
        assert header == SDTMIG[domain.upper()]
    out = tmp_path / "usdm.json"
    r = run("cdisc", "usdm", "--protocol", str(EXAMPLE), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["study"]["name"] == "EXAMPLE-ONC-01"


def test_cli_sv_from_roster(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "participant,site,screening,day1,flags\n1001,BREST,2022-07-27,,\n"
        "1002,BREST,2022-09-12,2022-10-10,hbcab_positive\n"
    )
    r = run("cdisc", "sv", "--roster", str(roster), "--today", "2022-10-11")
    assert r.returncode == 0, r.stderr
    header, rows = parse(r.stdout)
    assert header == SDTMIG["SV"]
    assert [(r["USUBJID"], r["VISITNUM"], r["SVSTDY"]) for r in rows] == [
        ("CVAY736A2103-1001", "100", ""),
        ("CVAY736A2103-1002", "100", "-28"),
        ("CVAY736A2103-1002", "200", "1"),
    ]


def test_cli_sv_bad_roster_is_one_line(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("participant,screening\n1001,2022-02-30\n")
    r = run("cdisc", "sv", "--roster", str(roster))
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and len(r.stderr.splitlines()) == 1
    assert "Traceback" not in r.stderr


# -- element codes and EPOCH terms from the protocol file --------------------------------------
def _with_epochs(study, **changes):
    import attrs

    epochs = tuple(
        attrs.evolve(e, **changes[e.code]) if e.code in changes else e for e in study.epochs
    )
    return attrs.evolve(study, epochs=epochs)


def test_etcd_is_never_cut(study):
    # Without an etcd, a code of more than 8 characters is refused, naming the field to set.
    long_code = _with_epochs(study, TREATMENT={"etcd": None})
    with pytest.raises(visitplan.VisitplanError) as exc:
        cdisc.te_rows(long_code)
    assert str(exc.value) == (
        "epochs.TREATMENT.code 'TREATMENT': is longer than the 8 characters of an SDTM element "
        "code (ETCD): give etcd = ... in the protocol file"
    )
    # A code that fits is the element code itself.
    assert [r["ETCD"] for r in cdisc.te_rows(_with_epochs(study, FOLLOWUP={"etcd": None}))][
        2
    ] == "FOLLOWUP"


def test_etcd_and_epoch_type_are_checked_when_loading(tmp_path):
    from visitplan.protocol_file import ProtocolErrors, dumps, loads

    text = dumps(visitplan.builtin())
    for old, new, message in (
        ('etcd = "TRT"', 'etcd = "TREATMENT"', "epochs.TREATMENT.etcd 'TREATMENT': an element"),
        ('etcd = "TRT"', 'etcd = "FU"', "epochs.FOLLOWUP.etcd 'FU': duplicate element code"),
        ('type = "RUN-IN"', 'type = "Run-in"', "must be a term of the CDISC EPOCH codelist"),
    ):
        assert old in text
        with pytest.raises(ProtocolErrors) as exc:
            loads(text.replace(old, new, 1))
        assert message in str(exc.value)


def test_epoch_default_terms_and_refusal(study):
    # Without a type, the code or the name spells the term: RUNIN, "Follow-up".
    plain = _with_epochs(study, RUNIN={"type": None}, FOLLOWUP={"type": None})
    assert [r["EPOCH"] for r in cdisc.ta_rows(plain)] == ["RUN-IN", "TREATMENT", "FOLLOW-UP"]
    import attrs

    odd = _with_epochs(study, RUNIN={"type": None, "code": "LEAD", "name": "Lead phase"})
    odd = attrs.evolve(
        odd, visits=tuple(attrs.evolve(v, epoch="LEAD") if v.epoch == "RUNIN" else v for v in odd)
    )
    with pytest.raises(visitplan.VisitplanError, match=r"epochs\.LEAD\.type"):
        cdisc.ta_rows(odd)


def test_sv_has_the_epoch_of_each_visit(study):
    unplanned = [cdisc.UnscheduledVisit("1002", "U1", "2022-09-20", reason="rash"),
                 cdisc.UnscheduledVisit("1002", "U2", "2022-10-20", reason="fever")]  # fmt: skip
    _, rows = sv_table(study, unplanned)
    got = {(r["USUBJID"][-4:], r["VISITNUM"]): r["EPOCH"] for r in rows}
    assert got[("1002", "100")] == "RUN-IN"  # screening
    assert got[("1002", "200")] == "TREATMENT"  # Day 1
    assert got[("1002", "100.01")] == "RUN-IN"  # unscheduled, after screening, before Day 1
    assert got[("1002", "200.01")] == "TREATMENT"
    assert set(got.values()) <= {"RUN-IN", "TREATMENT", "FOLLOW-UP"}


def test_cli_sv_refuses_a_site_the_protocol_does_not_have(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("participant,site,screening\n1001,LYON,2022-07-27\n")
    r = run("cdisc", "sv", "--roster", str(roster), "--today", "2022-09-01")
    assert r.returncode == 2
    assert r.stderr == "error: site 'LYON': is not a site of NCT05124925; known: BREST\n"
