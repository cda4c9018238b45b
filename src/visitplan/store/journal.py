"""The audit trail: every change to a fact, who made it and why, hash-chained and replayable.

Every write to a fact table (participants, records, unscheduled visits, B-cell counts,
events, appointments) and to the calendar feeds goes through a :class:`Journal`, which writes
the row and an audit entry in the same transaction. An entry carries

- what a person reads: action, field, old and new value, reason, the user, the UTC time;
- what a machine replays: ``data``, the row changes it made (``[{"t": table, "k": key,
  "v": values or null}]``, null for a deleted row);
- ``prev`` and ``hash``: ``hash`` is SHA-256 over the entry's content and ``prev``, the hash
  of the entry before it, so changing, deleting or inserting an entry anywhere breaks the chain.

:func:`verify` walks the chain and replays the row changes from an empty roster: the result
must be exactly what the fact tables hold, so a fact updated by hand (or an entry forged
without its row) is found too. What a chain cannot show alone is the loss of its own last
entries together with their facts: compare the head hash with one kept elsewhere
(``audit verify --expect HEAD``; docs/roster.md).
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pendulum
import sqlalchemy as sa

from visitplan.errors import VisitplanError
from visitplan.i18n import _
from visitplan.store import schema
from visitplan.store.values import AuditEntry, Verification

#: The ``prev`` of the first entry.
GENESIS = "0" * 64

#: Each audited table: its natural key columns, then its value columns.
AUDITED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "participants": (
        ("code",),
        (
            "site",
            "screening",
            "flags",
            "discontinued",
            "withdrawn",
            "baseline_bcell",
            "baseline_unit",
            "enrolled_at",
        ),
    ),
    "records": (("participant", "visit"), ("status", "date", "time", "reason")),
    "unscheduled": (("participant", "number"), ("date", "time", "reason")),
    "bcell_counts": (("participant", "date"), ("value", "unit")),
    "events": (("participant", "name"), ("date",)),
    "appointments": (("participant", "visit"), ("date", "time")),
    # Schema 4: creating and revoking a feed (its last use is not audited: feed_usage).
    "feeds": (
        ("label",),
        ("participant", "created_at", "created_by", "revoked_at", "token_hash"),
    ),
    # Schema 5: user accounts (a password changed by hand is found like any other fact).
    "users": (("name",), ("role", "password", "created_at", "created_by", "disabled_at")),
}

_USER = re.compile(r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]{1,64}\Z")


def check_user(name: object) -> str:
    """A user name as the audit trail keeps it: 1-64 characters, no control characters."""
    if not isinstance(name, str) or not name.strip() or not _USER.match(name):
        raise VisitplanError("user", name, _("must be a user name of 1-64 printable characters"))
    return name.strip()


def default_user() -> str:
    """Who is making a change when no ``--user`` is given: ``$VISITPLAN_USER``, else the
    operating system's login name."""
    name = os.environ.get("VISITPLAN_USER")
    if name is not None:
        return check_user(name)
    try:
        return check_user(getpass.getuser())
    except (OSError, KeyError, VisitplanError):
        raise VisitplanError(
            "user", None, _("cannot tell who you are: give --user NAME or set VISITPLAN_USER")
        ) from None


def now() -> str:
    """The current UTC time as the audit trail writes it."""
    return pendulum.now("UTC").format("YYYY-MM-DDTHH:mm:ss.SSSSSS") + "Z"


def plain(value: object) -> object:
    """A column value as JSON keeps it (dates as ISO strings)."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class Op:
    """One row change: set ``values`` at ``key`` of ``table`` (insert or update), or delete
    the row when ``values`` is None. ``new`` says the row does not exist yet (an insert)."""

    __slots__ = ("key", "new", "table", "values")

    def __init__(
        self,
        table: str,
        key: Mapping[str, Any],
        values: Mapping[str, Any] | None,
        *,
        new: bool = False,
    ) -> None:
        self.table = table
        self.key = dict(key)
        self.values = None if values is None else dict(values)
        self.new = new

    def data(self) -> dict[str, Any]:
        return {
            "t": self.table,
            "k": {k: plain(v) for k, v in self.key.items()},
            "v": None if self.values is None else {k: plain(v) for k, v in self.values.items()},
        }


def entry_hash(prev: str, row: Mapping[str, Any]) -> str:
    """SHA-256 of an entry's content and the hash of the entry before it."""
    content = [
        prev,
        row["id"],
        row["at"],
        row["username"],
        row["participant"],
        row["action"],
        row["field"],
        row["old"],
        row["new"],
        row["reason"],
        row["data"],
    ]
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _head(conn: sa.Connection) -> tuple[int, str]:
    a = schema.audit
    last = conn.execute(sa.select(a.c.id, a.c.hash).order_by(a.c.id.desc()).limit(1)).first()
    return (1, GENESIS) if last is None else (int(last.id) + 1, str(last.hash or GENESIS))


