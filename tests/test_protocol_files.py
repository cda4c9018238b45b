"""Protocol files: round trips, the broken-file corpus, the second example, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests import cli as harness
from tests.cli import Result

import visitplan
from visitplan.facts import known_flags
from visitplan.model import Offset, Repeat, Unit, Window
from visitplan.participant import Participant, Record, Status
from visitplan.protocol_file import ProtocolErrors, dumps, from_dict, load, loads

HERE = Path(__file__).parent
BROKEN = HERE / "protocols" / "broken"
EXAMPLE = HERE.parent / "docs" / "examples" / "weekly-oncology.toml"


def run(*args: str, columns: int = 160) -> Result:
    return harness.run(*args, columns=columns)


def participants() -> list[Participant]:
    """Participants that exercise anchors, actual dates, flags, events and discontinuation."""
    return [
        Participant("1001", "2022-07-27"),
        Participant("1002", "2022-09-12", records={"D1": "2022-10-10", "W4": "2022-11-09"}),
        Participant(
            "1003",
            "2023-01-31",
            records={"D1": "2023-03-06", "W4": "2023-04-03", "W8": "2023-05-01"},
            flags={"hbcab_positive"},
            events={"bcell_recovery": "2024-01-15"},
        ),
        Participant(
            "1004",
            "2023-05-31",
            records=[Record("D1", "2023-06-30"), Record("W4", None, Status.MISSED, "flu")],
            discontinued="2023-08-15",
        ),
    ]


# -- round trip ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["toml", "json", "yaml"])
def test_builtin_round_trip_gives_equal_protocol_and_schedules(tmp_path, fmt):
    study = visitplan.builtin("NCT05124925")
    path = tmp_path / f"study.{fmt}"
    path.write_text(dumps(study, fmt=fmt), encoding="utf-8")
    again = load(path)
    assert again == study
    for person in participants():
        today = pendulum.date(2024, 6, 1)
        assert again.plan(person, today=today) == study.plan(person, today=today)
    # Writing what was read gives the same text: the format is stable.
    assert dumps(again, fmt=fmt) == dumps(study, fmt=fmt)


def test_round_trip_preserves_every_field_of_the_example():
    study = load(EXAMPLE)
    for fmt in ("toml", "json", "yaml"):
        assert loads(dumps(study, fmt=fmt), fmt=fmt) == study


def test_cli_export_round_trips_through_check(tmp_path):
    out = tmp_path / "exported.json"
    r = run("protocol", "export", "NCT05124925", "--format", "json", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert load(out) == visitplan.builtin("NCT05124925")
    r = run("protocol", "check", str(out))
    assert r.returncode == 0, r.stderr
    n = len(visitplan.builtin("NCT05124925").visits)
    assert r.stdout.startswith(f"ok: {out}: NCT05124925: 3 epochs, {n} visits")
    r = run("protocol", "export", "--format", "toml")
    assert loads(r.stdout) == visitplan.builtin("NCT05124925")


# -- the broken corpus ----------------------------------------------------------------------------
def expected_errors(path: Path) -> list[str]:
    """The exact messages a broken file must produce: ``# expect:`` lines or a sidecar."""
    sidecar = path.with_name(path.name + ".expect")
    if sidecar.exists():
        lines = sidecar.read_text(encoding="utf-8").splitlines()
    else:
        lines = [
            line.removeprefix("# expect: ")
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith("# expect: ")
        ]
    return [line.replace("{file}", str(path)) for line in lines]


BROKEN_FILES = sorted(p for p in BROKEN.iterdir() if p.suffix in (".toml", ".json", ".yaml"))


def test_corpus_covers_every_error_kind():
    names = {p.stem for p in BROKEN_FILES}
    assert {
        "unknown-anchor", "anchor-cycle", "negative-window", "month-min-dose-gap",
        "duplicate-visit-code", "duplicate-epoch-code", "duplicate-procedure", "unknown-unit",
        "unknown-field", "wrong-type-offset", "missing-required", "repeat-without-end",
        "unknown-epoch", "unknown-procedure", "unknown-timezone", "bad-visit-code",
        "bad-procedure-code", "duplicate-key",
    } <= names  # fmt: skip
    assert all(expected_errors(p) for p in BROKEN_FILES)


