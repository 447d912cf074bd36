"""A route's variants side by side, from the ledger: each arm's figures and its difference from
the control, with whether the difference is significant (``significance.py``).

Per variant: requests, error rate (status >= 400), latency p50 / p95 / mean, TTFT p50 (streams),
cost per request (rows without a cost count as 0, as in ``breakwater usage``), refusal rate
(among the answers the refusal detector checked), ``finish_reason: length`` share (among the
answers with a finish reason) and the mean feedback score. Percentiles are nearest-rank, as in
``aggregate.py``, and are compared without a test; the rates by the two-proportion z-test and
the means (latency, cost, feedback) by Welch's t-test.

The feedback score comes from the feedback table (``POST /v1/feedback``, ``feedback.py``): each
request's newest feedback counts once, as in the usage reports; a ledger without that table (one
written by an earlier version) has no scores. Each dialect's statement does the
grouping in the database; only one tuple per variant comes back.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from breakwater.observability.ledger.aggregate import postgres_newest_feedback, sqlite_newest_feedback
from breakwater.observability.ledger.significance import ALPHA, Moments, two_proportions, welch
from breakwater.observability.ledger.sqlite import SqliteLedger
from breakwater.observability.ledger.sqlite_schema import FEEDBACK_TABLE

if TYPE_CHECKING:
    from breakwater.observability.ledger.postgres import PostgresLedger

_TABLE = "breakwater_ledger"  # SqliteLedger's fixed table
_SCALE = Decimal("1E-10")

#: (name, hits, out of): the rates compared by the two-proportion z-test
_RATES = (
    ("error_rate", "errors", "requests"),
    ("refusal_rate", "refusals", "checked"),
    ("length_share", "lengths", "finished"),
)

# one tuple per variant, in this order, from either dialect
_FIELDS = (
    "variant", "requests", "errors", "latency_sum", "latency_squares", "refusals", "checked", "lengths", "finished",
    "cost", "cost_squares", "latency_p50_ms", "latency_p95_ms", "ttft_p50_ms",
)  # fmt: skip


async def compare(
    store: SqliteLedger | PostgresLedger,
    *,
    route: str,
    since: float,
    until: float,
    arms: Sequence[str] = (),
    control: str | None = None,
) -> dict[str, Any]:
    """The route's variants with ``since <= ts < until``.

    Args:
        arms: the route's configured arms, in order: each is listed (with 0 requests when it
            took none), then any other variant the ledger holds for the route.
        control: the arm the others are compared against (default: the first listed).
    """
    if isinstance(store, SqliteLedger):
        rows, feedback = await asyncio.to_thread(_sqlite_query, store, route, since, until)
    else:
        rows, feedback = await _postgres_query(store, route, since, until)
    found = {row[0]: dict(zip(_FIELDS, row, strict=True)) for row in rows}
    names = [*arms, *sorted(n for n in found if n not in arms)]
    stats = [_figures(name, found.get(name), feedback.get(name)) for name in names]
    chosen = control if control is not None else (names[0] if names else None)
    base = next((s for s in stats if s["variant"] == chosen), None)
    for s in stats:
        s["control"] = s is base
        s["vs_control"] = None if base is None or s is base else _versus(base, s)
    return {"route": route, "since": since, "until": until, "control": chosen, "alpha": ALPHA, "variants": stats}


def _figures(name: str, row: dict[str, Any] | None, feedback: tuple[int, float, float] | None) -> dict[str, Any]:
    row = row or {"requests": 0}
    n = int(row["requests"])
    cost = _money(row.get("cost") or 0)
    fb = Moments(*feedback) if feedback else Moments(0, 0.0, 0.0)
    latency = Moments(n, float(row.get("latency_sum") or 0), float(row.get("latency_squares") or 0))
    cost_moments = Moments(n, float(cost), float(row.get("cost_squares") or 0))
    counts = {k: int(row.get(k) or 0) for k in ("errors", "refusals", "checked", "lengths", "finished")}
    return {
        "variant": name,
        "requests": n,
        **counts,
        "error_rate": counts["errors"] / n if n else None,
        "latency_p50_ms": _float(row.get("latency_p50_ms")),
        "latency_p95_ms": _float(row.get("latency_p95_ms")),
        "latency_mean_ms": latency.mean,
        "ttft_p50_ms": _float(row.get("ttft_p50_ms")),
        "cost_usd": format(cost.quantize(_SCALE), "f"),
        "cost_per_request_usd": format((cost / n).quantize(_SCALE), "f") if n else None,
        "refusal_rate": counts["refusals"] / counts["checked"] if counts["checked"] else None,
        "length_share": counts["lengths"] / counts["finished"] if counts["finished"] else None,
        "feedback_count": fb.n,
        "feedback_score": fb.mean,
        "_moments": {"latency_mean_ms": latency, "cost_per_request_usd": cost_moments, "feedback_score": fb},
    }


def _versus(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Each figure's difference (other - control), and the test's p-value where there is one."""
    out: dict[str, Any] = {}
    for name, hits, total in _RATES:
        p = two_proportions(base[hits], base[total], other[hits], other[total])
        out[name] = _difference(base[name], other[name], p)
    for name in ("latency_mean_ms", "cost_per_request_usd", "feedback_score"):
        a, b = base["_moments"][name], other["_moments"][name]
        out[name] = _difference(a.mean, b.mean, welch(a, b))
    for name in ("latency_p50_ms", "latency_p95_ms", "ttft_p50_ms"):
        out[name] = _difference(base[name], other[name], None)
    return out


