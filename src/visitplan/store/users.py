"""The workspace's user accounts: a name, a role, a password kept as an scrypt hash.

Roles: ``coordinator`` and ``investigator`` may change facts; ``monitor`` may only read. The
password is never stored, only ``scrypt$N$r$p$salt$hash`` (memory-hard, standard library,
parameters kept with each hash so they can be raised later). Adding, disabling and changing
a password are changes through the audit trail (``users`` is in
:data:`visitplan.store.journal.AUDITED`): a hash edited by hand fails ``audit verify``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets

import attrs
import sqlalchemy as sa

from visitplan.errors import VisitplanError
from visitplan.i18n import _
from visitplan.store import schema
from visitplan.store.base import RosterBase
from visitplan.store.journal import Journal, Op

ROLES = ("coordinator", "investigator", "monitor")
#: Roles that may change facts; a monitor reads.
CHANGING_ROLES = frozenset({"coordinator", "investigator"})
#: scrypt's cost: 2**15 x 8 x 128 bytes = 32 MiB of memory per hash, about 0.1 s here.
_N, _R, _P = 2**15, 8, 1
_MAXMEM = 64 * 1024 * 1024
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_NAME = re.compile(r"^[a-z][a-z0-9._-]{1,31}\Z", re.ASCII)


@attrs.frozen
class User:
    """A workspace account (never its password)."""

    name: str
    role: str
    created_at: str
    created_by: str
    disabled_at: str | None = None

    @property
    def can_change(self) -> bool:
        """True for roles that may record, correct and book; a monitor only reads."""
        return self.role in CHANGING_ROLES and self.disabled_at is None


def check_name(name: object) -> str:
    """A login name: 2-32 lower-case letters, digits, ``.``, ``_`` or ``-``, from a letter."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise VisitplanError(
            "user", name, _("must be a login of 2-32 lower-case letters, digits, '.', '_' or '-'")
        )
    return name


def check_password(password: object) -> str:
    """A password long enough to resist guessing (length, not composition rules: NIST)."""
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise VisitplanError(
            "password",
            "(hidden)",
            _("must be {MIN_PASSWORD} to {MAX_PASSWORD} characters").format(
                MIN_PASSWORD=MIN_PASSWORD, MAX_PASSWORD=MAX_PASSWORD
            ),
        )
    return password


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The stored form of a password: ``scrypt$N$r$p$salt$hash`` (base64 without padding)."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"), salt=salt, n=_N, r=_R, p=_P,
        maxmem=_MAXMEM, dklen=32,
    )  # fmt: skip
    return "$".join(["scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(digest)])


def password_matches(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (constant-time compare)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        found = hashlib.scrypt(
            password.encode("utf-8", "surrogatepass"), salt=_unb64(salt), n=int(n), r=int(r),
            p=int(p), maxmem=_MAXMEM, dklen=32,
        )  # fmt: skip
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, _unb64(digest))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.cache
def _decoy() -> str:
    """Checked against when the name is unknown, so an unknown name costs as much as a wrong
    password (no telling which names exist by timing). Made on first use, not on import."""
    return hash_password("visitplan decoy password", salt=b"\0" * 16)


class Users(RosterBase):
    """Adding, listing, disabling and authenticating the workspace's users."""

    def add_user(self, name: str, role: str, password: str, *, user: str | None = None) -> User:
        """Add a login with a role (``coordinator``, ``investigator`` or ``monitor``)."""
        login = check_name(name)
        if role not in ROLES:
            raise VisitplanError(
                "--role", role, _("must be one of: {items}").format(items=", ".join(ROLES))
            )
        stored = hash_password(check_password(password))

        def change(conn: sa.Connection, book: Journal) -> User:
            if _row(conn, login) is not None:
                raise VisitplanError("user", login, _("already exists"))
            values = {
                "role": role,
                "password": stored,
                "created_at": book.at,
                "created_by": book.user,
                "disabled_at": None,
            }
            op = Op("users", {"name": login}, values, new=True)
            book.entry(None, "user-add", login, None, f"role {role}", [op])
            return User(login, role, book.at, book.user)

        return self._write(change, user=user, reason=None)

    def set_password(self, name: str, password: str, *, user: str | None = None) -> None:
        """Replace a user's password."""
        stored = hash_password(check_password(password))

        def change(conn: sa.Connection, book: Journal) -> None:
            _user(conn, name)
            op = Op("users", {"name": name}, {"password": stored})
            book.entry(None, "user-password", name, None, "changed", [op])

        self._write(change, user=user, reason=None)

    def disable_user(
        self, name: str, reason: str | None = None, *, user: str | None = None
    ) -> User:
        """Disable a login: it can no longer log in; what it did stays in the audit trail."""

        def change(conn: sa.Connection, book: Journal) -> User:
            found = _user(conn, name)
            if found.disabled_at is not None:
                raise VisitplanError(
                    "user",
                    name,
                    _("was already disabled at {disabled_at}").format(
                        disabled_at=found.disabled_at
                    ),
                )
            op = Op("users", {"name": name}, {"disabled_at": book.at})
            book.entry(None, "user-disable", name, found.role, "disabled", [op])
            return attrs.evolve(found, disabled_at=book.at)

        return self._write(change, user=user, reason=reason)

    def users(self) -> list[User]:
        """Every account, by name (never a password)."""
        u = schema.users
        return self._db.read(
            lambda conn: [_value(r) for r in conn.execute(sa.select(u).order_by(u.c.name))]
        )

    def authenticate(self, name: str, password: str) -> User | None:
        """The enabled user with this name and password, else None (same cost either way)."""
        found = self._db.read(lambda conn: _row(conn, name)) if _NAME.match(name or "") else None
        stored = _decoy() if found is None else str(found.password)
        ok = password_matches(password, stored) if isinstance(password, str) else False
        if found is None or not ok or found.disabled_at is not None:
            return None
        return _value(found)


def _row(conn: sa.Connection, name: str) -> sa.Row[tuple[object, ...]] | None:
    u = schema.users
    return conn.execute(sa.select(u).where(u.c.name == name)).first()


def _user(conn: sa.Connection, name: str) -> User:
    found = _row(conn, name)
    if found is None:
        raise VisitplanError("user", name, _("no such user ('visitplan user list' shows them)"))
    return _value(found)


def _value(row: sa.Row[tuple[object, ...]]) -> User:
    m = row._mapping
    return User(
        str(m["name"]), str(m["role"]), str(m["created_at"]), str(m["created_by"]),
        None if m["disabled_at"] is None else str(m["disabled_at"]),
    )  # fmt: skip
