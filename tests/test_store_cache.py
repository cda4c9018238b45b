"""The roster's plan cache: the queries answer exactly as planning everyone from scratch.

The reference functions below are the queries as they were before the cache (every
participant re-planned by the engine, then filtered); the roster's answers must equal them.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
from pathlib import Path
from typing import Any

import attrs
import pendulum
import pytest

import visitplan
from visitplan.dates import shift
from visitplan.errors import VisitplanError
from visitplan.model import Offset, Span, Unit
from visitplan.participant import Participant
from visitplan.schedule import FindingKind, VisitStatus
from visitplan.store import DEVIATION_KINDS, Deviation, DueVisit, Roster

STORE_TODAY = pendulum.date(2024, 6, 1)
QUERY_DAYS = ["2021-03-01", "2022-07-15", "2023-05-20", "2024-06-01", "2025-02-01"]


def plan_one(protocol: visitplan.Protocol, person: Participant, day: Any) -> Any:
    """The engine's plan, an error naming the participant as a site-wide list does."""
    try:
        return visitplan.plan(protocol, person, today=day)
    except VisitplanError as e:
        raise VisitplanError(f"participant {person.code}: {e.field}", e.value, e.rule) from e


def reference_due(roster: Roster, today: str, days: int) -> list[DueVisit]:
    day = pendulum.parse(today).date()
    horizon = shift(day, Span(0, days))
    booked = {(a.participant, a.visit): a for a in roster.appointments()}
    found = [
        DueVisit(p.code, p.site, v, booked.get((p.code, v.code)))
        for p in roster.participants()
        for v in plan_one(roster.protocol, p, day).visits
        if v.status is VisitStatus.PLANNED and v.target <= horizon and v.latest >= day
    ]
    found.sort(key=lambda d: (d.visit.target, d.participant, d.visit.code))
    return found


def reference_deviations(
    roster: Roster, today: str, kinds: Any = DEVIATION_KINDS
) -> list[Deviation]:
    day = pendulum.parse(today).date()
    found = []
    for p in roster.participants():
        schedule = plan_one(roster.protocol, p, day)
        by_code = {v.code: v for v in schedule.visits}
        found += [
            Deviation(p.code, p.site, f.kind, f.visit, f.message, by_code.get(f.visit))
            for f in schedule.findings
            if f.kind in set(kinds)
        ]
    found.sort(
        key=lambda d: (d.planned.date if d.planned else day, d.participant, d.visit, d.kind.value)
    )
    return found


def _try(change: Any, *args: Any, **kwargs: Any) -> None:
    """Apply a generated change; one the store refuses is simply not part of the roster."""
    with contextlib.suppress(VisitplanError):
        change(*args, **kwargs)


def fill(roster: Roster, n: int = 60, seed: int = 13) -> None:
    """Participants in every state: late and early doses, missed visits, B-cell counts and
    recovery, discontinuation, withdrawal, the HBcAb flag, run-in only, just screened."""
    rng = random.Random(seed)
    for i in range(n):
        code = f"C{i:03d}"
        screening = shift(pendulum.date(2020, 6, 1), Span(0, rng.randrange(1400)))
        flags = ["hbcab_positive"] if rng.random() < 0.3 else []
        roster.enroll(code, screening, flags=flags)
        if rng.random() < 0.15:
            continue  # run-in only: nothing recorded yet
        if rng.random() < 0.4:
            _try(roster.record_bcell, code, screening, 150, baseline=True)
        for v in roster.schedule(code).visits:
            if v.latest >= STORE_TODAY or v.base_code == "SCR" or rng.random() < 0.08:
                continue  # not yet due, the screening visit, or left open: overdue
            what = rng.random()
            if what < 0.08:
                _try(roster.record, code, v.code, status="missed", reason="sick")
            else:
                jitter = rng.choice([0, 0, 0, -2, 3, 9, -12])  # some outside their window
                day = min(shift(v.target, Span(0, jitter)), STORE_TODAY)
                _try(roster.record, code, v.code, day)
            if v.base_code == "W12" and rng.random() < 0.5:
                _try(roster.record_bcell, code, v.target, rng.choice([20, 200]))
        after = rng.random()
        stop = shift(screening, Span(0, rng.randrange(60, 500)))
        if after < 0.15:
            _try(roster.discontinue, code, min(stop, STORE_TODAY), "adverse event")
        elif after < 0.25:
            _try(roster.withdraw, code, min(stop, STORE_TODAY), "consent withdrawn")
        elif after < 0.35:
            _try(roster.record_event, code, "bcell_recovery", min(stop, STORE_TODAY))


