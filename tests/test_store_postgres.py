"""The roster on a real PostgreSQL server: the same store, the same guarantees.

Runs only when ``VISITPLAN_TEST_PG_URL`` names a server where the user may create databases
(e.g. ``postgresql+psycopg://vp@127.0.0.1:54329/postgres``) and ``psycopg`` is installed
(``pip install 'visitplan[postgres]'``). scripts/test starts a throwaway server with
scripts/pg-server; under CI the tests fail rather than skip when no server is given.
Each test gets a new, empty database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import visitplan
from visitplan.store import Roster

BASE = os.environ.get("VISITPLAN_TEST_PG_URL")
# CI starts a real server (scripts/test): there a missing URL is a failure, not a skip.
pytestmark = pytest.mark.skipif(
    not BASE and not os.environ.get("CI"), reason="VISITPLAN_TEST_PG_URL is not set"
)
WRITER = Path(__file__).with_name("roster_writer.py")


@pytest.fixture
def url() -> Iterator[str]:
    import sqlalchemy as sa

    assert BASE is not None
    name = f"vp_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(BASE, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield sa.make_url(BASE).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


def rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    import sqlalchemy as sa

    from visitplan.store import schema

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = {
            t.name: sorted(tuple(r) for r in conn.execute(sa.select(t)))
            for t in schema.metadata.sorted_tables
        }
    engine.dispose()
    return found


def test_postgres_changes_refusals_and_append_only_audit(url):
    import sqlalchemy as sa

    with Roster.open(url, today="2022-11-10") as r:
        r.enroll("1001", "2022-07-27", flags=["hbcab_positive"])
        r.record("1001", "D1", "2022-08-31", time="09:30")
        r.record("1001", "W8", status="missed", reason="ill")
        before = rows(url)
        for call in (
            lambda: r.record("1001", "D1", "2022-08-31"),
            lambda: r.enroll("1001", "2022-07-27"),
            lambda: r.record("1001", "W4", "2022-08-20"),
        ):
            with pytest.raises(visitplan.VisitplanError):
                call()
        assert rows(url) == before
        assert [(d.participant, d.visit.code) for d in r.due("2022-11-10", 14)] == [("1001", "W12")]
        assert [d.visit for d in r.deviations("2022-11-10")] == ["W4", "W8"]  # overdue, missed
        assert [h.field for h in r.history("1001")] == ["screening", "site", "flags", "D1", "W8"]
    engine = sa.create_engine(url)
    for statement in ("UPDATE audit SET reason = 'x'", "DELETE FROM audit", "TRUNCATE audit"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    engine.dispose()
    assert rows(url) == before


def test_postgres_two_writers_lose_nothing(url):
    Roster.open(url).close()
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITER), url, prefix, "10"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for prefix in ("A", "B")
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert out.count("committed") == 30
    found = rows(url)
    assert len(found["participants"]) == 20 and len(found["records"]) == 40
    assert len(found["audit"]) == 20 * 2 + 40


def test_postgres_processes_migrating_one_database_at_once(url):
    # Writers wait for each other on an advisory lock; each then sees what the one before it
    # committed (a snapshot taken before the wait would re-create the tables: DuplicateTable).
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITER), url, prefix, "3"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for prefix in ("A", "B", "C")
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert out.count("committed") == 9
    with Roster.open(url) as roster:
        assert len(roster.codes()) == 9
        verdict = roster.verify()
    assert verdict.intact, verdict.problem
