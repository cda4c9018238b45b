"""The roster's tables (SQLAlchemy Core) and its migrations: an ordered list of steps.

Why not Alembic: the schema is a handful of tables that ship inside the package; Alembic
would add a dependency, an ``env.py``/ini pair and a script folder to package and locate at
run time, for features (autogenerate, branches, downgrades) a roster does not use. Here each
step is a plain function run in the SAME transaction as the ``schema_version`` bump, so a
migration killed half-way leaves the previous version intact (SQLite and PostgreSQL both have
transactional DDL). Steps are append-only: a released step is never edited; a change is a new
step at the end of :data:`MIGRATIONS`.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from visitplan.errors import VisitplanError
from visitplan.i18n import _

metadata = sa.MetaData()

#: The one row holding the version of the schema this database is at.
schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.CheckConstraint("id = 1", name="one_row"),
)

#: Study-wide settings (the protocol id the roster belongs to).
settings = sa.Table(
    "settings",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

participants = sa.Table(
    "participants",
    metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("site", sa.String(64)),
    sa.Column("screening", sa.Date, nullable=False),
    # Sorted, ';'-separated participant flags (e.g. "hbcab_positive;wocbp"); '' for none.
    sa.Column("flags", sa.Text, nullable=False, server_default=""),
    sa.Column("discontinued", sa.Date),
    sa.Column("withdrawn", sa.Date),
    sa.Column("baseline_bcell", sa.Float),
    sa.Column("baseline_unit", sa.String(32)),
    sa.Column("enrolled_at", sa.String(40), nullable=False),
)

records = sa.Table(
    "records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("participant", sa.String(32), sa.ForeignKey("participants.code"), nullable=False),
    sa.Column("visit", sa.String(40), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("date", sa.Date),
    sa.Column("time", sa.String(5)),
    sa.Column("reason", sa.Text),
    sa.UniqueConstraint("participant", "visit", name="one_record_per_visit"),
    sa.CheckConstraint("status IN ('done', 'missed', 'cancelled')", name="known_status"),
    sa.CheckConstraint("status <> 'done' OR date IS NOT NULL", name="done_has_date"),
)

unscheduled = sa.Table(
    "unscheduled",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("participant", sa.String(32), sa.ForeignKey("participants.code"), nullable=False),
    # 1, 2, ... per participant: shown as U1, U2, ...
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("time", sa.String(5)),
    sa.Column("reason", sa.Text),
    sa.UniqueConstraint("participant", "number", name="one_number_per_unscheduled"),
)

bcell_counts = sa.Table(
    "bcell_counts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("participant", sa.String(32), sa.ForeignKey("participants.code"), nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("unit", sa.String(32), nullable=False),
    sa.UniqueConstraint("participant", "date", name="one_count_per_day"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("participant", sa.String(32), sa.ForeignKey("participants.code"), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("date", sa.Date, nullable=False),
)

appointments = sa.Table(
    "appointments",
    metadata,
    sa.Column("participant", sa.String(32), sa.ForeignKey("participants.code"), primary_key=True),
    sa.Column("visit", sa.String(40), primary_key=True),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("time", sa.String(5)),
)

calendar_state = sa.Table(
    "calendar_state",
    metadata,
    sa.Column("uid", sa.String(255), primary_key=True),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("fingerprint", sa.Text, nullable=False),
    # Schema 4: whose event it is (from the UID), so an export reads the state of the
    # participants it is writing, a batch at a time, instead of all of it.
    sa.Column("participant", sa.String(32)),
    sa.Index("calendar_state_by_participant", "participant"),
)

#: Schema 4: calendar feeds, each a secret link (``/feeds/<token>.ics``) to the calendar of
#: the whole roster (``participant`` NULL) or of one participant. Only the token's SHA-256 is
#: kept. Creating and revoking a feed are audited (journal.AUDITED); its use is not.
feeds = sa.Table(
    "feeds",
    metadata,
    sa.Column("label", sa.String(64), primary_key=True),
    sa.Column("participant", sa.String(32), sa.ForeignKey("participants.code")),
    sa.Column("created_at", sa.String(40), nullable=False),  # UTC, ISO 8601 with 'Z'
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("revoked_at", sa.String(40)),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
)

#: Schema 4: when each feed was last fetched. Usage, not a fact: not audited, written at most
#: once a minute per feed by the server.
feed_usage = sa.Table(
    "feed_usage",
    metadata,
    sa.Column("label", sa.String(64), sa.ForeignKey("feeds.label"), primary_key=True),
    sa.Column("last_used", sa.String(40), nullable=False),
)

#: Schema 5: the people who log in to the workspace (``visitplan serve``). ``password`` is an
#: scrypt hash with its parameters (store/users.py); a disabled account cannot log in.
users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),  # UTC, ISO 8601 with 'Z'
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("disabled_at", sa.String(40)),
    sa.CheckConstraint("role IN ('coordinator', 'investigator', 'monitor')", name="known_role"),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(40), nullable=False),  # UTC, ISO 8601 with 'Z'
    sa.Column("participant", sa.String(32)),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("field", sa.String(64), nullable=False),
    sa.Column("old", sa.Text),
    sa.Column("new", sa.Text),
    sa.Column("reason", sa.Text),
    # Schema 3: who, the replayable row changes (JSON), and the hash chain (store/journal.py).
    sa.Column("username", sa.String(64)),
    sa.Column("data", sa.Text),
    sa.Column("prev", sa.String(64)),
    sa.Column("hash", sa.String(64)),
    sa.Index("audit_by_participant", "participant", "id"),
)

#: The plan cache: each participant's visits as the engine plans them without a ``today``
#: (see docs/roster.md). Refreshed in the same transaction as every change to the participant;
#: the queries use it only to pick the participants to re-plan, never as the answer itself.
planned_visits = sa.Table(
    "planned_visits",
    metadata,
    sa.Column("participant", sa.String(32), sa.ForeignKey("participants.code"), primary_key=True),
    sa.Column("code", sa.String(40), primary_key=True),
    sa.Column("base_code", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("target", sa.Date, nullable=False),
    sa.Column("earliest", sa.Date, nullable=False),
    sa.Column("latest", sa.Date, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("tentative", sa.Boolean, nullable=False),
    sa.Index("planned_open_by_latest", "status", "latest"),
    sa.Index("planned_open_by_target", "status", "target"),
)

#: The cached findings that do not depend on ``today`` (out-of-window, dose gap, missed,
#: held), and ``unplannable`` for a participant the engine refuses under the current protocol.
planned_findings = sa.Table(
    "planned_findings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("participant", sa.String(32), sa.ForeignKey("participants.code"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("visit", sa.String(40), nullable=False),
    sa.Index("planned_findings_by_kind", "kind", "participant"),
    sa.Index("planned_findings_by_participant", "participant"),
)

#: Statements that make the audit table append-only, per SQL dialect.
APPEND_ONLY: dict[str, tuple[str, ...]] = {
    "sqlite": (
        """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
           BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END""",
        """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
           BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END""",
    ),
    # Exercised by tests/test_store_postgres.py against the server scripts/pg-server starts.
    "postgresql": (
        """CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'audit is append-only'; END $$""",
        """CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
           FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()""",
        """CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
           FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()""",
    ),
}


def _v1_initial(conn: sa.Connection) -> None:
    """Version 1: every table, and the append-only audit triggers."""
    for table in (
        settings,
        participants,
        records,
        unscheduled,
        bcell_counts,
        events,
        appointments,
        calendar_state,
        audit,
    ):
        table.create(conn)
    for statement in APPEND_ONLY.get(conn.dialect.name, ()):
        conn.exec_driver_sql(statement)


def _v2_plan_cache(conn: sa.Connection) -> None:
    """Version 2: the plan cache (filled by the roster when it opens: no protocol here)."""
    planned_visits.create(conn)
    planned_findings.create(conn)


#: Lift and restore the append-only triggers, for a migration that must rewrite audit rows.
_LIFT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sqlite": (
        ("DROP TRIGGER audit_no_update", "DROP TRIGGER audit_no_delete"),
        APPEND_ONLY["sqlite"],
    ),
    "postgresql": (
        ("ALTER TABLE audit DISABLE TRIGGER audit_no_change",),
        ("ALTER TABLE audit ENABLE TRIGGER audit_no_change",),
    ),
}


def _v3_audit_chain(conn: sa.Connection) -> None:
    """Version 3: the audit trail names its user, keeps replayable row changes and is
    hash-chained. Entries written before are hashed in order, and each participant gets a
    ``baseline`` entry holding the facts as stored at the upgrade, which a replay starts from
    (the older entries carry no row changes)."""
    from visitplan.store import journal

    have = {c["name"] for c in sa.inspect(conn).get_columns("audit")}
    for column in ("username", "data", "prev", "hash"):
        if column not in have:
            kind = "VARCHAR(64)" if column != "data" else "TEXT"
            conn.exec_driver_sql(f"ALTER TABLE audit ADD COLUMN {column} {kind}")
    lift, restore = _LIFT.get(conn.dialect.name, ((), ()))
    for statement in lift:
        conn.exec_driver_sql(statement)
    hashed = journal.chain_legacy(conn)
    for statement in restore:
        conn.exec_driver_sql(statement)
    if not hashed:
        return
    book = journal.Journal(
        conn, user="visitplan", reason="upgrade to schema version 3 (hash-chained audit)"
    )
    codes = conn.execute(sa.select(participants.c.code).order_by(participants.c.code)).scalars()
    for code in [*codes, None]:
        ops = journal.snapshot_ops(conn, code)
        if code is None and not ops:
            continue
        # The rows exist already: the entry records them for replays, it does not write them.
        book.entry(code, "baseline", "facts", None, f"{len(ops)} rows as stored", ops, write=False)
    book.flush()


def _v4_feeds(conn: sa.Connection) -> None:
    """Version 4: calendar feeds and their use, and the participant of each calendar state
    row (read back from its UID, whose pieces are escaped so that it reads back exactly)."""
    from visitplan.export.ics import uid_participant

    have = {c["name"] for c in sa.inspect(conn).get_columns("calendar_state")}
    if "participant" not in have:
        conn.exec_driver_sql("ALTER TABLE calendar_state ADD COLUMN participant VARCHAR(32)")
    index = next(i for i in calendar_state.indexes if i.name == "calendar_state_by_participant")
    index.create(conn, checkfirst=True)
    c = calendar_state
    found = conn.execute(sa.select(c.c.uid).where(c.c.participant.is_(None))).scalars().all()
    owners = [{"u": u, "p": uid_participant(str(u))} for u in found]
    owners = [o for o in owners if o["p"] is not None]
    if owners:
        set_owner = c.update().where(c.c.uid == sa.bindparam("u"))
        conn.execute(set_owner.values(participant=sa.bindparam("p")), owners)
    feeds.create(conn, checkfirst=True)
    feed_usage.create(conn, checkfirst=True)


#: The ordered migration steps; step ``i`` brings the schema from version ``i`` to ``i + 1``.
def _v5_users(conn: sa.Connection) -> None:
    """Version 5: the workspace's user accounts."""
    users.create(conn, checkfirst=True)


