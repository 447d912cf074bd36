"""Virtual keys and their audit trail in SQLite (the embedded default).

Two tables: ``breakwater_keys`` (one row per key: its hash, never the key) and
``breakwater_audit`` (one row per admin action: who, what, when, the record before and after, as
JSON). A change and its audit row are written in one transaction, so neither exists without the
other. Calls run on one worker thread, like the SQLite ledger, so the event loop never blocks on
the file. The PostgreSQL twin and the in-memory cache that keeps the request path free of
database reads come with the rest of issue 6.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from breakwater.core.keys import VirtualKey

T = TypeVar("T")

_FIELDS = tuple(f.name for f in dataclasses.fields(VirtualKey))
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS breakwater_keys ("
    " id TEXT PRIMARY KEY, prefix TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, user TEXT NOT NULL,"
    " team TEXT NOT NULL, routes TEXT NOT NULL, tags TEXT NOT NULL, created_at REAL NOT NULL,"
    " expires_at REAL, rotated_until REAL, revoked_at REAL, disabled INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS breakwater_audit ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,"
    " target TEXT NOT NULL, before TEXT, after TEXT)",
)


def _params(key: VirtualKey) -> tuple[Any, ...]:
    values = dataclasses.asdict(key)
    values["routes"] = orjson.dumps(list(key.routes)).decode()
    values["tags"] = orjson.dumps(key.tags).decode()
    values["disabled"] = int(key.disabled)
    return tuple(values[name] for name in _FIELDS)


def _key(row: tuple[Any, ...]) -> VirtualKey:
    values = dict(zip(_FIELDS, row, strict=True))
    values["routes"] = tuple(orjson.loads(values["routes"]))
    values["tags"] = orjson.loads(values["tags"])
    values["disabled"] = bool(values["disabled"])
    return VirtualKey(**values)


def _public(key: VirtualKey | None) -> str | None:
    """A key record for the audit trail: everything but the hash."""
    if key is None:
        return None
    values = dataclasses.asdict(key)
    del values["hash"]
    return orjson.dumps(values).decode()


@dataclasses.dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    ts: float
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class SqliteKeyStore:
    """Keys and audit entries in one SQLite file (WAL mode)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="breakwater-keystore")
        await self._run(self._db)

    async def close(self) -> None:
        if self._executor is None:
            return
        await self._run(self._close)
        self._executor.shutdown(wait=True)
        self._executor = None

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._executor is None:
            raise RuntimeError("SqliteKeyStore is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=5000")
            for statement in _SCHEMA:
                conn.execute(statement)
            self._conn = conn
        return self._conn

    async def keys(self) -> list[VirtualKey]:
        """Every key, oldest first (what the in-memory cache loads)."""
        return await self._run(self._keys)  # type: ignore[no-any-return]

    def _keys(self) -> list[VirtualKey]:
        cols = ", ".join(f'"{c}"' for c in _FIELDS)
        return [_key(r) for r in self._db().execute(f"SELECT {cols} FROM breakwater_keys ORDER BY created_at, id")]

    async def save(self, key: VirtualKey, *, actor: str, action: str, now: float) -> VirtualKey | None:
        """Insert or update ``key`` (by id) and audit the change in one transaction; return the record before.

        Raises:
            sqlite3.IntegrityError: another key already has this hash; nothing was written.
        """
        return await self._run(self._save, key, actor, action, now)  # type: ignore[no-any-return]

    def _save(self, key: VirtualKey, actor: str, action: str, now: float) -> VirtualKey | None:
        db = self._db()
        cols = ", ".join(f'"{c}"' for c in _FIELDS)
        db.execute("BEGIN IMMEDIATE")
        try:
            found = db.execute(f"SELECT {cols} FROM breakwater_keys WHERE id = ?", (key.id,)).fetchone()
            before = None if found is None else _key(found)
            marks = ", ".join("?" for _ in _FIELDS)
            # upsert by id only: a clash on the unique hash raises instead of replacing another key
            updates = ", ".join(f'"{c}" = excluded."{c}"' for c in _FIELDS if c != "id")
            db.execute(
                f"INSERT INTO breakwater_keys ({cols}) VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET {updates}",
                _params(key),
            )
            db.execute(
                "INSERT INTO breakwater_audit (ts, actor, action, target, before, after) VALUES (?, ?, ?, ?, ?, ?)",
                (now, actor, action, key.id, _public(before), _public(key)),
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return before

    async def audit(self, *, limit: int = 100) -> list[AuditEntry]:
        """The latest audit entries, newest first."""
        return await self._run(self._audit, limit)  # type: ignore[no-any-return]

    def _audit(self, limit: int) -> list[AuditEntry]:
        rows = self._db().execute(
            "SELECT seq, ts, actor, action, target, before, after FROM breakwater_audit ORDER BY seq DESC LIMIT ?",
            (limit,),
        )
        return [
            AuditEntry(seq, ts, actor, action, target, _loads(before), _loads(after))
            for seq, ts, actor, action, target, before, after in rows
        ]


def _loads(text: str | None) -> dict[str, Any] | None:
    return None if text is None else orjson.loads(text)
