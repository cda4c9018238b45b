"""``visitplan protocol import-usdm``: a USDM v4 study back into a protocol file.

The round trip: a protocol is written as USDM (``cdisc usdm``), read back (``protocol
import-usdm``), and both protocols plan the same participants (actual dates, missed visits,
flags, discontinuation, withdrawal, recovery from an event or from B-cell counts, a visit
outside its window) to the same dates, windows, statuses and findings. The refusals are one
line each. usdm4 ships no example study; its Builder's output stands in for a USDM file made
by another tool.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import visitplan
from visitplan.cli import cli
from visitplan.engine import plan
from visitplan.errors import VisitplanError
from visitplan.export import cdisc
from visitplan.export.tabular import schedule_dict
from visitplan.export.usdm import usdm_study
from visitplan.participant import Count, Participant, Record, Status
from visitplan.protocol_file import from_dict, load, to_dict
from visitplan.protocol_file.usdm import MAX_USDM_BYTES, load_usdm, usdm_to_dict

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "weekly-oncology.toml"
USDM_PYTHON = ROOT / ".venv-usdm" / "bin" / "python"
TODAY = "2024-03-01"

NCT_PEOPLE = [
    # Every dose on time, one missed with its reason, HBV monitoring, recovery recorded.
    Participant(
        "1001",
        "2022-07-27",
        records=[
            Record("D1", "2022-08-31"),
            Record("W4", "2022-09-29"),
            Record("W8", None, Status.MISSED, "participant ill"),
            Record("W12", "2022-11-25"),
            Record("W16", "2022-12-21"),
            Record("W20", "2023-01-20"),
            Record("EOT", "2023-02-16"),
        ],
        flags={"hbcab_positive"},
        events={"bcell_recovery": "2023-09-14"},
    ),
    # Treatment discontinued after two doses; W4 outside its window (a finding).
    Participant(
        "1002",
        "2022-09-12",
        records={"D1": "2022-10-10", "W4": "2022-11-14"},
        discontinued="2022-12-01",
    ),
    # Recovery derived from the B-cell counts (the protocol's recovery rule), not recorded.
    Participant(
        "1003",
        "2022-10-03",
        records={
            "D1": "2022-11-07",
            "W4": "2022-12-05",
            "W8": "2023-01-02",
            "W12": "2023-01-30",
            "W16": "2023-02-27",
            "W20": "2023-03-27",
        },
        bcell_baseline=120,
        bcell_counts=[Count("2023-06-01", 10), Count("2023-11-20", 95)],
    ),
    Participant("1004", "2023-01-31", records={"D1": "2023-03-06"}, withdrawn="2023-04-02"),
    Participant("1005", "2024-02-20"),  # screened, Day 1 still to come
]
EXAMPLE_PEOPLE = [
    Participant(
        "2001",
        "2023-01-09",
        records={"C1D1": "2023-01-20", "C1WK1": "2023-01-27", "C2D1": "2023-02-18"},
        flags={"pk_substudy", "wocbp"},
        site="LYON",
    ),
    Participant(
        "2002",
        "2023-02-01",
        records={"C1D1": "2023-02-10", "C1WK1": "2023-02-20"},  # a day late: a finding
        discontinued="2023-03-01",
        events={"progression": "2023-09-01"},
        site="BOSTON",
    ),
    Participant("2003", "2023-03-01", site="LYON"),
]


def round_trip(tmp_path: Path, spec: str) -> tuple[visitplan.Protocol, visitplan.Protocol]:
    """The protocol ``spec`` and the one read back from its USDM file, both through the CLI."""
    usdm, back = tmp_path / "study.json", tmp_path / "back.toml"
    runner = CliRunner()
    r = runner.invoke(cli, ["cdisc", "usdm", "-p", spec, "-o", str(usdm)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["protocol", "import-usdm", str(usdm), "-o", str(back)])
    assert r.exit_code == 0, r.output
    assert r.stderr == f"wrote {back}\n"
    r = runner.invoke(cli, ["protocol", "check", str(back)])
    assert r.exit_code == 0 and r.stdout.startswith(f"ok: {back}: "), r.output
    original = visitplan.builtin(spec) if spec == "NCT05124925" else load(spec)
    return original, load(back)


def same_everywhere(original: visitplan.Protocol, back: visitplan.Protocol, people) -> None:
    import pendulum

    today = pendulum.parse(TODAY).date()
    compared = 0
    for person in people:
        want = schedule_dict(original, person, plan(original, person, today=today))
        got = schedule_dict(back, person, plan(back, person, today=today))
        assert got == want, person.code
        compared += len(want["visits"])
    assert compared > 20
    # The SDTM trial design and subject visits are the same too (VISITNUM keeps file order).
    for rows in (cdisc.tv_rows, cdisc.te_rows, cdisc.ta_rows):
        assert rows(back) == rows(original)
    schedules = [plan(original, p, today=today) for p in people]
    again = [plan(back, p, today=today) for p in people]
    assert cdisc.sv_rows(back, people, again) == cdisc.sv_rows(original, people, schedules)


def normalised(protocol: visitplan.Protocol) -> dict[str, Any]:
    """The protocol file, with each epoch's type and element code spelt out as the exports
    spell them (a protocol may leave them to their defaults)."""
    doc = to_dict(protocol)
    for table, epoch in zip(doc["epochs"], protocol.epochs, strict=True):
        table["type"], table["etcd"] = cdisc.epoch_value(epoch), cdisc.etcd(epoch)
    return doc


def test_nct05124925_round_trips_and_plans_the_same_dates(tmp_path):
    original, back = round_trip(tmp_path, "NCT05124925")
    assert normalised(back) == normalised(original)
    same_everywhere(original, back, NCT_PEOPLE)
    # The plans compared above hold what the round trip must keep: recovery recorded or
    # derived from counts ends the follow-up, a discontinuation holds EOT, a visit outside
    # its window is a finding, a withdrawal cancels the rest.
    today = visitplan.dates.to_date(TODAY, "today")
    eos = {p.code: plan(back, p, today=today).visits[-1] for p in NCT_PEOPLE}
    assert (str(eos["1001"].target), str(eos["1003"].target)) == ("2023-09-14", "2023-11-20")
    findings = {(f.kind.value, f.visit) for f in plan(back, NCT_PEOPLE[1], today=today).findings}
    assert {("out-of-window", "W4"), ("held", "EOT")} <= findings
    assert eos["1004"].status.value == "cancelled"


def test_the_example_protocol_round_trips_and_plans_the_same_dates(tmp_path):
    original, back = round_trip(tmp_path, str(EXAMPLE))
    assert normalised(back) == normalised(original)
    same_everywhere(original, back, EXAMPLE_PEOPLE)


def without_extensions(protocol: visitplan.Protocol) -> dict[str, Any]:
    doc = usdm_study(protocol)
    for node in _walk(doc):
        node["extensionAttributes"] = []
    return doc


def test_what_usdm_says_is_read_from_usdm():
    # Without visitplan's extension attributes, the standard parts still give the epochs,
    # the visits in planned order with their timings and windows, Day 1 (the fixed
    # reference), the procedures, and each repeat as many times as its sub-timeline holds.
    read = usdm_to_dict(without_extensions(load(EXAMPLE)))
    assert read["study"]["day1_visit"] == "C1D1"
    assert read["study"]["screening_visit"] == "SCR"
    assert [e["type"] for e in read["epochs"]] == ["SCREENING", "TREATMENT", "FOLLOW-UP"]
    visits = {v["code"]: v for v in read["visits"]}
    assert [v["code"] for v in read["visits"]][:4] == ["SCR", "C1D1", "C1PK", "C1WK"]
    assert (visits["C1D1"]["anchor"], visits["C1D1"]["offset"]) == ("SCR", "14 days")
    assert visits["C1D1"]["window"] == {"before": "13 days", "after": "0 days"}
    assert (visits["C2D1"]["anchor"], visits["C2D1"]["offset"]) == ("C1D1", "4 weeks")
    assert visits["C1WK"]["repeat"] == {"count": 3, "every": "1 weeks"}
    assert visits["C1WK"]["procedures"] == ["DOSE", "PK"]
    assert visits["C1WK"]["kind"] == "assessment"  # the kind is visitplan's own word
    assert read["procedures"]["DOSE"]["kind"] == "other"
    # The last dose is a USDM instance, not a rule: EOT counts from the C3WK series (its
    # third occurrence is the last dose as planned), which a protocol cannot say.
    assert (visits["EOT"]["anchor"], visits["EOT"]["offset"]) == ("C3WK", "3 weeks")
    with pytest.raises(VisitplanError, match=r"visits\.EOT\.anchor 'C3WK': cannot anchor on a"):
        from_dict(read)
    # NCT05124925 without its extensions plans, with what USDM says: the follow-up counts
    # from W20 (the last dose as planned), eight times, and EOS from W20 too.
    protocol = from_dict(usdm_to_dict(without_extensions(visitplan.builtin())))
    s = plan(protocol, Participant("X", "2022-07-27"))
    got = {v.code: str(v.target) for v in s.visits}
    assert [c for c in got if c.startswith("FU")] == [f"FU{k}" for k in range(1, 9)]
    assert (got["W20"], got["FU1"], got["EOS"]) == ("2023-01-18", "2023-05-10", "2023-06-18")


def _walk(node):
    if isinstance(node, dict):
        if "extensionAttributes" in node:
            yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


# -- refusals ------------------------------------------------------------------------------------
def refused(tmp_path: Path, content: str | bytes, name: str = "in.json") -> str:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    out = tmp_path / "out.toml"
    r = CliRunner().invoke(cli, ["protocol", "import-usdm", str(path), "-o", str(out)])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and len(r.stderr.splitlines()) == 1, r.stderr
    assert "Traceback" not in r.output and not out.exists()
    return str(r.stderr)


def nct_doc() -> dict[str, Any]:
    return usdm_study(visitplan.builtin())


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("", "is not valid JSON"),
        ("{not json", "is not valid JSON"),
        ('{"usdmVersion": "4.0.0", "usdmVersion": "3.0.0", "study": {}}',
         "key 'usdmVersion': appears twice in one object"),
        ("[1, 2]", "is not a USDM v4 Wrapper"),
        ('{"usdmVersion": "3.0.0", "study": {}}', "is not a USDM v4 Wrapper"),
        ('{"usdmVersion": "4.0.0"}', "is not a USDM v4 Wrapper"),
        ('{"usdmVersion": "4.0.0", "study": {"versions": []}}',
         "study.versions 0: visitplan reads a file with exactly one"),
    ],
)  # fmt: skip
def test_not_a_usdm_v4_wrapper_is_refused(tmp_path, content, says):
    assert says in refused(tmp_path, content)


def test_a_protocol_file_in_json_is_not_a_usdm_file(tmp_path):
    text = json.dumps(to_dict(visitplan.builtin()))
    assert "is not a USDM v4 Wrapper" in refused(tmp_path, text)


def test_what_planning_needs_must_be_there(tmp_path):
    def design(doc):
        return doc["study"]["versions"][0]["studyDesigns"][0]

    doc = nct_doc()
    design(doc)["scheduleTimelines"] = [
        t for t in design(doc)["scheduleTimelines"] if not t["mainTimeline"]
    ]
    assert "scheduleTimelines 0: must have one main timeline" in refused(tmp_path, json.dumps(doc))

    doc = nct_doc()
    main = design(doc)["scheduleTimelines"][0]
    main["instances"][2]["encounterId"] = "Encounter_999"
    assert "main timeline instance 'W4'.encounterId 'Encounter_999': refers to nothing" in (
        refused(tmp_path, json.dumps(doc))
    )

    doc = nct_doc()
    main = design(doc)["scheduleTimelines"][0]
    w4 = next(t for t in main["timings"] if t["name"] == "W4 timing")
    w4["value"] = "PT4H"
    assert "visit W4 timing.value 'PT4H': must be an ISO 8601 duration in one unit" in (
        refused(tmp_path, json.dumps(doc))
    )

    doc = nct_doc()
    version = doc["study"]["versions"][0]
    version["extensionAttributes"] = []  # no stated Day 1 ...
    main = design(doc)["scheduleTimelines"][0]
    main["timings"] = [t for t in main["timings"] if t["type"]["decode"] != "Fixed Reference"]
    assert "(no Fixed Reference)'" in refused(tmp_path, json.dumps(doc))  # ... nor a fixed one

    doc = nct_doc()
    enc = design(doc)["encounters"][0]
    enc["extensionAttributes"][0]["valueString"] = "[1]"
    assert "encounter 'SCR'.extensionAttributes" in refused(tmp_path, json.dumps(doc))


def test_the_protocol_checks_apply_to_what_is_read(tmp_path):
    doc = nct_doc()
    enc = doc["study"]["versions"][0]["studyDesigns"][0]["encounters"][1]
    rule = json.loads(enc["extensionAttributes"][0]["valueString"])
    enc["extensionAttributes"][0]["valueString"] = json.dumps(rule | {"kind": "party"})
    message = refused(tmp_path, json.dumps(doc))
    assert "visits.D1.kind 'party': must be one of: screening, dosing" in message


def test_bounded_reading(tmp_path):
    big = tmp_path / "big.json"
    with big.open("wb") as f:
        f.truncate(MAX_USDM_BYTES + 1)  # sparse: nothing is read
    with pytest.raises(VisitplanError, match="is larger than 32 MB"):
        load_usdm(big)
    with pytest.raises(VisitplanError, match=r"USDM file '.*': is not a regular file"):
        load_usdm(tmp_path)
    with pytest.raises(VisitplanError, match=r"USDM file '.*nothing\.json': does not exist"):
        load_usdm(tmp_path / "nothing.json")
    assert "must be UTF-8 text" in refused(tmp_path, b'{"a": "\xff"}')


@pytest.mark.skipif(not USDM_PYTHON.exists(), reason="no Python >= 3.12 for usdm4 here")
def test_a_usdm4_builder_study_is_refused_saying_what_it_lacks(tmp_path):
    # usdm4 ships no example study. A document made by its own Builder (tests/usdm/validate.py)
    # starts a sub-timeline from an instance that is a visit itself: visitplan cannot say
    # whether the sub-timeline repeats that visit or holds others, and says so.
    from tests.usdm.builder import builder_demo

    message = refused(tmp_path, builder_demo()[0], "builder.json")
    assert "main timeline instance 'S1' 'Encounter_1': has an encounter and a sub-timeline" in (
        message
    )


def test_any_value_of_the_wrong_kind_is_a_one_line_refusal():
    # Every node of a real export replaced, in turn, by values of other JSON kinds (a seeded
    # sample; the whole cross product, some 56,000 documents, passed when this was written).
    import copy
    import random

    base = usdm_study(load(EXAMPLE))
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, key))
        elif isinstance(node, list):
            for key, value in enumerate(node):
                walk(value, (*path, key))

    walk(base, ())
    rng = random.Random(20)
    refused = 0
    for path in rng.sample(paths[1:], 120):
        for value in ([], 7, None, "x", {}, [{}], 1.5, True):
            doc = copy.deepcopy(base)
            node = doc
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            try:
                protocol = from_dict(usdm_to_dict(doc, source="mutated.json"))
            except VisitplanError as exc:
                assert "\n" not in str(exc) and len(str(exc)) <= 2100
                refused += 1
                continue
            plan(protocol, Participant("F1", "2023-01-09"))  # what is read plans
    assert refused > 120
