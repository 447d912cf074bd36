"""What each store call does, written once for both databases (sans-IO).

Each operation is a *plan*: a generator that yields the ``Query`` it needs next and is sent the
rows it returned, then returns the call's result. A store only runs plans: it opens the
transaction, executes each query on its own driver (``sqlite3`` on a worker thread, ``asyncpg``
on the event loop) and commits, or rolls back if the plan raised. So the rules of the port (a
change and its audit row together, the hash clash check, a no-op delete audits nothing) live in
one place and the two stores cannot drift apart.

Plans assume their transaction serialises writers (SQLite's ``BEGIN IMMEDIATE``, a table lock in
PostgreSQL): the clash check then sees every committed key, and audit numbers are committed in
order, so ``version`` never moves past a change a reader has not seen yet.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from breakwater.core.keys import AccessSnapshot, AuditEntry, SubjectLimits, SubjectScope, Team, VirtualKey
from breakwater.engine.access.store import KeyConflict
from breakwater.infra.keystore.records import (
    AUDIT_COLUMNS,
    KEY_COLUMNS,
    LIMITS_COLUMNS,
    TEAM_COLUMNS,
    Public,
    Row,
    audit_of,
    audit_values,
    key_of,
    key_values,
    limits_of,
    limits_values,
    team_of,
    team_values,
)
from breakwater.infra.keystore.schema import Dialect, Tables, quoted

T = TypeVar("T")
R = TypeVar("R", bound=Public)


@dataclass(frozen=True, slots=True)
class Query:
    sql: str
    params: tuple[Any, ...] = ()


Rows = Sequence[Row]
Plan = Generator[Query, Rows, T]


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """A plan's result."""

    value: T


def advance(plan: Plan[T], rows: Rows | None) -> Query | Done[T]:
    """Send the rows of the last query (``None`` to start) and get the next query, or the result."""
    try:
        return next(plan) if rows is None else plan.send(rows)
    except StopIteration as done:
        return Done(done.value)


@dataclass(frozen=True, slots=True)
class _Table:
    """The statements a record table needs, over ``columns`` with primary key ``key``."""

    select_all: str
    select_one: str
    upsert: str
    delete: str

    @classmethod
    def of(cls, table: str, columns: tuple[str, ...], key: tuple[str, ...], order: str, d: Dialect) -> _Table:
        where = " AND ".join(f'"{c}" = {d.mark(i)}' for i, c in enumerate(key, 1))
        marks = ", ".join(d.mark(i) for i in range(1, len(columns) + 1))
        # upsert by primary key only: a clash on another unique column raises instead of replacing
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in key)
        return cls(
            select_all=f"SELECT {quoted(columns)} FROM {table} ORDER BY {order}",
            select_one=f"SELECT {quoted(columns)} FROM {table} WHERE {where}",
            upsert=(
                f"INSERT INTO {table} ({quoted(columns)}) VALUES ({marks})"
                f" ON CONFLICT ({quoted(key)}) DO UPDATE SET {updates}"
            ),
            delete=f"DELETE FROM {table} WHERE {where}",
        )


