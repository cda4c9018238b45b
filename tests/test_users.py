"""The workspace's logins in the roster: scrypt hashes only, roles, disabling, audited."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from tests import cli as harness
from tests.storeutil import dump

import visitplan
from visitplan.store import Roster
from visitplan.store.users import hash_password, password_matches


def run(db: Path, *args: str, input: str | None = None) -> Any:
    """A command on the roster ``db``, made by the user admin (VISITPLAN_USER)."""
    return harness.run(*args, "--db", str(db), input=input, env={"VISITPLAN_USER": "admin"})


def test_passwords_are_kept_as_scrypt_hashes_only(tmp_path):
    db = tmp_path / "r.db"
    with Roster.open(db, user="admin") as roster:
        added = roster.add_user("alice", "coordinator", "correct horse battery")
        roster.add_user("mona", "monitor", "monitor's long password")
        assert added.can_change
        assert roster.authenticate("alice", "correct horse battery") == added
        assert roster.authenticate("alice", "wrong horse battery") is None
        assert roster.authenticate("nobody", "correct horse battery") is None
        assert roster.authenticate("mona", "monitor's long password").can_change is False  # type: ignore[union-attr]
    stored = sqlite3.connect(db).execute("SELECT password FROM users WHERE name = 'alice'")
    text = stored.fetchone()[0]
    assert text.startswith("scrypt$32768$8$1$") and "horse" not in text
    assert b"correct horse battery" not in db.read_bytes()
    # The same password hashes differently each time (a salt), and each verifies.
    again = hash_password("correct horse battery")
    assert again != text and password_matches("correct horse battery", again)
    assert not password_matches("correct horse battery", "md5$abc")


def test_disable_refusals_and_the_audit_trail(tmp_path):
    db = tmp_path / "r.db"
    with Roster.open(db, user="admin") as roster:
        roster.add_user("alice", "coordinator", "correct horse battery")
        before = dump(db)
        for call, message in (
            (lambda: roster.add_user("alice", "monitor", "another long password"),
             "user 'alice': already exists"),
            (lambda: roster.add_user("Alice Smith", "monitor", "another long password"),
             "user 'Alice Smith': must be a login"),
            (lambda: roster.add_user("bob", "admin", "another long password"),
             "--role 'admin': must be one of: coordinator, investigator, monitor"),
            (lambda: roster.add_user("bob", "monitor", "short"),
             "password '(hidden)': must be 12 to 1024 characters"),
            (lambda: roster.disable_user("carol"), "user 'carol': no such user"),
        ):  # fmt: skip
            with pytest.raises(visitplan.VisitplanError) as info:
                call()
            assert str(info.value).startswith(message)
        assert dump(db) == before
        roster.disable_user("alice", "left the site")
        assert roster.authenticate("alice", "correct horse battery") is None
        roster.set_password("alice", "a brand new passphrase")
        verdict = roster.verify()
        assert verdict.intact, verdict.problem
    # A password hash swapped by hand (to take over an account) is found by audit verify.
    con = sqlite3.connect(db)
    con.execute("UPDATE users SET password = ? WHERE name = 'alice'", (hash_password("x" * 12),))
    con.commit()
    con.close()
    with Roster.open(db) as roster:
        found = roster.verify()
    assert not found.intact and found.problem is not None
    assert found.problem.startswith("users alice: stored password=scrypt$")


def test_the_user_commands(tmp_path):
    db = tmp_path / "r.db"
    assert run(db, "enroll", "1001", "--screening", "2022-07-27").exit_code == 0
    r = run(db, "user", "add", "alice", "--role", "coordinator", "--password-stdin",
            input="correct horse battery\n")  # fmt: skip
    assert (r.exit_code, r.stdout) == (0, "added user alice (coordinator)\n")
    r = run(db, "user", "add", "bob", "--role", "monitor",
            input="long enough secret\nlong enough secret\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = run(db, "user", "add", "carol", "--role", "monitor", "--password-stdin", input="short\n")
    assert (r.exit_code, r.stderr) == (
        2, "error: password '(hidden)': must be 12 to 1024 characters\n"
    )  # fmt: skip
    assert run(db, "user", "disable", "bob", "--reason", "left").exit_code == 0
    r = run(db, "user", "list", "--format", "json")
    users = json.loads(r.stdout)["users"]
    assert [(u["name"], u["role"], u["created_by"], u["disabled_at"] is not None)
            for u in users] == [("alice", "coordinator", "admin", False),
                                ("bob", "monitor", "admin", True)]  # fmt: skip
    assert "secret" not in r.stdout and "scrypt" not in r.stdout
    with Roster.open(db) as roster:
        assert roster.authenticate("bob", "long enough secret") is None
        assert roster.authenticate("alice", "correct horse battery") is not None
