"""One read-only query on either ledger store, written once for both dialects.

The dashboard's queries (``dashboard.py``, ``explorer.py``) are written in SQLite's numbered
placeholders (``?1``); PostgreSQL gets the same text with ``$1``. The few expressions the two
dialects spell differently (money sums, a tag's value) are ``Dialect`` methods, so a query is one
template, not two copies.

SQLite is read through its own read-only connection on a worker thread, as the usage aggregate
reads it: in WAL mode a reader never blocks the ledger writer, and the writer's thread is never
held by a long query. PostgreSQL is read through the store's own connection and lock.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from breakwater.observability.ledger.sqlite import SqliteLedger

if TYPE_CHECKING:
    from breakwater.observability.ledger.postgres import PostgresLedger

SQLITE_TABLE = "breakwater_ledger"  # SqliteLedger's fixed table
MONEY_SCALE = Decimal("1E-10")
"""Both stores keep money to ten places (PostgreSQL's ``NUMERIC(20,10)``); sums are shown so."""

#: the read connection's page cache: a month of rows sorted in memory rather than in temp files
_CACHE_KIB = 64 * 1024
_PLACEHOLDER = re.compile(r"\?(\d+)")


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the two stores' SQL: the table's name and a few expressions."""

    table: str
    postgres: bool

    def money_sum(self, column: str) -> str:
        """The exact sum of a money column (0 when none): PostgreSQL sums its numeric; SQLite its
        decimal text as integer units of 1e-10 USD, exact for any cost below ~$400,000 a row."""
        if self.postgres:
            return f"COALESCE(SUM({column}), 0)"
        return f"COALESCE(SUM(CAST(ROUND(CAST({column} AS REAL) * 1e10) AS INTEGER)), 0)"

    def money_units(self, column: str) -> str:
        """A money column comparable with a number of 1e-10 USD units (``money_param``)."""
        return column if self.postgres else f"CAST(ROUND(CAST({column} AS REAL) * 1e10) AS INTEGER)"

    def money_param(self, value: Decimal) -> Any:
        """``value`` as the other side of a ``money_units`` comparison."""
        return value if self.postgres else int(value.scaleb(10).to_integral_value())

    def binary(self, column: str) -> str:
        """A text column ordered byte by byte (SQLite's default; PostgreSQL's ``"C"`` collation)."""
        return f'{column} COLLATE "C"' if self.postgres else column

    def least(self, a: str, b: str) -> str:
        return f"LEAST({a}, {b})" if self.postgres else f"MIN({a}, {b})"

    def sampled(self, modulus: str) -> str:
        """A row is in the 1-in-``modulus`` sample: its start time's whole microseconds divisible
        by it (the same rows in both stores; a request's start time is unrelated to how it went)."""
        if self.postgres:
            return f"floor(ts * 1000000)::bigint % {modulus} = 0"
        return f"CAST(ts * 1000000 AS INTEGER) % {modulus} = 0"

    def truth(self, column: str) -> str:
        """A boolean column as 1 or 0 (PostgreSQL's booleans are not integers)."""
        return f"(CASE WHEN {column} THEN 1 ELSE 0 END)"


def dialect_of(store: SqliteLedger | PostgresLedger) -> Dialect:
    if isinstance(store, SqliteLedger):
        return Dialect(SQLITE_TABLE, postgres=False)
    return Dialect(store.table, postgres=True)


def money(value: Any) -> Decimal:
    """A ``money_sum``: SQLite's integer units of 1e-10 USD, PostgreSQL's Decimal."""
    return Decimal(value).scaleb(-10) if isinstance(value, int) else Decimal(value)


def money_units(value: Any) -> int:
    """A ``money_sum`` as integer units of 1e-10 USD (exact: both stores keep ten places)."""
    if isinstance(value, int):
        return value  # units already (SQLite's sums, the hourly rollup's)
    return int(money(value).scaleb(10).to_integral_value())


def money_text(value: Any) -> str:
    """A ``money_sum`` as exact decimal text with ten places, the same from both stores."""
    return format(money(value).quantize(MONEY_SCALE), "f")


Query = tuple[str, list[Any]]
"""One query's text (``?N`` placeholders) and its parameters."""


async def fetch(store: SqliteLedger | PostgresLedger, *queries: Query) -> list[list[tuple[Any, ...]]]:
    """Each query's rows (none when the ledger holds no table yet); on SQLite all of them in one
    read transaction, so they see the same rows."""
    if isinstance(store, SqliteLedger):
        return await asyncio.to_thread(_sqlite_fetch, store, queries)
    results = []
    for sql, params in queries:
        # the store's own connection and lock (PostgresLedger has no public read-query method)
        records = await store._call("fetch", _PLACEHOLDER.sub(r"$\1", sql), *params)
        results.append([tuple(r) for r in records])
    return results


def _sqlite_fetch(store: SqliteLedger, queries: tuple[Query, ...]) -> list[list[tuple[Any, ...]]]:
    uri = f"{store.path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.OperationalError:
        if not store.path.exists():
            return [[] for _ in queries]  # nothing written yet
        raise
    try:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (SQLITE_TABLE,))
        if found.fetchone() is None:
            return [[] for _ in queries]
        conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        conn.execute("BEGIN")
        try:
            return [conn.execute(sql, params).fetchall() for sql, params in queries]
        finally:
            conn.execute("COMMIT")
    finally:
        conn.close()
