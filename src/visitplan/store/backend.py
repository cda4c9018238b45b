"""Everything dialect-specific about the roster database, in one place.

The :class:`~visitplan.store.Roster` speaks SQLAlchemy Core only; this module makes the
engine (SQLite pragmas, write transactions that take the write lock up front) and says which
errors mean "another writer holds the lock, try again". A PostgreSQL server needs only the
``postgresql`` branches here and the DDL in :data:`visitplan.store.schema.APPEND_ONLY`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from visitplan.errors import VisitplanError
from visitplan.i18n import _

#: Execution option that marks a connection's transaction as a write (BEGIN IMMEDIATE).
WRITE = "visitplan_write"

_URL = re.compile(r"^[a-z][a-z0-9+]*://")


def database_url(path_or_url: str | Path) -> sa.URL:
    """A SQLAlchemy URL from a file path (SQLite) or a database URL (``sqlite:///x.db``)."""
    text = str(path_or_url)
    if not text.strip():
        raise VisitplanError("--db", text, _("must be a file path or a database URL"))
    if _URL.match(text):
        try:
            url = sa.make_url(text)
        except sa.exc.ArgumentError:
            raise VisitplanError("--db", text, _("is not a valid database URL")) from None
    else:
        url = sa.URL.create("sqlite", database=str(Path(text)))
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise VisitplanError("--db", text, _("must be a SQLite file or a PostgreSQL URL"))
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        # Each connection to :memory: is a new empty database: nothing would persist.
        raise VisitplanError("--db", text, _("must name a database file (not :memory:)"))
    if url.get_backend_name() == "sqlite":
        _check_sqlite_query(url, text)
    return url


def _check_sqlite_query(url: sa.URL, text: str) -> None:
    """Refuse SQLite URL parameters that would be ignored or misread.

    pysqlite ignores ``?mode=ro`` without ``uri=true`` (a "read-only" URL then wrote to the
    roster) and fails on a ``timeout`` that is not a number; the wait is ``--wait``. Only the
    SQLite URI form is taken: ``sqlite:///file:r.db?mode=ro&uri=true``.
    """
    query = {k: v if isinstance(v, str) else ",".join(v) for k, v in url.query.items()}
    if not query:
        return
    uri = query.get("uri", "").lower() == "true"
    allowed = {"uri", "mode"}
    if not uri or set(query) - allowed or query.get("mode", "ro") not in ("ro", "rw", "rwc"):
        raise VisitplanError(
            "--db",
            text,
            _(
                "takes no URL parameters but a SQLite URI's mode (e.g. "
                "sqlite:///file:roster.db?mode=ro&uri=true for read-only)"
            ),
        )
    if not (url.database or "").startswith("file:"):
        raise VisitplanError("--db", text, _("with uri=true must name a file: sqlite:///file:PATH"))


def sqlite_path(url: sa.URL) -> Path:
    """The file of a SQLite URL (``file:`` of the URI form left out)."""
    database = url.database or ""
    if url.query.get("uri") and database.startswith("file:"):
        database = database[len("file:") :]
    return Path(database)


def make_engine(url: sa.URL, *, wait: float = 10.0) -> sa.Engine:
    """An engine with the durability and locking settings the roster relies on; a lock held
    by another process is waited for at most ``wait`` seconds per statement."""
    busy_ms = int(wait * 1000)
    if url.get_backend_name() == "sqlite":
        database = sqlite_path(url)
        if not database.parent.is_dir():
            raise VisitplanError("--db", str(database), _("its folder does not exist"))
        engine = sa.create_engine(url, connect_args={"timeout": wait})
        event.listen(engine, "connect", lambda con, _rec: _sqlite_connect(con, busy_ms))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # PostgreSQL: writers take turns on an advisory lock (_pg_begin), as SQLite's BEGIN
    # IMMEDIATE makes them, so the audit chain's next entry follows the last one committed
    # and every "check then write" sees what the writer before committed. A writer runs in
    # READ COMMITTED (write_options): a REPEATABLE READ or SERIALIZABLE transaction would take
    # its snapshot when the lock statement starts, before waiting, and then miss what the
    # writer before it committed (a migration would create a table that exists). Reads run
    # in REPEATABLE READ: one snapshot for all their statements.
    engine = sa.create_engine(
        url,
        isolation_level="REPEATABLE READ",
        connect_args={"options": f"-c lock_timeout={max(busy_ms, 1)}"},
    )
    event.listen(engine, "begin", _pg_begin)
    return engine


def write_options(engine: sa.Engine) -> dict[str, object]:
    """The execution options of a write transaction on ``engine``."""
    if engine.dialect.name == "postgresql":
        return {WRITE: True, "isolation_level": "READ COMMITTED"}
    return {WRITE: True}


#: The key of the transaction-scoped advisory lock that makes PostgreSQL writers take turns.
_WRITER_LOCK = 0x76706C6E


def _pg_begin(conn: sa.Connection) -> None:
    if conn.get_execution_options().get(WRITE, False):
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_WRITER_LOCK})")


def _sqlite_connect(dbapi_connection: Any, busy_ms: int) -> None:
    # The sqlite3 module's own transaction handling issues BEGIN lazily (and not before
    # DDL); turn it off and let _sqlite_begin say BEGIN, so every statement is inside it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.execute("PRAGMA foreign_keys = ON")
        mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise VisitplanError("roster database", str(mode), _("cannot use WAL journal mode"))
        # FULL: a commit survives power loss too, not only a killed process.
        cursor.execute("PRAGMA synchronous = FULL")
    finally:
        cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    # A write takes the write lock at BEGIN: a deferred transaction that read first and
    # then tries to write can fail at once with SQLITE_BUSY (the busy handler does not help
    # when its snapshot is stale), while BEGIN IMMEDIATE waits out busy_timeout instead.
    immediate = conn.get_execution_options().get(WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_retryable(exc: sa.exc.DBAPIError) -> bool:
    """True for errors another writer causes: SQLite busy/locked, PostgreSQL serialization
    failure, deadlock or lock timeout."""
    text = str(exc.orig).lower()
    if "database is locked" in text or "database is busy" in text:
        return True
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in ("40001", "40P01", "55P03")


def explain(exc: sa.exc.DBAPIError) -> str | None:
    """One line for a database that cannot be used (damaged, read-only, gone, refused), or
    None for an error that is visitplan's own mistake (a constraint or a bad statement)."""
    if isinstance(exc, sa.exc.IntegrityError | sa.exc.ProgrammingError):
        return None
    text = (
        str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
    )
    low = text.lower()
    if "malformed" in low or "not a database" in low or "corrupt" in low:
        return f"is damaged ({text}); restore it from a backup"
    if "readonly" in low or "read-only" in low:
        return f"cannot be written here ({text})"
    if "no such table" in low or "no such column" in low:
        return f"is not a usable roster database ({text})"
    return f"cannot be used ({text})"


_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def insert_rows(
    conn: sa.Connection, table: sa.Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """Insert many rows of plain values (text, numbers, booleans, dates as ISO text) in one
    ``executemany`` of the driver, without SQLAlchemy's per-row processing: for the bulk
    writes (the plan cache, calendar state) where that processing costs as much as the rest."""
    if not rows:
        return
    mark = _MARKS[conn.dialect.paramstyle]
    marks = ", ".join([mark] * len(columns))
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", rows)
