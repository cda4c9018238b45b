"""The roster store as a library, on a real SQLite file: facts, re-planning, audit, refusals."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pendulum
import pytest
from tests.storeutil import dump

import visitplan
from visitplan.schedule import FindingKind, VisitStatus
from visitplan.store import Roster

TODAY = "2022-11-10"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "roster.db"


@pytest.fixture
def roster(db: Path):
    with Roster.open(db, today=TODAY) as r:
        r.enroll("1001", "2022-07-27", flags=["hbcab_positive"])
        r.record("1001", "D1", "2022-08-31", time="09:30")
        r.record("1001", "W4", "2022-09-28")
        r.enroll("1002", "2022-01-10", reason="first patient")
        yield r


def test_sqlite_settings_and_schema(roster, db):
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert con.execute("SELECT version FROM schema_version").fetchall() == [(5,)]
    # Marked as a visitplan roster, so no command mistakes another application's file for one.
    assert con.execute("PRAGMA application_id").fetchone() == (0x76706C6E,)
    assert con.execute("PRAGMA user_version").fetchone() == (5,)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables >= {
        "participants", "records", "unscheduled", "bcell_counts", "events", "appointments",
        "calendar_state", "audit", "schema_version", "settings", "feeds", "feed_usage", "users",
    }  # fmt: skip
    with roster._db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        # The default --wait of 10 s, in milliseconds.
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000


def test_audit_is_append_only_even_in_raw_sql(roster, db):
    con = sqlite3.connect(db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE audit SET new = 'forged' WHERE id = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM audit")
    con.rollback()
    assert con.execute("SELECT count(*) FROM audit WHERE new = 'forged'").fetchone() == (0,)
    assert not hasattr(Roster, "delete_audit") and not hasattr(Roster, "update_audit")


def test_facts_round_trip_and_replan(roster):
    p = roster.participant("1001")
    assert p.screening == pendulum.date(2022, 7, 27)
    assert p.flags == frozenset({"hbcab_positive"}) and p.site == "BREST"
    assert p.record("D1").date == pendulum.date(2022, 8, 31)
    s = roster.schedule("1001", TODAY)
    assert s.day1 == pendulum.date(2022, 8, 31)
    assert s.visit("W8").target == pendulum.date(2022, 10, 26)  # actual D1 + 8 weeks
    assert s.visit("W4").status is VisitStatus.DONE
    assert [f.visit for f in s.findings if f.kind is FindingKind.OVERDUE] == ["W8"]
    # The plan is the engine's, from the same facts.
    assert s == visitplan.builtin("NCT05124925").plan(p, today=pendulum.date(2022, 11, 10))


def test_history_has_every_change_with_reason(roster):
    roster.record("1001", "W8", status="missed", reason="participant ill")
    h = roster.history("1001")
    assert [(e.action, e.field, e.old, e.new) for e in h] == [
        ("enroll", "screening", None, "2022-07-27"),
        ("enroll", "site", None, "BREST"),
        ("enroll", "flags", None, "hbcab_positive"),
        ("record", "D1", None, "done 2022-08-31 09:30"),
        ("record", "W4", None, "done 2022-09-28"),
        ("record", "W8", None, "missed"),
    ]
    assert h[-1].reason == "participant ill"
    assert all(e.at.endswith("Z") and e.participant == "1001" for e in h)
    assert roster.history("1002")[0].reason == "first patient"


def test_discontinue_cancels_doses_and_replans_eot(roster):
    s = roster.discontinue("1001", "2022-10-05", "adverse event")
    assert s.visit("W8").status is VisitStatus.CANCELLED
    assert s.visit("W20").status is VisitStatus.CANCELLED
    # EOT planned from the discontinuation date, never before last dose (W4) + 21 days.
    assert s.visit("EOT").target == pendulum.date(2022, 10, 19)
    assert s.visit("FU1").status is VisitStatus.PLANNED
    assert roster.participant("1001").discontinued == pendulum.date(2022, 10, 5)
    assert roster.history("1001")[-1].reason == "adverse event"


def test_withdraw_cancels_future_visits(roster):
    s = roster.withdraw("1001", "2022-10-20", "moved away")
    assert s.visit("W8").status is VisitStatus.CANCELLED
    assert s.visit("EOS").status is VisitStatus.CANCELLED
    assert [d for d in roster.overdue(TODAY) if d.participant == "1001"] == []
    assert [d for d in roster.due(TODAY, 60) if d.participant == "1001"] == []


def test_unscheduled_bcell_events_appointments_calendar_state(roster):
    assert roster.record_unscheduled("1001", "2022-09-05", reason="rash").code == "U1"
    assert roster.record_unscheduled("1001", "2022-09-06", time="14:00").code == "U2"
    assert [u.code for u in roster.unscheduled("1001")] == ["U1", "U2"]
    roster.record_bcell("1001", "2022-07-27", 180, baseline=True)
    roster.record_bcell("1001", "2022-11-01", 12.5)
    assert roster.baseline_bcell("1001") == (180.0, "cells/uL")
    assert [(c.date.isoformat(), c.value) for c in roster.bcell_counts("1001")] == [
        ("2022-11-01", 12.5)
    ]
    before = roster.schedule("1001").visit("EOS")
    assert before.tentative
    s = roster.record_event("1001", "bcell_recovery", "2022-11-08")
    assert not s.visit("EOS").tentative
    roster.set_appointment("1001", "W12", "2022-11-23", "10:30")
    roster.set_appointment("1001", "W12", "2022-11-24", "11:00", reason="clinic closed")
    assert [(a.visit, a.date.isoformat(), a.time) for a in roster.appointments("1001")] == [
        ("W12", "2022-11-24", "11:00")
    ]
    last = roster.history("1001")[-1]
    assert (last.field, last.old, last.new) == ("W12", "2022-11-23 10:30", "2022-11-24 11:00")
    due = {d.visit.code: d for d in roster.due(TODAY, 14)}
    assert due["W12"].appointment is not None
    roster.save_calendar_state({"a@x": (0, "f0"), "b@x": (2, "f2")})
    roster.save_calendar_state({"a@x": (1, "f1")})
    assert roster.calendar_state() == {"a@x": (1, "f1"), "b@x": (2, "f2")}


def test_dose_gap_is_a_deviation(db):
    with Roster.open(db, today=TODAY) as r:
        r.enroll("2001", "2022-07-27")
        r.record("2001", "D1", "2022-08-10")
        r.record("2001", "W4", "2022-09-11")  # D1 + 32: out of its window (+-3 days)
        r.record("2001", "W8", "2022-09-25")  # 14 days after W4
        kinds = {(d.visit, d.kind) for d in r.deviations(TODAY)}
        assert ("W8", FindingKind.DOSE_GAP) in kinds
        assert ("W4", FindingKind.OUT_OF_WINDOW) in kinds


def test_reopen_keeps_everything(roster, db):
    roster.close()
    with Roster.open(db, today=TODAY) as again:
        assert again.codes() == ["1001", "1002"]
        assert again.participant("1001").record("W4") is not None


BAD = [
    # (call, expected message start)
    (lambda r: r.record("9999", "D1", "2022-08-31"), "participant '9999': is not enrolled"),
    (lambda r: r.enroll("1001", "2022-07-27"), "participant '1001': is already enrolled"),
    (
        lambda r: r.record("1002", "D1", "2022-01-05"),
        "D1.date '2022-01-05': is before the screening date 2022-01-10",
    ),
    (
        lambda r: r.record("1001", "W4", "2022-09-29"),
        "visit 'W4': is recorded twice; a visit has one record",
    ),
    (
        lambda r: r.record("1002", "D1", "2022-02-15"),
        "D1.date '2022-02-15': must be between 2022-01-11 and 2022-02-14",
    ),
    (lambda r: r.record("1001", "W8", "2022-08-30"), "W8.date '2022-08-30': is before Day 1"),
    (lambda r: r.record("1001", "W8", "2022-11-11"), "W8.date '2022-11-11': is after today"),
    (lambda r: r.record("1001", "W9", "2022-10-26"), "visit 'W9': unknown visit code"),
    (lambda r: r.record("1001", "W8", status="late"), "status 'late': must be one of"),
    (lambda r: r.record("1001", "W8", "2022-10-26", time="25:00"), "W8.time '25:00'"),
    (lambda r: r.enroll("Jane Doe", "2022-07-27"), "participant 'Jane Doe': must be a study code"),
    (lambda r: r.enroll("1003", "2022-02-30"), "screening '2022-02-30': is not a day"),
    (lambda r: r.enroll("1003", "2022-07-27", site="PARIS"), "site 'PARIS': is not a site"),
    (
        lambda r: r.enroll("1003", "2022-07-27", flags="wocbp"),
        "flags 'wocbp': must be a collection",
    ),
    (lambda r: r.record_unscheduled("1001", "2022-07-01"), "unscheduled.date '2022-07-01'"),
    (lambda r: r.record_bcell("1001", "2022-11-01", -1), "bcell_count.value -1: must be a finite"),
    (lambda r: r.record_event("1001", "recovery", "2022-11-01"), "event 'recovery': is not"),
    (
        lambda r: r.discontinue("1001", "2022-09-20", "AE"),
        "W4.date '2022-09-28': is after treatment was discontinued (2022-09-20)",
    ),
    (lambda r: r.discontinue("1001", "2022-10-20", " "), "discontinued.reason ' ': is required"),
    (
        lambda r: r.set_appointment("1001", "W12", "2023-03-26", "02:30"),
        "appointment time (Europe/Paris) '2023-03-26 02:30': does not exist",
    ),
    (lambda r: r.set_appointment("1001", "W99", "2022-11-23"), "visit 'W99': is not in the plan"),
    (lambda r: r.due(TODAY, -1), "--days -1"),
]


@pytest.mark.parametrize(("call", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_bad_input_is_refused_and_store_unchanged(roster, db, call, message):
    before = dump(db)
    with pytest.raises(visitplan.VisitplanError) as info:
        call(roster)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)
    assert dump(db) == before


def test_withdrawn_participant_refuses_records(roster, db):
    roster.withdraw("1001", "2022-10-20", "moved away")
    before = dump(db)
    for call in (
        lambda: roster.record("1001", "W8", "2022-10-21"),
        lambda: roster.record("1001", "W12", status="missed"),
        lambda: roster.record_unscheduled("1001", "2022-10-25"),
        lambda: roster.withdraw("1001", "2022-10-21", "again"),
        lambda: roster.discontinue("1001", "2022-10-21", "late"),
    ):
        with pytest.raises(visitplan.VisitplanError, match="withdraw"):
            call()
    assert dump(db) == before
    # A visit done before the withdrawal can still be entered late.
    roster.record("1001", "W8", "2022-10-19")


def test_import_is_all_or_nothing(roster, db):
    good = visitplan.Participant("3001", "2022-07-27")
    late_d1 = visitplan.Participant(
        "3002", "2022-07-27", records=[visitplan.Record("D1", "2022-09-05")]
    )
    dup = visitplan.Participant("1001", "2022-07-27")
    before = dump(db)
    with pytest.raises(visitplan.VisitplanError) as info:
        roster.import_participants([good, late_d1, dup], source="x.csv")
    assert info.value.rows == [  # type: ignore[attr-defined]
        "x.csv: participant 3002: D1.date '2022-09-05': must be between 2022-07-28 and "
        "2022-08-31 (the strict window of Baseline and dose 1)",
        "x.csv: participant '1001': is already enrolled",
    ]
    assert dump(db) == before
    assert [p.code for p in roster.import_participants([good], source="x.csv")] == ["3001"]
    assert roster.history("3001")[0].action == "import"


def test_roster_refuses_bad_databases(tmp_path, db, roster):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(visitplan.VisitplanError, match="is not a SQLite database"):
        Roster.open(junk)
    with pytest.raises(visitplan.VisitplanError, match="folder does not exist"):
        Roster.open(tmp_path / "nope" / "x.db")
    with pytest.raises(visitplan.VisitplanError, match="must be a SQLite file or a PostgreSQL"):
        Roster.open("mysql://host/db")
    with pytest.raises(visitplan.VisitplanError, match="not :memory:"):
        Roster.open("sqlite://")
    other = visitplan.builtin("NCT05124925")
    import attrs

    with pytest.raises(visitplan.VisitplanError, match="belongs to protocol NCT05124925"):
        Roster.open(db, protocol=attrs.evolve(other, id="OTHER-1"))
    con = sqlite3.connect(db)
    con.execute("UPDATE schema_version SET version = 99")
    con.commit()
    con.close()
    with pytest.raises(visitplan.VisitplanError, match="schema version 99"):
        Roster.open(db)


def test_url_form_opens_the_same_file(roster, db):
    with Roster.open(f"sqlite:///{db}") as again:
        assert again.codes() == ["1001", "1002"]


def test_a_locked_database_is_waited_for_until_the_lock_goes(db):
    import threading
    import time

    Roster.open(db).close()
    roster = Roster.open(db, today=TODAY, wait=5)
    blocker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    threading.Timer(0.3, lambda: blocker.execute("COMMIT")).start()
    started = time.monotonic()
    roster.enroll("1001", "2022-07-27")
    assert time.monotonic() - started >= 0.25  # it waited for the other writer
    assert roster.codes() == ["1001"]
    roster.close()
    blocker.close()


def test_a_roster_locked_too_long_is_refused_in_one_line(db):
    import time

    Roster.open(db).close()
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with (
        Roster.open(db, today=TODAY, wait=0.5) as roster,
        pytest.raises(visitplan.VisitplanError) as info,
    ):
        roster.enroll("1001", "2022-07-27")
    waited = time.monotonic() - started
    assert str(info.value) == (
        f"--db '{db}': the roster is locked by another process (waited 0.5 s; "
        "--wait SECONDS waits longer)"
    )
    assert 0.4 <= waited < 5
    blocker.execute("ROLLBACK")
    blocker.close()
    with Roster.open(db) as roster:
        assert roster.codes() == []