def test_the_corpus_base_is_valid():
    study = load(HERE / "protocols" / "valid-minimal.toml")
    assert [v.code for v in study.visits] == ["SCR", "D1", "W4", "FU"]


@pytest.mark.parametrize("path", BROKEN_FILES, ids=lambda p: p.name)
def test_broken_file_gives_exactly_its_errors(path):
    with pytest.raises(ProtocolErrors) as info:
        load(path)
    assert [str(e) for e in info.value.errors] == expected_errors(path)


@pytest.mark.parametrize("path", BROKEN_FILES, ids=lambda p: p.name)
def test_check_prints_every_error_on_its_own_line(path):
    r = run("protocol", "check", str(path))
    assert r.returncode == 2
    expected = expected_errors(path)
    lines = r.stderr.splitlines()
    assert lines[:-1] == [f"error: {m}" for m in expected]
    n = len(expected)
    assert lines[-1] == f"{n} error{'s' if n > 1 else ''} in {path}"
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_many_errors_are_all_reported_in_document_order():
    errors = expected_errors(BROKEN / "many-errors.toml")
    assert len(errors) == 4
    assert [e.split(": ")[1].split(" ")[0] for e in errors] == [
        "sites.S1.timezone",
        "rules.min_dose_gap",
        "visits.W4.offset",
        "visits.W4.anchor",
    ]


def test_json_refuses_duplicate_keys_at_any_depth():
    doc = json.dumps({"study": {"id": "A"}})
    with pytest.raises(ProtocolErrors) as info:
        loads(doc.replace('{"id": "A"}', '{"id": "A", "id": "B"}'), fmt="json", source="x.json")
    assert "x.json: study.id 'id': duplicate key" in [str(e) for e in info.value.errors]


def test_months_accepted_where_documented():
    study = load(HERE / "protocols" / "valid-minimal.toml")
    fu = study.visit("FU")
    assert (str(fu.offset), str(fu.repeat.every)) == ("1 months", "1 months")


def test_unknown_file_suffix_is_refused(tmp_path):
    path = tmp_path / "study.txt"
    path.write_text("", encoding="utf-8")
    with pytest.raises(visitplan.VisitplanError, match=r"must end in one of: \.toml, \.json"):
        load(path)


def test_check_of_a_missing_file_is_one_line():
    r = run("protocol", "check", "no/such/file.toml")
    assert r.returncode == 2
    assert r.stderr == "error: protocol file 'no/such/file.toml': does not exist\n"


# -- the second example ---------------------------------------------------------------------------
def test_weekly_oncology_example_plans():
    study = load(EXAMPLE)
    s = study.plan(Participant("X1", "2024-02-23", flags={"pk_substudy"}))
    d = {v.code: v for v in s.visits}
    assert s.day1 == pendulum.date(2024, 3, 8)
    # Weekly doses in three 4-week cycles: 12 doses over 12 weeks.
    doses = [v for v in s.visits if v.kind.value == "dosing"]
    assert len(doses) == 12
    assert [v.study_day for v in doses] == [1, 8, 15, 22, 29, 36, 43, 50, 57, 64, 71, 78]
    assert d["C1PK"].target == pendulum.date(2024, 3, 9)
    assert d["EOT"].target == pendulum.date(2024, 5, 31)  # last dose (C3WK3) + 1 week
    # Calendar-month follow-up from EOT, each computed in one step (clamped, not drifting).
    fu = [d[f"FU{k}"].target.isoformat() for k in range(1, 8)]
    assert fu == [
        "2024-08-31", "2024-11-30", "2025-02-28", "2025-05-31", "2025-08-31", "2025-11-30",
        "2026-02-28",
    ]  # fmt: skip
    assert "FU8" not in d and d["EOS"].target == pendulum.date(2026, 5, 31)
    # Without the PK flag the PK visit and PK samples are not planned.
    plain = study.plan(Participant("X2", "2024-02-23"))
    assert "C1PK" not in {v.code for v in plain.visits}
    assert all(p.code != "PK" for v in plain.visits for p in v.procedures)


