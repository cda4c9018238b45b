"""One rulebook for recorded facts (visitplan.facts): every path refuses the same facts with
the same message; corrections and voids need a reason; every change names its user; the audit
trail is hash-chained and `audit verify` finds tampering done outside visitplan.

The paths: the Python API (`visitplan.plan` on a `Participant`), the CLI `plan`, the roster
through the CLI (`enroll`, `record`, `import`) on SQLite, and the roster library on SQLite and
on a real PostgreSQL server (scripts/pg-server; skipped outside CI when none is given).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests import cli as harness
from tests.storeutil import dump

import visitplan
from visitplan.store import Roster

TODAY = "2022-11-10"
PG = os.environ.get("VISITPLAN_TEST_PG_URL")


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Any:
    return harness.run(*args, env=env, input=input)


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty roster location on each backend."""
    if request.param == "sqlite":
        yield str(tmp_path / "roster.db")
        return
    if not PG:
        if os.environ.get("CI"):
            pytest.fail("CI must give VISITPLAN_TEST_PG_URL (scripts/test starts a server)")
        pytest.skip("VISITPLAN_TEST_PG_URL is not set")
    import uuid

    import sqlalchemy as sa

    name = f"vp_facts_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield sa.make_url(PG).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


def snapshot(where: str) -> list[Any]:
    """Every row of every table (to show a refused change stored nothing)."""
    import sqlalchemy as sa

    from visitplan.store import schema

    if "://" not in where:
        return dump(Path(where))
    engine = sa.create_engine(where)
    with engine.connect() as conn:
        found = [
            sorted(map(tuple, conn.execute(sa.select(t)))) for t in schema.metadata.sorted_tables
        ]
    engine.dispose()
    return found


# -- the same refusal on every path ---------------------------------------------------------

UNKNOWN_FLAG = "flag 'hbcab': is not a flag of NCT05124925; known: hbcab_positive, wocbp"
UNKNOWN_EVENT = "event 'recovery': is not an event of NCT05124925; known: bcell_recovery"
EARLY_RECOVERY = (
    "bcell_recovery.date '2022-08-15': is on or before Day 1 (2022-08-31); "
    "recovery is looked for after the first dose"
)
TWO_COUNTS = (
    "bcell_count.date '2023-05-10': has two counts; one count a day "
    "(correct or void the one recorded)"
)
NAN_COUNT = "bcell_count.value nan: must be a finite count of at least 0"
INF_COUNT = "bcell_count.value inf: must be a finite count of at least 0"
DOSE_AFTER_STOP = (
    "W8.date '2022-10-26': is after treatment was discontinued (2022-10-05); "
    "no dose follows discontinuation"
)
VISIT_AFTER_WITHDRAWAL = (
    "W8.date '2022-10-26': is on or after the withdrawal from the study (2022-10-20); "
    "no visit follows withdrawal"
)
FUTURE_EVENT = "bcell_recovery.date '2023-06-01': is after today (2022-11-10)"

DOSES = {"D1": "2022-08-31", "W4": "2022-09-28"}


def participant(**facts: Any) -> visitplan.Participant:
    return visitplan.Participant("9001", facts.pop("screening", "2022-07-27"), **facts)


LIBRARY: list[tuple[Callable[[], visitplan.Participant], str, str | None]] = [
    (lambda: participant(flags={"hbcab"}), UNKNOWN_FLAG, None),
    (lambda: participant(events={"recovery": "2022-10-01"}), UNKNOWN_EVENT, None),
    (lambda: participant(events={"bcell_recovery": "2022-08-15"}), EARLY_RECOVERY, None),
    (lambda: participant(bcell_counts=[("2023-05-10", 5), ("2023-05-10", 6)]), TWO_COUNTS, None),
    (lambda: participant(bcell_counts={"2023-05-10": float("nan")}), NAN_COUNT, None),
    (lambda: participant(bcell_counts={"2023-05-10": float("inf")}), INF_COUNT, None),
    (
        lambda: participant(records={**DOSES, "W8": "2022-10-26"}, discontinued="2022-10-05"),
        DOSE_AFTER_STOP,
        None,
    ),
    (
        lambda: participant(records={**DOSES, "W8": "2022-10-26"}, withdrawn="2022-10-20"),
        VISIT_AFTER_WITHDRAWAL,
        None,
    ),
    (lambda: participant(events={"bcell_recovery": "2023-06-01"}), FUTURE_EVENT, TODAY),
]


