"""Sums per time bucket or group, and nearest-rank percentiles, fast on a month of SQLite rows.

A row's bucket is ``floor((ts - since) / step)`` in both stores. PostgreSQL groups by it (a
hash aggregate). SQLite would sort every row of the window to group them, so it sums each
bucket's ``ts`` range instead, one index range per bucket and no sort: the ranges' bounds are
the least doubles whose bucket number changes (``bounds``), so both stores put every row in the
same bucket. Grouping by a column (``grouped_sums``), SQLite groups time chunks of a few
thousand rows apart, and the chunks' sums are added up.

Percentiles are nearest-rank (the value at rank ``ceil(p / 100 * n)``): the values are read in
one scan and sorted in Python (``ranked``, ``nearest``). A window holding more than
``RANK_BUDGET`` rows is ranked over a 1-in-``m`` sample of them, ``m`` the smallest that brings
it under the budget (rows whose start time in whole microseconds is divisible by ``m``; the same
rows in both stores). Up to the budget the figure is exact; beyond it, it is the exact nearest
rank of the sample, a statistical estimate (docs/dashboard.md, "Query speed").
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import orjson

from breakwater.observability.ledger.reading import Dialect, fetch

if TYPE_CHECKING:
    from breakwater.observability.ledger.postgres import PostgresLedger
    from breakwater.observability.ledger.sqlite import SqliteLedger

MAX_CHUNKS = 2000
"""The most time ranges one SQLite query sums separately."""
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


#: rows per time chunk when SQLite groups a window (sorting chunks this small stays in cache)
CHUNK_ROWS = 5000


async def grouped_sums(
    store: SqliteLedger | PostgresLedger,
    d: Dialect,
    window: tuple[float, float],
    groups: list[str],
    sums: list[str],
    where: str = "",
    params: tuple[Any, ...] = (),
    *,
    buckets: tuple[float, int] | None = None,
) -> dict[tuple[Any, ...], list[Any]]:
    """Per distinct value of the ``groups`` expressions (and per time bucket, with ``buckets``):
    the row count, then the ``sums`` (each a ``SUM`` or ``COUNT``, so chunks add up) over the
    window's rows.

    PostgreSQL groups the window at once. SQLite sorts the rows it groups, about half a
    microsecond a row for a month of them; it groups each time chunk of about ``CHUNK_ROWS``
    rows instead (a third of the time: small sorts stay in the CPU's cache) and the chunks'
    sums are added here, exactly (integers; money in units of 1e-10 USD).

    Args:
        window: ``(since, until)``, placeholders ``?1`` and ``?2``.
        where: more conditions (`` AND ...``), their placeholders numbered from ``?3`` (``?4``
            with ``buckets``: ``?3`` is the step).
        params: the values of those placeholders (also those the ``groups`` use).
        buckets: ``(step, count)``: the key starts with the bucket number (as ``bucket_of``).
    """
    since, until = window
    base: list[Any] = [since, until, *([] if buckets is None else [float(buckets[0])]), *params]
    keys = ", ".join(f"{g} AS g{i}" for i, g in enumerate(groups))
    names = ", ".join(f"g{i}" for i in range(len(groups)))
    out: dict[tuple[Any, ...], list[Any]] = {}
    if d.postgres:
        bucket = "" if buckets is None else f"{bucket_of(d, buckets[1])} AS b, "
        by = names if buckets is None else f"b, {names}"
        figures = ", ".join(["COUNT(*)", *sums])
        sql = f"SELECT {bucket}{keys}, {figures} FROM {d.table} WHERE ts >= ?1 AND ts < ?2{where} GROUP BY {by}"
        (rows,) = await fetch(store, (sql, base))
        width = len(groups) + (buckets is not None)
        for r in rows:
            out[(int(r[0]), *r[1:width]) if buckets else tuple(r[:width])] = list(r[width:])
        return out
    chunks = await _chunks(store, d, since, until, buckets)
    first = len(base) + 1
    values = ", ".join(f"({b}, ?{first + 2 * i}, ?{first + 2 * i + 1})" for i, (b, _, _) in enumerate(chunks))
    columns = ", ".join([names, "n", *(f"s{i}" for i in range(len(sums)))])
    aliased = ", ".join([keys, "COUNT(*) AS n", *(f"{s} AS s{i}" for i, s in enumerate(sums))])
    chunk = f"SELECT {aliased} FROM {d.table} WHERE ts >= lo AND ts < hi{where} GROUP BY {names}"
    sql = f"""
        WITH c(b, lo, hi) AS (VALUES {values})
        SELECT b, (SELECT json_group_array(json_array({columns})) FROM ({chunk}) AS g) FROM c
    """
    (rows,) = await fetch(store, (sql, base + [t for _, lo, hi in chunks for t in (lo, hi)]))
    for b, packed in rows:
        for r in orjson.loads(packed):
            key = (b, *r[: len(groups)]) if buckets else tuple(r[: len(groups)])
            figures_, total = r[len(groups) :], out.get(key)
            out[key] = (
                figures_ if total is None else [(a or 0) + (f or 0) for a, f in zip(total, figures_, strict=True)]
            )
    return out


async def _chunks(
    store: SqliteLedger | PostgresLedger, d: Dialect, since: float, until: float, buckets: tuple[float, int] | None
) -> list[tuple[int, float, float]]:
    """The window cut into time chunks of about ``CHUNK_ROWS`` rows, each in one bucket: ``(bucket
    number, start, end)`` (every bucket number 0 without ``buckets``)."""
    (counted,) = await fetch(store, (f"SELECT COUNT(*) FROM {d.table} WHERE ts >= ?1 AND ts < ?2", [since, until]))
    rows = int(counted[0][0]) if counted else 0
    step, count = (until - since, 1) if buckets is None else buckets
    edges = bounds(since, until, step, count)
    # the same number of chunks in every bucket (rows per bucket are not known), at most MAX_CHUNKS
    pieces = max(1, min(MAX_CHUNKS // count, math.ceil(rows / CHUNK_ROWS / count)))
    out = []
    for i in range(count):
        lo, hi = edges[i], edges[i + 1]
        cuts = [lo] + [lo + (hi - lo) * k / pieces for k in range(1, pieces)] + [hi]
        out += [(i, cuts[k], cuts[k + 1]) for k in range(pieces) if cuts[k] < cuts[k + 1]]
    return out


async def ranked(
    store: SqliteLedger | PostgresLedger,
    d: Dialect,
    group: str,
    where: str,
    params: list[Any],
    columns: list[str],
    modulus: int,
) -> dict[Any, list[list[float]]]:
    """Per group: each of ``columns``' values (those set) over the rows ``where`` matches, in the
    1-in-``modulus`` sample, sorted, for ``nearest`` to pick from.

    At most about ``RANK_BUDGET`` rows are read (the modulus sees to it). They are sorted here
    rather than in SQL: SQLite's sorter and window functions take about 3 us a row, Python's sort
    of floats a tenth of that, and the rows come out of the covering index in one scan for
    every column at once.
    """
    sample = "" if modulus == 1 else f" AND {d.sampled(str(modulus))}"
    sql = f"SELECT {group}, {', '.join(columns)} FROM {d.table} WHERE {where}{sample}"
    (rows,) = await fetch(store, (sql, params))
    out: dict[Any, list[list[float]]] = {}
    for g, *values in rows:
        lists = out.get(g)
        if lists is None:
            lists = out[g] = [[] for _ in columns]
        for kept, value in zip(lists, values, strict=True):
            if value is not None:
                kept.append(value)
    for lists in out.values():
        for kept in lists:
            kept.sort()
    return out


def nearest(values: list[float], p: int) -> float | None:
    """The nearest-rank ``p``-th percentile of sorted ``values``: the one at rank ``ceil(p / 100 * n)``."""
    if not values:
        return None
    return float(values[-(-p * len(values) // 100) - 1])
