"""RosterCalendar: the roster's calendar streamed in batches, SEQUENCE state in the roster.

Whatever the batch size (down to one participant, below the exporter's look-ahead), the bytes
and the state are those of exporting every plan at once with the stored state as ``previous``;
one participant's calendar is the same from every way out; stored bookings of visits that
left the plan are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import visitplan
from visitplan.booking import appointments_from_store
from visitplan.cli import cli
from visitplan.export.ics import EventState, read_state, to_ical
from visitplan.publish import RosterCalendar
from visitplan.publish.calendar import builtin_site_calendars
from visitplan.store import Roster

TODAY = "2023-01-10"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "r.db"
    with Roster.open(path, today=TODAY) as r:
        for i, screening in enumerate(("2022-07-27", "2022-08-01", "2022-08-03", "2022-09-12",
                                       "2022-10-01")):  # fmt: skip
            r.enroll(f"10{i:02d}", screening)
        r.record("1000", "D1", "2022-08-31")
        r.record("1001", "D1", "2022-09-02")
        r.set_appointment("1001", "W4", "2022-09-30", "10:00")
        r.set_appointment("1003", "D1", "2022-10-15", "08:15")
    return path


def whole(r: Roster) -> tuple[bytes, dict[str, EventState]]:
    """Every plan at once, the stored state as previous: what the stream must equal."""
    study = r.protocol
    schedules = [visitplan.plan(study, p, today=r.today()) for p in r.participants()]
    previous = {u: EventState(s, f) for u, (s, f) in r.calendar_state().items()}
    cal = RosterCalendar(r)
    data = to_ical(study, schedules, appointments=appointments_from_store(r),
                   previous=previous, dtstamp=cal.revised_at(),
                   site_calendars=builtin_site_calendars(study))  # fmt: skip
    return data, read_state(data)


def test_every_batch_size_gives_the_same_calendar_and_state(db: Path, tmp_path: Path) -> None:
    copies = {size: tmp_path / f"b{size}.db" for size in (1, 2, 3, 500)}
    for copy in copies.values():
        copy.write_bytes(db.read_bytes())
    results = {}
    for size, copy in copies.items():
        with Roster.open(copy, today=TODAY) as r:
            expected, _ = whole(r)
            first = b"".join(RosterCalendar(r, batch=size).calendar())
            assert first == expected
            r.record("1002", "D1", "2022-09-05")
            r.set_appointment("1000", "W4", "2022-09-28", "14:00")
            expected, state = whole(r)
            calendar = RosterCalendar(r, batch=size)
            second = b"".join(calendar.calendar())
            assert second == expected
            assert r.calendar_state() == {u: (e.sequence, e.fingerprint) for u, e in state.items()}
            raised = {u for u, e in state.items() if e.sequence}
            assert raised and all("-1002-" in u or "-1000-W4" in u for u in raised)
            # Saved: the new ones and the raised ones, nothing else.
            assert calendar.saved == len(raised)
            again = RosterCalendar(r, batch=size)
            assert b"".join(again.calendar()) == second and again.saved == 0
            # Each copy's changes were made at their own time: only DTSTAMP may differ.
            results[size] = re.sub(rb"DTSTAMP:\d{8}T\d{6}Z", b"", second)
    assert len(set(results.values())) == 1


def test_one_participant_is_the_same_calendar_from_every_way_out(db: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "each"
    site = str(tmp_path / "site.ics")
    done = runner.invoke(cli, ["ics", "--db", str(db), "--today", TODAY, "-o", site,
                               "--per-participant", str(out)])  # fmt: skip
    assert done.exit_code == 0, done.output
    alone = runner.invoke(cli, ["ics", "--db", str(db), "--today", TODAY, "--participant", "1001"])
    assert alone.stdout_bytes == (out / "1001.ics").read_bytes()
    with Roster.open(db, today=TODAY) as r:
        mine = b"".join(RosterCalendar(r, "1001").calendar())
    assert mine == alone.stdout_bytes
    assert b"X-WR-CALNAME:NCT05124925 participant 1001\r\n" in mine
    assert b"DTSTART;TZID=Europe/Paris:20220930T100000" in mine


def test_stored_bookings_of_dropped_visits_are_left_out_and_extra_ones_checked(
    db: Path,
) -> None:
    with Roster.open(db, today=TODAY) as r:
        r.set_appointment("1004", "W4", "2022-11-20", "11:00")
        r.withdraw("1004", "2022-10-20", reason="consent withdrawn")
        calendar = b"".join(RosterCalendar(r, "1004").calendar())
    assert b"1004 W4" in calendar  # cancelled, still in the plan: its booking stays
    runner = CliRunner()
    base = ["ics", "--db", str(db), "--today", TODAY]
    extra = runner.invoke(cli, [*base, "--appointment", "1002/D1=2022-09-06T09:00"])
    assert extra.exit_code == 0, extra.output
    assert b"DTSTART;TZID=Europe/Paris:20220906T090000" in extra.stdout_bytes
    for item, message in (
        ("1002/XX=2022-09-20T09:00", "is not a planned visit of participant 1002"),
        ("D1=2022-09-20T09:00", "name the participant"),
        ("9999/D1=2022-09-20T09:00", "names no participant being exported"),
    ):
        refused = runner.invoke(cli, [*base, "--appointment", item])
        assert refused.exit_code == 2 and message in refused.stderr, refused.stderr
