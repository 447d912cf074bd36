"""The ledger's busiest moment: the most requests in one time bucket of a window, as a rate.

``breakwater loadtest --from-ledger`` drives a gateway at a multiple of it ("load test at 2-3x
peak"). One grouped query per dialect, inside the database like ``aggregate.py``: rows are put
in buckets of ``bucket_s`` seconds (``floor(ts / bucket_s)``) and the fullest bucket is kept.
A bucket of a minute smooths single-second bursts that a gateway's queues absorb anyway.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from breakwater.observability.ledger.sqlite import SqliteLedger

if TYPE_CHECKING:
    from breakwater.observability.ledger.postgres import PostgresLedger

_TABLE = "breakwater_ledger"  # SqliteLedger's fixed table


@dataclass(frozen=True, slots=True)
class Peak:
    """The fullest bucket: its start (unix seconds), its requests, and their rate per second."""

    start: float
    requests: int
    bucket_s: float

    @property
    def rate(self) -> float:
        return self.requests / self.bucket_s


async def peak(
    store: SqliteLedger | PostgresLedger,
    *,
    since: float,
    until: float,
    bucket_s: float = 60.0,
    route: str | None = None,
) -> Peak | None:
    """The fullest ``bucket_s`` bucket of rows with ``since <= ts < until`` (of ``route`` alone when
    given); ``None`` when the window has no rows.

    Raises:
        ValueError: ``bucket_s`` not positive.
    """
    if bucket_s <= 0:
        raise ValueError("the bucket must be positive")
    if isinstance(store, SqliteLedger):
        row = await asyncio.to_thread(_sqlite, store, since, until, bucket_s, route)
    else:
        sql = f"""
            SELECT floor(ts / $3) AS b, count(*) AS n FROM {store.table}
            WHERE ts >= $1 AND ts < $2 AND ($4::text IS NULL OR route = $4)
            GROUP BY b ORDER BY n DESC, b LIMIT 1
        """
        records = await store._call("fetch", sql, since, until, bucket_s, route)
        row = tuple(records[0]) if records else None
    if row is None:
        return None
    return Peak(start=float(row[0]) * bucket_s, requests=int(row[1]), bucket_s=bucket_s)


def _sqlite(
    store: SqliteLedger, since: float, until: float, bucket_s: float, route: str | None
) -> tuple[Any, ...] | None:
    # CAST truncates towards zero: the same as floor for the (positive) unix times of the ledger
    sql = f"""
        SELECT CAST(ts / ?3 AS INTEGER) AS b, COUNT(*) AS n FROM {_TABLE}
        WHERE ts >= ?1 AND ts < ?2 AND (?4 IS NULL OR route = ?4)
        GROUP BY b ORDER BY n DESC, b LIMIT 1
    """
    try:
        conn = sqlite3.connect(f"{store.path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        if not store.path.exists():
            return None
        raise
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (_TABLE,)).fetchone():
            return None
        row: tuple[Any, ...] | None = conn.execute(sql, (since, until, bucket_s, route)).fetchone()
        return row
    finally:
        conn.close()
