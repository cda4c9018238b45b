"""``visitplan publish``: a roster's calendar pushed to a CalDAV calendar collection.

Each event of :class:`~visitplan.publish.RosterCalendar` becomes one resource (CalDAV allows
one UID per resource): a VCALENDAR with the VTIMEZONE its times use and the VEVENT, no METHOD.
A run reads the collection once (one REPORT with the events' data) and then

- creates the events it does not hold yet (PUT to ``<collection>/<UID>.ics``),
- updates the ones whose content changed (PUT to the resource that holds that UID),
- deletes the events visitplan wrote that are no longer in the calendar (a visit that left
  the plan), and leaves every other resource of the collection alone.

Whether an event changed is read from ``X-VISITPLAN-HASH``, a digest of the resource as
visitplan writes it (DTSTAMP left out, which moves with any change to the roster), carried in
the event itself: nothing is kept on this side, and a second run with nothing changed sends
no write at all. Servers may re-serialise what they store (Radicale does); the digest does
not depend on it.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from visitplan.errors import VisitplanError
from visitplan.export.ics import PRODID, uid_participant
from visitplan.i18n import _

if TYPE_CHECKING:
    from visitplan.publish.calendar import RosterCalendar

HASH = b"X-VISITPLAN-HASH"
_BEGIN = b"BEGIN:VEVENT\r\n"
_UID = re.compile(rb"^UID:(.*)$", re.M)
_TZID = re.compile(rb"^TZID:(.*)$", re.M)
_USES_TZ = re.compile(rb";TZID=([^:;]+)[:;]")
_HEAD = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:" + PRODID.encode() + b"\r\n"


@attrs.frozen
class Resource:
    """One event as a CalDAV resource: its UID, its bytes and their digest."""

    uid: str
    data: bytes
    digest: str


@attrs.define
class Published:
    """What a run did: how many events it created, updated, deleted and left unchanged."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, {self.deleted} deleted, "
            f"{self.unchanged} unchanged"
        )


def resources(chunks: Iterable[bytes]) -> Iterator[Resource]:
    """The events of a calendar stream (:func:`~visitplan.export.ics.iter_ical`'s chunks),
    one resource each, with the VTIMEZONE each one's times need."""
    zones: dict[bytes, bytes] = {}
    for chunk in chunks:
        if chunk.startswith(b"BEGIN:VTIMEZONE"):
            found = _TZID.search(chunk)
            if found:
                zones[found.group(1).strip()] = chunk
            continue
        if not chunk.startswith(_BEGIN):
            continue  # the calendar's header and its end
        for body in chunk.split(_BEGIN)[1:]:
            event = _BEGIN + body
            unfolded = event.replace(b"\r\n ", b"")
            found = _UID.search(unfolded)
            if found is None:
                continue
            uid = found.group(1).strip().decode()
            used = sorted(set(_USES_TZ.findall(unfolded)))
            timezones = b"".join(zones[z] for z in used if z in zones)
            stable = re.sub(rb"^DTSTAMP:[^\r\n]*\r\n", b"", unfolded, flags=re.M)
            digest = hashlib.sha256(timezones + stable).hexdigest()
            tagged = event[: -len(b"END:VEVENT\r\n")] + HASH + b":" + digest.encode()
            data = _HEAD + timezones + tagged + b"\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
            yield Resource(uid, data, digest)


def _lines(data: str) -> list[str]:
    """Content lines, unfolded (a server may fold lines anywhere, with CRLF or LF)."""
    text = data.replace("\r\n", "\n")
    return re.sub(r"\n[ \t]", "", text).split("\n")


def _stored(data: str, name: str) -> str | None:
    """The value of the first ``name`` property of a stored resource."""
    for line in _lines(data):
        if line.upper().startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return None


