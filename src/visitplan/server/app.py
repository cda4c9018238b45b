"""The web application: a Starlette app over one open roster, its routes added by module.

Each module named in :data:`ROUTE_MODULES` has a ``routes() -> list[BaseRoute]`` function;
:func:`create_app` mounts them all over one :class:`Context` (the roster, opened once for the
life of the server), which a route reads as ``request.app.state.visitplan``. A new part of
the site (the coordinators' workspace, say) is a new module in that list.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute

from visitplan import i18n
from visitplan.errors import VisitplanError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from visitplan.model import Protocol
    from visitplan.store import Roster

#: The modules whose ``routes()`` make up the application, in order.
ROUTE_MODULES: tuple[str, ...] = ("visitplan.server.feeds", "visitplan.server.workspace")

#: Sent with every response (pages, feeds, errors): no script or style from elsewhere and no
#: inline script (CSP), never inside a frame (clickjacking), no Referer to other sites (a
#: feed's path is a secret), no content-type guessing.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
)

#: How often (seconds) the server notes a feed's last use in the roster, at most.
USAGE_EVERY = 60.0

log = logging.getLogger("visitplan.server")


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response (a header the
    route set itself is kept)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class Context:
    """What every route shares: the open roster, and bookkeeping of the server's own.

    ``state`` holds each route module's own server-side state by name (the workspace's
    sessions and login limits), made on first use.
    """

    def __init__(self, roster: Roster, lang: str | None = None) -> None:
        self.roster = roster
        self.state: dict[str, object] = {}
        self.protocol: Protocol = roster.protocol
        #: The language of the pages and feeds: ``lang``, else the site's (its site file).
        self.language = i18n.check_language(lang, "lang") if lang else site_language(self.protocol)
        #: What a calendar depends on besides the roster's facts: the protocol's text, the
        #: schema, visitplan's version and the language (a change of any gives new ETags).
        self.fingerprint = hashlib.sha256(
            (roster._fingerprint() + "\n" + self.language).encode()
        ).hexdigest()
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def used(self, label: str) -> None:
        """Note that a feed was fetched: at most one write per feed per :data:`USAGE_EVERY`
        seconds (usage is not a fact; a busy feed must not cost a write per request)."""
        now = time.monotonic()
        with self._lock:
            last = self._used.get(label)
            if last is not None and now - last < USAGE_EVERY:
                return
            self._used[label] = now
        try:
            self.roster.feed_used(label)
        except VisitplanError as exc:  # a locked roster: usage can wait for the next fetch
            log.warning("could not note the use of feed %r: %s", label, exc)
            with self._lock:
                self._used.pop(label, None)


def site_language(protocol: Protocol) -> str:
    """The language of the study's (first) site: its site file's, else English."""
    from visitplan.siteroster import site_calendar_of

    try:
        site = site_calendar_of(protocol, None) if protocol.sites else None
    except VisitplanError:  # a site file that disagrees: the workspace reports it on use
        return i18n.DEFAULT
    return site.language if site is not None else i18n.DEFAULT


def not_found() -> PlainTextResponse:
    """Starlette's own 404, byte for byte: an unknown path and a bad token look the same."""
    return PlainTextResponse("Not Found", status_code=404)


def create_app(
    db: str | Path,
    *,
    protocol: Protocol | None = None,
    wait: float = 10.0,
    modules: Sequence[str] = ROUTE_MODULES,
    today: object = None,
    lang: str | None = None,
) -> Starlette:
    """The application serving the roster at ``db`` (a SQLite file or a database URL).

    The roster is opened here, so a missing or foreign database is refused before the
    server starts (:class:`~visitplan.errors.VisitplanError`); it is closed at shutdown.
    ``today`` fixes the roster's date (tests, screenshots); a real server leaves it unset.
    ``lang``: the language of the pages and calendar feeds (default: the site's).
    """
    from visitplan.store import Roster

    roster = Roster.open(db, protocol=protocol, create=False, wait=wait, today=today)
    try:
        context = Context(roster, lang)
    except BaseException:
        roster.close()
        raise
    routes: list[BaseRoute] = []
    for name in modules:
        routes += importlib.import_module(name).routes()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            roster.close()

    async def missing(request: Request, exc: Exception) -> PlainTextResponse:
        return not_found()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: missing},
        middleware=[Middleware(SecurityHeaders)],
    )
    app.state.visitplan = context
    return app