class Journal:
    """Writes fact rows and their audit entries, chained, inside the caller's transaction.

    One journal per write transaction: it reads the chain's head when made (the write lock is
    held, so nobody appends in between) and numbers its entries itself.
    """

    def __init__(
        self, conn: sa.Connection, *, user: str, reason: str | None, at: str | None = None
    ) -> None:
        self.conn = conn
        self.user = user
        self.reason = reason
        self.at = at or now()
        self._next, self._prev = _head(conn)
        self._pending: list[dict[str, Any]] = []

    def entry(
        self,
        participant: str | None,
        action: str,
        field: str,
        old: str | None,
        new: str | None,
        ops: Sequence[Op] = (),
        *,
        reason: str | None = None,
        write: bool = True,
    ) -> None:
        """Apply ``ops`` to the fact tables (unless ``write`` is false: rows that exist
        already, recorded for replays) and append their audit entry."""
        if write:
            apply(self.conn, ops)
        data = None
        if ops:
            data = json.dumps([o.data() for o in ops], ensure_ascii=False, sort_keys=True)
        row = {
            "id": self._next,
            "at": self.at,
            "username": self.user,
            "participant": participant,
            "action": action,
            "field": field,
            "old": old,
            "new": new,
            "reason": self.reason if reason is None else reason,
            "data": data,
        }
        row["prev"] = self._prev
        row["hash"] = self._prev = entry_hash(self._prev, row)
        self._next += 1
        self._pending.append(row)
        if len(self._pending) >= 5_000:
            self.flush()

    def flush(self) -> None:
        """Write the entries made so far (call before the transaction commits)."""
        if self._pending:
            append(self.conn, self._pending)
            self._pending = []