def publish(
    calendar: RosterCalendar,
    url: str,
    *,
    username: str | None = None,
    password: str | None = None,
    progress: Callable[[int], None] | None = None,
    timeout: int = 60,
) -> Published:
    """Push ``calendar`` to the CalDAV calendar collection at ``url``; see the module."""
    client, collection = _connect(url, username, password, timeout)
    base = url if url.endswith("/") else url + "/"
    try:
        held = _held(collection, calendar)
        done = Published()
        seen: set[str] = set()
        for item in resources(calendar.calendar(calendar.schedules(progress))):
            seen.add(item.uid)
            old = held.get(item.uid)
            if old is not None and old[1] == item.digest:
                done.unchanged += 1
                continue
            target = old[0] if old is not None else base + urllib.parse.quote(item.uid) + ".ics"
            _check(client.put(target, item.data, {"Content-Type": "text/calendar; charset=utf-8"}),
                   "PUT", item.uid)  # fmt: skip
            if old is None:
                done.created += 1
            else:
                done.updated += 1
        for uid, (target, _) in sorted(held.items()):
            if uid not in seen:
                _check(client.delete(target), "DELETE", uid)
                done.deleted += 1
        return done
    except _errors() as exc:
        raise VisitplanError("--caldav", url, _explain(exc)) from None
    finally:
        client.close()


def _connect(url: str, username: str | None, password: str | None, timeout: int) -> Any:
    try:
        from caldav.davclient import DAVClient
    except ImportError:
        raise VisitplanError(
            "--caldav", url, _("publishing to CalDAV needs caldav: pip install 'visitplan[caldav]'")
        ) from None
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise VisitplanError("--caldav", url, _("must be the http(s) URL of a calendar collection"))
    if parsed.username or parsed.password:
        # Never echo a password, not even in an error.
        shown = parsed._replace(netloc="***@" + parsed.netloc.rpartition("@")[2]).geturl()
        raise VisitplanError(
            "--caldav",
            shown,
            _("must not carry credentials: use --username and VISITPLAN_CALDAV_PASSWORD"),
        )
    # No DNS discovery (RFC 6764): the URL names the collection itself.
    # Basic authentication sent up front (over TLS in real use): no unauthenticated request
    # first, which servers answer 401, some of them after a deliberate delay.
    client = DAVClient(
        url=url,
        username=username,
        password=password,
        auth_type="basic" if username else None,
        timeout=timeout,
        enable_rfc6764=False,
    )
    return client, client.calendar(url=url)  # type: ignore[no-untyped-call]


def _held(collection: Any, calendar: RosterCalendar) -> dict[str, tuple[str, str | None]]:
    """UID -> (resource URL, stored digest) of the collection's events that visitplan wrote
    for this calendar's study and scope (other resources are never touched)."""
    from visitplan.export.ics import uid

    study = uid(calendar.protocol.id, "x", "x").split("-", 1)[0] + "-"
    held: dict[str, tuple[str, str | None]] = {}
    for item in collection.get_events():
        data = str(item.data or "")
        key = _stored(data, "UID")
        if key is None or not key.startswith(study):
            continue
        owner = uid_participant(key)
        if owner is None or (calendar.participant is not None and owner != calendar.participant):
            continue
        held[key] = (str(item.url), _stored(data, HASH.decode()))
    return held


def _check(response: Any, method: str, uid: str) -> None:
    status = int(getattr(response, "status", 0) or 0)
    if not 200 <= status < 300:
        raise VisitplanError(
            "CalDAV",
            f"{method} {uid}",
            _("the server answered HTTP {status}").format(status=status),
        )


def _errors() -> tuple[type[BaseException], ...]:
    import caldav.lib.error as dav

    found: list[type[BaseException]] = [dav.DAVError, OSError]
    try:
        import niquests

        found.append(niquests.exceptions.RequestException)
    except ImportError:  # pragma: no cover - caldav's transport
        pass
    return tuple(found)


def _explain(exc: BaseException) -> str:
    import caldav.lib.error as dav

    if isinstance(exc, dav.AuthorizationError):
        return "the server refused the credentials (--username, VISITPLAN_CALDAV_PASSWORD)"
    if isinstance(exc, dav.NotFoundError):
        return "no calendar collection there (HTTP 404); create it on the server first"
    if isinstance(exc, dav.DAVError):
        return f"the CalDAV server refused the request ({type(exc).__name__})"
    return f"cannot be reached ({type(exc).__name__})"