@pytest.mark.parametrize(("make", "message", "today"), LIBRARY, ids=lambda x: str(x)[:30])
def test_the_library_refuses_each_fact(study, make, message, today):
    with pytest.raises(visitplan.VisitplanError) as info:
        visitplan.plan(
            study, make(), today=None if today is None else visitplan.dates.to_date(today)
        )
    assert str(info.value) == message


PLAN = ["plan", "--participant", "9001", "--screening", "2022-07-27"]
CLI_PLAN = [
    ([*PLAN, "--flag", "hbcab"], UNKNOWN_FLAG),
    ([*PLAN, "--event", "recovery=2022-10-01"], UNKNOWN_EVENT),
    ([*PLAN, "--event", "bcell_recovery=2022-08-15"], EARLY_RECOVERY),
    ([*PLAN, "--bcell-count", "2023-05-10=5", "--bcell-count", "2023-05-10=6"], TWO_COUNTS),
    ([*PLAN, "--bcell-count", "2023-05-10=nan"], NAN_COUNT),
    ([*PLAN, "--bcell-count", "2023-05-10=inf"], INF_COUNT),
    (
        [
            *PLAN,
            "--day1",
            "2022-08-31",
            "--actual",
            "W4=2022-09-28",
            "--event",
            "bcell_recovery=2023-06-01",
            "--today",
            TODAY,
        ],
        FUTURE_EVENT,
    ),
    (
        [*PLAN, "--bcell-baseline", "nan"],
        "bcell_baseline nan: must be a finite count of at least 0",
    ),
]


@pytest.mark.parametrize(("args", "message"), CLI_PLAN, ids=lambda x: str(x)[-40:])
def test_cli_plan_refuses_each_fact_with_the_same_line(args, message):
    r = run(*args)
    assert r.exit_code == 2
    assert r.stderr == f"error: {message}\n"
    assert r.stdout == ""


def _enrolled(roster: Roster) -> None:
    roster.enroll("9001", "2022-07-27")


def _dosed(roster: Roster) -> None:
    _enrolled(roster)
    for visit, day in DOSES.items():
        roster.record("9001", visit, day)


ROSTER: list[tuple[Callable[[Roster], None], Callable[[Roster], object], str]] = [
    (lambda r: None, lambda r: r.enroll("9001", "2022-07-27", flags=["hbcab"]), UNKNOWN_FLAG),
    (_enrolled, lambda r: r.record_event("9001", "recovery", "2022-10-01"), UNKNOWN_EVENT),
    (_enrolled, lambda r: r.record_event("9001", "bcell_recovery", "2022-08-15"), EARLY_RECOVERY),
    (
        lambda r: (_enrolled(r), r.record_bcell("9001", "2022-10-10", 5)),
        lambda r: r.record_bcell("9001", "2022-10-10", 6),
        TWO_COUNTS.replace("2023-05-10", "2022-10-10"),
    ),
    (_enrolled, lambda r: r.record_bcell("9001", "2022-10-10", float("nan")), NAN_COUNT),
    (_enrolled, lambda r: r.record_bcell("9001", "2022-10-10", float("inf")), INF_COUNT),
    (
        lambda r: (_dosed(r), r.discontinue("9001", "2022-10-05", "adverse event")),
        lambda r: r.record("9001", "W8", "2022-10-26"),
        DOSE_AFTER_STOP,
    ),
    (
        lambda r: (_dosed(r), r.withdraw("9001", "2022-10-20", "moved away")),
        lambda r: r.record("9001", "W8", "2022-10-26"),
        VISIT_AFTER_WITHDRAWAL,
    ),
    (_dosed, lambda r: r.record_event("9001", "bcell_recovery", "2023-06-01"), FUTURE_EVENT),
]


@pytest.mark.parametrize(("given", "change", "message"), ROSTER, ids=lambda x: str(x)[-30:])
def test_the_roster_refuses_each_fact_on_both_databases(where, given, change, message):
    with Roster.open(where, today=TODAY, user="tester") as roster:
        given(roster)
        before = snapshot(where)
        with pytest.raises(visitplan.VisitplanError) as info:
            change(roster)
        assert str(info.value) == message
        assert snapshot(where) == before


