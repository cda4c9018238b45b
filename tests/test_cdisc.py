"""CDISC exports: SDTM variable names, the study-day rule, VISITNUM, USDM v4 structure."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pendulum
import pytest

import visitplan
from visitplan.export import cdisc
from visitplan.participant import Participant, Record, Status
from visitplan.protocol_file import load

EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "weekly-oncology.toml"
BIN = Path(sys.executable).with_name("visitplan")

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
        "STUDYID", "DOMAIN", "USUBJID", "VISITNUM", "VISIT", "SVSTDTC", "SVENDTC", "SVSTDY",
        "SVENDY", "SVPRESP", "SVOCCUR", "SVREASOC", "SVUPDES",
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


def run(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "visitplan"]
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, env={**os.environ}, timeout=60
    )


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
    assert [r["ETCD"] for r in te] == ["RUNIN", "TREATMEN", "FOLLOWUP"]
    assert all(len(r["ETCD"]) <= 8 for r in te)
    assert [r["TEDUR"] for r in te] == ["P35D", "", ""]
    assert all(ISO_DURATION.match(r["TEDUR"]) for r in te if r["TEDUR"])
    assert te[0]["TESTRL"] == "Start of visit SCR (Screening)"
    assert te[0]["TEENRL"] == "Start of visit D1 (Baseline and dose 1)"
    header, ta = parse(cdisc.to_csv(cdisc.ta_rows(study), cdisc.TA_COLUMNS))
    assert header == SDTMIG["TA"]
    assert [r["TAETORD"] for r in ta] == ["1", "2", "3"]
    assert [r["ETCD"] for r in ta] == [r["ETCD"] for r in te]
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


# -- USDM ---------------------------------------------------------------------------------------
def test_usdm_timeline_structure(study):
    doc = json.loads(cdisc.to_usdm_json(study))
    assert doc["usdmVersion"] == "4.0"
    tl = doc["scheduleTimeline"]
    assert tl["instanceType"] == "ScheduleTimeline" and tl["mainTimeline"] is True
    instances = {i["id"]: i for i in tl["instances"]}
    assert all(i["instanceType"] == "ScheduledActivityInstance" for i in instances.values())
    assert tl["entryId"] == tl["instances"][0]["id"]
    assert [i["name"] for i in tl["instances"]][:3] == ["SCR", "D1", "W4"]
    epochs = {e["id"] for e in doc["epochs"]}
    activities = {a["id"] for a in doc["activities"]}
    encounters = {e["id"]: e for e in doc["encounters"]}
    timings = {t["id"]: t for t in tl["timings"]}
    for i in instances.values():
        assert i["epochId"] in epochs and i["encounterId"] in encounters
        assert set(i["activityIds"]) <= activities and i["activityIds"]
    for e in encounters.values():
        assert e["scheduledAtId"] in timings
    codes = {"After": "C201356", "Before": "C201357", "Fixed Reference": "C201358"}
    for t in timings.values():
        assert t["instanceType"] == "Timing"
        assert codes[t["type"]["decode"]] == t["type"]["code"]
        assert t["relativeToFrom"]["decode"] == "Start to Start"
        assert ISO_DURATION.match(t["value"]), t["value"]
        assert t["relativeFromScheduledInstanceId"] in instances
        assert t["relativeToScheduledInstanceId"] in (None, *instances)
        for bound in ("windowLower", "windowUpper"):
            assert t[bound] is None or ISO_DURATION.match(t[bound])
    fixed = [t for t in timings.values() if t["type"]["decode"] == "Fixed Reference"]
    assert (
        len(fixed) == 1 and instances[fixed[0]["relativeFromScheduledInstanceId"]]["name"] == "D1"
    )


def test_usdm_timing_values(study):
    tl = cdisc.usdm_timeline(study)["scheduleTimeline"]
    names = {i["id"]: i["name"] for i in tl["instances"]}
    by_name = {
        names[t["relativeFromScheduledInstanceId"]]: t
        for t in tl["timings"]
        if t["type"]["decode"] != "Fixed Reference"
    }

    def summary(code):
        t = by_name[code]
        to = names.get(t["relativeToScheduledInstanceId"])
        return (t["type"]["decode"], t["value"], to, t["windowLower"], t["windowUpper"])

    assert summary("D1") == ("After", "P35D", "SCR", "P34D", "P0D")
    assert summary("W4") == ("After", "P4W", "D1", "P3D", "P3D")
    assert summary("FU1") == ("After", "P16W", "W20", "P7D", "P7D")  # last dose as planned
    assert summary("FU2") == ("After", "P28W", "W20", "P7D", "P7D")
    assert summary("EOS") == ("After", "P5M", "W20", "P0D", "P19M")


def test_usdm_before_for_negative_offsets(tmp_path):
    text = (Path(__file__).parent / "protocols" / "valid-minimal.toml").read_text()
    scr = 'epoch = "RUNIN"\nanchor = "screening"'
    assert scr in text
    text = text.replace(scr, 'epoch = "RUNIN"\nanchor = "D1"\noffset = "-14 days"')
    text = text.replace('screening_visit = "SCR"\n', "")
    path = tmp_path / "before.toml"
    path.write_text(text)
    tl = cdisc.usdm_timeline(load(path))["scheduleTimeline"]
    scr = next(t for t in tl["timings"] if t["name"] == "SCR timing")
    assert (scr["type"]["decode"], scr["value"]) == ("Before", "P14D")


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
    assert json.loads(out.read_text())["studyId"] == "EXAMPLE-ONC-01"


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
