"""Opening a roster: only visitplan's own databases are ever changed, a new roster is made only
by a command that means to, and a locked roster is waited for a bounded time."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from tests import cli as harness

TODAY = "2022-11-10"


def run(*args: str) -> Any:
    return harness.run(*args, "--today", TODAY)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_another_applications_database_is_refused_untouched(tmp_path):
    other = tmp_path / "other-app.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    con.execute("INSERT INTO invoices VALUES (1, 12.5)")
    con.commit()
    con.close()
    before = digest(other)
    for args in (
        ["due", "--db", str(other)],
        ["history", "1001", "--db", str(other)],
        ["enroll", "1001", "--screening", "2022-07-27", "--db", str(other)],
        ["audit", "verify", "--db", str(other)],
    ):
        r = run(*args)
        assert r.exit_code == 2, args
        assert r.stderr == (
            f"error: --db '{other}': is not a visitplan roster (another application's "
            "database); it is left as it is\n"
        )
    assert digest(other) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other-app.db"]  # no -wal, no -shm
    con = sqlite3.connect(other)
    assert con.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    con.close()


def test_only_enroll_and_import_create_a_roster(tmp_path):
    db = tmp_path / "new.db"
    for args in (["due"], ["overdue"], ["show", "1001"], ["audit", "verify"]):
        r = run(*args, "--db", str(db))
        assert r.exit_code == 2
        assert "no roster there yet; 'visitplan enroll' or 'import' creates one" in r.stderr
        assert not db.exists()
    db.touch()  # an empty file is not a roster either
    r = run("due", "--db", str(db))
    assert r.exit_code == 2 and "is an empty file, not a roster" in r.stderr
    assert db.stat().st_size == 0
    r = run("enroll", "1001", "--screening", "2022-07-27", "--db", str(db))
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"created the roster {db}\nenrolled 1001:")
    r = run("enroll", "1002", "--screening", "2022-07-27", "--db", str(db))
    assert r.stdout.startswith("enrolled 1002:")  # it exists now: nothing created
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA application_id").fetchone() == (0x76706C6E,)
    con.close()


def test_a_locked_roster_is_refused_after_the_wait_in_one_line(tmp_path):
    db = tmp_path / "r.db"
    assert run("enroll", "1001", "--screening", "2022-07-27", "--db", str(db)).exit_code == 0
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        started = time.monotonic()
        r = run("record", "1001", "D1", "--date", "2022-08-31", "--db", str(db), "--wait", "0.5")
        waited = time.monotonic() - started
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert r.exit_code == 2
    assert r.stderr == (
        f"error: --db '{db}': the roster is locked by another process (waited 0.5 s; "
        "--wait SECONDS waits longer)\n"
    )
    assert 0.4 <= waited < 10
    r = run("record", "1001", "D1", "--date", "2022-08-31", "--db", str(db))
    assert r.exit_code == 0


def test_a_damaged_roster_is_reported_in_one_line(tmp_path):
    db = tmp_path / "r.db"
    assert run("enroll", "1001", "--screening", "2022-07-27", "--db", str(db)).exit_code == 0
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = bytearray(db.read_bytes())
    page = 4096
    for offset in range(page, len(data), page):  # every page after the header: scrambled
        data[offset : offset + 64] = b"\xff" * 64
    db.write_bytes(bytes(data))
    for args in (["due"], ["enroll", "1002", "--screening", "2022-07-27"]):
        r = run(*args, "--db", str(db))
        assert r.exit_code == 2, r.output
        assert r.stderr.startswith(f"error: --db '{db}': ")
        assert "malformed" in r.stderr or "not a database" in r.stderr
        assert r.stderr.count("\n") == 1


@pytest.mark.parametrize("value", ["-1", "nan", "99999999"])
def test_wait_is_a_bounded_number_of_seconds(tmp_path, value):
    r = run("due", "--db", str(tmp_path / "x.db"), "--wait", value)
    assert r.exit_code == 2
    assert "--wait" in r.stderr and r.stderr.count("\n") == 1


def test_the_rosters_today_is_the_sites_date_not_the_machines(tmp_path):
    # Kiritimati (UTC+14) and Baker Island (UTC-12) never share a date, so a roster planned
    # for a site there must take the site's date whatever zone this machine is in.
    import attrs
    import pendulum

    import visitplan
    from visitplan.dates import today_at
    from visitplan.store import Roster

    far_east, far_west = "Pacific/Kiritimati", "Etc/GMT+12"
    east = pendulum.today(far_east).date()
    assert today_at([far_west, far_east]) == east > pendulum.today(far_west).date()
    study = visitplan.builtin("NCT05124925")
    for zone in (far_east, far_west):
        moved = attrs.evolve(study, sites=(attrs.evolve(study.site, timezone=zone),))
        with Roster.open(tmp_path / f"{zone[-4:]}.db", protocol=moved, create=True) as roster:
            assert roster.today() == pendulum.today(zone).date()


def test_a_site_list_that_stops_on_one_participant_says_whose(tmp_path):
    db = str(tmp_path / "r.db")

    def run(*args: str) -> Any:
        return harness.run(*args)

    for code in ("1001", "1002"):
        run("enroll", code, "--screening", "2026-10-01", "--db", db, "--today", "2026-10-02")
    run("record", "1002", "D1", "--date", "2026-11-03", "--db", db, "--today", "2026-11-10")
    result = run("due", "--db", db, "--today", "2026-06-01")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: participant 1002: D1.date '2026-11-03': is after today (2026-06-01); "
        "only a visit that happened is done"
    ]