def test_the_roster_commands_refuse_with_the_same_line(tmp_path):
    db = str(tmp_path / "r.db")
    base = ["--db", db, "--today", TODAY, "--user", "tester"]
    r = run("enroll", "T9", "--screening", "2022-07-27", "--flag", "hbcab", *base)
    assert (r.exit_code, r.stderr) == (2, f"error: {UNKNOWN_FLAG}\n")
    assert not Path(db).exists()  # a refused first enrolment creates no roster
    assert run("enroll", "9001", "--screening", "2022-07-27", *base).exit_code == 0
    before = dump(Path(db))
    for args, message in (
        (["record", "9001", "--event", "recovery", "--date", "2022-10-01"], UNKNOWN_EVENT),
        (["record", "9001", "--event", "bcell_recovery", "--date", "2022-08-15"], EARLY_RECOVERY),
        (["record", "9001", "--bcell", "nan", "--date", "2022-10-10"], NAN_COUNT),
    ):
        r = run(*args, *base)
        assert (r.exit_code, r.stderr) == (2, f"error: {message}\n"), args
        assert dump(Path(db)) == before
    csv = tmp_path / "roster.csv"
    csv.write_text("participant,screening,flags\nT9,2022-07-27,hbcab\n", encoding="utf-8")
    r = run("import", str(csv), *base)
    assert r.exit_code == 2
    assert r.stderr == f"error: {csv}: participant T9: {UNKNOWN_FLAG}\n"
    assert dump(Path(db)) == before


# -- corrections, voids, users and the audit chain -------------------------------------------


def test_correct_and_void_with_reasons_users_and_an_intact_trail(where):
    with Roster.open(where, today=TODAY, user="alice") as roster:
        roster.enroll("1004", "2022-07-27", flags=["hbcab_positive"])
        roster.record("1004", "D1", "2022-08-31", time="09:30")
        roster.record("1004", "W8", status="missed", reason="ill", user="bob")
        # Recording it again is refused: a correction is its own, audited change.
        with pytest.raises(visitplan.VisitplanError, match="a visit has one record"):
            roster.record("1004", "W8", "2022-10-26")
        before = snapshot(where)
        for missing in (None, "", "  "):
            with pytest.raises(visitplan.VisitplanError, match=r"reason .*is required"):
                roster.correct("1004", "W8", date="2022-10-26", status="done", reason=missing)
            with pytest.raises(visitplan.VisitplanError, match=r"reason .*is required"):
                roster.void("1004", "W8", reason=missing)
        assert snapshot(where) == before
        plan = roster.correct(
            "1004", "W8", date="2022-10-26", status="done", reason="typed on the wrong line",
            user="carol",
        )  # fmt: skip
        assert plan.visit("W8").actual == visitplan.dates.to_date("2022-10-26")
        # Correcting the time alone keeps the date; a correction that changes nothing is refused.
        roster.correct("1004", "D1", time="10:15", reason="clock read wrong", user="carol")
        with pytest.raises(visitplan.VisitplanError, match="changes nothing"):
            roster.correct("1004", "D1", time="10:15", reason="again")
        plan = roster.void("1004", "W8", reason="entered twice", user="dave")
        assert plan.visit("W8").status is visitplan.VisitStatus.PLANNED
        roster.correct_screening("1004", "2022-07-28", reason="typo in the date")
        roster.correct_flags("1004", ["hbcab_positive", "wocbp"], reason="lab result came in")
        roster.record_bcell("1004", "2022-10-01", 20)
        roster.correct_bcell("1004", "2022-10-01", 25, reason="lab corrected")
        roster.void_bcell("1004", "2022-10-01", reason="wrong participant")
        roster.record_event("1004", "bcell_recovery", "2022-11-01")
        roster.correct_event("1004", "bcell_recovery", "2022-11-02", reason="date of the sample")
        roster.void_event("1004", "bcell_recovery", reason="count was wrong")
        roster.discontinue("1004", "2022-10-30", "adverse event")
        roster.correct_stop("1004", "discontinued", "2022-10-29", reason="date of the decision")
        roster.void_stop("1004", "discontinued", reason="entered for the wrong participant")
        roster.set_appointment("1004", "W12", "2022-11-23", "09:30")
        roster.void_appointment("1004", "W12", reason="participant called to cancel")
        u = roster.record_unscheduled("1004", "2022-10-03", "11:00", reason="rash")
        roster.correct_unscheduled("1004", u.code, time="11:30", reason="late arrival")
        roster.void_unscheduled("1004", u.code, reason="not a visit after all")
        trail = roster.history("1004")
        verdict = roster.verify()
    assert verdict.intact, verdict.problem
    assert verdict.entries == len(trail)
    rows = [(e.user, e.action, e.field, e.old, e.new, e.reason) for e in trail]
    assert rows[:7] == [
        ("alice", "enroll", "screening", None, "2022-07-27", None),
        ("alice", "enroll", "site", None, "BREST", None),
        ("alice", "enroll", "flags", None, "hbcab_positive", None),
        ("alice", "record", "D1", None, "done 2022-08-31 09:30", None),
        ("bob", "record", "W8", None, "missed", "ill"),
        ("carol", "correct", "W8", "missed", "done 2022-10-26", "typed on the wrong line"),
        ("carol", "correct", "D1", "done 2022-08-31 09:30", "done 2022-08-31 10:15",
         "clock read wrong"),
    ]  # fmt: skip
    assert rows[7] == ("dave", "void", "W8", "done 2022-10-26", None, "entered twice")
    assert ("alice", "correct", "screening", "2022-07-27", "2022-07-28", "typo in the date") in rows
    assert [r[1] for r in rows].count("void") == 6