def append(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert audit rows (a seam the crash tests block in)."""
    conn.execute(schema.audit.insert(), rows)


def apply(conn: sa.Connection, ops: Iterable[Op]) -> None:
    """Write row changes to the fact tables; consecutive inserts of a table go in one batch."""
    batch: list[dict[str, Any]] = []
    table: sa.Table | None = None
    for op in ops:
        t = schema.metadata.tables[op.table]
        if op.new and op.values is not None:
            if table is not None and table is not t:
                conn.execute(table.insert(), batch)
                batch = []
            table = t
            batch.append({**op.key, **op.values})
            continue
        if batch and table is not None:
            conn.execute(table.insert(), batch)
            batch, table = [], None
        where = sa.and_(*(t.c[k] == v for k, v in op.key.items()))
        if op.values is None:
            conn.execute(t.delete().where(where))
        elif conn.execute(t.update().where(where).values(**op.values)).rowcount == 0:
            conn.execute(t.insert().values(**op.key, **op.values))
    if batch and table is not None:
        conn.execute(table.insert(), batch)


def entries(conn: sa.Connection, participant: str | None = None) -> list[AuditEntry]:
    """Audit entries, oldest first (of one participant, or all)."""
    a = schema.audit
    query = sa.select(
        a.c.id,
        a.c.at,
        a.c.participant,
        a.c.action,
        a.c.field,
        a.c.old,
        a.c.new,
        a.c.reason,
        a.c.username,
    ).order_by(a.c.id)
    if participant is not None:
        query = query.where(a.c.participant == participant)
    return [
        AuditEntry(r.id, r.at, r.participant, r.action, r.field, r.old, r.new, r.reason, r.username)
        for r in conn.execute(query)
    ]


def snapshot_ops(conn: sa.Connection, participant: str | None = None) -> list[Op]:
    """Ops that insert every stored fact row of one participant, or with None every row that
    belongs to no participant (a site feed, a user account), for a baseline."""
    ops = []
    present = set(sa.inspect(conn).get_table_names())
    for name, (key, cols) in AUDITED.items():
        if name not in present:  # a table of a later schema step than the one migrating
            continue
        t = schema.metadata.tables[name]
        owner_name = "code" if name == "participants" else "participant"
        owner = t.c.get(owner_name)
        query = sa.select(*(t.c[c] for c in key + cols)).order_by(*(t.c[c] for c in key))
        if participant is not None:
            if owner is None:
                continue
            query = query.where(owner == participant)
        elif owner is not None:
            query = query.where(owner.is_(None))
        for row in conn.execute(query):
            values = row._asdict()
            ops.append(
                Op(name, {k: values[k] for k in key}, {c: values[c] for c in cols}, new=True)
            )
    return ops


def _stored(conn: sa.Connection) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for name, (key, cols) in AUDITED.items():
        t = schema.metadata.tables[name]
        for row in conn.execute(sa.select(*(t.c[c] for c in key + cols))):
            values = {k: plain(v) for k, v in row._asdict().items()}
            found[(name, _key_text(values, key))] = {c: values[c] for c in cols}
    return found


def _key_text(values: Mapping[str, Any], key: tuple[str, ...]) -> str:
    return "/".join(str(values[k]) for k in key)


def _show(values: Mapping[str, Any] | None) -> str:
    if values is None:
        return "nothing"
    return " ".join(f"{k}={'' if v is None else v}" for k, v in values.items())


def verify(conn: sa.Connection, expect: str | None = None) -> Verification:
    """Walk the chain and replay it; the first problem found, or an intact trail.

    ``expect`` is a head hash (or a prefix of one, at least 8 characters) kept elsewhere: the
    trail must still contain that entry, so losing entries at its end is found too.
    """
    a = schema.audit
    prev, count, last, problem = GENESIS, 0, 0, None
    replayed: dict[tuple[str, str], dict[str, Any]] = {}
    seen_expected = expect is None
    for row in conn.execute(sa.select(a).order_by(a.c.id)).mappings():
        count += 1
        ident = int(row["id"])
        if row["prev"] != prev:
            after = f" (#{last})" if last else ""
            problem = (
                f"audit entry #{ident} does not follow the entry before it{after}: an entry "
                "was deleted, inserted or rewritten outside visitplan"
            )
            break
        if entry_hash(prev, dict(row)) != row["hash"]:
            problem = (
                f"audit entry #{ident} was changed outside visitplan (its hash does not match)"
            )
            break
        for op in json.loads(row["data"]) if row["data"] else ():
            key = schema.metadata.tables[op["t"]]
            names = AUDITED[key.name][0]
            where = (op["t"], _key_text(op["k"], names))
            if op["v"] is None:
                replayed.pop(where, None)
            else:
                # An update names only the columns it changes.
                replayed[where] = {**replayed.get(where, {}), **op["v"]}
        prev, last = str(row["hash"]), ident
        if not seen_expected and expect is not None and prev.startswith(expect):
            seen_expected = True
    if problem is None and not seen_expected:
        problem = (
            f"the trail does not contain the expected head {expect}: entries at its end were "
            "removed, or the trail was rebuilt"
        )
    if problem is None:
        problem = _compare(_stored(conn), replayed)
    return Verification(count, prev, problem)


def _compare(
    stored: dict[tuple[str, str], dict[str, Any]], replayed: dict[tuple[str, str], dict[str, Any]]
) -> str | None:
    for where in sorted(stored.keys() | replayed.keys()):
        have, want = stored.get(where), replayed.get(where)
        if have == want:
            continue
        table, key = where
        columns = AUDITED[table][1]
        have = None if have is None else {c: have.get(c) for c in columns}
        want = None if want is None else {c: want.get(c) for c in columns}
        if want is None:
            return f"{table} {key}: stored ({_show(have)}) but not in the audit trail"
        if have is None:
            return f"{table} {key}: in the audit trail ({_show(want)}) but not stored"
        diff = [c for c in {**have, **want} if have.get(c) != want.get(c)]
        return (
            f"{table} {key}: stored {_show({c: have.get(c) for c in diff})} "
            f"but the audit trail gives {_show({c: want.get(c) for c in diff})}"
        )
    return None


def chain_legacy(conn: sa.Connection) -> int:
    """Hash the entries written before the chain existed (schema 3's migration), in order.

    Returns how many it hashed. The caller lifts the append-only triggers around it.
    """
    a = schema.audit
    prev, done = GENESIS, 0
    rows = conn.execute(sa.select(a).order_by(a.c.id)).mappings().all()
    for row in rows:
        if row["hash"] is not None:
            prev = str(row["hash"])
            continue
        values = dict(row)
        h = entry_hash(prev, values)
        conn.execute(a.update().where(a.c.id == row["id"]).values(prev=prev, hash=h))
        prev, done = h, done + 1
    return done
