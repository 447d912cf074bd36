"""The dashboard's charts read from the ledger: traffic over time, cost by group over time, and
each deployment's reliability.

Every function takes either store and gives the same answer from both (the same SQL, in each
dialect), the work done inside the database: a month of rows is never brought into Python.
Time buckets are ``[since + i * step, since + (i + 1) * step)``; a bucket without rows is still
in the answer, with zeros (and ``None`` percentiles). Money is exact decimal text with ten
places, as in the usage report (``aggregate.py``).

Percentiles are nearest-rank, exact: the value at rank ``ceil(p / 100 * n)`` of the ``n``
values, ranked in SQL (docs/dashboard.md, "Query speed").

The request explorer's search and a request's rows are in ``explorer.py``, re-exported here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from breakwater.observability.ledger.aggregate import BY, group_sql, tag_bind
from breakwater.observability.ledger.bucketing import bucket_of, bucket_sums, nearest, sample_modulus
from breakwater.observability.ledger.explorer import RowFilter, request_rows, search
from breakwater.observability.ledger.reading import Dialect, dialect_of, fetch, money_text, money_units

if TYPE_CHECKING:
    from breakwater.observability.ledger.postgres import PostgresLedger
    from breakwater.observability.ledger.sqlite import SqliteLedger

__all__ = [
    "COST_BY",
    "MAX_BUCKETS",
    "RowFilter",
    "cost_series",
    "reliability",
    "request_rows",
    "search",
    "series",
    "totals",
]

MAX_BUCKETS = 2000
"""The most time buckets one window may be cut into."""

COST_BY = tuple(b for b in BY if b != "day")
"""What ``cost_series`` can group by (``tag`` with a tag key); ``day`` is a time bucket already."""

MAX_TOP = 50
#: the answers served from the cache, as the usage report counts them
_HITS = "('hit', 'semantic-hit', 'stale')"
#: the label of rows without the tag, in a cost series by tag
NO_TAG = "(none)"


def _check_window(since: float, until: float) -> None:
    if not (math.isfinite(since) and math.isfinite(until)):
        raise ValueError("since and until must be finite unix seconds")
    if until <= since:
        raise ValueError("until must be after since")


def _check_steps(since: float, until: float, step_s: int) -> int:
    """The number of buckets of ``step_s`` seconds in the window."""
    _check_window(since, until)
    if isinstance(step_s, bool) or not isinstance(step_s, int) or step_s < 1:
        raise ValueError("step_s must be a whole number of seconds, at least 1")
    buckets = math.ceil((until - since) / step_s)
    if buckets > MAX_BUCKETS:
        raise ValueError(f"{buckets} buckets of {step_s}s in the window: at most {MAX_BUCKETS}, take a longer step")
    return buckets


_TRAFFIC = [
    "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END)",
    "{cost}",
    "{saved}",
    f"SUM(CASE WHEN cache IN {_HITS} THEN 1 ELSE 0 END)",
    "SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END)",
]


async def _traffic(
    store: SqliteLedger | PostgresLedger, since: float, until: float, step: float, buckets: int, route: str | None
) -> dict[int, dict[str, Any]]:
    """The traffic figures per bucket number, for the buckets that hold rows."""
    d = dialect_of(store)
    where, extra = ("", ()) if route is None else (" AND route = ?4", (route,))
    sums = [s.format(cost=d.money_sum("cost_usd"), saved=d.money_sum("saved_usd")) for s in _TRAFFIC]
    counted = await bucket_sums(store, d, (since, until, step, buckets), sums, where, extra)
    modulus = sample_modulus(sum(int(c[0]) for c in counted.values()))
    group, rows = bucket_of(d, buckets), "ts >= ?1 AND ts < ?2" + where
    params = [since, until, float(step), *extra]
    latency, ttft = await fetch(
        store,
        (nearest(d, group, rows, "latency_ms", [50, 95], modulus), params),
        (nearest(d, group, rows, "ttft_ms", [50, 95], modulus), params),
    )
    lat = {int(r[0]): r[1:] for r in latency}
    first = {int(r[0]): r[1:] for r in ttft}
    out = {}
    for i, (requests, errors, cost, saved, hits, unpriced) in counted.items():
        p_lat, p_ttft = lat.get(i, (None, None)), first.get(i, (None, None))
        out[i] = {
            "requests": int(requests),
            "errors": int(errors),
            "error_rate": int(errors) / int(requests),
            "latency_p50_ms": _float(p_lat[0]),
            "latency_p95_ms": _float(p_lat[1]),
            "ttft_p50_ms": _float(p_ttft[0]),
            "ttft_p95_ms": _float(p_ttft[1]),
            "cost_usd": money_text(cost),
            "saved_usd": money_text(saved),
            "cache_hits": int(hits),
            "unpriced": int(unpriced),
        }
    return out


def _empty() -> dict[str, Any]:
    return {
        "requests": 0,
        "errors": 0,
        "error_rate": 0.0,
        "latency_p50_ms": None,
        "latency_p95_ms": None,
        "ttft_p50_ms": None,
        "ttft_p95_ms": None,
        "cost_usd": money_text(0),
        "saved_usd": money_text(0),
        "cache_hits": 0,
        "unpriced": 0,
    }


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


async def series(
    store: SqliteLedger | PostgresLedger, *, since: float, until: float, step_s: int, route: str | None = None
) -> list[dict[str, Any]]:
    """Traffic per time bucket, from ``since`` to ``until``, every bucket (empty ones with zeros).

    Each bucket: ``t`` (its start), ``requests``, ``errors`` (status >= 400), ``error_rate``,
    ``latency_p50_ms`` / ``latency_p95_ms``, ``ttft_p50_ms`` / ``ttft_p95_ms`` (streams' time to
    first token; ``None`` where no row has one), ``cost_usd`` and ``saved_usd`` (exact decimal
    text; a row without a cost counts 0), ``cache_hits`` (answers served from the cache) and
    ``unpriced`` (rows without a cost).

    Args:
        store: the ledger store to read.
        since: window start, unix seconds (inclusive).
        until: window end, unix seconds (exclusive); the last bucket may end past it.
        step_s: the bucket's length in seconds (at most ``MAX_BUCKETS`` buckets).
        route: only this route's rows.

    Raises:
        ValueError: a bad window or step.
    """
    buckets = _check_steps(since, until, step_s)
    if route is not None and not route:
        raise ValueError("route must not be empty")
    found = await _traffic(store, since, until, step_s, buckets, route)
    return [{"t": since + i * step_s, **found.get(i, _empty())} for i in range(buckets)]


async def totals(store: SqliteLedger | PostgresLedger, *, since: float, until: float) -> dict[str, Any]:
    """``series``' figures over the whole window (its percentiles over every row, not averaged).

    Raises:
        ValueError: a bad window.
    """
    _check_window(since, until)
    found = await _traffic(store, since, until, until - since, 1, None)
    return found.get(0, _empty())


async def cost_series(
    store: SqliteLedger | PostgresLedger,
    *,
    by: str,
    since: float,
    until: float,
    step_s: int,
    top: int = 8,
    tag_key: str | None = None,
) -> dict[str, Any]:
    """Cost per time bucket for the window's ``top`` groups by cost, the rest together as ``other``.

    ``groups``: the top groups, most expensive first (as the usage report orders them), then
    ``other`` when more groups had rows (``(other)`` if a top group is called ``other``); rows
    without the tag are the group ``(none)``. ``buckets``: every bucket's ``t`` and its
    ``cost_usd`` per group, exact decimal text (zeros included).

    Args:
        by: one of ``COST_BY``.
        top: how many groups are shown by name (1..50).
        tag_key: the tag whose value groups the rows, when ``by == "tag"``.

    Raises:
        ValueError: a bad window, step, grouping, tag key or ``top``.
    """
    buckets = _check_steps(since, until, step_s)
    if by not in COST_BY:
        raise ValueError(f"cost can be grouped by {', '.join(COST_BY)}, not {by!r}")
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
        raise ValueError(f"top must be between 1 and {MAX_TOP}")
    if (by == "tag") != (tag_key is not None) or tag_key == "":
        raise ValueError("a tag key is needed with (and only with) by='tag'")
    d = dialect_of(store)
    tag = [] if tag_key is None else [tag_bind(tag_key, postgres=d.postgres)]
    names, more = await _top(store, d, group_sql(by, "?3", postgres=d.postgres), [since, until, *tag], top)
    params: list[Any] = [since, until, float(step_s), *tag]
    group = group_sql(by, "?4", postgres=d.postgres)
    labels = {g: NO_TAG if g is None else str(g) for g in names}
    other = "(other)" if "other" in labels.values() else "other"
    groups = list(labels.values()) + ([other] if more else [])
    series_: list[dict[str, Any]] = [
        {"t": since + i * step_s, "cost_usd": dict.fromkeys(groups, money_text(0))} for i in range(buckets)
    ]
    if not names:
        return {"groups": groups, "buckets": series_}
    # per bucket: the total, then each top group's share (rows of the rest: total minus those)
    sums = [d.money_sum("cost_usd")]
    for name in names:
        if name is None:
            sums.append(d.money_sum(f"CASE WHEN {group} IS NULL THEN cost_usd END"))
        else:
            params.append(name)
            sums.append(d.money_sum(f"CASE WHEN {group} = ?{len(params)} THEN cost_usd END"))
    window = (since, until, float(step_s), buckets)
    counted = await bucket_sums(store, d, window, sums, "", tuple(params[3:]))
    for i, (_, total, *shares) in counted.items():
        costs = series_[i]["cost_usd"]
        units = [money_units(v) for v in shares]
        for name, share in zip(names, units, strict=True):
            costs[labels[name]] = money_text(share)
        if more:
            costs[other] = money_text(money_units(total) - sum(units))
    return {"groups": groups, "buckets": series_}


async def _top(
    store: SqliteLedger | PostgresLedger, d: Dialect, group: str, params: list[Any], top: int
) -> tuple[list[str | None], bool]:
    """The window's ``top`` groups by cost, ordered as the usage report orders them (cost, then
    requests, then the group, rows without it last), and whether more groups have rows.

    The usage report's own query (``aggregate``) would also rank every group's latencies, which
    a chart does not show; this is its ordering alone."""
    sql = f"""
        SELECT g, COUNT(*) OVER () FROM (SELECT {group} AS g, cost_usd FROM {d.table} WHERE ts >= ?1 AND ts < ?2) AS w
        GROUP BY g ORDER BY {d.money_sum("cost_usd")} DESC, COUNT(*) DESC, g IS NULL, {d.binary("g")}
        LIMIT {int(top)}
    """
    (rows,) = await fetch(store, (sql, params))
    return [r[0] for r in rows], bool(rows) and int(rows[0][1]) > len(rows)


async def reliability(store: SqliteLedger | PostgresLedger, *, since: float, until: float) -> list[dict[str, Any]]:
    """Per deployment, busiest first: how its requests went in the window.

    Each: ``deployment``, ``provider``, ``requests``, ``errors`` (status >= 400), ``error_rate``,
    ``error_classes`` (``{class: rows}`` over rows with an error status or an error class;
    ``unknown`` for an error status without a class), ``retries`` (attempts beyond the first),
    ``fallbacks`` (rows answered by a fallback), ``latency_p50_ms`` / ``p95`` / ``p99`` and
    ``ttft_p50_ms`` (``None`` without streams). Rows that reached no deployment (refused before
    routing) are left out.

    Raises:
        ValueError: a bad window.
    """
    _check_window(since, until)
    d = dialect_of(store)
    where = "ts >= ?1 AND ts < ?2 AND deployment <> ''"
    params: list[Any] = [since, until]
    sums = f"""
        SELECT deployment, MAX(provider), COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),
               SUM(CASE WHEN attempts > 1 THEN attempts - 1 ELSE 0 END), SUM({d.truth("fallback")})
        FROM {d.table} WHERE {where} GROUP BY deployment
    """
    classes = f"""
        SELECT deployment, COALESCE(error_class, 'unknown') AS c, COUNT(*) FROM {d.table}
        WHERE {where} AND (status >= 400 OR error_class IS NOT NULL) GROUP BY deployment, c
    """
    counted, errors = await fetch(store, (sums, params), (classes, params))
    modulus = sample_modulus(sum(int(r[2]) for r in counted))
    latency, ttft = await fetch(
        store,
        (nearest(d, "deployment", where, "latency_ms", [50, 95, 99], modulus), params),
        (nearest(d, "deployment", where, "ttft_ms", [50], modulus), params),
    )
    by_class: dict[str, dict[str, int]] = {}
    for deployment, error_class, n in errors:
        by_class.setdefault(deployment, {})[error_class] = int(n)
    lat = {r[0]: r[1:] for r in latency}
    first = {r[0]: r[1] for r in ttft}
    out = []
    for deployment, provider, requests, errs, retries, fallbacks in counted:
        p50, p95, p99 = lat.get(deployment, (None, None, None))
        out.append(
            {
                "deployment": deployment,
                "provider": provider,
                "requests": int(requests),
                "errors": int(errs),
                "error_rate": int(errs) / int(requests),
                "error_classes": dict(sorted(by_class.get(deployment, {}).items(), key=lambda kv: (-kv[1], kv[0]))),
                "retries": int(retries),
                "fallbacks": int(fallbacks),
                "latency_p50_ms": _float(p50),
                "latency_p95_ms": _float(p95),
                "latency_p99_ms": _float(p99),
                "ttft_p50_ms": _float(first.get(deployment)),
            }
        )
    out.sort(key=lambda r: (-r["requests"], r["deployment"]))
    return out