def test_cli_corrections_need_a_reason_and_history_shows_the_user(tmp_path):
    db = str(tmp_path / "r.db")
    base = ["--db", db, "--today", TODAY]
    assert (
        run("enroll", "1004", "--screening", "2022-07-27", *base, "--user", "alice").exit_code == 0
    )
    run("record", "1004", "W8", "--status", "missed", *base, "--user", "alice")
    before = dump(Path(db))
    for args in (["correct", "1004", "W8", "--date", "2022-10-26"], ["void", "1004", "W8"]):
        r = run(*args, *base, "--user", "bob")
        assert (r.exit_code, r.stderr) == (
            2, "error: reason '': is required: say why (it is kept in the audit trail)\n"
        )  # fmt: skip
        assert dump(Path(db)) == before
    r = run("correct", "1004", "W8", "--date", "2022-10-26", "--status", "done",
            "--reason", "wrong line", *base, env={"VISITPLAN_USER": "carol"})  # fmt: skip
    assert (r.exit_code, r.stdout) == (0, "corrected 1004 W8: done 2022-10-26\n")
    r = run("history", "1004", "--format", "json", *base)
    history = __import__("json").loads(r.stdout)["history"]
    assert [(h["user"], h["action"], h["field"]) for h in history] == [
        ("alice", "enroll", "screening"),
        ("alice", "enroll", "site"),
        ("alice", "record", "W8"),
        ("carol", "correct", "W8"),
    ]
    assert all(h["at"].endswith("Z") for h in history)  # JSON keeps UTC
    # Without --user or VISITPLAN_USER, the operating system's login names the user.
    import getpass

    r = run("void", "1004", "W8", "--reason", "duplicate", *base, env={"VISITPLAN_USER": None})
    assert r.exit_code == 0, r.output
    with Roster.open(db) as roster:
        assert roster.history("1004")[-1].user == getpass.getuser()
    r = run("history", "1004", *base, env={"COLUMNS": "200"})
    assert "times in Europe/Paris" in r.stdout and "carol" in r.stdout


# -- tampering outside visitplan ---------------------------------------------------------------


def _filled(where: str) -> None:
    with Roster.open(where, today=TODAY, user="alice") as roster:
        roster.enroll("1001", "2022-07-27")
        roster.enroll("1004", "2022-07-27")
        roster.record("1004", "D1", "2022-08-31")
        roster.record("1004", "W4", "2022-09-28")
        roster.record("1004", "W8", status="missed", reason="ill")
        roster.correct("1004", "W8", date="2022-10-26", status="done", reason="wrong line")


def _tamper(where: str, *statements: str) -> None:
    import sqlalchemy as sa

    url = where if "://" in where else f"sqlite:///{where}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_no_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE audit DISABLE TRIGGER audit_no_change")
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


