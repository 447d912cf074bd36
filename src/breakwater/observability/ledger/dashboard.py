"""The dashboard's charts read from the ledger: traffic over time, cost by group over time, and
each deployment's reliability.

Every function takes either store and gives the same answer from both (the same SQL, in each
dialect). The sums are done inside the database; Python gets sums per bucket or group, and at
most about ``bucketing.RANK_BUDGET`` values to rank. Time buckets are ``[since + i * step,
since + (i + 1) * step)``; a bucket without rows is still in the answer, with zeros (and
``None`` percentiles). Money is exact decimal text with ten places, as in the usage report
(``aggregate.py``).

Percentiles are nearest-rank: the value at rank ``ceil(p / 100 * n)`` of the ``n`` values,
exact up to ``bucketing.RANK_BUDGET`` rows, over a sample of them beyond (``bucketing.py``;
docs/dashboard.md, "Query speed").

The request explorer's search and a request's rows are in ``explorer.py``, re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from breakwater.observability.ledger.aggregate import BY, group_sql, tag_bind
from breakwater.observability.ledger.bucketing import (
    bucket_of,
    bucket_sums,
    grouped_sums,
    nearest,
    ranked,
    sample_modulus,
)
from breakwater.observability.ledger.explorer import RowFilter, request_rows, search
from breakwater.observability.ledger.hourly import (
    Percentile,
    gathered,
    no_percentile,
    rolled_costs,
    rolled_reliability,
    rolled_traffic,
)
from breakwater.observability.ledger.reading import dialect_of, money_text, money_units

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
    "{routed}",
]


async def _traffic(
    store: SqliteLedger | PostgresLedger, since: float, until: float, step: float, buckets: int, route: str | None
) -> dict[int, dict[str, Any]]:
    """The traffic figures per bucket number, for the buckets that hold rows."""
    d = dialect_of(store)
    where, extra = ("", ()) if route is None else (" AND route = ?4", (route,))
    money = {"cost": "cost_usd", "saved": "saved_usd", "routed": "routing_saved_usd"}
    sums = [s.format(**{k: d.money_sum(c) for k, c in money.items()}) for s in _TRAFFIC]
    counted = await bucket_sums(store, d, (since, until, step, buckets), sums, where, extra)
    modulus = sample_modulus(sum(int(c[0]) for c in counted.values()))
    group, rows = bucket_of(d, buckets), "ts >= ?1 AND ts < ?2" + where
    params = [since, until, float(step), *extra]
    values = await ranked(store, d, group, rows, params, ["latency_ms", "ttft_ms"], modulus)
    out = {}
    for i, (requests, errors, cost, saved, hits, unpriced, routed) in counted.items():
        lat, first = values.get(i, [[], []])  # (a float key 3.0 is found by 3)
        out[i] = {
            "requests": int(requests),
            "errors": int(errors),
            "error_rate": int(errors) / int(requests),
            "latency_p50_ms": nearest(lat, 50),
            "latency_p95_ms": nearest(lat, 95),
            "ttft_p50_ms": nearest(first, 50),
            "ttft_p95_ms": nearest(first, 95),
            "cost_usd": money_text(cost),
            "saved_usd": money_text(saved),
            "routing_saved_usd": money_text(routed),
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
        "routing_saved_usd": money_text(0),
        "cache_hits": 0,
        "unpriced": 0,
    }


async def series(
    store: SqliteLedger | PostgresLedger, *, since: float, until: float, step_s: int, route: str | None = None
) -> list[dict[str, Any]]:
    """Traffic per time bucket, from ``since`` to ``until``, every bucket (empty ones with zeros).

    Each bucket: ``t`` (its start), ``requests``, ``errors`` (status >= 400), ``error_rate``,
    ``latency_p50_ms`` / ``latency_p95_ms``, ``ttft_p50_ms`` / ``ttft_p95_ms`` (streams' time to
    first token; ``None`` where no row has one), ``cost_usd``, ``saved_usd`` (what the cache
    saved) and ``routing_saved_usd`` (what branching routes saved against their baseline, net of
    cascade escalations) as exact decimal text (a row without a figure counts 0), ``cache_hits``
    (answers served from the cache) and ``unpriced`` (rows without a cost).

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
    found = await rolled_traffic(store, since, until, step_s, buckets, route)
    if found is None:
        found = await _traffic(store, since, until, step_s, buckets, route)
    return [{"t": since + i * step_s, **found.get(i, _empty())} for i in range(buckets)]


