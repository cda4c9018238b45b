"""The coordinators' workspace over Starlette's TestClient (the whole ASGI app, in process):
login and sessions, CSRF on every form, roles, the login rate limit, security headers, the
pages' content, and every change landing in the audit trail under the logged-in user.

The browser tests (tests/test_workspace_browser.py) drive the same pages in Chromium.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.workspace_demo import TODAY, USERS, build

from visitplan.server import create_app
from visitplan.server.workspace import security
from visitplan.store import Roster

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("workspace") / "demo.db")


@pytest.fixture
def db(demo: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "brest.db"
    copy.write_bytes(demo.read_bytes())
    return copy


@pytest.fixture
def app(db: Path) -> Iterator[TestClient]:
    with TestClient(create_app(db, today=TODAY, lang="en"), follow_redirects=False) as client:
        yield client


def token(client: TestClient, path: str = "/login") -> str:
    found = CSRF.search(client.get(path).text)
    assert found, path
    return found.group(1)


def login(client: TestClient, name: str, password: str | None = None) -> None:
    r = client.post(
        "/login",
        data={
            "username": name,
            "password": USERS[name][1] if password is None else password,
            "csrf_token": token(client),
        },
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/week"


def send(client: TestClient, action: str, **data: str) -> Any:
    """POST a workspace form with the session's CSRF token."""
    return client.post(action, data={**data, "csrf_token": token(client, "/week")})


def entries(db: Path) -> int:
    with Roster.open(db, create=False) as r:
        return r.verify().entries


