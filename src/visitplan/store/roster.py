"""The persistent roster: participants' facts in a database, re-planned by the engine.

:class:`Roster` is opened here and made of three parts by seam: :class:`~.changes.Changes`
(facts added), :class:`~.corrections.Corrections` (facts replaced or removed, with a reason)
and :class:`~.queries.Queries` (reads), with :class:`~.calendars.Calendars` (what calendar
exports read and the SEQUENCE state they keep), :class:`~.feeds.Feeds` (calendar feeds) and
:class:`~.users.Users` (the workspace's logins);
:mod:`visitplan.store.base` says how every change runs.
The store holds no rule of its own about facts and computes no date.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

import sqlalchemy as sa

from visitplan.dates import to_date
from visitplan.errors import VisitplanError
from visitplan.i18n import _
from visitplan.model import Protocol
from visitplan.store import cache, journal, schema
from visitplan.store.calendars import Calendars
from visitplan.store.changes import Changes
from visitplan.store.corrections import Corrections
from visitplan.store.database import DEFAULT_WAIT, Database
from visitplan.store.feeds import Feeds
from visitplan.store.queries import Queries
from visitplan.store.users import Users


class Roster(Changes, Corrections, Queries, Calendars, Feeds, Users):
    """A study's participants, kept in a SQLite file (or a PostgreSQL database).

    Open it with :meth:`open`; use it as a context manager to close it. ``today`` fixes the
    date used to refuse facts from the future (default: the real date at each call). ``user``
    names who makes the changes (default: ``$VISITPLAN_USER``, else the login name); each
    change also takes ``user=`` for one call.
    """

    @classmethod
    def open(
        cls,
        path_or_url: str | Path,
        *,
        protocol: Protocol | None = None,
        today: object = None,
        create: bool = True,
        wait: float = DEFAULT_WAIT,
        user: str | None = None,
    ) -> Roster:
        """Open (creating and migrating if needed) the roster at a file path or database URL.

        ``protocol`` defaults to the built-in NCT05124925. A roster belongs to one protocol:
        opening it with another protocol id is refused. With ``create=False`` a database that
        holds no roster yet is refused instead of created (for commands that only read). A
        database of another application is always refused, untouched. ``wait`` bounds the
        seconds spent waiting for another process's lock.
        """
        from visitplan.protocol_file import builtin

        study = protocol if protocol is not None else builtin("NCT05124925")
        day = None if today is None else to_date(today, "today")
        who = None if user is None else journal.check_user(user)
        db = Database.open(path_or_url, create=create, wait=wait)
        roster = cls(db, study, day, who)
        try:
            roster._prepare()
        except BaseException:
            db.close()
            raise
        return roster

    def _prepare(self) -> None:
        fingerprint = self._fingerprint()

        def ready(conn: sa.Connection) -> bool:
            if schema.current_version(conn) != schema.VERSION:
                return False
            return (
                _setting(conn, "protocol") == self.protocol.id
                and _setting(conn, "plan_fingerprint") == fingerprint
            )

        if self._db.read(ready):
            return

        def setup(conn: sa.Connection) -> None:
            schema.migrate(conn, self.where)
            stored = _setting(conn, "protocol")
            if stored is None:
                conn.execute(
                    schema.settings.insert().values(key="protocol", value=self.protocol.id)
                )
            elif stored != self.protocol.id:
                raise VisitplanError(
                    "--protocol",
                    self.protocol.id,
                    _("this roster belongs to protocol {stored}").format(stored=stored),
                )
            if _setting(conn, "plan_fingerprint") != fingerprint:
                # A new or edited protocol (or visitplan): re-plan everyone, in this transaction.
                cache.rebuild(conn, self.protocol)
                s = schema.settings
                done = conn.execute(
                    s.update().where(s.c.key == "plan_fingerprint").values(value=fingerprint)
                )
                if done.rowcount == 0:
                    conn.execute(s.insert().values(key="plan_fingerprint", value=fingerprint))

        self._db.write(setup)

    def _fingerprint(self) -> str:
        """What the plan cache depends on: the protocol's full text, the schema and visitplan."""
        from visitplan import __version__
        from visitplan.protocol_file import dumps

        digest = hashlib.sha256(dumps(self.protocol).encode()).hexdigest()
        return f"{digest}:schema{schema.VERSION}:visitplan{__version__}:rules{_rules_digest()}"

    def close(self) -> None:
        """Release the database connections."""
        self._db.close()

    def __enter__(self) -> Roster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: The modules whose code decides a plan: a change to any of them re-plans the cache, even
#: when the version number stays (a development build, a patched install).
_RULES = (
    "codes",
    "dates",
    "model",
    "participant",
    "facts",
    "schedule",
    "recovery",
    "compiled",
    "engine",
)


@functools.cache
def _rules_digest() -> str:
    digest = hashlib.sha256()
    for name in _RULES:
        spec = importlib.util.find_spec(f"visitplan.{name}")
        origin = spec.origin if spec is not None else None
        digest.update(Path(origin).read_bytes() if origin else name.encode())
    return digest.hexdigest()[:16]


def _setting(conn: sa.Connection, key: str) -> str | None:
    if not sa.inspect(conn).has_table("settings"):
        return None
    value = conn.execute(
        sa.select(schema.settings.c.value).where(schema.settings.c.key == key)
    ).scalar_one_or_none()
    return None if value is None else str(value)
