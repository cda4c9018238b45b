"""``GET /feeds/<token>.ics``: a roster's calendar for clients that subscribe to it.

- The body is :class:`~visitplan.publish.RosterCalendar` for the feed's scope: the bytes
  ``visitplan ics --db`` writes for the same roster and scope (same UIDs, SEQUENCE and
  VTIMEZONEs); the SEQUENCE state it writes is the roster's, shared with ``ics --db``.
- ``ETag`` is known before the body is made: a calendar is a function of the roster's latest
  change (the head of its audit trail), the day, the protocol and visitplan, and the scope
  (docs/calendars.md). ``If-None-Match`` (else ``If-Modified-Since``) answers 304 without
  making it. ``HEAD`` gives the headers without making it either.
- An unknown, altered or revoked token gets Starlette's plain 404, the same as any unknown
  path: no hint of which it was. The token is never logged (the log names the feed's label).
- The body is made whole before the first byte is sent (in memory, or a temporary file when
  large): a client gets a whole calendar with its length, or an error, never half of one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from email.utils import format_datetime, parsedate_to_datetime
from typing import IO, TYPE_CHECKING

import pendulum
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from visitplan import i18n
from visitplan.errors import VisitplanError
from visitplan.server.app import Context, not_found
from visitplan.store.feeds import looks_like_token

if TYPE_CHECKING:
    from visitplan.store import Feed
    from visitplan.store.calendars import Revision

MEDIA_TYPE = "text/calendar; charset=utf-8"
#: A calendar larger than this is spooled to a temporary file instead of kept in memory.
SPOOL = 8 * 1024 * 1024
_BLOCK = 64 * 1024

log = logging.getLogger("visitplan.server")


def routes() -> list[BaseRoute]:
    """The feed route (GET; Starlette answers HEAD with it)."""
    return [Route("/feeds/{name}", feed, methods=["GET"])]


async def feed(request: Request) -> Response:
    context: Context = request.app.state.visitplan
    name = request.path_params["name"]
    token = name[: -len(".ics")] if name.endswith(".ics") else ""
    found = None
    if looks_like_token(token):
        found = await run_in_threadpool(context.roster.feed_for_token, token)
    if found is None:
        log.info("feed: 404 for an unknown, altered or revoked link")
        return not_found()
    await run_in_threadpool(context.used, found.label)
    revision = await run_in_threadpool(context.roster.calendar_revision)
    today = context.roster.today()
    etag = _etag(context, found, revision, today)
    zones = [site.timezone for site in context.roster.protocol.sites]
    modified = _last_modified(revision, today, zones)
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(modified, usegmt=True),
        # Study data: no shared cache keeps it; a client asks again, conditionally.
        "Cache-Control": "private, no-cache",
    }
    if _not_modified(request, etag, modified):
        log.info("feed %r: 304", found.label)
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD":
        log.info("feed %r: 200 (HEAD)", found.label)
        # No Content-Length: it is known only once the body is made (RFC 9110 9.3.2).
        return StreamingResponse(iter(()), headers=headers, media_type=MEDIA_TYPE)
    try:
        body, size = await run_in_threadpool(_build, context, found, revision)
    except VisitplanError as exc:
        log.error("feed %r: the calendar cannot be made: %s", found.label, exc)
        return PlainTextResponse("Internal Server Error", status_code=500)
    log.info("feed %r: 200, %d bytes", found.label, size)
    headers["Content-Length"] = str(size)
    return StreamingResponse(_blocks(body), headers=headers, media_type=MEDIA_TYPE)


def _build(context: Context, found: Feed, revision: Revision) -> tuple[IO[bytes], int]:
    from visitplan.publish import RosterCalendar

    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115 (closed by _blocks)
    try:
        with i18n.use(context.language):  # the whole body is made here, in this thread
            calendar = RosterCalendar(context.roster, found.participant, revision=revision)
            for chunk in calendar.calendar():
                spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    size = spool.tell()
    spool.seek(0)
    return spool, size


def _blocks(body: IO[bytes]) -> Iterator[bytes]:
    try:
        while block := body.read(_BLOCK):
            yield block
    finally:
        body.close()


def _etag(context: Context, found: Feed, revision: Revision, today: pendulum.Date) -> str:
    """What the body is a function of (see the module's docstring), hashed."""
    inputs = "|".join(
        (
            context.fingerprint,
            str(revision.entry),
            revision.hash,
            today.isoformat(),
            found.participant or "",
        )
    )
    return '"' + hashlib.sha256(inputs.encode()).hexdigest()[:32] + '"'


def _last_modified(revision: Revision, today: pendulum.Date, zones: Sequence[str]) -> dt.datetime:
    """The roster's latest change, or the start of today at the sites if later (the plans
    depend on the day too), in UTC to the second, and never later than now (RFC 9110 8.8.2.1).

    Today is the sites' date (``Roster.today``), so its start is taken in the sites' zones
    (the first to begin it); a server in UTC would otherwise date Brest's new day in its
    future between midnight and 02:00 in Brest."""
    starts = [pendulum.datetime(today.year, today.month, today.day, tz=z) for z in zones]
    start = min(starts) if starts else pendulum.local(today.year, today.month, today.day)
    when = dt.datetime.fromtimestamp(min(start, pendulum.now()).timestamp(), dt.UTC)
    if revision.at is not None:
        changed = pendulum.parse(revision.at)
        assert isinstance(changed, dt.datetime)
        when = max(when, dt.datetime.fromtimestamp(changed.timestamp(), dt.UTC))
    return when.replace(microsecond=0)


def _not_modified(request: Request, etag: str, modified: dt.datetime) -> bool:
    """RFC 9110 13.2.2: If-None-Match when present, else If-Modified-Since."""
    match = request.headers.get("if-none-match")
    if match is not None:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return "*" in tags or etag in tags
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    if when.tzinfo is None:
        return False
    return modified <= when
