"""The roster on a real SQLite file under kill -9 and under two concurrent writers."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import visitplan
from visitplan.store import Roster

WRITER = Path(__file__).with_name("roster_writer.py")


def start_writer(db: Path, prefix: str, count: int, *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(db), prefix, str(count), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n", proc.stderr.read() if proc.stderr else ""
    return proc


def go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def kill9(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def check_consistent(db: Path) -> tuple[set[str], set[tuple[str, str]]]:
    """integrity_check ok, no dangling keys, and every record/participant has its audit rows."""
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        people = {r[0] for r in con.execute("SELECT code FROM participants")}
        enrol_audit = {
            r[0]
            for r in con.execute(
                "SELECT participant FROM audit WHERE action = 'enroll' AND field = 'screening'"
            )
        }
        assert people == enrol_audit
        records = set(con.execute("SELECT participant, visit FROM records").fetchall())
        record_audit = con.execute(
            "SELECT participant, field FROM audit WHERE action = 'record'"
        ).fetchall()
        assert len(record_audit) == len(set(record_audit))  # one audit row per record
        assert records == set(record_audit)
        check_plan_cache(con, people)
        return people, records
    finally:
        con.close()


def check_plan_cache(con: sqlite3.Connection, people: set[str]) -> None:
    """The plan cache holds exactly the engine's plan of each participant's committed facts."""
    cached: dict[str, set[tuple[str, str, str, str]]] = {}
    for code, visit, status, target, latest in con.execute(
        "SELECT participant, code, status, target, latest FROM planned_visits"
    ):
        cached.setdefault(code, set()).add((visit, status, target, latest))
    assert set(cached) == people
    if not people:
        return
    stamped = con.execute("SELECT value FROM settings WHERE key = 'plan_fingerprint'").fetchall()
    assert len(stamped) == 1  # so the open below re-plans nothing: it reads what was committed
    study = visitplan.builtin("NCT05124925")
    with Roster.open(con.execute("PRAGMA database_list").fetchone()[2], protocol=study) as roster:
        for person in roster.participants():
            planned = {
                (v.code, v.status.value, v.target.isoformat(), v.latest.isoformat())
                for v in visitplan.plan(study, person).visits
            }
            assert cached[person.code] == planned


def committed(lines: list[str]) -> tuple[set[str], set[tuple[str, str]]]:
    people, records = set(), set()
    for line in lines:
        word, code, what = line.split()
        if word != "committed":
            continue
        if what == "enroll":
            people.add(code)
        else:
            records.add((code, what))
    return people, records


def test_kill_9_inside_a_transaction_leaves_nothing_half_written(tmp_path):
    db = tmp_path / "roster.db"
    # Block inside the 4th record transaction: record row written, audit row not yet.
    proc = start_writer(db, "K", 10, "--block-at", "4")
    go(proc)
    assert proc.stdout is not None
    lines = []
    while not (line := proc.stdout.readline()).startswith("inside"):
        assert line, "the writer ended before reaching the blocking point"
        lines.append(line)
    assert line == "inside K0001 W4\n"
    kill9(proc)

    people, records = check_consistent(db)
    want_people, want_records = committed(lines)
    assert people == want_people == {"K0000", "K0001"}
    assert records == want_records == {("K0000", "D1"), ("K0000", "W4"), ("K0001", "D1")}
    # The store opens, holds every committed change, and takes new ones.
    with Roster.open(db, today="2023-06-01") as roster:
        assert roster.participant("K0001").record("W4") is None
        roster.record("K0001", "W4", "2022-09-22")
        assert [e.field for e in roster.history("K0001")] == ["screening", "site", "D1", "W4"]
    check_consistent(db)


def test_kill_9_of_a_writing_loop_loses_no_committed_change(tmp_path):
    db = tmp_path / "roster.db"
    proc = start_writer(db, "L", 100_000)
    go(proc)
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(60)]
    kill9(proc)  # lands wherever the writer is: usually mid-transaction
    lines += proc.stdout.read().splitlines(keepends=True)  # what it printed before dying

    people, records = check_consistent(db)
    want_people, want_records = committed(lines)
    assert want_people <= people and want_records <= records
    # At most the one change whose commit was not yet announced may be there in addition.
    assert len(people - want_people) + len(records - want_records) <= 1
    with Roster.open(db, today="2023-06-01") as roster:
        assert set(roster.codes()) == people


def test_two_processes_recording_at_once_lose_nothing(tmp_path):
    db = tmp_path / "roster.db"
    Roster.open(db).close()  # create the schema once; writers then only write rows
    a = start_writer(db, "A", 25)
    b = start_writer(db, "B", 25)
    go(a)
    go(b)
    for proc in (a, b):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.count("committed") == 75
    people, records = check_consistent(db)
    assert len(people) == 50 and len(records) == 100
    assert {p[0] for p in people} == {"A", "B"}
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM audit").fetchone() == (50 * 2 + 100,)
    con.close()


def test_two_processes_creating_the_schema_at_once(tmp_path):
    db = tmp_path / "fresh.db"
    a = start_writer(db, "A", 3)
    b = start_writer(db, "B", 3)
    go(a)
    go(b)
    for proc in (a, b):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    people, _ = check_consistent(db)
    assert len(people) == 6


def test_kill_9_inside_the_schema_migration(tmp_path):
    db = tmp_path / "roster.db"
    proc = start_writer(db, "M", 1, "--block-in-migration")
    go(proc)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "inside migration\n"
    kill9(proc)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    # Nothing of the half-done migration is left: no table at all.
    assert con.execute("SELECT name FROM sqlite_master").fetchall() == []
    con.close()
    with Roster.open(db, today="2023-06-01") as roster:
        roster.enroll("M0001", "2022-07-27")
    people, _ = check_consistent(db)
    assert people == {"M0001"}
