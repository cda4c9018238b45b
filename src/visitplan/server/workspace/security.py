"""The workspace's sessions, CSRF tokens and login rate limit (server-side, in memory).

- **Sessions.** A session is 256 random bits in a cookie (``visitplan_session``: HttpOnly,
  SameSite=Lax, Path=/, Secure when the request came over HTTPS, which uvicorn learns from a
  trusted reverse proxy's ``X-Forwarded-Proto``); the server keeps only the token's SHA-256,
  mapped to the user's name and the session's CSRF token. A login starts a new session (no
  fixation), logging out ends it; a session ends after :data:`IDLE` without a request or
  :data:`LIFETIME` in all, and at its next request once the login is disabled. Sessions live
  in the server's memory: restarting the server logs everyone out.
- **CSRF.** Every form carries the session's token (``csrf_token``), compared in constant
  time; a POST without it or with another is refused (403) before anything else is read.
  The login form is protected the same way by a short anonymous session.
- **Login rate limit.** :data:`MAX_FAILURES_PER_NAME` failed logins for one name, or
  :data:`MAX_FAILURES_PER_CLIENT` from one client address, within :data:`WINDOW` seconds
  lock that name (or address) until the oldest failure is older than the window; a locked
  attempt is refused (429) without checking the password. A successful login clears the
  name's failures.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque

import attrs

#: Seconds a session lasts without a request, and in all.
IDLE = 2 * 3600.0
LIFETIME = 12 * 3600.0
#: Seconds an anonymous session (the login form's CSRF token) lasts.
ANONYMOUS = 1800.0
#: The login rate limit: failures counted over WINDOW seconds.
WINDOW = 15 * 60.0
MAX_FAILURES_PER_NAME = 5
MAX_FAILURES_PER_CLIENT = 20

#: Past this many names (or clients) with failures, those whose failures have aged out are
#: forgotten, so guessing many names does not grow the server's memory for ever.
_PRUNE_AT = 10_000

COOKIE = "visitplan_session"
CSRF_FIELD = "csrf_token"


@attrs.define
class Session:
    """A browser's session: ``user`` is None until a login succeeds."""

    csrf: str
    created: float
    seen: float
    user: str | None = None
    #: A message a change leaves for the next page (shown once).
    flash: str | None = None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Sessions:
    """The live sessions, by the SHA-256 of their cookie (thread-safe)."""

    def __init__(self, clock: object = None) -> None:
        self._by_digest: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._clock = time.monotonic if clock is None else clock

    def now(self) -> float:
        """The clock sessions are timed by (monotonic; replaceable in tests)."""
        clock = self._clock
        assert callable(clock)
        return float(clock())

    def start(self, user: str | None = None) -> tuple[str, Session]:
        """A new session (and its cookie value), anonymous or for ``user``."""
        token = secrets.token_urlsafe(32)
        now = self.now()
        session = Session(secrets.token_urlsafe(32), now, now, user)
        with self._lock:
            self._forget_expired(now)
            self._by_digest[_digest(token)] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        """The live session of a cookie value, its idle time renewed; None if unknown or
        expired."""
        if not token or len(token) > 100:
            return None
        now = self.now()
        key = _digest(token)
        with self._lock:
            session = self._by_digest.get(key)
            if session is None:
                return None
            if self._expired(session, now):
                del self._by_digest[key]
                return None
            session.seen = now
            return session

    def end(self, token: str | None) -> None:
        """End a session (logout, or a login replacing the anonymous one)."""
        if token:
            with self._lock:
                self._by_digest.pop(_digest(token), None)

    def end_user(self, user: str) -> None:
        """End every session of ``user`` (a disabled login)."""
        with self._lock:
            for key in [k for k, s in self._by_digest.items() if s.user == user]:
                del self._by_digest[key]

    def _expired(self, session: Session, now: float) -> bool:
        if session.user is None:
            return now - session.created > ANONYMOUS
        return now - session.seen > IDLE or now - session.created > LIFETIME

    def _forget_expired(self, now: float) -> None:
        for key in [k for k, s in self._by_digest.items() if self._expired(s, now)]:
            del self._by_digest[key]


def csrf_ok(session: Session | None, sent: object) -> bool:
    """Whether a form's ``csrf_token`` is its session's (constant-time)."""
    if session is None or not isinstance(sent, str) or not sent:
        return False
    return hmac.compare_digest(session.csrf.encode(), sent.encode("utf-8", "surrogatepass"))


class LoginLimit:
    """Failed logins per name and per client address over a sliding window (thread-safe)."""

    def __init__(self, sessions: Sessions) -> None:
        self._clock = sessions
        self._names: dict[str, deque[float]] = {}
        self._clients: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, name: str, client: str) -> float:
        """Seconds until ``name`` from ``client`` may try again (0 when it may now)."""
        now = self._clock.now()
        with self._lock:
            waits = [
                self._wait(self._names, name, MAX_FAILURES_PER_NAME, now),
                self._wait(self._clients, client, MAX_FAILURES_PER_CLIENT, now),
            ]
        return max(waits)

    def failed(self, name: str, client: str) -> None:
        """Count a failed login."""
        now = self._clock.now()
        with self._lock:
            for table, key in ((self._names, name), (self._clients, client)):
                if len(table) > _PRUNE_AT:  # many names guessed: forget the old failures
                    for old in [k for k, times in table.items() if now - times[-1] >= WINDOW]:
                        del table[old]
                table.setdefault(key, deque()).append(now)

    def succeeded(self, name: str) -> None:
        """Clear a name's failures (its user has proved the password)."""
        with self._lock:
            self._names.pop(name, None)

    @staticmethod
    def _wait(table: dict[str, deque[float]], key: str, limit: int, now: float) -> float:
        found = table.get(key)
        if found is None:
            return 0.0
        while found and now - found[0] >= WINDOW:
            found.popleft()
        if not found:
            del table[key]
            return 0.0
        return WINDOW - (now - found[0]) if len(found) >= limit else 0.0
