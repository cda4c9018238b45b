"""The workspace in a real browser: Debian's Chromium driven by Playwright for Python, against
the real server (uvicorn on a free local port) over the demo roster.

Logs in through the form, opens the week, records a visit through the participant's form and
finds it in the history under the user, checks that a monitor sees no form and that a change
forged with a monitor's valid session and CSRF token is refused, and uses a page with the
keyboard only (tab order, skip link, visible focus, a form filled and sent without a mouse).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.workspace_demo import CHROMIUM, build, chromium, log_in, serving

from visitplan.store import Roster

# CI always runs them (scripts/test installs chromium); elsewhere they skip without it.
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (scripts/test installs it)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build(tmp_path / "brest.db")


@pytest.fixture
def base(db: Path) -> Iterator[str]:
    with serving(db) as url:
        yield url


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_log_in_open_the_week_record_a_visit_and_find_it_in_the_history(
    page: Any, base: str, db: Path
) -> None:
    page.goto(f"{base}/week")
    assert page.url == f"{base}/login?next=/week"
    log_in(page, base, "alice")
    assert page.get_by_role("heading", level=1).inner_text() == "Week of 2026-06-01"
    monday = page.locator("section", has=page.locator("#d2026-06-01"))
    assert "405" in monday.inner_text() and "W4" in monday.inner_text()
    monday.get_by_role("link", name="405").click()
    page.wait_for_url(f"{base}/participants/405")

    form = page.locator("form[action='/participants/405/record']")
    form.get_by_label("Visit").select_option("W4")
    form.get_by_label("Status").select_option("done")
    form.get_by_label("Date (done: default today)").fill("2026-06-01")
    form.get_by_label("Time (optional)").fill("09:30")
    form.get_by_role("button", name="Record").click()
    page.wait_for_url(f"{base}/participants/405")
    assert page.get_by_role("status").inner_text() == "Recorded 405 W4: done."
    row = page.locator("table.plan tr", has=page.locator("th", has_text="W4"))
    assert "2026-06-01" in row.inner_text() and "done" in row.inner_text()

    page.get_by_role("link", name="History of changes (audit trail)").click()
    last = page.locator("table.history tbody tr").last.inner_text()
    assert re.search(r"alice\s+record\s+W4\s+done 2026-06-01 09:30", last), last
    with Roster.open(db, create=False) as roster:
        assert roster.history("405")[-1].user == "alice"


def test_a_monitor_cannot_change_anything(page: Any, base: str, db: Path) -> None:
    log_in(page, base, "mona")
    with Roster.open(db, create=False) as roster:
        before = roster.verify().entries
    for path in ("/week", "/participants/401", "/participants/405", "/account/feeds"):
        page.goto(base + path)
        actions = page.eval_on_selector_all("form", "fs => fs.map(f => f.getAttribute('action'))")
        assert actions == ["/logout"], (path, actions)
    page.goto(f"{base}/participants/405")
    assert "Your role (monitor) may read but not change." in page.content()
    # A forged change with the monitor's own session and a valid CSRF token: refused anyway.
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    answer = page.request.post(
        f"{base}/participants/405/record",
        form={"visit": "W4", "status": "done", "date": "2026-06-01", "csrf_token": csrf},
        max_redirects=0,
    )
    assert answer.status == 403
    assert "Your role (monitor) may read but not change." in answer.text()
    with Roster.open(db, create=False) as roster:
        assert roster.verify().entries == before


def focused(page: Any) -> str:
    return str(
        page.evaluate(
            "() => { const e = document.activeElement;"
            " return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')"
            " + ':' + (e.innerText || e.value || e.getAttribute('aria-label') || '').trim(); }"
        )
    )


def tab_to(page: Any, selector: str, limit: int = 80) -> None:
    for _ in range(limit):
        if page.evaluate(f"() => document.activeElement.matches({selector!r})"):
            return
        page.keyboard.press("Tab")
    pytest.fail(f"{selector} is not reachable with Tab")


def test_the_keyboard_alone_logs_in_moves_around_and_records(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    # The user name field has the focus; type, Tab, type, Enter.
    assert focused(page).startswith("input#username")
    page.keyboard.type("bob")
    page.keyboard.press("Tab")
    assert focused(page).startswith("input#password")
    page.keyboard.type("bob-password-123")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/week")

    # The first Tab reaches the skip link, which moves the focus to the content.
    positive = "() => document.querySelectorAll('[tabindex]:not([tabindex=\"-1\"])').length"
    assert page.evaluate(positive) == 0  # no tabindex reorders the page
    page.keyboard.press("Tab")
    assert focused(page) == "a:Skip to content"
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # the focus is visible
    page.keyboard.press("Enter")
    assert focused(page).startswith("main#content")
    order = []
    for _ in range(5):
        page.keyboard.press("Tab")
        order.append(focused(page))
    assert order[:4] == [
        "a:← Previous week",
        "a:This week",
        "a:Next week →",
        "a:Print this week",
    ], order

    # To participant 406 and its W4 with the keyboard: missed, with a reason, sent by Enter.
    tab_to(page, "a[href='/participants/406']")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/participants/406")
    tab_to(page, "#record-visit")
    page.keyboard.press("Tab")
    assert focused(page).startswith("select#record-status")
    page.keyboard.press("ArrowDown")  # done -> missed
    assert page.eval_on_selector("#record-status", "e => e.value") == "missed"
    tab_to(page, "#record-reason")
    page.keyboard.type("participant ill")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/participants/406")
    assert page.get_by_role("status").inner_text() == "Recorded 406 W4: missed."
    page.goto(f"{base}/participants/406/history")
    last = page.locator("table.history tbody tr").last.inner_text()
    assert re.search(r"bob\s+record\s+W4\s+missed\s+participant ill", last), last
