"""Sums per time bucket and nearest-rank percentiles per group, fast on a month of SQLite rows.

A row's bucket is ``floor((ts - since) / step)`` in both stores. PostgreSQL groups by it (a
hash aggregate). SQLite would sort every row of the window to group them, so it sums each
bucket's ``ts`` range instead, one index range per bucket and no sort: the ranges' bounds are
the least doubles whose bucket number changes (``bounds``), so both stores put every row in the
same bucket.

Percentiles are nearest-rank (the value at rank ``ceil(p / 100 * n)``), ranked in SQL with one
sort per query. Sorting is the costly part (about half a microsecond a row in SQLite), so a
window holding more than ``RANK_BUDGET`` rows is ranked over a 1-in-``m`` sample of them, ``m``
the smallest that brings it under the budget (rows whose start time in whole microseconds is
divisible by ``m``; the same rows in both stores). Up to the budget the figure is exact; beyond
it, it is the exact nearest rank of the sample, a statistical estimate (docs/dashboard.md).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import orjson

from breakwater.observability.ledger.reading import Dialect, fetch

if TYPE_CHECKING:
    from breakwater.observability.ledger.postgres import PostgresLedger
    from breakwater.observability.ledger.sqlite import SqliteLedger

RANK_BUDGET = 100_000
"""The most rows one percentile query ranks; a window holding more is ranked over a sample."""


def sample_modulus(rows: int) -> int:
    """``m`` of the 1-in-``m`` sample that ranks at most about ``RANK_BUDGET`` of ``rows`` (1: all)."""
    return max(1, math.ceil(rows / RANK_BUDGET))


def bounds(since: float, until: float, step: float, buckets: int) -> list[float]:
    """``buckets + 1`` instants: bucket ``i`` holds ``bounds[i] <= ts < bounds[i + 1]``, exactly
    the rows whose ``floor((ts - since) / step)`` is ``i`` (the last bucket also what rounding
    puts past it, up to ``until``)."""
    out = [since]
    for i in range(1, buckets):
        x = since + i * step
        # (ts - since) / step only grows with ts in floating point, so the change is one place
        while math.floor((x - since) / step) >= i:
            x = math.nextafter(x, -math.inf)
        while math.floor((x - since) / step) < i:
            x = math.nextafter(x, math.inf)
        out.append(x)
    out.append(until)
    return out


def bucket_of(d: Dialect, buckets: int) -> str:
    """A row's bucket number (``?1`` since, ``?3`` the step), the last one also holding what a
    rounding error puts past it."""
    return d.least("floor((ts - ?1) / ?3)", str(buckets - 1))


async def bucket_sums(
    store: SqliteLedger | PostgresLedger,
    d: Dialect,
    window: tuple[float, float, float, int],
    sums: list[str],
    where: str = "",
    params: tuple[Any, ...] = (),
) -> dict[int, list[Any]]:
    """Per bucket number holding rows: its row count, then the ``sums`` (aggregate expressions)
    over its rows.

    Args:
        window: ``(since, until, step, buckets)``.
        where: more conditions (`` AND ...``), their placeholders numbered from ``?4``.
        params: the values of those placeholders.
    """
    since, until, step, buckets = window
    base: list[Any] = [since, until, float(step), *params]
    if d.postgres:
        sql = f"""
            SELECT {bucket_of(d, buckets)} AS b, COUNT(*), {", ".join(sums)} FROM {d.table}
            WHERE ts >= ?1 AND ts < ?2{where} GROUP BY b
        """
        (rows,) = await fetch(store, (sql, base))
        return {int(r[0]): list(r[1:]) for r in rows}
    edges = bounds(since, until, step, buckets)
    first = len(base) + 1
    values = ", ".join(f"({i}, ?{first + i}, ?{first + i + 1})" for i in range(buckets))
    sql = f"""
        WITH b(i, lo, hi) AS (VALUES {values})
        SELECT i, (SELECT json_array(COUNT(*), {", ".join(sums)}) FROM {d.table}
                   WHERE ts >= lo AND ts < hi{where}) FROM b
    """
    (rows,) = await fetch(store, (sql, base + edges))
    out = {}
    for i, packed in rows:
        figures = orjson.loads(packed)
        if figures[0]:
            out[int(i)] = figures
    return out


def nearest(d: Dialect, group: str, where: str, value: str, ranks: list[int], modulus: int) -> str:
    """Per group: the nearest-rank percentiles ``ranks`` of ``value`` over the rows ``where``
    matches and that set it, one column each, ranked over the 1-in-``modulus`` sample. One sort
    of each group's values serves the rank and the count."""
    picks = ", ".join(f"MAX(CASE WHEN rn = ({p} * k + 99) / 100 THEN v END)" for p in ranks)
    wanted = ", ".join(f"({p} * k + 99) / 100" for p in ranks)
    sample = "" if modulus == 1 else f" AND {d.sampled(str(modulus))}"
    return f"""
        SELECT g, {picks} FROM (
            SELECT g, v, ROW_NUMBER() OVER byv AS rn,
                   COUNT(*) OVER (byv ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS k
            FROM (SELECT {group} AS g, {value} AS v FROM {d.table}
                  WHERE {where} AND {value} IS NOT NULL{sample}) AS w
            WINDOW byv AS (PARTITION BY g ORDER BY v)
        ) AS r WHERE rn IN ({wanted}) GROUP BY g
    """
