"""Calendar feeds and calendar state in the roster store (SQLite and PostgreSQL), and the
``visitplan feed`` commands: tokens kept only as hashes, creation and revocation audited and
replayed by ``audit verify``, use kept apart; SEQUENCE state saved raise-only; schema 4's
migration reading each state row's participant back from its UID."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.test_store_postgres import BASE, url  # noqa: F401 (the PostgreSQL fixture)

from visitplan.cli import cli
from visitplan.errors import VisitplanError
from visitplan.export.ics import uid, uid_participant
from visitplan.store import Roster

TODAY = "2022-11-10"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "r.db"
    with Roster.open(path, today=TODAY, user="alice") as r:
        r.enroll("1001", "2022-07-27")
        r.enroll("1002", "2022-08-01")
    return path


def test_a_feed_keeps_only_its_token_hash_and_is_audited(db: Path) -> None:
    with Roster.open(db, today=TODAY, user="alice") as r:
        site, token = r.create_feed("front desk")
        own, own_token = r.create_feed("for 1002", "1002", reason="home visits")
        assert len(token) == 43 and token != own_token  # 256 random bits, URL-safe
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert (site.participant, own.participant) == (None, "1002")
        assert r.feed_for_token(token) == site
        assert r.feed_for_token(own_token) == own
        # One character changed, cut, padded, or another shape: no feed.
        for wrong in (token[:-1] + ("A" if token[-1] != "A" else "B"), token[:-1], token + "A",
                      "", "../../etc/passwd", token.upper()):  # fmt: skip
            assert r.feed_for_token(wrong) is None
        r.feed_used("front desk", "2022-11-10T09:00:00.000000Z")
        assert r.feeds()[1].last_used == "2022-11-10T09:00:00.000000Z"
        assert r.verify().intact
        revoked = r.revoke_feed("front desk", reason="phone lost")
        assert revoked.revoked_at is not None
        assert r.feed_for_token(token) is None
        assert r.feed_for_token(own_token) == own
        r.feed_used("for 1002")
        found = r.verify()
        assert found.intact, found.problem
    con = sqlite3.connect(db)
    dumped = "\n".join(con.iterdump())
    assert token not in dumped and own_token not in dumped
    assert hashlib.sha256(token.encode()).hexdigest() in dumped
    audit = con.execute(
        "SELECT action, field, username, reason FROM audit WHERE action LIKE 'feed%' ORDER BY id"
    ).fetchall()
    assert audit == [
        ("feed-create", "front desk", "alice", None),
        ("feed-create", "for 1002", "alice", "home visits"),
        ("feed-revoke", "front desk", "alice", "phone lost"),
    ]
    # Use is not a fact: it is not in the trail.
    assert "feed_usage" not in dumped.split('INSERT INTO "audit"', 1)[-1].split("\n", 1)[0]
    con.close()


def test_tampering_with_a_feed_is_found_by_verify(db: Path) -> None:
    with Roster.open(db, today=TODAY) as r:
        r.create_feed("desk")
        r.revoke_feed("desk")
    # Someone un-revokes the feed by hand, or swaps its hash for one of a token they know.
    for sql, field in (
        ("UPDATE feeds SET revoked_at = NULL", "revoked_at"),
        (f"UPDATE feeds SET token_hash = '{'0' * 64}'", "token_hash"),
    ):
        copy = db.with_name(f"{field}.db")
        copy.write_bytes(db.read_bytes())
        con = sqlite3.connect(copy)
        con.execute(sql)
        con.commit()
        con.close()
        with Roster.open(copy, today=TODAY) as r:
            found = r.verify()
        assert not found.intact
        assert found.problem is not None and found.problem.startswith("feeds desk: stored")
        assert field in found.problem


def test_feed_refusals_change_nothing(db: Path) -> None:
    from tests.storeutil import dump

    with Roster.open(db, today=TODAY) as r:
        r.create_feed("desk")
        before = dump(db)
        cases = [
            (lambda: r.create_feed("desk"), "feed 'desk': already exists"),
            (lambda: r.create_feed("x", "9999"), "participant '9999': is not enrolled"),
            (lambda: r.create_feed(" bad"), "feed label ' bad': must be 1-64 letters"),
            (lambda: r.create_feed("a\nb"), "feed label 'a\\nb': must be 1-64"),
            (lambda: r.create_feed("x" * 65), "feed label"),
            (lambda: r.revoke_feed("nope"), "feed 'nope': no such feed"),
        ]
        for call, message in cases:
            with pytest.raises(VisitplanError) as raised:
                call()
            assert str(raised.value).startswith(message), str(raised.value)
        assert dump(db) == before
        r.revoke_feed("desk")
        with pytest.raises(VisitplanError, match="was already revoked"):
            r.revoke_feed("desk")


def test_feed_commands(db: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(cli, ["feed", "create", "--db", str(db), "--name", "desk",
                               "--user", "bob"])  # fmt: skip
    assert made.exit_code == 0, made.output
    path = made.stdout.strip()
    assert path.startswith("/feeds/") and path.endswith(".ics") and len(path) == 7 + 43 + 4
    assert "shown this once" in made.stderr
    base = ("--base-url", "https://cal.example.org/")
    full = runner.invoke(cli, ["feed", "create", "--db", str(db), "--name", "p1001",
                               "--participant", "1001", *base])  # fmt: skip
    assert full.exit_code == 0, full.output
    assert full.stdout.startswith("https://cal.example.org/feeds/")
    listed = runner.invoke(cli, ["feed", "list", "--db", str(db), "--format", "json"])
    doc = json.loads(listed.stdout)["feeds"]
    assert [(f["label"], f["participant"], f["created_by"], f["last_used"]) for f in doc] == [
        ("desk", None, "bob", None),
        ("p1001", "1001", os.environ.get("VISITPLAN_USER") or doc[1]["created_by"], None),
    ]
    table = runner.invoke(cli, ["feed", "list", "--db", str(db)], env={"COLUMNS": "60"})
    assert table.exit_code == 0
    for text in (listed.stdout, table.stdout):
        assert path[7:-4] not in text
    # Whole at 60 columns: folded where it must be, never cut.
    assert "p1001" in table.stdout and "never" in table.stdout and "…" not in table.stdout
    wide = runner.invoke(cli, ["feed", "list", "--db", str(db)], env={"COLUMNS": "100"})
    assert re.search(
        r"│ p1001 +│ 1001 +│ \d{4}-\d\d-\d\d \d\d:\d\d +│ \S+ +│ never +│", wide.stdout
    )
    gone = runner.invoke(cli, ["feed", "revoke", "desk", "--db", str(db), "--reason", "left"])
    assert (gone.exit_code, gone.stdout) == (0, "revoked feed 'desk'\n")
    again = runner.invoke(cli, ["feed", "revoke", "desk", "--db", str(db)])
    assert again.exit_code == 2 and again.stderr.startswith("error: feed 'desk': was already")
    nodb = runner.invoke(cli, ["feed", "list", "--db", str(db.with_name("none.db"))])
    assert nodb.exit_code == 2 and not db.with_name("none.db").exists()
    verify = runner.invoke(cli, ["audit", "verify", "--db", str(db)])
    assert verify.exit_code == 0 and verify.stdout.startswith("intact")


def test_calendar_state_only_rises_and_knows_its_participant(db: Path) -> None:
    a, b = uid("NCT05124925", "1001", "W4"), uid("NCT05124925", "1002", "W4")
    with Roster.open(db, today=TODAY) as r:
        assert r.raise_calendar_state({a: (0, "f0"), b: (2, "g2")}) == 2
        # A lower or equal SEQUENCE (another export raced ahead) leaves the stored one.
        assert r.raise_calendar_state({a: (0, "other"), b: (1, "g1")}) == 0
        assert r.raise_calendar_state({a: (1, "f1"), b: (3, "g3")}) == 2
        assert r.calendar_state() == {a: (1, "f1"), b: (3, "g3")}
        batches = list(r.calendar_batches(size=1))
        assert [([p.code for p in people], state) for people, state in batches] == [
            (["1001"], {a: (1, "f1")}),
            (["1002"], {b: (3, "g3")}),
        ]
        assert list(r.calendar_batches("1002")) == [(batches[1][0], {b: (3, "g3")})]
        with pytest.raises(VisitplanError, match="'9999': is not enrolled"):
            list(r.calendar_batches("9999"))


def test_uid_participant_reads_back_every_code() -> None:
    for code in ("1001", "P-1", "a.b_c", "x-y-z", "ü-1"):
        assert uid_participant(uid("NCT-1", code, "W-4", "window")) == code
    for other in ("x@visitplan", "a-b@visitplan", "a-b-c@elsewhere", "a-%FF-c@visitplan"):
        assert uid_participant(other) is None


def test_schema_4_migration_fills_the_participant_of_stored_state(db: Path) -> None:
    a, b = uid("NCT05124925", "1001", "W4"), uid("NCT05124925", "1002", "EOS", "milestone")
    with Roster.open(db, today=TODAY) as r:
        r.save_calendar_state({a: (2, "f"), b: (0, "g"), "foreign@example.org": (1, "h")})
    # Back to schema 3 as released: no feed tables, no participant column.
    con = sqlite3.connect(db)
    con.executescript(
        "DROP TABLE feed_usage; DROP TABLE feeds; DROP INDEX calendar_state_by_participant;"
        " ALTER TABLE calendar_state DROP COLUMN participant;"
        " UPDATE schema_version SET version = 3; PRAGMA user_version = 3;"
    )
    con.close()
    with Roster.open(db, today=TODAY) as r:
        assert r.calendar_state() == {a: (2, "f"), b: (0, "g"), "foreign@example.org": (1, "h")}
        assert [s for _, s in r.calendar_batches()] == [{a: (2, "f")}, {b: (0, "g")}] or [
            s for _, s in r.calendar_batches()
        ] == [{a: (2, "f"), b: (0, "g")}]
        r.create_feed("desk")
        assert r.verify().intact
    con = sqlite3.connect(db)
    assert con.execute("SELECT version FROM schema_version").fetchall() == [(5,)]
    owners = dict(con.execute("SELECT uid, participant FROM calendar_state").fetchall())
    assert owners == {a: "1001", b: "1002", "foreign@example.org": None}
    con.close()


@pytest.mark.skipif(
    not BASE and not os.environ.get("CI"), reason="VISITPLAN_TEST_PG_URL is not set"
)
def test_feeds_and_calendar_state_on_postgres(url: str) -> None:  # noqa: F811
    with Roster.open(url, today=TODAY, user="alice") as r:
        r.enroll("1001", "2022-07-27")
        _, token = r.create_feed("desk", "1001")
        assert r.feed_for_token(token) is not None
        r.feed_used("desk")
        r.feed_used("desk")
        key = uid("NCT05124925", "1001", "W4")
        assert r.raise_calendar_state({key: (0, "f")}) == 1
        assert r.raise_calendar_state({key: (0, "g")}) == 0
        r.revoke_feed("desk")
        assert r.feed_for_token(token) is None
        found = r.verify()
        assert found.intact, found.problem
        assert [f.last_used is not None for f in r.feeds()] == [True]
        with pytest.raises(VisitplanError, match="already exists"):
            r.create_feed("desk")
