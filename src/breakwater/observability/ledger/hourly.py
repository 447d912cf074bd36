"""The dashboard's sums read from the hourly rollup (``rollup.py``): whole hours from the rollup
table, the window's partial first and last hours from their rows, rolled up the same way.

``gathered`` gives a ``Rollup`` of the window, or ``None`` when the rollup does not pay (fewer
than ``MIN_HOURS`` whole hours in the window at or after the hour the rollup covers from, as
stored beside it): the callers then read the rows.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import asyncpg  # type: ignore[import-untyped]
import orjson

from breakwater.observability.ledger import rollup
from breakwater.observability.ledger.reading import dialect_of, fetch, money_text

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
        (rows,) = await fetch(store, (f"SELECT start FROM {d.table}_hourly_from", []))
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


#: the longest time one SQLite grouping of rollup rows spans
CHUNK_S = 86400


def _chunks(since: float, first: float, end: float, step: float | None) -> list[tuple[float, float, float]]:
    """``[first, end)`` cut at bucket bounds and at most every ``CHUNK_S``: ``(t, lo, hi)``, ``t``
    the start of the chunk's bucket (``since`` without ``step``)."""
    out = []
    lo = first
    while lo < end:
        t = since if step is None else since + (lo - since) // step * step
        bucket_end = end if step is None else min(end, t + step)
        hi = min(bucket_end, lo + CHUNK_S)
        out.append((t, lo, hi))
        lo = hi
    return out


def _summed(
    postgres: bool,
    table: str,
    dims: tuple[str, ...],
    figures: tuple[str, ...],
    chunks: list[tuple[float, float, float]],
) -> tuple[str, list[Any]]:
    """The query summing the rollup rows per chunk's bucket, dim and value (``_unpacked`` reads it)."""
    if not chunks:
        return ("SELECT 1 WHERE 1 = 0", [])
    sums = [f"SUM({f})" if f in figures else "0" for f in rollup.FIGURES]
    marks = ", ".join(f"?{i + 1}" for i in range(len(dims)))
    n, cast = len(dims) + 1, "::float8" if postgres else ""
    values = ", ".join(
        f"(?{n + 3 * i}{cast}, ?{n + 3 * i + 1}{cast}, ?{n + 3 * i + 2}{cast})" for i in range(len(chunks))
    )
    params: list[Any] = [*dims, *(x for chunk in chunks for x in chunk)]
    if postgres:
        sql = f"""
            WITH c(t, lo, hi) AS (VALUES {values})
            SELECT c.t, dim, value, {", ".join(sums)} FROM c JOIN {table} ON hour >= c.lo AND hour < c.hi
            WHERE dim IN ({marks}) GROUP BY c.t, dim, value
        """
        return (sql, params)
    aliased = ", ".join(f"{s} AS s{i}" for i, s in enumerate(sums))
    names = ", ".join(f"s{i}" for i in range(len(sums)))
    sql = f"""
        WITH c(t, lo, hi) AS (VALUES {values})
        SELECT t, (SELECT json_group_array(json_array(dim, value, {names})) FROM (
            SELECT dim, value, {aliased} FROM {table}
            WHERE dim IN ({marks}) AND hour >= lo AND hour < hi GROUP BY dim, value)) FROM c
    """
    return (sql, params)


def _unpacked(stored: list[tuple[Any, ...]], postgres: bool) -> list[list[Any]]:
    """``_summed``'s rows as ``[t, dim, value, *figures]``."""
    if postgres:
        return [[float(t), dim, value, *(int(f) for f in figures)] for t, dim, value, *figures in stored]
    out = []
    for t, packed in stored:
        if packed is None:
            continue
        for r in orjson.loads(packed):
            out.append([float(t), *r])
    return out