def cache_rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = sqlite3.connect(db)
    try:
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for r in con.execute(
            "SELECT participant, code, status, target, earliest, latest, tentative"
            " FROM planned_visits ORDER BY participant, code"
        ):
            rows.setdefault(r[0], []).append(r[1:])
        for r in con.execute(
            "SELECT participant, kind, visit FROM planned_findings"
            " ORDER BY participant, kind, visit"
        ):
            rows.setdefault(r[0], []).append(r[1:])
        return rows
    finally:
        con.close()


def planned_rows(protocol: visitplan.Protocol, people: list[Participant]) -> dict[str, Any]:
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for p in people:
        s = visitplan.plan(protocol, p)
        mine = rows.setdefault(p.code, [])
        mine += sorted(
            (
                v.code,
                v.status.value,
                v.target.isoformat(),
                v.earliest.isoformat(),
                v.latest.isoformat(),
                int(v.tentative),
            )
            for v in s.visits
        )
        mine += sorted((f.kind.value, f.visit) for f in s.findings)
    return rows


def assert_cache_fresh(roster: Roster, db: Path) -> None:
    assert cache_rows(db) == planned_rows(roster.protocol, roster.participants())


def outcome(query: Any, *args: Any) -> Any:
    """A query's answer, or the error it raised (a ``today`` before a recorded visit)."""
    try:
        return query(*args)
    except VisitplanError as exc:
        return ("error", str(exc))


def assert_queries_as_engine(roster: Roster, days: list[str] = QUERY_DAYS) -> int:
    """Every query equals the reference on each day; returns how many days raised."""
    errors = 0
    overdue = (FindingKind.OVERDUE,)
    wanted = (FindingKind.MISSED, FindingKind.HELD)
    for today in days:
        for horizon in (0, 14, 90):
            assert outcome(roster.due, today, horizon) == outcome(
                reference_due, roster, today, horizon
            )
        got = outcome(roster.deviations, today)
        assert got == outcome(reference_deviations, roster, today)
        errors += isinstance(got, tuple)
        assert outcome(roster.overdue, today) == outcome(
            reference_deviations, roster, today, overdue
        )
        assert outcome(roster.deviations, today, wanted) == outcome(
            reference_deviations, roster, today, wanted
        )
    return errors


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("cache") / "roster.db"
    with Roster.open(db, today=STORE_TODAY) as roster:
        fill(roster)
        roster.set_appointment("C001", "FU1", "2024-06-10", "10:00")
    return db


def test_queries_equal_planning_everyone_from_scratch(filled):
    with Roster.open(filled, today=STORE_TODAY) as roster:
        kinds = {d.kind for today in QUERY_DAYS[3:] for d in roster.deviations(today)}
        # The roster really is varied: every kind of deviation occurs, and due finds visits.
        assert kinds == set(DEVIATION_KINDS)
        assert roster.due("2024-06-01", 90) and roster.overdue("2025-02-01")
        assert any(p.discontinued for p in roster.participants())
        assert any(p.withdrawn for p in roster.participants())
        assert any(p.events for p in roster.participants())
        # The early days come before recorded visits: the engine refuses, and so does the roster.
        assert 0 < assert_queries_as_engine(roster) < len(QUERY_DAYS)
        assert_cache_fresh(roster, filled)


def test_cache_is_refreshed_by_every_kind_of_change(tmp_path):
    db = tmp_path / "roster.db"
    with Roster.open(db, today="2023-06-01") as roster:
        changes = [
            lambda: roster.enroll("1001", "2022-07-27", flags=["hbcab_positive"]),
            lambda: roster.enroll("1002", "2022-08-01"),
            lambda: roster.record_bcell("1001", "2022-07-27", 150, baseline=True),
            lambda: roster.record("1001", "D1", "2022-08-31"),
            lambda: roster.record("1001", "W4", "2022-10-07"),  # late: out of window
            lambda: roster.record("1001", "W8", status="missed", reason="travel"),
            lambda: roster.record_bcell("1001", "2022-11-20", 30),  # not recovered
            lambda: roster.record("1002", "D1", "2022-09-01"),
            lambda: roster.discontinue("1002", "2022-10-01", "adverse event"),
            lambda: roster.record_event("1001", "bcell_recovery", "2023-02-01"),
            lambda: roster.import_participants(
                [
                    Participant("1003", "2022-09-01"),
                    Participant(
                        "1004",
                        "2022-09-05",
                        records=[visitplan.Record("D1", pendulum.date(2022, 10, 1))],
                    ),
                ]
            ),
            lambda: roster.withdraw("1004", "2022-12-01", "moved away"),
        ]
        unchanged = []
        for i, change in enumerate(changes):
            before = cache_rows(db)
            change()
            if cache_rows(db) == before:
                unchanged.append(i)
            assert_cache_fresh(roster, db)
        # Only the B-cell counts that show no recovery leave every plan as it was.
        assert unchanged == [2, 6]
        assert_queries_as_engine(roster, ["2022-11-10", "2023-06-01"])


