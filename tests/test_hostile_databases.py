"""Hostile input, round two (issue 18, item 7): damaged and read-only roster databases.

Every roster command answers a database it cannot use with exit 2 and one line naming --db
and the value; a "read-only" URL is never written to; a damaged schema version is refused.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from tests import cli as harness
from tests.storeutil import dump

TODAY = "2022-12-01"
COMMANDS = [
    ["due"],
    ["enroll", "1003", "--screening", "2022-07-27"],
    ["ics"],
    ["show", "1001"],
    ["history", "1002"],
    ["deviations"],
    ["record", "1001", "D1", "--date", "2022-08-30"],
    ["audit", "verify"],
]


def run(*args: str) -> Any:
    return harness.run(*args, "--today", TODAY)


@pytest.fixture(scope="module")
def roster(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("roster") / "r.db"
    for code in ("1001", "1002"):
        r = run("enroll", code, "--screening", "2022-07-27", "--db", str(db))
        assert r.exit_code == 0, r.output
    assert run("ics", "--db", str(db)).exit_code == 0  # calendar state rows too
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return db


def damaged(roster: Path, folder: Path, seed: int) -> Path:
    """A copy of ``roster`` with a few bytes scrambled in a few pages after the header."""
    rng = random.Random(seed)
    data = bytearray(roster.read_bytes())
    pages = len(data) // 4096
    for page in rng.sample(range(1, pages), min(pages - 1, rng.choice([1, 3, 8]))):
        at = page * 4096 + rng.choice([0, 8, 100, rng.randrange(4000)])
        size = rng.choice([4, 64, 512])
        data[at : at + size] = bytes(rng.randrange(256) for _ in range(size))
    path = folder / f"damaged-{seed}.db"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_a_damaged_roster_gives_one_line_or_works(roster, tmp_path, seed, args):
    path = damaged(roster, tmp_path, seed)
    r = run(*args, "--db", str(path))
    assert r.exit_code in (0, 1, 2), (r.exit_code, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    if r.exit_code == 2:
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: "), r.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_a_roster_with_every_page_scrambled_is_one_line(roster, tmp_path, args):
    path = tmp_path / "scrambled.db"
    data = bytearray(roster.read_bytes())
    for at in range(4096, len(data), 4096):
        data[at : at + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    r = run(*args, "--db", str(path))
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith(f"error: --db '{path}': ") and r.stderr.count("\n") == 1


@pytest.mark.parametrize("query", ["?mode=ro", "?timeout=abc", "?mode=ro&uri=false", "?cache=x"])
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_sqlite_url_parameters_that_would_be_ignored_are_refused(
    roster, tmp_path, monkeypatch, query, args
):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "r.db"
    shutil.copy(roster, db)
    before = dump(db)
    url = f"sqlite:///r.db{query}"
    r = run(*args, "--db", url)  # ?mode=ro was ignored: enroll and record wrote to the roster
    assert r.exit_code == 2, r.output
    assert r.stderr == (
        f"error: --db '{url}': takes no URL parameters but a SQLite URI's mode "
        "(e.g. sqlite:///file:roster.db?mode=ro&uri=true for read-only)\n"
    )
    assert dump(db) == before


def test_a_read_only_url_reads_and_refuses_every_change_in_one_line(roster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "r.db"
    shutil.copy(roster, db)
    before = dump(db)
    url = "sqlite:///file:r.db?mode=ro&uri=true"
    # ics writes only SEQUENCE state that changed: none here, the fixture exported already.
    for args in (["due"], ["show", "1001"], ["history", "1001"], ["audit", "verify"], ["ics"]):
        r = run(*args, "--db", url)
        assert r.exit_code == 0, (args, r.output)
    for args in (["enroll", "1003", "--screening", "2022-07-27"],
                 ["record", "1001", "D1", "--date", "2022-08-30"]):  # fmt: skip
        r = run(*args, "--db", url)
        assert r.exit_code == 2, (args, r.output)
        assert r.stderr == (
            f"error: --db '{url}': cannot be written here (attempt to write a readonly database)\n"
        )
    assert dump(db) == before


@pytest.mark.parametrize("version", ["'x'", "2.5", "X'00'"])
def test_a_schema_version_that_is_not_a_whole_number_is_refused(roster, tmp_path, version):
    db = tmp_path / "r.db"
    shutil.copy(roster, db)
    con = sqlite3.connect(db)
    con.execute(f"UPDATE schema_version SET version = {version}")
    con.commit()
    con.close()
    before = dump(db)
    for args in (["due"], ["enroll", "1003", "--screening", "2022-07-27"]):
        r = run(*args, "--db", str(db))
        assert r.exit_code == 2, r.output  # 'x' was a traceback, 2.5 ran migrations again
        assert r.stderr.startswith("error: roster database schema version ")
        assert r.stderr.endswith(
            ": is not a whole number: the roster is damaged; restore it from a backup\n"
        )
    assert dump(db) == before


def test_a_fifo_as_the_roster_is_refused(tmp_path):
    import os

    fifo = tmp_path / "r.db"
    os.mkfifo(fifo)
    r = run("due", "--db", str(fifo))
    assert r.exit_code == 2
    assert r.stderr == f"error: --db '{fifo}': is not a regular file\n"