MIGRATIONS: tuple[Callable[[sa.Connection], None], ...] = (
    _v1_initial,
    _v2_plan_cache,
    _v3_audit_chain,
    _v4_feeds,
    _v5_users,
)

#: ``PRAGMA application_id`` of a visitplan roster ("vpln"): marks the file as ours, so a
#: command never changes another application's SQLite database.
APPLICATION_ID = 0x76706C6E

#: The schema version this code writes and reads.
VERSION = len(MIGRATIONS)


def current_version(conn: sa.Connection) -> int:
    """The schema version of the database (0 for an empty one)."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    found = conn.execute(sa.select(schema_version.c.version)).scalar_one_or_none()
    # SQLite keeps whatever was written in the column: a version that is not a whole number
    # is a damaged roster, never read as the nearest one (2.5 would run migrations again).
    if found is not None and (isinstance(found, bool) or not isinstance(found, int)):
        raise VisitplanError(
            "roster database schema version",
            found,
            _("is not a whole number: the roster is damaged; restore it from a backup"),
        )
    return int(found or 0)


def migrate(conn: sa.Connection, where: str) -> int:
    """Bring the schema up to :data:`VERSION` inside the caller's (write) transaction.

    Returns the version found before. Refuses a database written by a newer visitplan.
    """
    found = current_version(conn)
    if found > VERSION:
        raise VisitplanError(
            "roster database",
            where,
            _(
                "has schema version {found}; this visitplan knows up to {VERSION}: upgrade it"
            ).format(found=found, VERSION=VERSION),
        )
    if found == VERSION:
        return found
    if not sa.inspect(conn).has_table("schema_version"):
        schema_version.create(conn)
        conn.execute(schema_version.insert().values(id=1, version=0))
    for step in MIGRATIONS[found:]:
        step(conn)
    conn.execute(schema_version.update().values(version=VERSION))
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.exec_driver_sql(f"PRAGMA user_version = {VERSION}")
    return found
