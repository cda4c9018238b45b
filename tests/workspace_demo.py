"""A small Brest roster for the workspace's tests and screenshots, as of Monday 1 June 2026.

- 401, 402, 403: Day 1 on 5 January, every dose done on its target, EOT window 15-29 June;
  403's W20 is not recorded (overdue); 401's EOT is booked on 22 June at 09:00; 402's EOT
  appointment was stored on 6 July, outside the window (an appointment to re-book).
- 404 (wocbp): screened 4 May, Day 1 still to come (target 8 June).
- 405 and 406 (hbcab_positive): Day 1 done in May, W4 due this week (1 and 3 June).

Users: alice (coordinator), bob (investigator), mona (monitor); passwords in :data:`USERS`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


#: Debian's Chromium, driven by Playwright (no browser is downloaded: `playwright install` is
#: never run). scripts/test installs the package when it is missing.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@contextlib.contextmanager
def serving(db: Path) -> Iterator[str]:
    """``visitplan serve``'s application for ``db`` (as of :data:`TODAY`) on uvicorn, in a
    thread, on a free local port; yields its base URL."""
    import uvicorn

    from visitplan.server import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = uvicorn.Config(
        create_app(db, today=TODAY, lang="en"), host="127.0.0.1", port=port, log_level="warning",
        access_log=False, lifespan="on",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the workspace server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Debian's) under Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def log_in(page: Any, base: str, name: str) -> None:
    """Log in through the form, as a person would."""
    page.goto(f"{base}/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(USERS[name][1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/week")
