"""Calendar feeds: secret links to the roster's calendars (``/feeds/<token>.ics``).

A feed is a label (who or what it is for), a scope (the whole roster, or one participant)
and a token: 256 random bits from :func:`secrets.token_urlsafe`, handed to the user once and
never stored or logged; the roster keeps only its SHA-256. Creating and revoking a feed are
changes through the audit trail (``feeds`` is in :data:`visitplan.store.journal.AUDITED`, so
``audit verify`` replays them); when a feed was last fetched is usage, kept apart in
``feed_usage`` and not audited.
"""

from __future__ import annotations

import hashlib
import re
import secrets

import sqlalchemy as sa

from visitplan.errors import VisitplanError
from visitplan.i18n import _
from visitplan.store import journal, rows, schema
from visitplan.store.base import RosterBase
from visitplan.store.journal import Journal, Op
from visitplan.store.values import Feed

#: Random bytes in a token: 256 bits, 43 URL-safe characters.
TOKEN_BYTES = 32
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}\Z")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@+-]{0,63}\Z")


def token_hash(token: str) -> str:
    """What the roster keeps of a token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_token(text: str) -> bool:
    """Whether ``text`` has the shape of a token (a cheap check before any database read)."""
    return bool(_TOKEN.match(text))


def check_label(label: object) -> str:
    """A feed label: 1-64 letters, digits, spaces and ``. _ @ + -``, starting with a letter
    or digit (it names who the link was given to: staff, not participants)."""
    if not isinstance(label, str) or not _LABEL.match(label):
        raise VisitplanError(
            "feed label",
            label,
            _("must be 1-64 letters, digits, spaces or . _ @ + -, starting with a letter or digit"),
        )
    return label


class Feeds(RosterBase):
    """Creating, listing, revoking and resolving calendar feeds."""

    def create_feed(
        self,
        label: str,
        participant: str | None = None,
        reason: str | None = None,
        *,
        user: str | None = None,
    ) -> tuple[Feed, str]:
        """A new feed of the whole roster (or of ``participant``); returns it with its token.

        The token is returned this once: the roster keeps only its hash, so a lost token is
        replaced by a new feed (and the old one revoked), never shown again. Labels are
        unique, revoked feeds' included (the audit trail names feeds by label).
        """
        name = check_label(label)
        token = secrets.token_urlsafe(TOKEN_BYTES)

        def change(conn: sa.Connection, book: Journal) -> Feed:
            if participant is not None:
                rows.load(conn, participant)  # refused when not enrolled
            f = schema.feeds
            if conn.execute(sa.select(f.c.label).where(f.c.label == name)).first() is not None:
                raise VisitplanError(
                    "feed", name, _("already exists (labels stay unique, revoked feeds' too)")
                )
            values = {
                "participant": participant,
                "created_at": book.at,
                "created_by": book.user,
                "revoked_at": None,
                "token_hash": token_hash(token),
            }
            op = Op("feeds", {"label": name}, values, new=True)
            book.entry(None, "feed-create", name, None, _scope(participant), [op])
            return Feed(name, participant, book.at, book.user, None, None)

        return self._write(change, user=user, reason=reason), token

    def revoke_feed(
        self, label: str, reason: str | None = None, *, user: str | None = None
    ) -> Feed:
        """Revoke a feed: its link answers 404 from now on, as an unknown one does."""

        def change(conn: sa.Connection, book: Journal) -> Feed:
            found = _feed(conn, label)
            if found.revoked_at is not None:
                raise VisitplanError(
                    "feed",
                    label,
                    _("was already revoked at {revoked_at}").format(revoked_at=found.revoked_at),
                )
            op = Op("feeds", {"label": label}, {"revoked_at": book.at})
            book.entry(None, "feed-revoke", label, _scope(found.participant), "revoked", [op])
            return Feed(
                found.label,
                found.participant,
                found.created_at,
                found.created_by,
                book.at,
                found.last_used,
            )

        return self._write(change, user=user, reason=reason)

    def feeds(self) -> list[Feed]:
        """Every feed, active and revoked, by label (never a token: none is stored)."""
        return self._db.read(lambda conn: _feeds(conn))

    def feed_for_token(self, token: str) -> Feed | None:
        """The active feed whose token this is, or None (unknown, altered or revoked)."""
        if not looks_like_token(token):
            return None
        f = schema.feeds
        digest = token_hash(token)
        found = self._db.read(
            lambda conn: _feeds(conn, sa.and_(f.c.token_hash == digest, f.c.revoked_at.is_(None)))
        )
        return found[0] if found else None

    def feed_used(self, label: str, at: str | None = None) -> None:
        """Note that a feed was fetched (usage, not audited): one small write."""
        when = at or journal.now()
        u = schema.feed_usage

        def change(conn: sa.Connection) -> None:
            done = conn.execute(u.update().where(u.c.label == label).values(last_used=when))
            if done.rowcount == 0:
                conn.execute(u.insert().values(label=label, last_used=when))

        self._db.write(change)


def _scope(participant: str | None) -> str:
    return "site calendar" if participant is None else f"participant {participant}"


def _feeds(conn: sa.Connection, where: sa.ColumnElement[bool] | None = None) -> list[Feed]:
    f, u = schema.feeds, schema.feed_usage
    query = sa.select(f, u.c.last_used).outerjoin(u, u.c.label == f.c.label).order_by(f.c.label)
    if where is not None:
        query = query.where(where)
    return [
        Feed(r.label, r.participant, r.created_at, r.created_by, r.revoked_at, r.last_used)
        for r in conn.execute(query)
    ]


def _feed(conn: sa.Connection, label: str) -> Feed:
    found = _feeds(conn, schema.feeds.c.label == label)
    if not found:
        raise VisitplanError("feed", label, _("no such feed ('visitplan feed list' shows them)"))
    return found[0]