def test_weekly_oncology_cycle_restarts_from_actual_cycle_day1():
    study = load(EXAMPLE)
    s = study.plan(
        Participant("X3", "2024-02-23", records={"C1D1": "2024-03-08", "C2D1": "2024-04-07"})
    )
    assert s.visit("C2WK1").target == pendulum.date(2024, 4, 14)
    assert s.visit("C3D1").target == pendulum.date(2024, 5, 3)  # from C1D1, never chained


def test_show_prints_the_schedule_of_activities_grid():
    # Visits as columns when they fit side by side (this protocol needs over 200 columns).
    r = run("protocol", "show", str(EXAMPLE), columns=240)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header = next(line for line in lines if "SCR" in line and "C1D1" in line)
    for code in ("C1PK *", "C1WK", "C2D1", "EOT", "FU", "EOS"):
        assert code in header
    pk = next(line for line in lines if line.startswith("│ PK "))
    assert pk.count("(X)") == 3 and " X " not in pk
    dose = next(line for line in lines if line.startswith("│ DOSE "))
    assert dose.count(" X ") == 6
    assert "(X) PK: only for participants flagged pk_substudy" in r.stdout
    assert "C1PK *: only for participants flagged pk_substudy" in r.stdout
    day = next(line for line in lines if line.startswith("│ Day "))
    assert [c.strip() for c in day.split("│")[2:6]] == ["-14", "1", "2", "8..."]


def test_show_builtin_by_name():
    r = run("protocol", "show")
    assert r.returncode == 0, r.stderr
    assert "NCT05124925: schedule of activities" in r.stdout
    assert "(X) HBV: only for participants flagged hbcab_positive" in r.stdout


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("[]", "json",
         ["x: (document) []: must be a table of [study], [[epochs]], [[visits]], ..."]),
        ("", "toml", ["file 'x': is empty"]),
        ("# only a comment", "toml", ["x: epochs (missing): is required",
                                      "x: study (missing): is required",
                                      "x: visits (missing): is required"]),
        ('visits = []\nepochs = []\n[study]\nid = "A"\ntitle = "B"\nday1_visit = "D1"', "toml",
         ["x: visits []: a protocol needs at least one visit"]),
        ('{"study": {"id": "A", "title": "B", "day1_visit": "D1"}, "epochs": [], "visits": [null]}',
         "json", ["x: visits[0] None: must be a table"]),
    ],
)  # fmt: skip
def test_document_level_errors(text, fmt, expected):
    with pytest.raises(ProtocolErrors) as info:
        loads(text, fmt=fmt, source="x")
    assert [str(e) for e in info.value.errors] == expected


# -- property: any protocol the model can express survives the file formats ----------------------
offsets = st.builds(
    Offset, st.integers(-60, 60), st.sampled_from([Unit.DAYS, Unit.WEEKS, Unit.MONTHS])
)
bounds = st.builds(Offset, st.integers(0, 30), st.sampled_from(list(Unit)))


@st.composite
def variants(draw: st.DrawFn) -> visitplan.Protocol:
    """The minimal corpus protocol with random timings, windows, repeat ends and conditions."""
    base = load(HERE / "protocols" / "valid-minimal.toml")
    w4 = attrs.evolve(
        base.visit("W4"),
        offset=draw(offsets),
        window=Window(draw(bounds), draw(bounds), draw(st.booleans())),
        condition=draw(st.none() | st.just("flag_a")),
    )
    every = Offset(draw(st.integers(1, 12)), draw(st.sampled_from(list(Unit))))
    count = draw(st.none() | st.integers(1, 20))
    # At most 30 months: repeating every day, 36 months would make over MAX_OCCURRENCES (1000)
    # occurrences, a protocol the engine rightly refuses (found by hypothesis).
    until = Offset(draw(st.integers(1, 30)), Unit.MONTHS) if count is None else None
    fu = attrs.evolve(base.visit("FU"), repeat=Repeat(every, count=count, until=until))
    visits = tuple({"W4": w4, "FU": fu}.get(v.code, v) for v in base.visits)
    return attrs.evolve(base, visits=visits)


