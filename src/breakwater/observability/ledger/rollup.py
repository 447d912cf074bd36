"""Hourly rollups kept beside the ledger: per hour and per dimension, the sums the dashboard
charts and a latency histogram, so a month is read as ~720 hours instead of every row.

The ledger's stores write a batch's rollup in the batch's own transaction (``Rollup.of`` its new
rows, then ``merge_sql``). Each rollup row is keyed ``(hour, dim, value)``: ``hour`` the start of
the UTC hour (unix seconds), ``dim`` one of ``DIMS`` and ``value`` the group as JSON text
(``null`` for a row without it). Its figures are integers (money in units of 1e-10 USD), so sums
of rollup rows are the row-based sums exactly. The dimensions ``all``, ``route`` and
``deployment`` also keep histograms of ``latency_ms`` and ``ttft_ms``: bin ``floor(16 *
log2(v))``, read back as the bin's geometric middle, so a percentile from a histogram is within
about 2.2% of a value in the same bin as the exact nearest rank (docs/dashboard.md).

A ledger that held rows before it had rollups is covered from the hour after it was opened
(``start``); ``fill`` rolls the older hours up from the rows, newest day first, moving ``start``
back as it goes. Readers use the rollup only for whole hours at or after ``start``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import orjson

from breakwater.observability.ledger.row import LedgerRow

HOUR = 3600
#: the figures of a rollup row, in order
FIGURES = (
    "requests",
    "errors",
    "cost",
    "saved",
    "hits",
    "unpriced",
    "retries",
    "fallbacks",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "routed",
)
#: figures added after the first rollup schema: each store adds them (0 for the hours rolled up
#: before, whose rows had no such column) to a table that lacks them
ADDED_FIGURES = ("routed",)
#: the dimensions a rollup row is kept for; ``failure`` is ``[deployment, provider, error class]``
#: (the class ``null`` for a row that did not fail; rows without a deployment left out) and
#: ``tag`` is ``[key, value]``, one rollup row per tag a ledger row carries
DIMS = ("all", "route", "user", "key", "model", "deployment", "tag", "failure")
#: the dimensions with latency histograms
HISTOGRAM_DIMS = frozenset({"all", "route", "deployment"})
#: the ledger columns a rollup is made from, in ``Rollup.add``'s order
COLUMNS = (
    "ts",
    "route",
    "deployment",
    "provider",
    '"user"',
    "key_id",
    "upstream_model",
    "status",
    "attempts",
    "fallback",
    "error_class",
    "cache",
    "latency_ms",
    "ttft_ms",
    "cost_usd",
    "saved_usd",
    "tags",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "routing_saved_usd",
)
_HITS = frozenset({"hit", "semantic-hit", "stale"})
BINS_PER_DOUBLING = 16


def units(value: Any) -> int:
    """Money (a Decimal, or SQLite's decimal text) in units of 1e-10 USD."""
    return int(Decimal(value if isinstance(value, Decimal) else str(value)).scaleb(10).to_integral_value())


def hour_of(ts: float) -> float:
    return float(math.floor(ts / HOUR) * HOUR)


def bin_of(value: float) -> int:
    return math.floor(BINS_PER_DOUBLING * math.log2(max(value, 1e-3)))


def bin_value(b: int) -> float:
    """The value a histogram bin stands for: its geometric middle."""
    return float(2 ** ((b + 0.5) / BINS_PER_DOUBLING))


def key_text(value: Any) -> str:
    """A group's value as a rollup row's ``value``: JSON text."""
    return orjson.dumps(value).decode()


Key = tuple[float, str, str]


class Rollup:
    """Per ``(hour, dim, value)``: the figures, and (``HISTOGRAM_DIMS``) two histograms."""

    def __init__(self) -> None:
        self.sums: dict[Key, list[int]] = {}
        self.hists: dict[Key, tuple[dict[int, int], dict[int, int]]] = {}

    @classmethod
    def of(cls, records: Iterable[tuple[Any, ...]]) -> Rollup:
        """The rollup of ledger rows given as ``COLUMNS`` tuples."""
        out = cls()
        for r in records:
            out.add(*r)
        return out

    def add(
        self,
        ts: float,
        route: str,
        deployment: str,
        provider: str,
        user: str | None,
        key_id: str,
        model: str,
        status: int,
        attempts: int,
        fallback: Any,
        error_class: str | None,
        cache: str | None,
        latency_ms: float | None,
        ttft_ms: float | None,
        cost: Any,
        saved: Any,
        tags: Any,
        input_tokens: int,
        cached_input_tokens: int,
        output_tokens: int,
        routed: Any,
    ) -> None:
        hour = hour_of(ts)
        figures = (
            1,
            int(status >= 400),
            0 if cost is None else units(cost),
            0 if saved is None else units(saved),
            int(cache in _HITS),
            int(cost is None),
            max(0, attempts - 1),
            int(bool(fallback)),
            input_tokens,
            cached_input_tokens,
            output_tokens,
            0 if routed is None else units(routed),
        )
        if isinstance(tags, str):
            tags = orjson.loads(tags)
        keys: list[tuple[str, Any]] = [
            ("all", None),
            ("route", route),
            ("user", user),
            ("key", key_id),
            ("model", model),
        ]
        keys.append(("deployment", deployment))
        keys += [("tag", [k, v]) for k, v in (tags or {}).items()]
        if deployment != "":
            failed = error_class if error_class is not None or status < 400 else "unknown"
            keys.append(("failure", [deployment, provider, failed]))
        for dim, value in keys:
            key = (hour, dim, key_text(value))
            seen = self.sums.get(key)
            if seen is None:
                self.sums[key] = list(figures)
            else:
                for i, f in enumerate(figures):
                    seen[i] += f
            if dim in HISTOGRAM_DIMS:
                lat, first = self.hists.setdefault(key, ({}, {}))
                if latency_ms is not None:
                    b = bin_of(latency_ms)
                    lat[b] = lat.get(b, 0) + 1
                if ttft_ms is not None:
                    b = bin_of(ttft_ms)
                    first[b] = first.get(b, 0) + 1

    def merged_params(self, stored: dict[Key, tuple[str | None, str | None]]) -> list[list[Any]]:
        """The rows for ``merge_sql``: each key's figures, and its histograms merged with the
        ``stored`` ones (JSON text)."""
        out = []
        for key, figures in self.sums.items():
            hist: list[str | None] = [None, None]
            if key in self.hists:
                old = stored.get(key, (None, None))
                for i, counts in enumerate(self.hists[key]):
                    merged = {int(b): n for b, n in orjson.loads(old[i] or "{}").items()}
                    for b, n in counts.items():
                        merged[b] = merged.get(b, 0) + n
                    hist[i] = orjson.dumps({str(b): n for b, n in sorted(merged.items())}).decode()
            out.append([*key, *figures, *hist])
        return out


def schema(table: str, *, postgres: bool) -> list[str]:
    """The statements creating the rollup table of ``table`` and its ``start`` table (then
    ``added_figure_sql`` for each of ``ADDED_FIGURES`` the table lacks)."""
    real, big = ("DOUBLE PRECISION", "BIGINT") if postgres else ("REAL", "INTEGER")
    figures = ", ".join(f"{f} {big} NOT NULL" for f in FIGURES if f not in ADDED_FIGURES)
    return [
        f"CREATE TABLE IF NOT EXISTS {table}_hourly (hour {real} NOT NULL, dim TEXT NOT NULL, value TEXT NOT NULL,"
        f" {figures}, latency TEXT, ttft TEXT, PRIMARY KEY (dim, hour, value)){'' if postgres else ' WITHOUT ROWID'}",
        f"CREATE TABLE IF NOT EXISTS {table}_hourly_from (start {real} NOT NULL)",
    ]


def added_figure_sql(table: str, figure: str, *, postgres: bool) -> str:
    """Adds one of ``ADDED_FIGURES`` to the rollup table (PostgreSQL: only if it lacks it)."""
    if postgres:
        return f"ALTER TABLE {table}_hourly ADD COLUMN IF NOT EXISTS {figure} BIGINT NOT NULL DEFAULT 0"
    return f"ALTER TABLE {table}_hourly ADD COLUMN {figure} INTEGER NOT NULL DEFAULT 0"


def merge_sql(table: str, *, postgres: bool) -> str:
    """Adds one rollup row (``Rollup.merged_params``) to the table (its histograms replaced by
    the merged ones)."""
    names = ["hour", "dim", "value", *FIGURES, "latency", "ttft"]
    marks = ", ".join(f"${i + 1}" if postgres else "?" for i in range(len(names)))
    added = ", ".join(f"{f} = {table}_hourly.{f} + excluded.{f}" for f in FIGURES)
    return (
        f"INSERT INTO {table}_hourly ({', '.join(names)}) VALUES ({marks}) ON CONFLICT (dim, hour, value)"
        f" DO UPDATE SET {added}, latency = excluded.latency, ttft = excluded.ttft"
    )


def stored_sql(table: str, hours: int, *, postgres: bool) -> str:
    """The stored histograms of the histogram dimensions for ``hours`` given hours."""
    marks = ", ".join(f"${i + 1}" if postgres else "?" for i in range(hours))
    dims = ", ".join(f"'{d}'" for d in sorted(HISTOGRAM_DIMS))
    return f"SELECT hour, dim, value, latency, ttft FROM {table}_hourly WHERE hour IN ({marks}) AND dim IN ({dims})"


def record_of(row: LedgerRow) -> tuple[Any, ...]:
    """A ledger row as ``COLUMNS`` values."""
    return (
        row.ts,
        row.route,
        row.deployment,
        row.provider,
        row.user,
        row.key_id,
        row.upstream_model,
        row.status,
        row.attempts,
        row.fallback,
        row.error_class,
        row.cache,
        row.latency_ms,
        row.ttft_ms,
        row.cost_usd,
        row.saved_usd,
        row.tags,
        row.input_tokens,
        row.cached_input_tokens,
        row.output_tokens,
        row.routing_saved_usd,
    )


def fresh(rows: list[LedgerRow], stored_ids: Iterable[str], start: float) -> list[LedgerRow]:
    """The rows of a batch its insert adds (not stored before, first of their id) in the rollup's
    hours (from ``start``)."""
    seen = set(stored_ids)
    out = []
    for r in rows:
        if r.id not in seen:
            seen.add(r.id)
            if r.ts >= start:
                out.append(r)
    return out


def stored_key(hour: float, dim: str, value: str) -> Key:
    return (float(hour), dim, value)


def new_start(rows: int, newest: float | None, now: float) -> float:
    """Where a ledger's rollup starts when its table is made: everything (0.0) for an empty ledger,
    else the hour after the later of ``now`` and its newest row (older hours: ``fill``)."""
    if rows == 0:
        return 0.0
    return hour_of(max(now, newest or 0.0)) + HOUR


def fill_from(oldest: float | None, newest: float | None) -> float:
    """Where ``fill``'s next step starts, given the oldest and newest rows not rolled up yet: a
    day ending on the hour after the newest (empty days skipped), or 0.0 for all that is left."""
    if oldest is None or newest is None:
        return 0.0
    lo = hour_of(newest) + HOUR - 86400
    return 0.0 if oldest >= lo else lo


def hist_counts(text: str | None) -> dict[int, int]:
    return {} if not text else {int(b): n for b, n in orjson.loads(text).items()}


def hist_nearest(counts: dict[int, int], p: int) -> float | None:
    """The nearest-rank ``p``-th percentile of a histogram (the bin's value)."""
    n = sum(counts.values())
    if n == 0:
        return None
    rank = -(-p * n // 100)
    seen = 0
    for b in sorted(counts):
        seen += counts[b]
        if seen >= rank:
            return bin_value(b)
    raise AssertionError("unreachable")