async def gathered(
    store: SqliteLedger | PostgresLedger,
    since: float,
    until: float,
    dims: tuple[str, ...],
    *,
    step: float | None = None,
    hists: bool = False,
    figures: tuple[str, ...] = rollup.FIGURES,
) -> rollup.Rollup | None:
    """The window's rollup for ``dims``, or ``None`` when the rows should be read instead.

    Its keys are ``(t, dim, value)``: the whole hours summed per bucket of ``step`` seconds from
    ``since`` (``t`` the bucket's start; without ``step``, one bucket, ``t`` = ``since``), and
    the partial hours' rows under their own hour. Only the ``figures`` named are read (the
    others are 0). With ``hists``, the histograms of the dimensions that keep them, per hour
    (``t`` the hour).

    The hours are summed by the database per chunk of at most a day within a bucket: SQLite
    sorts what it groups, and small sorts stay in the CPU's cache (a month by user is 200,000
    rollup rows); PostgreSQL groups them at once.
    """
    hours = whole_hours(await covered_from(store), since, until)
    if hours is None:
        return None
    first, end = hours
    d = dialect_of(store)
    table = f"{d.table}_hourly"
    summed = _summed(d.postgres, table, dims, figures, _chunks(since, first, end, step))
    wanted = [dim for dim in dims if dim in rollup.HISTOGRAM_DIMS] if hists else []
    hist_marks = ", ".join(f"?{i + 3}" for i in range(len(wanted))) or "NULL"
    histograms = (
        f"SELECT hour, dim, value, latency, ttft FROM {table} WHERE dim IN ({hist_marks}) AND hour >= ?1 AND hour < ?2",
        [first, end, *wanted],
    )
    # the edges as two ranges (SQLite scans the whole table for an OR of them)
    edge = f"SELECT {', '.join(rollup.COLUMNS)} FROM {d.table} WHERE ts >= ?1 AND ts < ?2"
    stored, kept, before, after = await fetch(store, summed, histograms, (edge, [since, first]), (edge, [end, until]))
    out = rollup.Rollup.of(before + after)
    for key in [k for k in out.sums if k[1] not in dims]:
        del out.sums[key]
        out.hists.pop(key, None)
    if not hists:
        out.hists.clear()
    sums = out.sums
    for t, dim, value, *counted in _unpacked(stored, d.postgres):
        at = (t, dim, value)
        seen = sums.get(at)
        if seen is None:
            sums[at] = counted
        else:
            for n, f in enumerate(counted):
                seen[n] += f
    for hour, dim, value, latency, ttft in kept:
        lat, first_token = out.hists.setdefault(rollup.stored_key(hour, dim, value), ({}, {}))
        for into, text in ((lat, latency), (first_token, ttft)):
            for b, n in rollup.hist_counts(text).items():
                into[b] = into.get(b, 0) + n
    return out


#: the rollup figures ``rolled_traffic`` reads
_TRAFFIC_FIGURES = ("requests", "errors", "cost", "saved", "hits", "unpriced", "routed")


async def rolled_traffic(
    store: SqliteLedger | PostgresLedger, since: float, until: float, step: float, buckets: int, route: str | None
) -> dict[int, dict[str, Any]] | None:
    """``_traffic`` from the hourly rollup (percentiles from its histograms), or ``None`` when
    the window is read from the rows; ``since`` on an hour and ``step`` whole hours, or one bucket."""
    if buckets > 1 and (since % rollup.HOUR or step % rollup.HOUR):
        return None
    dim, value = ("all", "null") if route is None else ("route", rollup.key_text(route))
    step_ = step if buckets > 1 else None
    found = await gathered(store, since, until, (dim,), step=step_, hists=True, figures=_TRAFFIC_FIGURES)
    if found is None:
        return None
    sums: dict[int, list[int]] = {}
    hists: dict[int, tuple[dict[int, int], dict[int, int]]] = {}
    for key, figures in found.sums.items():
        if key[2] == value:
            i = min(buckets - 1, max(0, math.floor((key[0] - since) / step)))
            seen = sums.setdefault(i, [0] * len(figures))
            for n, f in enumerate(figures):
                seen[n] += f
    for key, counts_ in found.hists.items():
        if key[2] == value:
            i = min(buckets - 1, max(0, math.floor((key[0] - since) / step)))
            lat, first = hists.setdefault(i, ({}, {}))
            for into, counts in zip((lat, first), counts_, strict=True):
                for b, n in counts.items():
                    into[b] = into.get(b, 0) + n
    out = {}
    for i, figures in sums.items():
        requests, errors, cost, saved, hits, unpriced = figures[:6]
        routed = figures[_ROUTED]
        lat, first = hists.get(i, ({}, {}))
        out[i] = {
            "requests": requests,
            "errors": errors,
            "error_rate": errors / requests,
            "latency_p50_ms": rollup.hist_nearest(lat, 50),
            "latency_p95_ms": rollup.hist_nearest(lat, 95),
            "ttft_p50_ms": rollup.hist_nearest(first, 50),
            "ttft_p95_ms": rollup.hist_nearest(first, 95),
            "cost_usd": money_text(cost),
            "saved_usd": money_text(saved),
            "routing_saved_usd": money_text(routed),
            "cache_hits": hits,
            "unpriced": unpriced,
        }
    return out