def test_a_refused_change_leaves_the_cache_as_it_was(tmp_path):
    db = tmp_path / "roster.db"
    with Roster.open(db, today="2023-06-01") as roster:
        roster.enroll("1001", "2022-07-27")
        roster.record("1001", "D1", "2022-08-31")
        before = cache_rows(db)
        with pytest.raises(VisitplanError):
            roster.record("1001", "W4", "2022-08-01")  # a dose before Day 1
        with pytest.raises(VisitplanError):
            roster.import_participants([Participant("1001", "2022-07-27")])
        assert cache_rows(db) == before


def edited(study: visitplan.Protocol) -> visitplan.Protocol:
    """The same protocol id with Dose 2 one week later and a wider window."""
    visits = tuple(
        attrs.evolve(v, offset=Offset(5, Unit.WEEKS)) if v.code == "W4" else v for v in study.visits
    )
    return attrs.evolve(study, visits=visits)


def test_an_edited_protocol_re_plans_everyone_when_opened(filled, tmp_path):
    db = tmp_path / "copy.db"
    db.write_bytes(filled.read_bytes())
    study = visitplan.builtin("NCT05124925")
    before = cache_rows(db)
    with Roster.open(db, protocol=edited(study), today=STORE_TODAY) as roster:
        after = cache_rows(db)
        assert after != before
        assert_cache_fresh(roster, db)
        assert_queries_as_engine(roster, ["2023-05-20", "2024-06-01"])
    with Roster.open(db, protocol=study, today=STORE_TODAY) as roster:
        assert cache_rows(db) == before  # and back
        assert_queries_as_engine(roster, ["2024-06-01"])


def test_a_participant_the_new_protocol_refuses_is_still_answered_by_the_engine(tmp_path):
    db = tmp_path / "roster.db"
    study = visitplan.builtin("NCT05124925")
    with Roster.open(db, protocol=study, today="2023-06-01") as roster:
        roster.enroll("1001", "2022-07-27")
        roster.record("1001", "D1", "2022-08-31")
        roster.record("1001", "W4", "2022-09-28")
        roster.enroll("1002", "2022-07-27")
    # Dose 2 is no longer in the protocol: 1001's facts do not plan any more, 1002's do.
    strict = attrs.evolve(study, visits=tuple(v for v in study.visits if v.code != "W4"))
    with Roster.open(db, protocol=study) as roster:
        person = roster.participant("1001")
    with pytest.raises(VisitplanError) as planned:
        visitplan.plan(strict, person)
    expected = f"participant 1001: {planned.value}"  # a site-wide list says whose facts
    with Roster.open(db, protocol=strict, today="2023-06-01") as roster:
        with pytest.raises(VisitplanError) as raised:
            roster.overdue("2023-06-01")
        assert str(raised.value) == expected
        with pytest.raises(VisitplanError) as raised:
            roster.due("2023-06-01", 14)
        assert str(raised.value) == expected


def test_a_version_1_roster_gets_its_cache_when_opened(filled, tmp_path):
    db = tmp_path / "v1.db"
    db.write_bytes(filled.read_bytes())
    con = sqlite3.connect(db)
    con.executescript(
        "DROP TABLE planned_findings; DROP TABLE planned_visits;"
        " DELETE FROM settings WHERE key = 'plan_fingerprint';"
        " UPDATE schema_version SET version = 1;"
    )
    con.close()
    with Roster.open(db, today=STORE_TODAY) as roster:
        assert_cache_fresh(roster, db)
        assert_queries_as_engine(roster, ["2024-06-01"])
    con = sqlite3.connect(db)
    assert con.execute("SELECT version FROM schema_version").fetchall() == [(5,)]
    con.close()


def test_a_change_to_the_engines_rules_replans_the_cache(tmp_path, monkeypatch):
    # The version number does not change with every rule (a development build): the code of
    # the modules that decide a plan is part of what the cache was computed from.
    from visitplan.store import roster as roster_module

    db = tmp_path / "r.db"
    with Roster.open(db, today=STORE_TODAY) as roster:
        roster.enroll("1001", "2022-07-27")
    con = sqlite3.connect(db)
    con.execute("DELETE FROM planned_visits")  # a stale cache, as an older engine left it
    con.commit()
    with Roster.open(db, today=STORE_TODAY):
        pass  # same rules: the cache is trusted as it is
    assert con.execute("SELECT count(*) FROM planned_visits").fetchone() == (0,)
    monkeypatch.setattr(roster_module, "_rules_digest", lambda: "another-engine")
    with Roster.open(db, today=STORE_TODAY) as roster:
        assert_cache_fresh(roster, db)
    assert con.execute("SELECT count(*) FROM planned_visits").fetchone()[0] > 10
    con.close()
