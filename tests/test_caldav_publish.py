"""``visitplan publish`` against a real CalDAV server: Radicale (PyPI), started here on a free
127.0.0.1 port with explicit htpasswd authentication, in its own process.

Every write the server receives is counted from Radicale's own log ("PUT request for ...",
"DELETE request for ..."), so "a second run sends no write" is what the server saw.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import icalendar
import pytest
from click.testing import CliRunner

from visitplan.cli import cli
from visitplan.store import Roster

PASSWORD = "s3cret-pw"
DOSES = (("D1", "2022-08-31"), ("W4", "2022-09-28"), ("W8", "2022-10-26"),
         ("W12", "2022-11-23"), ("W16", "2022-12-21"), ("W20", "2023-01-18"))  # fmt: skip


class Radicale:
    def __init__(self, folder: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        (folder / "users").write_text(f"coord:{PASSWORD}\n")
        config = folder / "config"
        config.write_text(
            f"[server]\nhosts = 127.0.0.1:{self.port}\n"
            f"[auth]\ntype = htpasswd\nhtpasswd_filename = {folder / 'users'}\n"
            "htpasswd_encryption = plain\n"
            f"[storage]\nfilesystem_folder = {folder / 'collections'}\n"
            "[rights]\ntype = owner_only\n"
            "[logging]\nlevel = info\n"
        )
        self.log = folder / "radicale.log"
        self.out = self.log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(config)],
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while "Radicale server ready" not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"Radicale did not start: {self.log.read_text(errors='replace')}")
            time.sleep(0.1)
        self.base = f"http://127.0.0.1:{self.port}/coord/"

    def client(self):  # type: ignore[no-untyped-def]
        import caldav

        return caldav.DAVClient(
            url=self.base, username="coord", password=PASSWORD, enable_rfc6764=False
        )

    def collection(self, name: str) -> str:
        self.client().principal().make_calendar(name=name, cal_id=name)
        return f"{self.base}{name}/"

    def writes(self) -> int:
        text = self.log.read_text(errors="replace")
        return len(re.findall(r"\] (?:PUT|DELETE) request for", text))

    def stored(self, url: str) -> dict[str, str]:
        """UID -> the resource's text, for every resource of a collection."""
        found = {}
        for item in self.client().calendar(url=url).get_events():
            cal = icalendar.Calendar.from_ical(item.data)
            events = list(cal.walk("VEVENT"))
            assert len(events) == 1, "one event per resource"
            assert "METHOD" not in cal
            found[str(events[0]["UID"])] = str(item.data)
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.out.close()


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[Radicale]:
    pytest.importorskip("radicale")
    server = Radicale(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def roster(tmp_path: Path) -> Path:
    db = tmp_path / "brest.db"
    with Roster.open(db, user="alice") as r:
        r.enroll("1001", "2022-07-27")
        r.enroll("1002", "2022-08-01")
        for visit, day in DOSES[:3]:
            r.record("1001", visit, day)
        r.record("1002", "D1", "2022-09-01")
        r.set_appointment("1002", "W4", "2022-09-29", "09:30")
    return db


def publish(db: Path, url: str, *more: str, password: str = PASSWORD) -> tuple[int, str, str]:
    done = CliRunner().invoke(
        cli,
        ["publish", "--db", str(db), "--caldav", url, "--username", "coord", *more],
        env={"VISITPLAN_CALDAV_PASSWORD": password},
    )
    return done.exit_code, done.stdout, done.stderr


def site_events(db: Path, *more: str) -> dict[str, bytes]:
    """UID -> the event's lines as ``ics --db`` writes them, DTSTAMP left out."""
    done = CliRunner().invoke(cli, ["ics", "--db", str(db), *more])
    assert done.exit_code == 0, done.output
    body = done.stdout_bytes.replace(b"\r\n ", b"")
    found = {}
    for event in body.split(b"BEGIN:VEVENT\r\n")[1:]:
        event = event.split(b"END:VEVENT\r\n")[0]
        uid = re.search(rb"^UID:(.*)\r$", event, re.M)
        assert uid is not None
        found[uid.group(1).decode()] = re.sub(rb"^DTSTAMP:.*\r\n", b"", event, flags=re.M)
    return found


def test_publish_creates_updates_deletes_and_a_second_run_writes_nothing(
    radicale: Radicale, roster: Path
) -> None:
    url = radicale.collection("study")
    # Someone else's event in the same collection is never touched.
    other = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//x//EN\r\nBEGIN:VEVENT\r\n"
        "UID:staff-meeting@example.org\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART;VALUE=DATE:20221103\r\nSUMMARY:Staff meeting\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    radicale.client().put(url + "staff.ics", other, {"Content-Type": "text/calendar"})

    expected = site_events(roster)
    before = radicale.writes()
    code, out, err = publish(roster, url)
    assert (code, err) == (0, ""), err
    n = len(expected)
    assert out == f"published to {url}: {n} created, 0 updated, 0 deleted, 0 unchanged\n"
    assert radicale.writes() - before == len(expected)
    stored = radicale.stored(url)
    assert set(stored) == set(expected) | {"staff-meeting@example.org"}
    # The timed appointment carries its VTIMEZONE; SEQUENCE is the one ics --db writes.
    w4 = stored["NCT05124925-1002-W4@visitplan"]
    assert "BEGIN:VTIMEZONE" in w4 and "DTSTART;TZID=Europe/Paris:20220929T093000" in w4
    assert "BEGIN:VTIMEZONE" not in stored["NCT05124925-1001-W4@visitplan"]
    for uid, data in stored.items():
        if uid.endswith("@visitplan"):
            assert icalendar.Calendar.from_ical(data).walk("VEVENT")[0]["SEQUENCE"] == 0

    # Nothing changed: the server gets no write at all.
    before = radicale.writes()
    code, out, _ = publish(roster, url)
    assert code == 0
    assert out == f"published to {url}: 0 created, 0 updated, 0 deleted, {n} unchanged\n"
    assert radicale.writes() == before

    # A dose done 3 days late: its event changes (doses are anchored on Day 1, so the others
    # stay), and only that one is rewritten.
    with Roster.open(roster, user="bob") as r:
        r.record("1001", "W12", "2022-11-26")
    after = site_events(roster)
    changed = {u for u in expected if u in after and after[u] != expected[u]}
    created = set(after) - set(expected)
    assert changed == {"NCT05124925-1001-W12@visitplan"} and not created
    before = radicale.writes()
    code, out, _ = publish(roster, url)
    assert out == (
        f"published to {url}: {len(created)} created, {len(changed)} updated, 0 deleted, "
        f"{len(after) - len(changed) - len(created)} unchanged\n"
    )
    assert radicale.writes() - before == len(changed) + len(created)
    stored = radicale.stored(url)
    w12 = icalendar.Calendar.from_ical(stored["NCT05124925-1001-W12@visitplan"])
    assert w12.walk("VEVENT")[0]["SEQUENCE"] == 1
    assert w12.walk("VEVENT")[0]["DTSTART"].to_ical() == b"20221126"
    expected = after

    # B-cell recovery ends 1002's follow-up: the visits that leave the plan are deleted.
    with Roster.open(roster, user="bob") as r:
        for visit, day in DOSES[1:]:
            r.record("1002", visit, day.replace("-08-31", "-09-01"))
        r.record("1002", "EOT", "2023-02-15")
        r.record_event("1002", "bcell_recovery", "2023-06-20")
    after = site_events(roster)
    gone = set(expected) - set(after)
    assert gone and all("-1002-" in u for u in gone)
    code, out, _ = publish(roster, url)
    assert code == 0 and f" {len(gone)} deleted," in out
    stored = radicale.stored(url)
    assert set(stored) == set(after) | {"staff-meeting@example.org"}
    before = radicale.writes()
    assert publish(roster, url)[1].endswith(f"0 deleted, {len(after)} unchanged\n")
    assert radicale.writes() == before
    verify = CliRunner().invoke(cli, ["audit", "verify", "--db", str(roster)])
    assert verify.exit_code == 0


def test_publish_one_participant_and_refusals(radicale: Radicale, roster: Path) -> None:
    url = radicale.collection("p1002")
    code, out, _ = publish(roster, url, "--participant", "1002")
    assert code == 0
    assert set(radicale.stored(url)) == set(site_events(roster, "--participant", "1002"))
    # The same events, the same SEQUENCE state: the site export after it raises nothing.
    assert all(b"SEQUENCE:0" in e for e in site_events(roster).values())

    for args, password, message in (
        ((), "wrong", "the server refused the credentials"),
        ((), "", "--username 'coord': needs the password in $VISITPLAN_CALDAV_PASSWORD"),
        (("--participant", "9999"), PASSWORD, "participant '9999': is not enrolled"),
    ):
        code, out, err = publish(roster, url, *args, password=password)
        assert code == 2 and out == "" and message in err and err.count("\n") == 1, err
    code, _, err = publish(roster, f"{radicale.base}missing/")
    assert code == 2 and "no calendar collection there (HTTP 404)" in err
    code, _, err = publish(roster, url.replace("http://", f"http://coord:{PASSWORD}@"))
    assert code == 2 and "must not carry credentials" in err
    assert PASSWORD not in err