async def rolled_costs(
    store: SqliteLedger | PostgresLedger,
    by: str,
    since: float,
    until: float,
    step: int,
    buckets: int,
    tag_key: str | None,
) -> dict[tuple[Any, ...], list[Any]] | None:
    """``grouped_sums``' rows and cost per (bucket, group) from the hourly rollup, or ``None``."""
    if since % rollup.HOUR or step % rollup.HOUR:
        return None
    dims = ("all", "tag") if by == "tag" else (by,)
    found = await gathered(store, since, until, dims, step=step, figures=("requests", "cost"))
    if found is None:
        return None
    out: dict[tuple[Any, ...], list[Any]] = {}

    def add(key: tuple[Any, ...], n: int, cost: int) -> None:
        seen = out.setdefault(key, [0, 0])
        seen[0] += n
        seen[1] += cost

    names: dict[str, Any] = {}  # each group's JSON text decoded once
    for (hour, dim, value), figures in found.sums.items():
        i = min(buckets - 1, math.floor((hour - since) / step))
        if dim == "all":
            add((i, None), figures[0], figures[2])
        elif dim == "tag":
            name, tagged = orjson.loads(value)
            if name == tag_key:
                add((i, str(tagged)), figures[0], figures[2])
                add((i, None), -figures[0], -figures[2])  # the rows without the tag: all but these
        else:
            name = names.get(value)
            if name is None:
                name = names[value] = orjson.loads(value)
            add((i, name), figures[0], figures[2])
    return {k: v for k, v in out.items() if v[0]}


Percentile = Callable[[int], float | None]


def no_percentile(p: int) -> float | None:
    return None


def rolled_reliability(
    rolled: rollup.Rollup,
) -> tuple[dict[tuple[Any, ...], list[Any]], dict[str, Percentile], dict[str, Percentile]]:
    """``reliability``'s sums per (deployment, provider, failure class) and percentile pickers
    per deployment, from the hourly rollup."""
    counted: dict[tuple[Any, ...], list[Any]] = {}
    hists: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
    for (_, dim, value), f in rolled.sums.items():
        if dim == "failure":
            key = tuple(orjson.loads(value))
            figures = [f[0], f[1], f[6], f[7]]
            seen = counted.get(key)
            counted[key] = figures if seen is None else [a + b for a, b in zip(seen, figures, strict=True)]

    for (_, dim, value), counts_ in rolled.hists.items():
        if dim == "deployment":
            lat, first = hists.setdefault(orjson.loads(value), ({}, {}))
            for into, counts in zip((lat, first), counts_, strict=True):
                for b, n in counts.items():
                    into[b] = into.get(b, 0) + n
    pick: dict[str, Percentile] = {name: partial(rollup.hist_nearest, h) for name, (h, _) in hists.items()}
    pick_first: dict[str, Percentile] = {name: partial(rollup.hist_nearest, h) for name, (_, h) in hists.items()}
    return counted, pick, pick_first


_ROUTED = rollup.FIGURES.index("routed")
#: the usage report's columns a cost table row holds, as rollup figures (``rollup.FIGURES``)
_TABLE_FIGURES = {
    "requests": 0,
    "errors": 1,
    "input_tokens": 8,
    "cached_input_tokens": 9,
    "output_tokens": 10,
    "cache_hits": 4,
}


async def cost_table(
    store: SqliteLedger | PostgresLedger, *, by: str, since: float, until: float, limit: int, tag_key: str | None
) -> list[dict[str, Any]] | None:
    """The dashboard's cost table from the rollup: per group (``by`` as ``aggregate``'s, but not
    ``day``), ordered as the usage report orders them, at most ``limit``: ``group``, ``requests``,
    ``errors``, ``error_rate``, ``input_tokens``, ``cached_input_tokens``, ``output_tokens``,
    ``cache_hits``, ``cost_usd``, ``saved_usd`` and ``routing_saved_usd`` (exact decimal text), the same figures as
    ``aggregate`` gives (it adds percentiles and feedback, which the table does not show).
    ``None`` when the window is read from the rows (``aggregate``)."""
    found = await gathered(store, since, until, ("all", "tag") if by == "tag" else (by,))
    if found is None:
        return None
    groups: dict[Any, list[int]] = {}

    def add(name: Any, figures: list[int], sign: int = 1) -> None:
        seen = groups.setdefault(name, [0] * len(figures))
        for i, f in enumerate(figures):
            seen[i] += sign * f

    for (_, dim, value), figures in found.sums.items():
        if dim == "all":
            add(None, figures)
        elif dim == "tag":
            name, tagged = orjson.loads(value)
            if name == tag_key:
                add(str(tagged), figures)
                add(None, figures, -1)  # the rows without the tag: all but these
        else:
            add(orjson.loads(value), figures)
    ordered = sorted(
        ((g, f) for g, f in groups.items() if f[0]), key=lambda gf: (-gf[1][2], -gf[1][0], gf[0] is None, gf[0] or "")
    )
    out = []
    for group, f in ordered[:limit]:
        row: dict[str, Any] = {"group": group, **{name: f[i] for name, i in _TABLE_FIGURES.items()}}
        row.update(error_rate=f[1] / f[0], cost_usd=money_text(f[2]), saved_usd=money_text(f[3]))
        row["routing_saved_usd"] = money_text(f[_ROUTED])
        out.append(row)
    return out