@settings(max_examples=60, deadline=None)
@given(variants(), st.sampled_from(["toml", "json", "yaml"]), st.booleans())
def test_any_variant_round_trips_with_identical_schedules(study, fmt, flagged):
    again = loads(dumps(study, fmt=fmt), fmt=fmt)
    assert again == study
    # Every flag the variant looks at, or none: a flag it does not know is refused.
    flags = known_flags(study) if flagged else frozenset()
    person = Participant("P1", "2024-01-31", flags=flags)
    assert again.plan(person) == study.plan(person)


def test_a_visit_coded_like_the_last_dose_node_is_reported_not_a_crash():
    # Found by the fuzzer: a dosing visit coded "last-dose" anchored on the last dose made a
    # cycle of last-dose nodes only, and the cycle report raised StopIteration.
    doc = {
        "study": {"id": "A", "title": "B", "day1_visit": "D1"},
        "epochs": [{"code": "E", "name": "e"}],
        "procedures": {"DOSE": {"name": "d", "dose": {"drug": "x", "amount": 1}}},
        "visits": [
            {"code": "D1", "name": "d", "kind": "dosing", "epoch": "E", "anchor": "screening",
             "procedures": ["DOSE"]},
            {"code": "last-dose", "name": "x", "kind": "dosing", "epoch": "E",
             "anchor": "last-dose", "procedures": ["DOSE"]},
        ],
    }  # fmt: skip
    with pytest.raises(ProtocolErrors) as info:
        from_dict(doc, source="x")
    messages = [str(e) for e in info.value.errors]
    assert messages[0].startswith("x: visits.last-dose.code 'last-dose': visit codes are")
    assert any("anchors form a cycle" in m for m in messages)


def cycle_doc(visits: list[dict[str, object]]) -> dict[str, object]:
    return {
        "study": {"id": "A", "title": "B", "day1_visit": "D1"},
        "epochs": [{"code": "E", "name": "e"}],
        "procedures": {"DOSE": {"name": "d", "dose": {"drug": "x", "amount": 1}}},
        "visits": [{"name": "v", "kind": "assessment", "epoch": "E", **v} for v in visits],
    }


@pytest.mark.parametrize(
    ("visits", "expected"),
    [
        # Read as "anchors on", from the cycle's first visit in the file, with its field.
        ([{"code": "D1", "anchor": "screening"}, {"code": "C", "anchor": "A"},
          {"code": "A", "anchor": "B"}, {"code": "B", "anchor": "C"}],
         "x: visits.C.anchor 'A': anchors form a cycle: C -> A -> B -> C"),
        ([{"code": "D1", "anchor": "screening"}, {"code": "W4", "anchor": "D1"},
          {"code": "X", "anchor": "screening", "not_before": {"anchor": "W4", "offset": "1 days"}},
          {"code": "W8", "anchor": "X"}, {"code": "W12", "anchor": "D1",
          "repeat": {"every": "1 weeks", "count": 2, "stop_visit": "W8"}}],
         None),
        ([{"code": "D1", "anchor": "screening"},
          {"code": "W4", "anchor": "last-dose", "procedures": ["DOSE"]}],
         "x: visits.W4.anchor 'last-dose': anchors form a cycle: W4 -> last-dose -> W4"),
        ([{"code": "D1", "anchor": "screening"},
          {"code": "A", "anchor": "screening", "not_before": {"anchor": "B", "offset": "1 days"}},
          {"code": "B", "anchor": "A"}],
         "x: visits.A.not_before.anchor 'B': anchors form a cycle: A -> B -> A"),
        ([{"code": "D1", "anchor": "screening"},
          {"code": "R", "anchor": "D1", "procedures": ["DOSE"],
           "repeat": {"every": "1 weeks", "count": 2, "stop_visit": "S"}},
          {"code": "S", "anchor": "last-dose"}],
         "x: visits.R.repeat.stop_visit 'S': anchors form a cycle: R -> S -> last-dose -> R"),
    ],
)  # fmt: skip
def test_a_cycle_is_found_by_the_engines_check_and_named_as_the_file_reads(visits, expected):
    doc = cycle_doc(visits)
    if expected is None:
        assert from_dict(doc, source="x").visit("W12").repeat.stop_visit == "W8"
        return
    with pytest.raises(ProtocolErrors) as info:
        from_dict(doc, source="x")
    assert [str(e) for e in info.value.errors] == [expected]