def _difference(a: float | None, b: float | None, p: float | None) -> dict[str, Any]:
    return {
        "difference": None if a is None or b is None else b - a,
        "p_value": p,
        "significant": None if p is None else p < ALPHA,
    }


def public(report: dict[str, Any]) -> dict[str, Any]:
    """The report without its internal sums (what the CLI's JSON and the admin API show)."""
    return {**report, "variants": [{k: v for k, v in s.items() if k != "_moments"} for s in report["variants"]]}


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _money(value: Any) -> Decimal:
    """SQLite sums integer units of 1e-10 USD; PostgreSQL a Decimal already."""
    return Decimal(value).scaleb(-10) if isinstance(value, int) else Decimal(value)


def _nearest(p: int, column: str) -> str:
    return f"MAX(CASE WHEN {column}_rn = ({p} * {column}_k + 99) / 100 THEN {column} END)"


def _sqlite_query(
    store: SqliteLedger, route: str, since: float, until: float
) -> tuple[list[tuple[Any, ...]], dict[str, tuple[int, float, float]]]:
    window = f"FROM {_TABLE} WHERE route = ?1 AND ts >= ?2 AND ts < ?3 AND variant IS NOT NULL"
    sql = f"""
        WITH ranked AS (
            SELECT variant, status, latency_ms, ttft_ms, cost_usd, refused, finish_reason,
                   ROW_NUMBER() OVER (PARTITION BY variant ORDER BY latency_ms) AS latency_ms_rn,
                   COUNT(*) OVER (PARTITION BY variant) AS latency_ms_k,
                   ROW_NUMBER() OVER (PARTITION BY variant, ttft_ms IS NULL ORDER BY ttft_ms) AS ttft_ms_rn,
                   COUNT(ttft_ms) OVER (PARTITION BY variant) AS ttft_ms_k
            {window}
        )
        SELECT variant, COUNT(*), SUM(status >= 400), SUM(latency_ms), SUM(latency_ms * latency_ms),
               SUM(refused = 1), COUNT(refused), SUM(finish_reason = 'length'), COUNT(finish_reason),
               COALESCE(SUM(CAST(ROUND(CAST(cost_usd AS REAL) * 1e10) AS INTEGER)), 0),
               COALESCE(SUM(CAST(cost_usd AS REAL) * CAST(cost_usd AS REAL)), 0),
               {_nearest(50, "latency_ms")}, {_nearest(95, "latency_ms")}, {_nearest(50, "ttft_ms")}
        FROM ranked GROUP BY variant
    """
    uri = f"{store.path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.OperationalError:
        if not store.path.exists():
            return [], {}
        raise
    try:
        columns = {r[1] for r in conn.execute(f"PRAGMA table_info({_TABLE})")}
        if "variant" not in columns:
            return [], {}  # no table yet, or one no gateway with variants has written to
        rows = conn.execute(sql, (route, since, until)).fetchall()
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (FEEDBACK_TABLE,)).fetchone():
            sql = _feedback_sql(_TABLE, sqlite_newest_feedback("?2"), "?1", "?2", "?3")
            scores = conn.execute(sql, (route, since, until)).fetchall()
        else:
            scores = []
        return rows, {v: (int(n), float(s), float(q)) for v, n, s, q in scores}
    finally:
        conn.close()


def _feedback_sql(ledger: str, newest: str, route: str, since: str, until: str) -> str:
    """The feedback score's count, sum and sum of squares per variant: each request's newest
    feedback (by the key that sent the request) counts once, as in the usage reports."""
    return f"""
        SELECT l.variant, COUNT(*), SUM(f_score), SUM(f_score * f_score)
        FROM ({newest}) AS newest JOIN {ledger} l ON l.request_id = f_request AND l.key_id = f_key
        WHERE l.route = {route} AND l.ts >= {since} AND l.ts < {until} AND l.variant IS NOT NULL
        GROUP BY l.variant
    """


async def _postgres_query(
    store: PostgresLedger, route: str, since: float, until: float
) -> tuple[list[tuple[Any, ...]], dict[str, tuple[int, float, float]]]:
    t = store.table
    sql = f"""
        SELECT variant, count(*), count(*) FILTER (WHERE status >= 400), sum(latency_ms), sum(latency_ms * latency_ms),
               count(*) FILTER (WHERE refused), count(refused), count(*) FILTER (WHERE finish_reason = 'length'),
               count(finish_reason), COALESCE(sum(cost_usd), 0), COALESCE(sum((cost_usd * cost_usd)::float8), 0),
               percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms),
               percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms),
               percentile_disc(0.5) WITHIN GROUP (ORDER BY ttft_ms)
        FROM {t} WHERE route = $1 AND ts >= $2 AND ts < $3 AND variant IS NOT NULL
        GROUP BY variant
    """
    # the store's own connection and lock (PostgresLedger has no public read-query method)
    rows = [tuple(r) for r in await store._call("fetch", sql, route, since, until)]
    feedback: dict[str, tuple[int, float, float]] = {}
    if await store._call("fetchval", "SELECT to_regclass($1) IS NOT NULL", store.feedback_table):
        sql = _feedback_sql(t, postgres_newest_feedback(store.feedback_table, "$2"), "$1", "$2", "$3")
        records = await store._call("fetch", sql, route, since, until)
        feedback = {r[0]: (int(r[1]), float(r[2]), float(r[3])) for r in records}
    return rows, feedback