class Operations:
    """The port's calls as plans over ``tables``, in ``dialect``'s SQL."""

    def __init__(self, tables: Tables, dialect: Dialect) -> None:
        m = dialect.mark
        self._keys = _Table.of(tables.keys, KEY_COLUMNS, ("id",), "created_at, id", dialect)
        self._teams = _Table.of(tables.teams, TEAM_COLUMNS, ("name",), "name", dialect)
        self._limits = _Table.of(tables.limits, LIMITS_COLUMNS, ("scope", "subject"), "scope, subject", dialect)
        # both columns, both ways: a rotated key's previous secret must not open another key either
        self._clash = (
            f"SELECT id FROM {tables.keys} WHERE id <> {m(1)}"
            f" AND (hash IN ({m(2)}, {m(3)}) OR previous_hash IN ({m(2)}, {m(3)})) LIMIT 1"
        )
        self._version = f"SELECT COALESCE(MAX(seq), 0) FROM {tables.audit}"
        inserted = AUDIT_COLUMNS[1:]
        marks = ", ".join(m(i) for i in range(1, len(inserted) + 1))
        self._audit_insert = f"INSERT INTO {tables.audit} ({quoted(inserted)}) VALUES ({marks})"
        select = f"SELECT {quoted(AUDIT_COLUMNS)} FROM {tables.audit}"
        self._audit_latest = f"{select} ORDER BY seq DESC LIMIT {m(1)}"
        self._audit_of_target = f"{select} WHERE target = {m(1)} ORDER BY seq DESC LIMIT {m(2)}"

    def version(self) -> Plan[int]:
        rows = yield Query(self._version)
        return int(rows[0][0])

    def snapshot(self) -> Plan[AccessSnapshot]:
        keys = yield Query(self._keys.select_all)
        teams = yield Query(self._teams.select_all)
        limits = yield Query(self._limits.select_all)
        version = yield from self.version()
        return AccessSnapshot(
            [key_of(r) for r in keys], [team_of(r) for r in teams], [limits_of(r) for r in limits], version
        )

    def audit(self, limit: int, target: str | None) -> Plan[list[AuditEntry]]:
        query = Query(self._audit_latest, (limit,)) if target is None else Query(self._audit_of_target, (target, limit))
        rows = yield query
        return [audit_of(r) for r in rows]

    def save_key(self, key: VirtualKey, actor: str, action: str, now: float) -> Plan[VirtualKey | None]:
        clash = yield Query(self._clash, (key.id, key.hash, key.previous_hash))
        if clash:
            raise KeyConflict(f"key {key.id!r} has a secret that key {clash[0][0]!r} uses already")
        change = _Change(f"key:{key.id}", actor, action, now)
        return (yield from self._save(self._keys, (key.id,), key, key_values(key), key_of, change))

    def save_team(self, team: Team, actor: str, action: str, now: float) -> Plan[Team | None]:
        change = _Change(f"team:{team.name}", actor, action, now)
        return (yield from self._save(self._teams, (team.name,), team, team_values(team), team_of, change))

    def delete_team(self, name: str, actor: str, now: float) -> Plan[Team | None]:
        change = _Change(f"team:{name}", actor, "team.delete", now)
        return (yield from self._delete(self._teams, (name,), team_of, change))

    def save_limits(self, entry: SubjectLimits, actor: str, action: str, now: float) -> Plan[SubjectLimits | None]:
        change = _Change(entry.target, actor, action, now)
        ident = (entry.scope, entry.subject)
        return (yield from self._save(self._limits, ident, entry, limits_values(entry), limits_of, change))

    def delete_limits(self, scope: SubjectScope, subject: str, actor: str, now: float) -> Plan[SubjectLimits | None]:
        change = _Change(SubjectLimits(scope, subject).target, actor, "limits.delete", now)
        return (yield from self._delete(self._limits, (scope, subject), limits_of, change))

    def _save(
        self,
        table: _Table,
        ident: tuple[Any, ...],
        record: R,
        values: tuple[Any, ...],
        of: Callable[[Row], R],
        change: _Change,
    ) -> Plan[R | None]:
        found = yield Query(table.select_one, ident)
        before = of(found[0]) if found else None
        yield Query(table.upsert, values)
        yield self._audited(change, before, record)
        return before

    def _delete(self, table: _Table, ident: tuple[Any, ...], of: Callable[[Row], R], change: _Change) -> Plan[R | None]:
        found = yield Query(table.select_one, ident)
        if not found:
            return None
        before = of(found[0])
        yield Query(table.delete, ident)
        yield self._audited(change, before, None)
        return before

    def _audited(self, change: _Change, before: Public | None, after: Public | None) -> Query:
        return Query(
            self._audit_insert, audit_values(change.now, change.actor, change.action, change.target, before, after)
        )


@dataclass(frozen=True, slots=True)
class _Change:
    """Who changed which record, how and when: what its audit row says besides before and after."""

    target: str
    actor: str
    action: str
    now: float
