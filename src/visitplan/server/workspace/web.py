"""The workspace's request plumbing: who is logged in, the CSRF check, roles, language, and
rendering a Jinja2 template.

Every page is a plain function ``fn(call) -> Response`` wrapped by :func:`endpoint`, which
reads the session and the form (a POST is refused with 403 unless its ``csrf_token`` is the
session's), sends a visitor without a session to ``/login``, refuses a change to a role that
may only read (403, whatever the page showed), and runs the function in a worker thread (the
roster is synchronous) in the site's language.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs
import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from visitplan import i18n
from visitplan.errors import VisitplanError
from visitplan.i18n import N_, _
from visitplan.server.workspace.security import (
    COOKIE,
    CSRF_FIELD,
    LoginLimit,
    Session,
    Sessions,
    csrf_ok,
)

if TYPE_CHECKING:
    from visitplan.schedule import PlannedVisit
    from visitplan.server.app import Context
    from visitplan.site import SiteCalendar
    from visitplan.store.users import User

log = logging.getLogger("visitplan.server")

#: Words the templates show from data (roles, states, statuses, kinds, weekdays), marked for
#: the catalog here; the templates translate them with ``_()`` when they show them.
WORDS = (
    N_("coordinator"), N_("investigator"), N_("monitor"),
    N_("booked"), N_("done"), N_("planned"), N_("tentative"), N_("missed"), N_("cancelled"),
    N_("out-of-window"), N_("dose-gap"), N_("overdue"), N_("held"), N_("unplanned"),
    N_("appointment"), N_("all visits"), N_("screening"), N_("dosing"), N_("assessment"),
    N_("biopsy"), N_("follow-up"), N_("end-of-study"), N_("unscheduled"),
    N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"),
    N_("Saturday"), N_("Sunday"),
)  # fmt: skip

#: A form larger than this (bytes) is refused: the workspace's forms are a few fields.
MAX_FORM = 64 * 1024


class Workspace:
    """The workspace's server-side state: sessions, the login limit, templates, the site."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.sessions = Sessions()
        self.limit = LoginLimit(self.sessions)
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("visitplan.server.workspace", "templates"),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.install_gettext_callables(  # type: ignore[attr-defined]
            gettext=i18n._, ngettext=i18n.ngettext, newstyle=True
        )
        # Protocol texts in the page's language: a visit's name, a procedure's description.
        self.templates.globals["visit_name"] = self._visit_name
        self.templates.globals["describe"] = lambda p: p.describe(i18n.language())
        self._site: SiteCalendar | None = None

    def _visit_name(self, visit: PlannedVisit) -> str:
        from visitplan.server.workspace.views import visit_name

        return visit_name(self.context.protocol, visit)

    @property
    def site(self) -> SiteCalendar:
        """The site calendar of the protocol's site (its built-in site file)."""
        if self._site is None:
            from visitplan.site import site_for

            protocol = self.context.protocol
            self._site = site_for(None, protocol.sites[0] if protocol.sites else None)
        return self._site


def workspace(request: Request) -> Workspace:
    """The application's workspace state, made on first use."""
    context: Context = request.app.state.visitplan
    found = context.state.get("workspace")
    if found is None:
        found = context.state.setdefault("workspace", Workspace(context))
    assert isinstance(found, Workspace)
    return found


