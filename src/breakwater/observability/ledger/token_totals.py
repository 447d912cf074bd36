"""The ledger's token counts summed for cost reports (``breakwater costs``, docs/costs.md).

``token_totals``: tokens and cost per (route, deployment, provider, upstream model, and the
value of one tag), the slices a what-if reprices. ``throughput``: tokens per time bucket, for
the sustained and peak token rates a self-hosting estimate sizes GPUs for. Both are sums made
inside the database by ``bucketing.grouped_sums`` (the dashboard's reader: one query text for
both stores, SQLite grouped in time chunks), cost exact in both stores.

Only requests an upstream answered count: rows served from the cache (their tokens are 0
already) and rows that never reached a deployment are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from breakwater.observability.ledger.bucketing import grouped_sums
from breakwater.observability.ledger.reading import dialect_of, money

if TYPE_CHECKING:
    from breakwater.observability.ledger.postgres import PostgresLedger
    from breakwater.observability.ledger.sqlite import SqliteLedger

_UPSTREAM = " AND deployment <> '' AND (cache IS NULL OR cache NOT IN ('hit', 'semantic-hit', 'stale'))"
_TOKENS = ["SUM(input_tokens)", "SUM(cached_input_tokens)", "SUM(cache_write_tokens)", "SUM(output_tokens)"]


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
    d = dialect_of(store)
    groups = ["route", "deployment", "provider", "upstream_model"]
    params: tuple[Any, ...] = ()
    if tag_key is not None:
        # bound, never spliced: the key is data
        groups.append("tags->>?3" if d.postgres else "json_extract(tags, ?3)")
        if not d.postgres and ('"' in tag_key or "\\" in tag_key):
            raise ValueError("a tag key cannot hold a double quote or a backslash")
        params = (tag_key if d.postgres else f'$."{tag_key}"',)
    sums = [
        *_TOKENS,
        "SUM(reasoning_tokens)",
        d.money_sum("cost_usd"),
        "SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END)",
    ]
    found = await grouped_sums(store, d, (since, until), groups, sums, _UPSTREAM, params)
    slices = []
    for key, (n, i, c, w, o, r, cost, unpriced) in found.items():
        route, deployment, provider, model = key[:4]
        tag = key[4] if tag_key is not None else None
        slices.append(
            Slice(
                route, deployment, provider, model, None if tag is None else str(tag), int(n), int(i or 0),
                int(c or 0), int(w or 0), int(o or 0), int(r or 0), money(cost or 0), int(unpriced or 0),
            )
        )  # fmt: skip
    slices.sort(key=lambda s: (-s.cost_usd, s.route, s.deployment, s.model, s.tag or ""))
    return slices


async def throughput(
    store: SqliteLedger | PostgresLedger, *, since: float, until: float, bucket_s: float, routes: Sequence[str] = ()
) -> Throughput:
    """The window's tokens, and the busiest ``bucket_s``-second bucket's (buckets start at ``since``).

    Args:
        routes: only these routes' requests (all when empty).
    """
    if bucket_s <= 0:
        raise ValueError("the bucket must be longer than 0 seconds")
    d = dialect_of(store)
    scope = f" AND route IN ({', '.join(f'?{4 + k}' for k in range(len(routes)))})" if routes else ""
    found = await grouped_sums(
        store,
        d,
        (since, until),
        ["floor((ts - ?1) / ?3)"],
        ["SUM(input_tokens)", "SUM(output_tokens)"],
        _UPSTREAM + scope,
        (float(bucket_s), *routes),
    )
    if not found:
        return Throughput(0, 0, 0, None, bucket_s)
    totals = {int(key[0]): (int(i or 0), int(o or 0)) for key, (_, i, o) in found.items()}
    peak_bucket = min(totals, key=lambda b: (-sum(totals[b]), b))
    return Throughput(
        sum(i for i, _ in totals.values()),
        sum(o for _, o in totals.values()),
        sum(totals[peak_bucket]),
        since + peak_bucket * bucket_s,
        bucket_s,
    )