async def totals(store: SqliteLedger | PostgresLedger, *, since: float, until: float) -> dict[str, Any]:
    """``series``' figures over the whole window (its percentiles over every row, not averaged).

    Raises:
        ValueError: a bad window.
    """
    _check_window(since, until)
    found = await rolled_traffic(store, since, until, until - since, 1, None)
    if found is None:
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
    merge: Callable[[Any], str] | None = None,
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
        merge: the larger group each group belongs to (a key's team): groups merged before they
            are ranked.

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
    found = await rolled_costs(store, by, since, until, step_s, buckets, tag_key)
    if found is None:
        tag = [] if tag_key is None else [tag_bind(tag_key, postgres=d.postgres)]
        group = group_sql(by, "?4", postgres=d.postgres)
        found = await grouped_sums(
            store, d, (since, until), [group], [d.money_sum("cost_usd")], "", tuple(tag), buckets=(step_s, buckets)
        )
    if merge is not None:
        merged: dict[tuple[Any, ...], list[Any]] = {}
        for (i, name), (n, cost) in found.items():
            into = merged.setdefault((i, merge(name)), [0, 0])
            into[0] += int(n)
            into[1] += money_units(cost)
        found = merged
    # the window's groups by cost, ordered as the usage report orders them: cost, then requests,
    # then the group (rows without it last); aggregate() would also rank every group's latencies
    whole: dict[str | None, list[int]] = {}
    for (_, name), (n, cost) in found.items():
        seen = whole.setdefault(name, [0, 0])
        seen[0] += money_units(cost)
        seen[1] += int(n)
    ranked_ = sorted(whole.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0] is None, kv[0] or ""))
    names = [name for name, _ in ranked_[:top]]
    labels = {g: NO_TAG if g is None else str(g) for g in names}
    other = "(other)" if "other" in labels.values() else "other"
    more = len(ranked_) > top
    groups = list(labels.values()) + ([other] if more else [])
    units: list[dict[str, int]] = [dict.fromkeys(groups, 0) for _ in range(buckets)]
    for (i, name), (_, cost) in found.items():
        units[int(i)][labels.get(name, other)] += money_units(cost)
    return {
        "groups": groups,
        "buckets": [
            {"t": since + i * step_s, "cost_usd": {g: money_text(u) for g, u in costs.items()}}
            for i, costs in enumerate(units)
        ],
    }


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
    routed = " AND deployment <> ''"
    sums = [
        "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END)",
        "SUM(CASE WHEN attempts > 1 THEN attempts - 1 ELSE 0 END)",
        f"SUM({d.truth('fallback')})",
    ]
    # one grouping gives both: the figures per deployment, and its rows per error class
    failed = "CASE WHEN status >= 400 OR error_class IS NOT NULL THEN COALESCE(error_class, 'unknown') END"
    wanted = ("requests", "errors", "retries", "fallbacks")
    rolled = await gathered(store, since, until, ("failure", "deployment"), hists=True, figures=wanted)
    pick: dict[str, Percentile]
    pick_first: dict[str, Percentile]
    if rolled is None:
        counted = await grouped_sums(store, d, (since, until), ["deployment", "provider", failed], sums, routed)
        modulus = sample_modulus(sum(int(c[0]) for c in counted.values()))
        where, params = "ts >= ?1 AND ts < ?2" + routed, [since, until]
        values = await ranked(store, d, "deployment", where, params, ["latency_ms", "ttft_ms"], modulus)
        pick = {name: partial(nearest, v) for name, (v, _) in values.items()}
        pick_first = {name: partial(nearest, v) for name, (_, v) in values.items()}
    else:
        counted, pick, pick_first = rolled_reliability(rolled)
    by_class: dict[str, dict[str, int]] = {}
    merged: dict[str, list[Any]] = {}  # a deployment whose provider changed in the window: the larger name
    for (deployment, provider, error_class), figures in counted.items():
        if error_class is not None:
            classes = by_class.setdefault(deployment, {})
            classes[error_class] = classes.get(error_class, 0) + int(figures[0])
        seen = merged.get(deployment)
        if seen is None:
            merged[deployment] = [provider, *(int(f) for f in figures)]
        else:
            merged[deployment] = [max(seen[0], provider)] + [a + int(b) for a, b in zip(seen[1:], figures, strict=True)]
    out = []
    for deployment, (provider, requests, errs, retries, fallbacks) in merged.items():
        lat, first = pick.get(deployment, no_percentile), pick_first.get(deployment, no_percentile)
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
                "latency_p50_ms": lat(50),
                "latency_p95_ms": lat(95),
                "latency_p99_ms": lat(99),
                "ttft_p50_ms": first(50),
            }
        )
    out.sort(key=lambda r: (-r["requests"], r["deployment"]))
    return out
