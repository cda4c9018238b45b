"""Engine and exporter invariants over random protocols and random actual dates (hypothesis).

The built-in protocol is one point in the space; these properties hold for any valid protocol
(tests/strategies.py builds them), so a bug that NCT05124925 happens not to exercise still shows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.oracle import add_months, study_day
from tests.strategies import DOSE, EPOCHS, depends_on, histories, protocols, screenings

from visitplan import Participant, Record, VisitplanError, plan
from visitplan.export.tabular import CSV_COLUMNS, safe_cell, to_csv, to_json
from visitplan.model import AnchorKind, Offset, Protocol, Unit, Visit, VisitKind
from visitplan.protocol_file import dumps, from_dict, loads, to_dict
from visitplan.schedule import FindingKind, Schedule

#: Examples per property; raise it for a longer local run (docs/reliability.md).
EXAMPLES = int(os.environ.get("VISITPLAN_PROPERTY_EXAMPLES", "100"))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Protocol, Participant, Schedule]:
    protocol = draw(protocols())
    person = draw(histories(protocol))
    return protocol, person, plan(protocol, person)


def oracle_shift(day: dt.date, months: int, days: int) -> dt.date:
    """Months first (end-of-month clamped), then days: written with the standard library."""
    return add_months(day, months) + dt.timedelta(days=days)


def span(o: Offset) -> tuple[int, int]:
    if o.unit is Unit.MONTHS:
        return o.value, 0
    return 0, o.value * (7 if o.unit is Unit.WEEKS else 1)


@SETTINGS
@given(cases())
def test_every_target_lies_within_its_window(case):
    _, _, schedule = case
    for v in schedule.visits:
        assert v.earliest <= v.target <= v.latest, v


@SETTINGS
@given(cases())
def test_visits_come_out_in_date_order(case):
    # Date order; visits on the same day in the protocol's order, occurrences in order.
    protocol, _, schedule = case
    place = {v.code: i for i, v in enumerate(protocol.visits)}
    keys = [(v.date, place[v.base_code], v.occurrence or 0) for v in schedule.visits]
    assert keys == sorted(keys)


@SETTINGS
@given(cases())
def test_study_day_rule_no_day_zero(case):
    _, _, schedule = case
    assert schedule.day1 == schedule.visit("V0").date
    for v in schedule.visits:
        assert v.study_day == study_day(v.date, schedule.day1)
        assert v.study_day != 0


@SETTINGS
@given(cases())
def test_dates_match_an_independent_month_clamping_oracle(case):
    """Target, earliest and latest equal anchor + offset computed in one step by the stdlib."""
    protocol, person, schedule = case
    held = {f.visit for f in schedule.findings if f.kind is FindingKind.HELD}
    for v in schedule.visits:
        d = protocol.visit(v.base_code)
        if v.code in held:
            continue
        if d.anchor.kind is AnchorKind.SCREENING:
            anchor = person.screening
        elif d.anchor.kind is AnchorKind.LAST_DOSE:
            if schedule.last_dose is None:
                # No dose given and none to come: nothing is planned from a dose never given
                # (cancelled, or kept as recorded), on one day with no window.
                assert v.status.value != "planned" and v.earliest == v.target == v.latest, v
                continue
            anchor = schedule.last_dose
        else:
            anchor = schedule.visit(d.anchor.visit or "").date
        months, days = span(d.offset)
        if v.occurrence is not None:
            assert d.repeat is not None
            em, ed = span(d.repeat.every)
            months, days = months + em * (v.occurrence - 1), days + ed * (v.occurrence - 1)
        bm, bd = span(d.window.before)
        am, ad = span(d.window.after)
        assert v.earliest == oracle_shift(anchor, months - bm, days - bd)
        assert v.latest == oracle_shift(anchor, months + am, days + ad)
        if d.wait_for is None:
            assert v.target == oracle_shift(anchor, months, days)
        elif d.wait_for not in person.events:
            # Tentative while it waits, and only while it is open (issue 17).
            assert v.tentative is v.open and v.target == v.latest
        else:
            assert v.target == min(max(person.events[d.wait_for], v.earliest), v.latest)


@SETTINGS
@given(cases(), st.data())
def test_recording_a_visit_moves_only_what_hangs_on_it(case, data):
    protocol, person, before = case
    open_codes = [
        v.code
        for v in before.visits
        if v.actual is None and v.occurrence is None and v.status.value == "planned"
    ]
    if not open_codes:
        return
    code = data.draw(st.sampled_from(open_codes))
    planned = before.visit(code)
    day = planned.target + dt.timedelta(days=data.draw(st.integers(0, 10)))
    try:
        after = plan(protocol, person.with_record(Record(code, day)))
    except VisitplanError as exc:
        # The two refusals a random date can meet: before its anchor, before screening.
        assert "cannot precede its anchor" in str(exc) or "before the screening" in str(exc)
        return
    moved = depends_on(protocol, code)
    after_by_code = {v.code: v for v in after.visits}
    for v in before.visits:
        if v.actual is not None:  # an actual date never changes
            assert after_by_code[v.code].actual == v.actual
        if v.code != code and v.base_code not in moved:
            w = after_by_code[v.code]
            assert (w.target, w.earliest, w.latest) == (v.target, v.earliest, v.latest), v.code
    assert after_by_code[code].actual == day


@SETTINGS
@given(protocols())
def test_protocol_file_round_trip(protocol):
    """Writing a random protocol and reading it back gives the same protocol (TOML and JSON)."""
    assert loads(dumps(protocol)) == protocol
    assert loads(json.dumps(to_dict(protocol)), fmt="json") == protocol
    assert from_dict(to_dict(protocol)) == protocol


@SETTINGS
@given(cases())
def test_json_export_parses_back_to_the_same_dates(case):
    protocol, person, schedule = case
    doc = json.loads(to_json(protocol, person, schedule))
    assert doc["participant"]["code"] == person.code
    assert doc["participant"]["day1"] == schedule.day1.isoformat()
    got = [
        (v["code"], v["target"], v["earliest"], v["latest"], v["actual"], v["study_day"])
        for v in doc["visits"]
    ]
    want = [
        (
            v.code,
            v.target.isoformat(),
            v.earliest.isoformat(),
            v.latest.isoformat(),
            v.actual.isoformat() if v.actual else None,
            v.study_day,
        )
        for v in schedule.visits
    ]
    assert got == want


#: Any text but lone surrogates (which no file can hold); formula starters are frequent.
hostile_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30
) | st.sampled_from(["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=x", "\r=x", "-inf", "+1", "-5"])


@settings(max_examples=2 * EXAMPLES, deadline=None)
@given(st.lists(hostile_text, min_size=1, max_size=4), screenings)
def test_csv_round_trips_and_neutralises_formulas(names, screening):
    visits = tuple(
        Visit(f"V{i}", name, VisitKind.DOSING, EPOCHS[0].code, _screening_anchor(), Offset(i),
              procedures=(DOSE,))
        for i, name in enumerate(names)
    )  # fmt: skip
    protocol = Protocol("RANDOM", "t", "", "V0", EPOCHS, visits)
    schedule = plan(protocol, Participant("P1", screening))
    rows = list(csv.reader(io.StringIO(to_csv([schedule]), newline="")))
    assert rows[0] == list(CSV_COLUMNS)
    by_code = {v.code: v for v in schedule.visits}
    for row in rows[1:]:
        cell = dict(zip(CSV_COLUMNS, row, strict=True))
        v = by_code[cell["code"]]
        assert cell["target"] == v.target.isoformat()
        assert cell["study_day"] == str(v.study_day)
        assert cell["name"] == safe_cell(v.name)
        first = cell["name"][:1]
        assert first not in ("=", "+", "-", "@", "\t", "\r") or _plain_number(cell["name"])
        if cell["name"] != v.name:
            assert cell["name"] == "'" + v.name


def _screening_anchor():  # type: ignore[no-untyped-def]
    from visitplan.model import Anchor

    return Anchor.screening()


def _plain_number(text: str) -> bool:
    import re

    return re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", text, re.ASCII) is not None
