"""The coordinators' workspace: the site's week, each participant, and every change, in web
pages served by ``visitplan serve`` (docs/workspace.md).

Server-rendered HTML (Jinja2 templates in ``templates/``, one stylesheet in ``static/``), no
script: every page works without JavaScript. Logins are the roster's users
(``visitplan user add``); :mod:`.security` keeps the sessions, CSRF tokens and login rate
limit, :mod:`.web` the plumbing every page goes through, :mod:`.pages` the pages that read
and :mod:`.actions` the forms that change the roster (through its API, audited under the
logged-in user).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from visitplan.server.workspace import actions, pages
from visitplan.server.workspace.web import endpoint

__all__ = ["routes"]


async def _home(request: Request) -> RedirectResponse:
    # A coordinator types the bare address: the week is the page they start from (it sends
    # anyone not logged in on to /login and back).
    return RedirectResponse("/week", status_code=303)


def routes() -> list[BaseRoute]:
    """The workspace's routes (GET pages, POST forms, the stylesheet)."""
    get, post = ["GET"], ["POST"]
    return [
        Route("/", _home, methods=get),
        Route("/login", endpoint(pages.login_form, login=False), methods=get),
        Route("/login", endpoint(pages.login, login=False), methods=post),
        Route("/logout", endpoint(pages.logout), methods=post),
        Route("/week", endpoint(pages.week), methods=get),
        Route("/deviations", endpoint(pages.deviations), methods=get),
        Route("/participants", endpoint(pages.participants), methods=get),
        Route("/participants/{code}", endpoint(pages.participant), methods=get),
        Route("/participants/{code}/timeline.svg", endpoint(pages.timeline), methods=get),
        Route("/participants/{code}/history", endpoint(pages.history), methods=get),
        *(
            Route(f"/participants/{{code}}/{name}", endpoint(fn, change=True), methods=post)
            for name, fn in (
                ("record", actions.record),
                ("correct", actions.correct),
                ("void", actions.void),
                ("book", actions.book),
                ("cancel", actions.cancel),
                ("bcell", actions.bcell),
            )
        ),
        Route("/account/feeds", endpoint(pages.my_feeds), methods=get),
        Route("/account/feeds/create", endpoint(actions.create_feed, change=True), methods=post),
        Route("/account/feeds/revoke", endpoint(actions.revoke_feed, change=True), methods=post),
        Route("/print/week", endpoint(pages.print_week), methods=get),
        Route("/print/day", endpoint(pages.print_day), methods=get),
        Mount(
            "/static",
            app=StaticFiles(packages=[("visitplan.server.workspace", "static")]),
            name="static",
        ),
    ]
