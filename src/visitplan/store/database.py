"""Opening a roster database and running transactions on it, with bounded waits.

- Only a visitplan roster is ever changed: a SQLite file is marked (``PRAGMA application_id``
  and ``user_version``) and any other non-empty database is refused before anything touches
  it (no table created, no switch to WAL). A new roster is created only by a command that
  means to create one (``enroll``, ``import``).
- A roster locked by another writer is waited for at most ``wait`` seconds (default
  :data:`DEFAULT_WAIT`), then refused with one line, never a traceback.
- A damaged or read-only database is reported as such, in one line.
"""

from __future__ import annotations

import sqlite3
import time as _time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

from visitplan.errors import VisitplanError
from visitplan.i18n import _
from visitplan.store import backend, schema

T = TypeVar("T")

#: Seconds a command waits for another process's lock before giving up.
DEFAULT_WAIT = 10.0


class Database:
    """A roster database: where it is, its engine, and its transactions."""

    def __init__(self, engine: sa.Engine, where: str, wait: float) -> None:
        self.engine = engine
        self.where = where
        self.wait = wait

    @classmethod
    def open(cls, path_or_url: str | Path, *, create: bool, wait: float = DEFAULT_WAIT) -> Database:
        """Check the database is a roster (or may become one) and make its engine."""
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= 86_400:
            raise VisitplanError("--wait", wait, _("must be a number of seconds from 0 to 86400"))
        url = backend.database_url(path_or_url)
        where = str(path_or_url)
        if url.get_backend_name() == "sqlite":
            _check_sqlite_file(backend.sqlite_path(url), where, create)
        engine = backend.make_engine(url, wait=float(wait))
        db = cls(engine, where, float(wait))
        if url.get_backend_name() != "sqlite":
            try:
                db.read(lambda conn: _check_server_database(conn, where, create))
            except BaseException:
                engine.dispose()
                raise
        return db

    def read(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn`` in one read transaction."""
        return self._run(fn, write=False)

    def write(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn`` in one write transaction (the write lock is taken at its start)."""
        return self._run(fn, write=True)

    def _run(self, fn: Callable[[sa.Connection], T], *, write: bool) -> T:
        # Reads retry too: while another process switches a new file to WAL (at its first
        # connection) a reader's connect or BEGIN can get "database is locked" at once,
        # without SQLite's busy handler waiting for it.
        deadline = _time.monotonic() + self.wait
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.engine.connect() as conn:
                    if write:
                        conn.execution_options(**backend.write_options(self.engine))
                    with conn.begin():
                        return fn(conn)
            except sa.exc.DBAPIError as exc:
                if backend.is_retryable(exc):
                    if _time.monotonic() >= deadline:
                        raise VisitplanError(
                            "--db",
                            self.where,
                            _(
                                "the roster is locked by another process (waited {wait:g} s; "
                                "--wait SECONDS waits longer)"
                            ).format(wait=self.wait),
                        ) from None
                    _time.sleep(min(0.05 * attempt, 0.5, max(0.0, deadline - _time.monotonic())))
                    continue
                problem = backend.explain(exc)
                if problem is None:
                    raise
                raise VisitplanError("--db", self.where, problem) from None

    def close(self) -> None:
        self.engine.dispose()


def _check_sqlite_file(path: Path, where: str, create: bool) -> None:
    """Refuse a file that is not a visitplan roster before any connection can change it."""
    if not path.exists():
        if not create:
            raise VisitplanError(
                "--db", where, _("no roster there yet; 'visitplan enroll' or 'import' creates one")
            )
        return
    if not path.is_file():
        raise VisitplanError("--db", where, _("is not a regular file"))
    if path.stat().st_size == 0:
        if not create:
            raise VisitplanError(
                "--db",
                where,
                _("is an empty file, not a roster; 'visitplan enroll' or 'import' makes one"),
            )
        return
    try:
        # Read-only, through a URI: this connection can change nothing in the file.
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise VisitplanError("--db", where, _("cannot be opened ({exc})").format(exc=exc)) from None
    try:
        mark = con.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise VisitplanError(
            "--db", where, _("is not a SQLite database ({exc})").format(exc=exc)
        ) from None
    finally:
        con.close()
    if mark == schema.APPLICATION_ID:
        return
    # Rosters made before the mark existed: visitplan's own tables, and nothing marked.
    if mark == 0 and {"schema_version", "settings", "audit", "participants"} <= tables:
        return
    if mark == 0 and not tables:
        if not create:
            raise VisitplanError(
                "--db",
                where,
                _("is an empty database, not a roster; 'visitplan enroll' or 'import' makes one"),
            )
        return
    raise VisitplanError(
        "--db",
        where,
        _("is not a visitplan roster (another application's database); it is left as it is"),
    )


def _check_server_database(conn: sa.Connection, where: str, create: bool) -> None:
    tables = set(sa.inspect(conn).get_table_names())
    if not tables:
        if not create:
            raise VisitplanError(
                "--db", where, _("holds no roster yet; 'visitplan enroll' or 'import' creates one")
            )
        return
    if not {"schema_version", "settings", "audit", "participants"} <= tables:
        raise VisitplanError(
            "--db",
            where,
            _("is not a visitplan roster (another application's database); it is left as it is"),
        )


def is_new(path_or_url: str | Path) -> bool:
    """True when ``path_or_url`` is a SQLite file that does not exist yet (or is empty): a
    creating command then says it made a new roster."""
    try:
        url = backend.database_url(path_or_url)
    except VisitplanError:
        return False
    if url.get_backend_name() != "sqlite":
        return False
    path = backend.sqlite_path(url)
    return not path.exists() or (path.is_file() and path.stat().st_size == 0)