TAMPERING = [
    (["DELETE FROM audit WHERE id = 4"], "audit entry #5 does not follow the entry before it (#3)"),
    (["UPDATE audit SET new = 'done 2022-08-30' WHERE id = 5"], "audit entry #5 was changed"),
    (["UPDATE audit SET username = 'mallory' WHERE id = 2"], "audit entry #2 was changed"),
    (
        [
            "INSERT INTO audit (id, at, participant, action, field, old, new, reason, username,"
            " prev, hash) SELECT 99, at, participant, action, field, old, new, reason, username,"
            " hash, hash FROM audit WHERE id = 8"
        ],
        "audit entry #99 was changed",
    ),
    (
        ["UPDATE records SET date = '2022-09-27' WHERE participant = '1004' AND visit = 'W4'"],
        "records 1004/W4: stored date=2022-09-27 but the audit trail gives date=2022-09-28",
    ),
    (
        ["DELETE FROM records WHERE participant = '1004' AND visit = 'W8'"],
        "records 1004/W8: in the audit trail (status=done date=2022-10-26 time= reason=)"
        " but not stored",
    ),
    (
        [
            "INSERT INTO events (participant, name, date)"
            " VALUES ('1001', 'bcell_recovery', '2022-10-01')"
        ],
        "events 1001/bcell_recovery: stored (date=2022-10-01) but not in the audit trail",
    ),
]


@pytest.mark.parametrize(("statements", "problem"), TAMPERING, ids=lambda x: str(x)[:40])
def test_audit_verify_finds_tampering_on_both_databases(where, statements, problem):
    _filled(where)
    r = run("audit", "verify", "--db", where)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("intact (8 entries; head ")
    _tamper(where, *statements)
    r = run("audit", "verify", "--db", where)
    assert r.exit_code == 1
    assert r.stdout.startswith(f"NOT intact: {problem}"), r.stdout


def test_a_lost_end_of_the_trail_is_found_with_the_head_kept_elsewhere(tmp_path):
    db = str(tmp_path / "r.db")
    _filled(db)
    head = run("audit", "verify", "--db", db).stdout.split("head ")[1].rstrip(")\n")
    # Remove the last entry and the fact it wrote: the chain alone cannot tell.
    _tamper(
        db,
        "DELETE FROM audit WHERE id = 8",
        "UPDATE records SET status = 'missed', date = NULL, reason = 'ill' WHERE visit = 'W8'",
    )
    assert run("audit", "verify", "--db", db).exit_code == 0
    r = run("audit", "verify", "--db", db, "--expect", head[:12])
    assert r.exit_code == 1
    assert "does not contain the expected head" in r.stdout


def test_a_schema_2_roster_is_chained_with_a_baseline_of_its_facts(tmp_path):
    """A roster written before the chain (schema 2) upgrades: its entries are hashed in order,
    each participant gets a baseline entry of the facts as stored, and it verifies."""
    db = tmp_path / "old.db"
    _filled(str(db))
    with Roster.open(db, today=TODAY, user="alice") as roster:  # rows of no participant
        roster.add_user("mona", "monitor", "a long enough password")
        roster.create_feed("site desk")
    con = sqlite3.connect(db)
    con.executescript(
        "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;"
        " ALTER TABLE audit DROP COLUMN username; ALTER TABLE audit DROP COLUMN data;"
        " ALTER TABLE audit DROP COLUMN prev; ALTER TABLE audit DROP COLUMN hash;"
        " UPDATE schema_version SET version = 2; PRAGMA application_id = 0;"
        " PRAGMA user_version = 0;"
    )
    con.executescript(
        "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
        " BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"
        "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
        " BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"
    )
    con.close()
    with Roster.open(db, today=TODAY) as roster:
        verdict = roster.verify()
        trail = roster.history("1004")
    assert verdict.intact, verdict.problem
    assert verdict.entries == 8 + 2 + 3  # two participants' baselines, one of the rest
    assert (trail[-1].action, trail[-1].user, trail[-1].new) == (
        "baseline",
        "visitplan",
        "4 rows as stored",
    )
    # The upgraded trail catches hand edits like a new one.
    _tamper(str(db), "UPDATE records SET date = '2022-09-27' WHERE visit = 'W4'")
    assert not Roster.open(db).verify().intact