class Forms(HTMLParser):
    """Every form of a page: (method, action, {field: value}) with hidden and default values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str, dict[str, str]]] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("method", "get").lower(), a.get("action", ""), {}))
        elif tag in ("input", "select", "textarea") and self.forms and "name" in a:
            fields = self.forms[-1][2]
            if a.get("type") == "checkbox":
                return
            fields.setdefault(a["name"], a.get("value", ""))
            self._select = a["name"] if tag == "select" else None
        elif tag == "option" and self._select and self.forms:
            fields = self.forms[-1][2]
            if not fields[self._select]:
                fields[self._select] = a.get("value", "")


def forms(html: str) -> list[tuple[str, str, dict[str, str]]]:
    parser = Forms()
    parser.feed(html)
    return parser.forms


# -- login and sessions ------------------------------------------------------------------------


def test_pages_need_a_login(app: TestClient) -> None:
    for path in ("/week", "/participants/401", "/deviations", "/account/feeds", "/print/week"):
        r = app.get(path)
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=" + path
    assert app.get("/participants/401/timeline.svg").status_code == 303


def test_the_bare_address_opens_the_week(app: TestClient) -> None:
    r = app.get("/")
    assert (r.status_code, r.headers["location"]) == (303, "/week")
    login(app, "alice")
    assert "/week" in str(app.get("/", follow_redirects=True).url)


def test_login_starts_a_new_httponly_lax_session(app: TestClient) -> None:
    anonymous = app.get("/login").cookies[security.COOKIE]
    login(app, "alice")
    cookie = app.cookies[security.COOKIE]
    assert cookie != anonymous  # a new session: the anonymous one cannot be fixed on a user
    r = app.post(
        "/login",
        data={"username": "alice", "password": USERS["alice"][1], "csrf_token": "x"},
    )
    assert r.status_code == 403
    # The header as sent: HttpOnly, SameSite=Lax, no Secure over plain HTTP.
    fresh = TestClient(app.app, follow_redirects=False)
    header = fresh.get("/login").headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=lax" in header and "Path=/" in header
    assert "Secure" not in header


def test_the_cookie_is_secure_behind_tls(db: Path) -> None:
    # uvicorn sets the scheme from a trusted proxy's X-Forwarded-Proto; here the client is
    # HTTPS itself.
    with TestClient(
        create_app(db, today=TODAY, lang="en"), base_url="https://testserver"
    ) as client:
        header = client.get("/login").headers["set-cookie"]
        assert "Secure" in header and "HttpOnly" in header


def test_behind_a_trusted_proxy_the_cookie_is_secure(db: Path) -> None:
    """The real server (uvicorn): X-Forwarded-Proto from a trusted proxy (127.0.0.1, uvicorn's
    default) makes the request HTTPS, so the cookie is Secure; without it, it is not."""
    import http.client

    from tests.workspace_demo import serving

    with serving(db) as base:
        port = int(base.rsplit(":", 1)[1])
        cookies = []
        for headers in ({}, {"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.0.0.7"}):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/login", headers=headers)
            cookies.append(conn.getresponse().getheader("set-cookie") or "")
            conn.close()
    assert "Secure" not in cookies[0] and "HttpOnly" in cookies[0]
    assert "Secure" in cookies[1] and "HttpOnly" in cookies[1]


def test_a_wrong_password_and_an_unknown_name_read_the_same(app: TestClient) -> None:
    bad = app.post(
        "/login",
        data={"username": "alice", "password": "wrong-password!", "csrf_token": token(app)},
    )
    unknown = app.post(
        "/login", data={"username": "zoe", "password": "wrong-password!", "csrf_token": token(app)}
    )
    assert bad.status_code == unknown.status_code == 401
    assert (
        "Wrong user name or password" in bad.text and "Wrong user name or password" in unknown.text
    )
    assert app.get("/week").status_code == 303


def test_logout_ends_the_session(app: TestClient) -> None:
    login(app, "alice")
    old = app.cookies[security.COOKIE]
    r = app.post("/logout", data={"csrf_token": token(app, "/week")})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    app.cookies.set(security.COOKIE, old)  # replaying the old cookie
    assert app.get("/week").status_code == 303


def test_next_never_leaves_the_site(app: TestClient) -> None:
    cases = (("/deviations", "/deviations"), ("//evil.example/x", "/week"),
             ("https://evil.example", "/week"), ("/\\evil.example", "/week"))  # fmt: skip
    for target, where in cases:
        fresh = TestClient(app.app, follow_redirects=False)
        page = fresh.get(f"/login?next={target}")
        r = fresh.post(
            f"/login?next={target}",
            data={
                "username": "alice",
                "password": USERS["alice"][1],
                "csrf_token": CSRF.search(page.text).group(1),  # type: ignore[union-attr]
            },
        )
        assert r.headers["location"] == where


def test_a_disabled_login_is_logged_out(app: TestClient, db: Path) -> None:
    login(app, "bob")
    assert app.get("/week").status_code == 200
    with Roster.open(db, create=False) as r:
        r.disable_user("bob", "left", user="admin")
    assert app.get("/week").status_code == 303


def test_an_idle_session_ends(app: TestClient) -> None:
    login(app, "alice")
    sessions = app.app.state.visitplan.state["workspace"].sessions  # type: ignore[attr-defined]
    now = sessions.now()
    sessions._clock = lambda: now + security.IDLE + 1
    assert app.get("/week").status_code == 303


# -- the rate limit and the log ----------------------------------------------------------------


def test_failed_logins_are_rate_limited_per_name(app: TestClient, caplog) -> None:
    caplog.set_level(logging.INFO, logger="visitplan.server")
    for _ in range(security.MAX_FAILURES_PER_NAME):
        r = app.post(
            "/login",
            data={"username": "alice", "password": "not-her-password", "csrf_token": token(app)},
        )
        assert r.status_code == 401
    # Locked: even the right password is not checked now.
    r = app.post(
        "/login",
        data={"username": "alice", "password": USERS["alice"][1], "csrf_token": token(app)},
    )
    assert r.status_code == 429
    assert "Too many failed logins: try again in 15 minutes." in r.text
    login(app, "bob")  # another name from the same client still may
    ws = app.app.state.visitplan.state["workspace"]  # type: ignore[attr-defined]
    now = ws.sessions.now()
    ws.sessions._clock = lambda: now + security.WINDOW
    fresh = TestClient(app.app, follow_redirects=False)
    login(fresh, "alice")  # the window has passed
    text = caplog.text
    assert "failed login for alice from testclient" in text
    assert "login refused for alice from testclient: too many failed logins" in text
    assert "login: bob (investigator) from testclient" in text
    assert "not-her-password" not in text


def test_failed_logins_are_rate_limited_per_client(app: TestClient) -> None:
    for i in range(security.MAX_FAILURES_PER_CLIENT):
        name = f"guess{i}"
        r = app.post(
            "/login", data={"username": name, "password": "x" * 12, "csrf_token": token(app)}
        )
        assert r.status_code == 401
    r = app.post(
        "/login",
        data={"username": "alice", "password": USERS["alice"][1], "csrf_token": token(app)},
    )
    assert r.status_code == 429


def test_the_login_limit_forgets_aged_failures(monkeypatch) -> None:
    now = [0.0]
    limit = security.LoginLimit(security.Sessions(clock=lambda: now[0]))
    monkeypatch.setattr(security, "_PRUNE_AT", 3)
    for i in range(5):
        limit.failed(f"guess{i}", "10.0.0.9")
    assert limit.wait("guess0", "10.0.0.9") == 0  # one failure per name: not locked
    now[0] = security.WINDOW + 1
    limit.failed("late", "10.0.0.9")
    assert set(limit._names) == {"late"}


def test_a_password_typed_as_a_name_is_not_logged(app: TestClient, caplog) -> None:
    caplog.set_level(logging.INFO, logger="visitplan.server")
    app.post(
        "/login", data={"username": "My Secret 123!", "password": "x", "csrf_token": token(app)}
    )
    assert "My Secret" not in caplog.text
    assert "failed login for (not a login name)" in caplog.text


# -- CSRF, roles -------------------------------------------------------------------------------


def all_forms(app: TestClient) -> list[tuple[str, str, dict[str, str]]]:
    """Every form the workspace shows a coordinator (with one feed made, so revoke shows)."""
    r = send(app, "/account/feeds/create", label="alice phone", participant="")
    assert r.status_code == 200
    found = []
    for path in ("/week", "/participants/401", "/participants/404", "/account/feeds"):
        found += forms(app.get(path).text)
    return found


def test_every_form_refuses_a_missing_or_wrong_csrf_token(app: TestClient, db: Path) -> None:
    fresh = TestClient(app.app, follow_redirects=False)
    login_forms = forms(fresh.get("/login").text)
    assert [(m, a.split("?")[0]) for m, a, _ in login_forms] == [("post", "/login")]
    login(app, "alice")
    found = all_forms(app)
    posts = [(action, fields) for method, action, fields in found if method == "post"]
    actions = {a for a, _ in posts}
    assert actions >= {
        "/logout", "/participants/401/correct", "/participants/401/void",
        "/participants/401/book", "/participants/401/cancel", "/participants/401/bcell",
        "/participants/404/record", "/account/feeds/create", "/account/feeds/revoke",
    }  # fmt: skip
    assert all(m == "post" for m, _, _ in found), "a form that is not a POST"
    before = entries(db)
    for action, fields in posts:
        assert fields.get("csrf_token"), f"{action} has no CSRF token"
        for bad in (None, "", "wrong", fields["csrf_token"][:-1]):
            data = {k: v for k, v in fields.items() if k != "csrf_token"}
            data["reason"] = data.get("reason") or "a reason"
            if bad is not None:
                data["csrf_token"] = bad
            r = app.post(action, data=data)
            assert r.status_code == 403, (action, bad, r.status_code)
            assert "did not come from this site" in r.text
    # The login form too, from a client with its own anonymous session.
    for bad in (None, "wrong"):
        data = {"username": "alice", "password": USERS["alice"][1]}
        if bad:
            data["csrf_token"] = bad
        assert fresh.post(login_forms[0][1], data=data).status_code == 403
    assert fresh.get("/week").status_code == 303
    assert entries(db) == before
    assert app.get("/week").status_code == 200  # still logged in: nothing was done


def test_a_monitor_reads_but_cannot_change(app: TestClient, db: Path) -> None:
    coordinator = TestClient(app.app, follow_redirects=False)
    login(coordinator, "alice")
    every = all_forms(coordinator)
    login(app, "mona")
    for path in ("/week", "/participants/401", "/participants/401/history", "/deviations",
                 "/account/feeds", "/print/week", "/print/day?date=2026-06-01"):  # fmt: skip
        r = app.get(path)
        assert r.status_code == 200, path
        assert [a for m, a, _ in forms(r.text) if a != "/logout"] == [], path
    assert "may read but not change" in app.get("/participants/401").text
    before = entries(db)
    mine = token(app, "/week")
    for _method, action, fields in every:
        if action == "/logout":
            continue
        data = {**fields, "csrf_token": mine, "reason": "a reason"}
        r = app.post(action, data=data)
        assert r.status_code == 403, action
        assert "Your role (monitor) may read but not change." in r.text
    assert entries(db) == before


# -- changes and who made them -----------------------------------------------------------------


def test_two_users_changes_are_attributed_to_each(app: TestClient, db: Path) -> None:
    login(app, "alice")
    r = send(app, "/participants/405/record", visit="W4", status="done", date="2026-06-01")
    assert r.status_code == 303 and r.headers["location"] == "/participants/405"
    assert "Recorded 405 W4: done." in app.get("/participants/405").text
    bob = TestClient(app.app, follow_redirects=False)
    login(bob, "bob")
    r = send(bob, "/participants/405/correct", visit="W4", date="2026-05-31", reason="misread")
    assert r.status_code == 303
    with Roster.open(db, create=False) as roster:
        trail = [(e.user, e.action, e.field, e.old, e.new, e.reason) for e in roster.history("405")]
        assert roster.verify().intact
    assert trail[-2:] == [
        ("alice", "record", "W4", None, "done 2026-06-01", None),
        ("bob", "correct", "W4", "done 2026-06-01", "done 2026-05-31", "misread"),
    ]
    page = app.get("/participants/405/history").text
    rows = re.findall(r'<td class="user">(\w+)</td>\s*<td>(\w+)</td>\s*<td>W4</td>', page)
    assert rows == [("alice", "record"), ("bob", "correct")]


def test_a_refused_change_shows_the_rule_and_changes_nothing(app: TestClient, db: Path) -> None:
    login(app, "alice")
    before = entries(db)
    csrf = token(app, "/week")
    refusals = [
        ("/participants/404/record", {"visit": "D1", "date": "2026-05-01"},
         "D1.date &#39;2026-05-01&#39;: is before the screening date 2026-05-04"),
        ("/participants/401/correct", {"visit": "W4", "date": "2026-02-03", "reason": ""},
         "is required: say why"),
        ("/participants/401/void", {"visit": "W4", "reason": " "}, "is required: say why"),
        ("/participants/403/book", {"visit": "EOT", "date": "2026-06-20", "time": "09:00"},
         "date &#39;2026-06-20&#39;: is not bookable at BREST"),
        ("/participants/403/book", {"visit": "EOT", "date": "2026-06-23", "time": "18:00"},
         "time &#39;18:00&#39;: is outside clinic hours at BREST"),
        ("/participants/403/bcell", {"value": "lots", "date": "2026-05-01"},
         "bcell_count.value &#39;lots&#39;: must be a number"),
        ("/participants/403/record", {"visit": "W20", "date": "2026-07-01"},
         "is after today (2026-06-01)"),
    ]  # fmt: skip
    for action, data, message in refusals:
        r = app.post(action, data={**data, "csrf_token": csrf})
        assert r.status_code == 400, (action, r.status_code)
        assert message in r.text, (action, re.findall(r'class="error"[^>]*>([^<]*)', r.text))
        assert 'role="alert"' in r.text
    assert entries(db) == before
    assert app.get("/participants/9999").status_code == 404


def test_booking_a_proposed_day_and_cancelling_it(app: TestClient, db: Path) -> None:
    login(app, "bob")
    page = app.get("/participants/403").text
    proposal = next(f for m, a, f in forms(page) if a.endswith("/book") and f.get("date"))
    assert proposal["visit"] in ("W20", "EOT")
    r = app.post("/participants/403/book", data={**proposal, "visit": "EOT", "date": "2026-06-23",
                                                 "time": "10:30"})  # fmt: skip
    assert r.status_code == 303
    assert "Booked 403 EOT on 2026-06-23 10:30." in app.get("/participants/403").text
    r = send(app, "/participants/403/cancel", visit="EOT", reason="she asked")
    assert r.status_code == 303
    with Roster.open(db, create=False) as roster:
        trail = [(e.user, e.action, e.field) for e in roster.history("403")][-2:]
    assert trail == [("bob", "appointment", "EOT"), ("bob", "void", "EOT appointment")]


def test_a_bcell_count_through_the_page(app: TestClient, db: Path) -> None:
    login(app, "alice")
    r = send(app, "/participants/405/bcell", value="150", date="2026-04-27", baseline="yes")
    assert r.status_code == 303
    assert "150 cells/uL" in app.get("/participants/405").text
    with Roster.open(db, create=False) as roster:
        assert roster.baseline_bcell("405") == (150.0, "cells/uL")
        assert roster.history("405")[-1].user == "alice"


def test_feeds_of_ones_own(app: TestClient, db: Path) -> None:
    login(app, "alice")
    r = send(app, "/account/feeds/create", label="alice phone", participant="401")
    url = re.search(r'value="(http://testserver/feeds/[^"]+\.ics)"', r.text)
    assert url and "shown this once" in r.text
    path = url.group(1).removeprefix("http://testserver")
    assert app.get(path).status_code == 200
    assert "/feeds/" not in app.get("/account/feeds").text.replace('"/account/feeds', "")
    bob = TestClient(app.app, follow_redirects=False)
    login(bob, "bob")
    assert "alice phone" not in bob.get("/account/feeds").text
    r = send(bob, "/account/feeds/revoke", label="alice phone")
    assert r.status_code == 400 and "is not one of your feeds" in r.text
    r = send(app, "/account/feeds/revoke", label="alice phone", reason="lost")
    assert r.status_code == 303
    assert app.get(path).status_code == 404
    with Roster.open(db, create=False) as roster:
        assert [f.created_by for f in roster.feeds()] == ["alice"]


# -- the pages' content ------------------------------------------------------------------------


def test_the_week_page(app: TestClient) -> None:
    login(app, "mona")
    page = app.get("/week").text
    assert "<h1>Week of 2026-06-01</h1>" in page
    assert 'href="/week?start=2026-05-25"' in page and 'href="/week?start=2026-06-08"' in page
    now = page.split('id="now"')[1].split("<section")[0]
    assert re.search(r"403</a></th>\s*<td>W20</td>\s*<td>overdue</td>", now)
    assert "402" in now and "is outside EOT&#39;s window 2026-06-15 to 2026-06-29" in now
    monday = page.split('id="d2026-06-01"')[1].split("<section")[0]
    assert "405" in monday and "W4" in monday and "1 visit" in monday and "biopsy 0/2" in monday
    wednesday = page.split('id="d2026-06-03"')[1].split("<section")[0]
    assert "406" in wednesday
    saturday = page.split('id="d2026-06-06"')[1].split("<section")[0]
    assert "Closed: clinic closed on Saturdays" in saturday
    later = app.get("/week?start=2026-06-24").text  # any day: its Monday's week
    assert "<h1>Week of 2026-06-22</h1>" in later
    eot = later.split('id="d2026-06-22"')[1].split("<section")[0]
    assert "09:00" in eot and "401" in eot and "booked" in eot
    assert "<details><summary>4 procedures</summary>" in eot and "gland biopsy" in eot
    # 401 booked, 403 on its target; 402's appointment holds 6 July, outside the window
    assert "2 visits" in eot and "biopsy 2/2" in eot
    bad = app.get("/week?start=2026-13-01")
    assert bad.status_code == 400 and "start &#39;2026-13-01&#39;" in bad.text


def test_the_participant_page(app: TestClient) -> None:
    login(app, "alice")
    page = app.get("/participants/402").text
    assert "<h1>Participant 402</h1>" in page
    assert "2026-06-15 – 2026-06-29" in page  # EOT's window
    assert "booked 2026-07-06 10:00: date &#39;2026-07-06&#39;: is outside EOT&#39;s window" in page
    assert '<img class="timeline" src="/participants/402/timeline.svg" alt="' in page
    svg = app.get("/participants/402/timeline.svg")
    assert svg.headers["content-type"] == "image/svg+xml"
    assert b"402  EOT" in svg.content
    # every field of every form has a label
    ids = re.findall(r'<(?:input|select)[^>]* id="([^"]+)"', page)
    labels = set(re.findall(r'<label for="([^"]+)"', page))
    assert ids and set(ids) <= labels


def test_deviations_and_history_pages(app: TestClient) -> None:
    login(app, "mona")
    page = app.get("/deviations").text
    assert "W20" in page and "overdue" in page and "402" in page and "appointment" in page
    history = app.get("/participants/401/history").text
    assert "Every change, oldest first (times in Europe/Paris)" in history
    assert re.search(r'<td class="user">alice</td>\s*<td>enroll</td>', history)


def test_the_print_lists(app: TestClient) -> None:
    login(app, "alice")
    week = app.get("/print/week?start=2026-06-22").text
    assert week.count('class="day printday"') == 7
    assert "09:00" in week and "gland biopsy" in week and "<details>" not in week
    day = app.get("/print/day?date=2026-06-22").text
    assert day.count('class="day printday"') == 1
    css = app.get("/static/workspace.css").text
    assert "@media print" in css and "break-after: page" in css


def test_security_headers_on_every_response(app: TestClient) -> None:
    login(app, "alice")
    for path in ("/login", "/week", "/participants/401", "/static/workspace.css",
                 "/participants/401/timeline.svg", "/feeds/nothing.ics", "/nowhere"):  # fmt: skip
        r = app.get(path)
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
        assert "'unsafe-inline'" not in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "<script" not in r.text and " on" + "click=" not in r.text
    assert app.get("/week").headers["cache-control"] == "no-store"


def test_only_study_codes_appear(app: TestClient) -> None:
    # The roster has no field for a name; the pages show codes, and nothing else about a person.
    login(app, "alice")
    page = app.get("/participants/404").text
    assert "wocbp" in page and "2026-05-04" in page


def test_the_pages_speak_the_sites_language(db: Path) -> None:
    """Every text goes through visitplan.i18n: the BREST site file says French, so the pages
    read in French (the real catalog); ``lang="en"`` (the tests' other apps) says English."""
    with TestClient(create_app(db, today=TODAY), follow_redirects=False) as french:
        login(french, "alice")
        page = french.get("/week").text
        assert '<html lang="fr">' in page
        assert "<h1>Semaine du 2026-06-01</h1>" in page
        assert "lundi 2026-06-01" in page and "Semaine suivante →" in page
        assert "Week of" not in page and "Monday" not in page
        plan = french.get("/participants/402").text
        assert "Fin de traitement" in plan and "Jour d'étude" in plan
        assert "Biopsie des glandes salivaires accessoires" in plan


def test_the_readme_example_sets_up_a_workspace(tmp_path: Path, monkeypatch) -> None:
    """The README's workspace example, run as written (up to `serve`, which is the app below)."""
    import shlex

    from click.testing import CliRunner

    from visitplan.cli import cli

    readme = (Path(__file__).parent.parent / "README.md").read_text("utf-8")
    # The blocks on brest.db: the set-up with its outputs, then `serve` (its own block, which
    # the docs test skips).
    blocks = re.findall(r"```console\n(.*?)```", readme, re.S)
    block = "".join(b for b in blocks if "brest.db" in b)
    assert "user add" in block and " serve " in block
    monkeypatch.chdir(tmp_path)
    password = None
    for line in block.splitlines():
        if not line.startswith("$ "):
            continue  # what the command before printed (compared by test_docs_commands.py)
        command = line.removeprefix("$ ").split("  #")[0]
        stdin = None
        if command.startswith("echo "):
            echoed, command = command.split(" | ", 1)
            stdin = password = shlex.split(echoed)[1]
        args = shlex.split(command)
        assert args[0] == ".venv/bin/visitplan"
        if args[1] == "serve":
            break
        done = CliRunner().invoke(cli, args[1:], input=stdin)
        assert done.exit_code == 0, done.output
    assert password is not None
    with TestClient(create_app(tmp_path / "brest.db", lang="en"), follow_redirects=False) as client:
        r = client.post(
            "/login",
            data={"username": "alice", "password": password, "csrf_token": token(client)},
        )
        assert r.status_code == 303
        assert "1001" in client.get("/participants").text
