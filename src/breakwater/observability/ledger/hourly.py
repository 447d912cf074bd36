"""The dashboard's sums read from the hourly rollup (``rollup.py``): whole hours from the rollup
table, the window's partial first and last hours from their rows, rolled up the same way.

``gathered`` gives a ``Rollup`` of the window, or ``None`` when the rollup does not pay (fewer
than ``MIN_HOURS`` whole hours in the window at or after the hour the rollup covers from, as
stored beside it): the callers then read the rows.
"""

from __future__ import annotations

import math
import sqlite3
from typing import TYPE_CHECKING

import asyncpg  # type: ignore[import-untyped]

from breakwater.observability.ledger import rollup
from breakwater.observability.ledger.reading import dialect_of, fetch

if TYPE_CHECKING:
    from breakwater.observability.ledger.postgres import PostgresLedger
    from breakwater.observability.ledger.sqlite import SqliteLedger

#: the fewest whole hours a window must hold for its sums to be read from the rollup
MIN_HOURS = 6


async def covered_from(store: SqliteLedger | PostgresLedger) -> float | None:
    """The first hour the store's rollup covers, as stored (``None``: no rollup table yet, a
    ledger this version has not opened)."""
    d = dialect_of(store)
    try:
        (rows,) = await fetch(store, (f"SELECT start FROM {d.table}_hourly_start", []))
    except (sqlite3.OperationalError, asyncpg.UndefinedTableError):
        return None
    return float(rows[0][0]) if rows else None


def whole_hours(start: float | None, since: float, until: float) -> tuple[float, float] | None:
    """The window's whole hours a rollup covering from ``start`` holds, ``[first, end)``, or
    ``None`` if too few."""
    if start is None:
        return None
    first = max(math.ceil(since / rollup.HOUR) * rollup.HOUR, start)
    end = math.floor(until / rollup.HOUR) * rollup.HOUR
    return (float(first), float(end)) if end - first >= MIN_HOURS * rollup.HOUR else None


async def gathered(
    store: SqliteLedger | PostgresLedger, since: float, until: float, dims: tuple[str, ...]
) -> rollup.Rollup | None:
    """The window's rollup for ``dims`` (keys ``(hour, dim, value)``; the partial hours' rows
    under their own hour), or ``None`` when the rows should be read instead."""
    hours = whole_hours(await covered_from(store), since, until)
    if hours is None:
        return None
    first, end = hours
    d = dialect_of(store)
    marks = ", ".join(f"?{i + 3}" for i in range(len(dims)))
    figures = ", ".join(rollup.FIGURES)
    table = f"{d.table}_hourly"
    summed = (
        f"SELECT hour, dim, value, {figures}, latency, ttft FROM {table} WHERE hour >= ?1 AND hour < ?2 AND dim IN ({marks})",
        [first, end, *dims],
    )
    edges = (
        f"SELECT {', '.join(rollup.COLUMNS)} FROM {d.table} WHERE (ts >= ?1 AND ts < ?2) OR (ts >= ?3 AND ts < ?4)",
        [since, first, end, until],
    )
    stored, rows = await fetch(store, summed, edges)
    out = rollup.Rollup.of(rows)
    for key in [k for k in out.sums if k[1] not in dims]:
        del out.sums[key]
        out.hists.pop(key, None)
    for hour, dim, value, *rest in stored:
        key = rollup.stored_key(hour, dim, value)
        figures_ = [int(f) for f in rest[: len(rollup.FIGURES)]]
        seen = out.sums.get(key)
        out.sums[key] = figures_ if seen is None else [a + b for a, b in zip(seen, figures_, strict=True)]
        if dim in rollup.HISTOGRAM_DIMS:
            lat, first_token = out.hists.setdefault(key, ({}, {}))
            for into, text in ((lat, rest[-2]), (first_token, rest[-1])):
                for b, n in rollup.hist_counts(text).items():
                    into[b] = into.get(b, 0) + n
    return out
