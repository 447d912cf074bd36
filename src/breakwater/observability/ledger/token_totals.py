"""The ledger's token counts summed for cost reports (``breakwater costs``, docs/costs.md).

``token_totals``: tokens and cost per (route, deployment, provider, upstream model, and the
value of one tag), the slices a what-if reprices. ``throughput``: tokens per time bucket, for
the sustained and peak token rates a self-hosting estimate sizes GPUs for. Each is one SQL
statement per dialect that sums inside the database (no rows brought into Python), summed as
``aggregate.py`` sums: cost exact in both stores.

Only requests an upstream answered count: rows served from the cache (their tokens are 0
already) and rows that never reached a deployment are left out.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from breakwater.observability.ledger.sqlite import SqliteLedger

if TYPE_CHECKING:
    from breakwater.observability.ledger.postgres import PostgresLedger

_TABLE = "breakwater_ledger"  # SqliteLedger's fixed table
_UPSTREAM = "deployment <> '' AND (cache IS NULL OR cache NOT IN ('hit', 'semantic-hit', 'stale'))"


@dataclass(frozen=True, slots=True)
class Slice:
    """The window's requests of one route, deployment and upstream model (and tag value)."""

    route: str
    deployment: str
    provider: str
    model: str
    #: the value of the tag the totals were split by (``None``: not split, or the row lacks it)
    tag: str | None
    requests: int
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    #: what the ledger recorded (rows without a cost count 0)
    cost_usd: Decimal
    #: requests recorded without a cost (an unpriced deployment)
    unpriced: int


@dataclass(frozen=True, slots=True)
class Throughput:
    """Tokens over a window, and in its busiest bucket."""

    input_tokens: int
    output_tokens: int
    #: the tokens (input + output) of the busiest bucket, and when it started (unix seconds)
    peak_tokens: int
    peak_at: float | None
    bucket_s: float


async def token_totals(
    store: SqliteLedger | PostgresLedger, *, since: float, until: float, tag_key: str | None = None
) -> list[Slice]:
    """The window's (``since <= ts < until``) token and cost sums per slice, costliest first.

    Raises:
        ValueError: a tag key SQLite cannot quote.
    """
    if isinstance(store, SqliteLedger):
        if tag_key is not None and ('"' in tag_key or "\\" in tag_key):
            raise ValueError("a tag key cannot hold a double quote or a backslash")
        tag = "NULL" if tag_key is None else "json_extract(tags, ?3)"
        params: list[Any] = [since, until] if tag_key is None else [since, until, f'$."{tag_key}"']
        sql = f"""
            SELECT route, deployment, provider, upstream_model, {tag} AS tag, COUNT(*), SUM(input_tokens),
                   SUM(cached_input_tokens), SUM(cache_write_tokens), SUM(output_tokens), SUM(reasoning_tokens),
                   COALESCE(SUM(CAST(ROUND(CAST(cost_usd AS REAL) * 1e10) AS INTEGER)), 0) AS cost,
                   SUM(cost_usd IS NULL)
            FROM {_TABLE} WHERE ts >= ?1 AND ts < ?2 AND {_UPSTREAM}
            GROUP BY 1, 2, 3, 4, 5 ORDER BY cost DESC, 1, 2, 4, 5
        """
        rows = await asyncio.to_thread(_sqlite_fetch, store, sql, params)
    else:
        tag = "NULL::text" if tag_key is None else "tags->>$3"
        params = [since, until] if tag_key is None else [since, until, tag_key]
        sql = f"""
            SELECT route, deployment, provider, upstream_model, {tag} AS tag, count(*), sum(input_tokens),
                   sum(cached_input_tokens), sum(cache_write_tokens), sum(output_tokens), sum(reasoning_tokens),
                   COALESCE(sum(cost_usd), 0) AS cost, count(*) FILTER (WHERE cost_usd IS NULL)
            FROM {store.table} WHERE ts >= $1 AND ts < $2 AND {_UPSTREAM}
            GROUP BY 1, 2, 3, 4, 5 ORDER BY cost DESC, 1, 2, 4, 5
        """
        # the store's own connection and lock, as aggregate.py reads it
        rows = [tuple(r) for r in await store._call("fetch", sql, *params)]
    return [_slice(r) for r in rows]


def _slice(r: tuple[Any, ...]) -> Slice:
    n, i, c, w, o, reasoning = (int(v or 0) for v in r[5:11])
    return Slice(r[0], r[1], r[2], r[3], r[4], n, i, c, w, o, reasoning, _money(r[11]), int(r[12] or 0))


async def throughput(
    store: SqliteLedger | PostgresLedger, *, since: float, until: float, bucket_s: float, routes: Sequence[str] = ()
) -> Throughput:
    """The window's tokens, and the busiest ``bucket_s``-second bucket's (buckets start at ``since``).

    Args:
        routes: only these routes' requests (all when empty).
    """
    if bucket_s <= 0:
        raise ValueError("the bucket must be longer than 0 seconds")
    if isinstance(store, SqliteLedger):
        marks = ", ".join(f"?{4 + i}" for i in range(len(routes)))
        scope = f" AND route IN ({marks})" if routes else ""
        bucket = "CAST((ts - ?1) / ?3 AS INTEGER)"
        sql = _throughput_sql(_TABLE, "?1", "?2", bucket, scope)
        rows = await asyncio.to_thread(_sqlite_fetch, store, sql, [since, until, bucket_s, *routes])
    else:
        scope = " AND route = ANY($4::text[])" if routes else ""
        bucket = "floor((ts - $1) / $3)::bigint"
        sql = _throughput_sql(store.table, "$1", "$2", bucket, scope)
        params: list[Any] = [since, until, float(bucket_s), *([list(routes)] if routes else [])]
        rows = [tuple(r) for r in await store._call("fetch", sql, *params)]
    row = rows[0] if rows else None
    if row is None or row[0] is None:
        return Throughput(0, 0, 0, None, bucket_s)
    peak_at = None if row[3] is None else since + int(row[3]) * bucket_s
    return Throughput(int(row[0]), int(row[1]), int(row[2] or 0), peak_at, bucket_s)


def _throughput_sql(table: str, since: str, until: str, bucket: str, scope: str) -> str:
    return f"""
        WITH buckets AS (
            SELECT {bucket} AS b, SUM(input_tokens) AS i, SUM(output_tokens) AS o
            FROM {table} WHERE ts >= {since} AND ts < {until} AND {_UPSTREAM}{scope} GROUP BY 1
        )
        SELECT SUM(i), SUM(o), MAX(i + o), (SELECT b FROM buckets ORDER BY i + o DESC, b LIMIT 1) FROM buckets
    """


def _sqlite_fetch(store: SqliteLedger, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """``sql``'s rows over a read-only connection of its own (``[]`` before the ledger has a table)."""
    try:
        conn = sqlite3.connect(f"{store.path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        if not store.path.exists():
            return []
        raise
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_TABLE,)).fetchone() is None:
            return []
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _money(value: Any) -> Decimal:
    """SQLite sums integer units of 1e-10 USD; PostgreSQL a Decimal already."""
    return Decimal(value).scaleb(-10) if isinstance(value, int) else Decimal(value)
