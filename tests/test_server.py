"""``visitplan serve``: the real server (uvicorn, in its own process) on a free local port,
feeds fetched over HTTP with the standard library's client, bodies read by Mozilla's ical.js.

Checks the status codes and headers, 304 for If-None-Match and If-Modified-Since, HEAD, the
same 404 for an unknown, altered or revoked token and for any unknown path, a change in the
roster visible at the next request with SEQUENCE raised only for the events it moved, the body
equal to ``visitplan ics --db`` for the same scope, and no token in the server's output.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import icalendar
import pendulum
import pytest
from click.testing import CliRunner
from tests.interop.test_interop import read_icaljs

from visitplan.cli import cli
from visitplan.store import Roster

DOSES = (("D1", "2022-08-31"), ("W4", "2022-09-28"), ("W8", "2022-10-26"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, db: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.out = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "visitplan", "serve", "--db", str(db), "--port", str(self.port)],
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.get("/feeds/none.ics")[0] == 404:
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the server did not start: {log.read_text()}")
            time.sleep(0.1)

    def get(
        self, path: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            body = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, body
        finally:
            conn.close()

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.out.close()
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def roster(tmp_path: Path) -> Path:
    db = tmp_path / "brest.db"
    with Roster.open(db, user="alice") as r:
        r.enroll("1001", "2022-07-27", flags=["wocbp"])
        r.enroll("1002", "2022-08-01")
        for visit, day in DOSES:
            r.record("1001", visit, day)
        r.record("1002", "D1", "2022-09-01")
        r.set_appointment("1002", "W4", "2022-09-29", "09:30")  # CEST: a timed event
    return db


@pytest.fixture
def server(roster: Path, tmp_path: Path) -> Iterator[Server]:
    running = Server(roster, tmp_path / "server.log")
    yield running
    running.stop()


def feed(db: Path, label: str, *more: str) -> str:
    made = CliRunner().invoke(cli, ["feed", "create", "--db", str(db), "--name", label, *more])
    assert made.exit_code == 0, made.output
    return str(made.stdout.strip())


def ics_db(db: Path, *more: str) -> bytes:
    done = CliRunner().invoke(cli, ["ics", "--db", str(db), *more])
    assert done.exit_code == 0, done.output
    return bytes(done.stdout_bytes)


def events(body: bytes) -> dict[str, icalendar.Event]:
    return {str(e["UID"]): e for e in icalendar.Calendar.from_ical(body).walk("VEVENT")}


def when(event: icalendar.Event) -> tuple[bytes, bytes, str]:
    return event["DTSTART"].to_ical(), event["DTEND"].to_ical(), str(event["STATUS"])


def test_a_feed_over_http(roster: Path, tmp_path: Path) -> None:
    site = feed(roster, "front desk")
    own = feed(roster, "for 1002", "--participant", "1002")
    server = Server(roster, tmp_path / "server.log")
    try:
        status, headers, body = server.get(site)
        assert status == 200
        assert headers["content-type"] == "text/calendar; charset=utf-8"
        assert headers["content-length"] == str(len(body))
        assert headers["cache-control"] == "private, no-cache"
        etag, modified = headers["etag"], headers["last-modified"]
        assert etag.startswith('"') and etag.endswith('"') and len(etag) == 34
        assert parsedate_to_datetime(modified) <= dt.datetime.now(dt.UTC)

        # The body is the calendar `ics --db` writes for the same roster, byte for byte.
        assert body == ics_db(roster)
        path = tmp_path / "site.ics"
        path.write_bytes(body)
        read = read_icaljs(path)
        assert {u.split("-")[1] for u in read} == {"1001", "1002"}
        assert {e["sequence"] for e in read.values()} == {0}
        w4 = read["NCT05124925-1002-W4@visitplan"]
        assert (w4["start"], w4["all_day"]) == ("2022-09-29T07:30:00Z", False)  # 09:30 CEST
        assert read["NCT05124925-1001-W4@visitplan"]["start"] == "2022-09-28"
        assert b"alice" not in body  # study codes only: no user, no name

        # Conditional requests: nothing changed, nothing sent.
        for header in ({"If-None-Match": etag}, {"If-None-Match": f'"x", W/{etag}'},
                       {"If-None-Match": "*"}, {"If-Modified-Since": modified}):  # fmt: skip
            status, again, nothing = server.get(site, header)
            assert (status, nothing, again["etag"]) == (304, b"", etag), header
        older = format_datetime(parsedate_to_datetime(modified) - dt.timedelta(seconds=1), True)
        assert server.get(site, {"If-Modified-Since": older})[0] == 200
        assert server.get(site, {"If-None-Match": '"other"'})[0] == 200
        status, head, nobody = server.get(site, method="HEAD")
        assert (status, nobody, head["etag"]) == (200, b"", etag)
        assert head["content-type"] == "text/calendar; charset=utf-8"

        # One participant's feed: their calendar only, as `ics --db --participant`.
        status, _, mine = server.get(own)
        assert status == 200
        assert {u.split("-")[1] for u in events(mine)} == {"1002"}
        assert mine == ics_db(roster, "--participant", "1002")

        # A change in the roster is in the next response; SEQUENCE rises for what it moved.
        with Roster.open(roster, user="bob") as r:
            r.record("1001", "W12", "2022-11-26")  # 3 days late
            r.correct("1002", "D1", date="2022-09-02", reason="date misread")
        status, changed, body2 = server.get(site, {"If-None-Match": etag})
        assert status == 200 and changed["etag"] != etag
        one, two = events(body), events(body2)
        assert set(two) >= set(one)
        moved = {u for u in one if when(one[u]) != when(two[u])}
        assert "NCT05124925-1001-W12@visitplan" in moved
        assert "NCT05124925-1002-D1@visitplan" in moved
        assert {u: int(two[u]["SEQUENCE"]) for u in one} == {u: int(u in moved) for u in one}
        assert server.get(site, {"If-None-Match": changed["etag"]})[0] == 304
        assert body2 == ics_db(roster)  # the same state: no second raise

        # Unknown, altered, malformed, revoked: one plain 404, like any unknown path.
        token = site[len("/feeds/") : -len(".ics")]
        altered = token[:-1] + ("A" if token[-1] != "A" else "B")
        missing = [server.get(p) for p in (
            "/nowhere", "/feeds/", f"/feeds/{altered}.ics", f"/feeds/{token}",
            f"/feeds/{token}.ICS", "/feeds/" + "A" * 43 + ".ics", f"/feeds/{token}.ics/x",
            "/feeds/%2e%2e%2fetc.ics",
        )]  # fmt: skip
        assert {(s, b, h["content-type"], h["content-length"]) for s, h, b in missing} == {
            (404, b"Not Found", "text/plain; charset=utf-8", "9")
        }
        revoked = CliRunner().invoke(cli, ["feed", "revoke", "front desk", "--db", str(roster)])
        assert revoked.exit_code == 0
        status, gone_headers, gone = server.get(site)
        assert (status, gone) == (404, b"Not Found")
        assert "etag" not in gone_headers
        assert server.get(own)[0] == 200
    finally:
        log = server.stop()

    # The server said what it did, by feed label, and never printed a token.
    assert "feed 'front desk': 200" in log and "feed 'front desk': 304" in log
    assert "404 for an unknown, altered or revoked link" in log
    for path in (site, own):
        assert path[len("/feeds/") : -len(".ics")] not in log
    listed = CliRunner().invoke(cli, ["feed", "list", "--db", str(roster), "--format", "json"])
    used = {f["label"]: f["last_used"] for f in json.loads(listed.stdout)["feeds"]}
    assert all(used.values())
    verify = CliRunner().invoke(cli, ["audit", "verify", "--db", str(roster)])
    assert verify.exit_code == 0, verify.output


def test_the_server_refuses_a_missing_roster_and_binds_to_loopback(tmp_path: Path) -> None:
    done = CliRunner().invoke(cli, ["serve", "--db", str(tmp_path / "none.db")])
    assert done.exit_code == 2 and done.stderr.startswith("error: --db ")
    assert not (tmp_path / "none.db").exists()
    today = CliRunner().invoke(cli, ["serve", "--db", "x.db", "--today", "2022-01-01"])
    assert today.exit_code == 2 and "a server plans for the real date" in today.stderr
    from visitplan.server import LOGGING

    assert LOGGING["loggers"]["uvicorn.access"]["handlers"] == []
    help_text = CliRunner().invoke(cli, ["serve", "--help"]).output
    assert "127.0.0.1" in help_text


def test_the_log_filter_hides_tokens() -> None:
    import logging

    from visitplan.server import HideFeedTokens

    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1,
                               'client asked "GET /feeds/%s.ics HTTP/1.1" twice', ("s3cr3tT0ken",),
                               None)  # fmt: skip
    assert HideFeedTokens().filter(record)
    assert record.getMessage() == 'client asked "GET /feeds/<hidden> HTTP/1.1" twice'


def test_a_site_feed_of_one_participant_is_named_as_ics_db_names_it(tmp_path: Path) -> None:
    db = tmp_path / "one.db"
    with Roster.open(db) as r:
        r.enroll("1001", "2022-07-27")
    path = feed(db, "desk")
    server = Server(db, tmp_path / "log")
    try:
        status, _, body = server.get(path)
    finally:
        server.stop()
    assert status == 200 and body == ics_db(db)
    assert b"X-WR-CALNAME:NCT05124925 participant 1001\r\n" in body


def test_last_modified_is_the_start_of_the_sites_day_and_never_in_the_future(monkeypatch):
    from visitplan.server.feeds import _last_modified
    from visitplan.store.calendars import Revision

    # 23:30 UTC on 1 March is 00:30 on 2 March in Brest: the roster's today is the 2nd.
    now = pendulum.datetime(2026, 3, 1, 23, 30, tz="UTC")
    monkeypatch.setattr(pendulum, "now", lambda tz=None: now)
    none = Revision(0, "", None)
    day = pendulum.date(2026, 3, 2)
    got = _last_modified(none, day, ["Europe/Paris"])
    assert got == dt.datetime(2026, 3, 1, 23, 0, tzinfo=dt.UTC)
    # A later day (a --today ahead of the clock) is never dated after now.
    got = _last_modified(none, pendulum.date(2026, 6, 1), ["Europe/Paris"])
    assert got == dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)
    changed = Revision(3, "h", "2026-03-01T23:10:00.000000Z")
    assert _last_modified(changed, day, ["Europe/Paris"]).minute == 10
