"""The workspace's pages that read: login, the week, participants, history, deviations,
the user's calendar feeds and the printable lists."""

from __future__ import annotations

import logging
import re

import pendulum
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from visitplan.dates import Span, parse_date, shift
from visitplan.errors import VisitplanError
from visitplan.i18n import _
from visitplan.server.workspace import views
from visitplan.server.workspace.security import COOKIE
from visitplan.server.workspace.web import Call, client, set_session_cookie

log = logging.getLogger("visitplan.server")

_NAME_SHAPE = re.compile(r"^[a-z][a-z0-9._-]{1,31}\Z")


# -- login -------------------------------------------------------------------------------------


def login_form(call: Call) -> Response:
    if call.user is not None:
        return RedirectResponse(_next(call.request), status_code=303)
    token = None
    session = call.session
    if session is None:
        token, session = call.ws.sessions.start()
    page = Call(call.request, call.ws, session, None, {}).render(
        "login.html", next=_next(call.request), error=None, username=""
    )
    if token is not None:
        set_session_cookie(call.request, page, token)
    return page


def login(call: Call) -> Response:
    """Check a name and password, within the rate limit; on success a new session."""
    name = call.form.get("username", "").strip()
    password = call.form.get("password", "")
    where = client(call.request)
    shown = name if _NAME_SHAPE.match(name) else "(not a login name)"
    wait = call.ws.limit.wait(name, where)
    if wait > 0:
        log.warning("login refused for %s from %s: too many failed logins", shown, where)
        minutes = int(wait // 60) + 1
        return call.render(
            "login.html",
            status=429,
            next=_next(call.request),
            username=name,
            error=_("Too many failed logins: try again in {minutes} minutes.").format(
                minutes=minutes
            ),
        )
    user = call.roster.authenticate(name, password)
    if user is None:
        call.ws.limit.failed(name, where)
        log.warning("failed login for %s from %s", shown, where)
        return call.render(
            "login.html",
            status=401,
            next=_next(call.request),
            username=name,
            error=_("Wrong user name or password, or the login is disabled."),
        )
    call.ws.limit.succeeded(name)
    call.ws.sessions.end(call.request.cookies.get(COOKIE))
    token, _session = call.ws.sessions.start(user.name)
    log.info("login: %s (%s) from %s", user.name, user.role, where)
    response = RedirectResponse(_next(call.request), status_code=303)
    set_session_cookie(call.request, response, token)
    return response


def logout(call: Call) -> Response:
    call.ws.sessions.end(call.request.cookies.get(COOKIE))
    log.info("logout: %s", call.me.name)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
    return response


def _next(request: Request) -> str:
    """Where to go after logging in: a path of this site only (never another host)."""
    target = request.query_params.get("next", "/week")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/week"
    return target


# -- the week ----------------------------------------------------------------------------------


def week(call: Call) -> Response:
    start = _start(call, "start")
    if isinstance(start, Response):
        return start
    shown = views.week(call.roster, call.ws.site, views.monday(start))
    return call.render("week.html", week=shown)


def _start(call: Call, name: str) -> pendulum.Date | Response:
    raw = call.request.query_params.get(name)
    if raw is None:
        today: pendulum.Date = call.roster.today()
        return today
    try:
        return parse_date(raw, name)
    except VisitplanError as exc:
        return call.refuse(400, str(exc))


# -- participants ------------------------------------------------------------------------------


def participants(call: Call) -> Response:
    return call.render("participants.html", codes=views.codes(call.roster))


def participant(call: Call) -> Response:
    return show_participant(call, call.request.path_params["code"])


def show_participant(
    call: Call,
    code: str,
    *,
    status: int = 200,
    error: tuple[str, str] | None = None,
) -> Response:
    """The participant page; ``error`` is (form name, message) after a refused change."""
    shown = views.participant(call.roster, call.ws.site, code)
    return call.render(
        "participant.html",
        status=status,
        p=shown,
        error=error,
        values=call.form if error else {},
        opens=call.ws.site.opens.strftime("%H:%M"),
        bcell_unit=bcell_unit(call, shown.site),
        propose_weeks=views.PROPOSE_DAYS // 7,
    )


def bcell_unit(call: Call, site: str | None) -> str:
    """The unit B-cell counts are recorded in at a participant's site."""
    protocol = call.roster.protocol
    found = protocol.site_of(site).bcell_unit if protocol.sites else ""
    return found or "cells/uL"


def timeline(call: Call) -> Response:
    svg = views.timeline(call.roster, call.ws.site, call.request.path_params["code"])
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


def history(call: Call) -> Response:
    code = call.request.path_params["code"]
    zone = call.ws.site.timezone
    entries = [
        (e, pendulum.parse(e.at).in_timezone(zone).format("YYYY-MM-DD HH:mm"))  # type: ignore[union-attr]
        for e in call.roster.history(code)
    ]
    return call.render("history.html", code=code, entries=entries, zone=zone)


def deviations(call: Call) -> Response:
    return call.render("deviations.html", found=views.deviations(call.roster))


# -- feeds -------------------------------------------------------------------------------------


def feeds(call: Call, *, made: tuple[str, str] | None = None, error: str | None = None) -> Response:
    """The logged-in user's own calendar feeds; ``made`` is (label, URL) of one just created,
    shown this once."""
    mine = [f for f in call.roster.feeds() if f.created_by == call.me.name]
    return call.render(
        "feeds.html",
        status=400 if error else 200,
        feeds=mine,
        made=made,
        error=error,
        values=call.form if error else {},
        codes=views.codes(call.roster),
    )


def my_feeds(call: Call) -> Response:
    return feeds(call)


# -- print -------------------------------------------------------------------------------------


def print_week(call: Call) -> Response:
    start = _start(call, "start")
    if isinstance(start, Response):
        return start
    first = views.monday(start)
    shown = views.site_days(call.roster, call.ws.site, first, shift(first, Span(0, 6)))
    return call.render("print.html", days=shown, title=_("Week of {day}").format(day=first))


def print_day(call: Call) -> Response:
    day = _start(call, "date")
    if isinstance(day, Response):
        return day
    shown = views.site_days(call.roster, call.ws.site, day, day)
    return call.render("print.html", days=shown, title=_("Day {day}").format(day=day))
