"""A small Brest roster for the workspace's tests and screenshots, as of Monday 1 June 2026.

- 401, 402, 403: Day 1 on 5 January, every dose done on its target, EOT window 15-29 June;
  403's W20 is not recorded (overdue); 401's EOT is booked on 22 June at 09:00; 402's EOT
  appointment was stored on 6 July, outside the window (an appointment to re-book).
- 404 (wocbp): screened 4 May, Day 1 still to come (target 8 June).
- 405 and 406 (hbcab_positive): Day 1 done in May, W4 due this week (1 and 3 June).

Users: alice (coordinator), bob (investigator), mona (monitor); passwords in :data:`USERS`.
"""

from __future__ import annotations

from pathlib import Path

from visitplan.schedule import VisitStatus
from visitplan.store import Roster

TODAY = "2026-06-01"
USERS = {
    "alice": ("coordinator", "alice-password-1"),
    "bob": ("investigator", "bob-password-123"),
    "mona": ("monitor", "mona-password-12"),
}


def build(db: Path) -> Path:
    """Write the demo roster to ``db`` (a new SQLite file) and return it."""
    with Roster.open(db, today=TODAY, user="setup") as r:
        for name, (role, password) in USERS.items():
            r.add_user(name, role, password)
        for code in ("401", "402", "403"):
            r.enroll(code, "2026-01-01", user="alice")
            r.record(code, "D1", "2026-01-05", user="alice")
            for v in r.schedule(code).visits:
                due = v.status is VisitStatus.PLANNED and v.kind.value == "dosing"
                if due and v.target < r.today() and (code, v.code) != ("403", "W20"):
                    r.record(code, v.code, v.target, user="alice")
        r.set_appointment("401", "EOT", "2026-06-22", "09:00", user="alice")
        r.set_appointment("402", "EOT", "2026-07-06", "10:00", user="alice")
        r.enroll("404", "2026-05-04", flags=["wocbp"], user="alice")
        r.enroll("405", "2026-04-27", flags=["hbcab_positive"], user="alice")
        r.record("405", "D1", "2026-05-04", user="alice")
        r.enroll("406", "2026-04-27", flags=["hbcab_positive"], user="alice")
        r.record("406", "D1", "2026-05-06", user="alice")
        r.record_bcell("406", "2026-04-27", 180, baseline=True, user="alice")
    return db