@attrs.frozen
class Call:
    """One request to a page: the request, the workspace, the session, the logged-in user
    (None on the login page) and the submitted form (empty for a GET)."""

    request: Request
    ws: Workspace
    session: Session | None
    user: User | None
    form: Mapping[str, str]

    @property
    def roster(self) -> Any:
        return self.ws.context.roster

    @property
    def me(self) -> User:
        """The logged-in user (pages behind the login only)."""
        assert self.user is not None
        return self.user

    def field(self, name: str) -> str:
        """A form field, stripped ('' when absent)."""
        return self.form.get(name, "").strip()

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        """The template rendered in the current language, never cached (study data)."""
        page = self.ws.templates.get_template(template).render(
            lang=i18n.language(),
            user=self.user,
            csrf=self.session.csrf if self.session else "",
            csrf_field=CSRF_FIELD,
            flash=self.take_flash(),
            site=self.ws.site,
            today=self.roster.today(),
            path=self.request.url.path,
            **values,
        )
        return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})

    def take_flash(self) -> str | None:
        """The message a change left for the next page (shown once)."""
        if self.session is None or self.session.flash is None:
            return None
        message, self.session.flash = self.session.flash, None
        return message

    def done(self, where: str, message: str) -> RedirectResponse:
        """After a change: a message for the next page, and a redirect to ``where`` (303)."""
        if self.session is not None:
            self.session.flash = message
        return RedirectResponse(where, status_code=303)

    def refuse(self, status: int, message: str) -> HTMLResponse:
        """An error page with one line saying why."""
        return self.render("error.html", status=status, message=message)


Page = Callable[[Call], Response]


def endpoint(
    fn: Page, *, login: bool = True, change: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint of page ``fn`` (see the module's docstring). ``login=False``
    for the login page; ``change=True`` for a page that changes the roster."""

    async def run(request: Request) -> Response:
        ws = workspace(request)
        session = ws.sessions.get(request.cookies.get(COOKIE))
        form: dict[str, str] = {}
        if request.method == "POST":
            size = request.headers.get("content-length", "")
            if not size.isdigit() or int(size) > MAX_FORM:
                return HTMLResponse(_("Request too large."), status_code=413)
            raw = await request.form(max_files=0, max_fields=50)
            form = {k: v for k, v in raw.items() if isinstance(v, str)}
            if not csrf_ok(session, form.get(CSRF_FIELD)):
                return await run_in_threadpool(_csrf_refused, request, ws, session)
        return await run_in_threadpool(_call, fn, request, ws, session, form, login, change)

    return run


def _csrf_refused(request: Request, ws: Workspace, session: Session | None) -> Response:
    with i18n.use(ws.context.language):
        log.warning("refused a form without its CSRF token: POST %s", request.url.path)
        call = Call(request, ws, session, None, {})
        return call.refuse(
            403,
            _(
                "This form has expired or did not come from this site: "
                "reload the page and send it again."
            ),
        )


def _call(
    fn: Page,
    request: Request,
    ws: Workspace,
    session: Session | None,
    form: dict[str, str],
    login: bool,
    change: bool,
) -> Response:
    with i18n.use(ws.context.language):
        user = None
        if session is not None and session.user is not None:
            user = _enabled(ws, session.user)
            if user is None:  # disabled since it logged in
                ws.sessions.end_user(session.user)
                session = None
        if login and user is None:
            if request.method != "GET":
                return Call(request, ws, session, None, form).refuse(
                    403, _("Your session has ended: log in again.")
                )
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse("/login?next=" + quote(target, safe="/"), status_code=303)
        call = Call(request, ws, session, user, form)
        if change and (user is None or not user.can_change):
            role = user.role if user is not None else "-"
            log.warning(
                "refused a change by %s (role %s): POST %s",
                user.name if user else "-",
                role,
                request.url.path,
            )
            return call.refuse(
                403, _("Your role ({role}) may read but not change.").format(role=role)
            )
        try:
            return fn(call)
        except VisitplanError as exc:
            if exc.field == "participant":
                return call.refuse(404, str(exc))
            raise


def _enabled(ws: Workspace, name: str) -> User | None:
    for u in ws.context.roster.users():
        if u.name == name:
            return u if u.disabled_at is None else None
    return None


def client(request: Request) -> str:
    """The client's address (the proxy's view of it when uvicorn trusts the proxy)."""
    return request.client.host if request.client else "-"


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Secure over HTTPS, for the whole site."""
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
