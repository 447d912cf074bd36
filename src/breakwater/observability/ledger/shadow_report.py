"""Reading shadow traffic back: each candidate call beside the call it mirrored (docs/safe-change.md).

A candidate call's ledger row names the request it mirrors (``shadow_of``); the report pairs it
with that request's row and compares them: how often the candidate failed, how often the two
answers agree (exactly, and by embedding similarity where it was measured), and the latency and
cost of each. It reads the window's rows with the store's ``fetch`` (both stores), so a window is
bounded by ``limit`` rows: the report says when it was cut.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from breakwater.observability.ledger.row import LedgerRow

#: a similarity at or above this counts as agreeing in meaning
SIMILAR = 0.9


def shadow_report(rows: list[LedgerRow], route: str, *, complete: bool = True) -> dict[str, Any]:
    """The pairs of ``route``'s requests and their candidate calls among ``rows``.

    Args:
        complete: ``False`` when ``rows`` were cut by a limit (said in the report).
    """
    primaries = {r.request_id: r for r in rows if r.route == route and r.shadow_of is None}
    pairs = [(primaries[r.shadow_of], r) for r in rows if r.shadow_of is not None and r.shadow_of in primaries]
    answered = [(p, c) for p, c in pairs if c.status < 400]
    similarities = [c.shadow_similarity for _, c in answered if c.shadow_similarity is not None]
    exact = [c.shadow_exact for _, c in answered if c.shadow_exact is not None]
    return {
        "route": route,
        "candidates": sorted({c.route for _, c in pairs}),
        "pairs": len(pairs),
        "candidate_errors": len(pairs) - len(answered),
        "candidate_error_rate": _share(len(pairs) - len(answered), len(pairs)),
        "exact_agreement": _share(sum(exact), len(exact)),
        "similarity_measured": len(similarities),
        "similarity_mean": None if not similarities else round(sum(similarities) / len(similarities), 4),
        "similarity_p50": _rank(sorted(similarities), 50),
        f"similar_share_{SIMILAR:g}": _share(sum(s >= SIMILAR for s in similarities), len(similarities)),
        "primary": _side([p for p, _ in answered]),
        "candidate": _side([c for _, c in answered]),
        "complete": complete,
    }


def _side(rows: list[LedgerRow]) -> dict[str, Any]:
    latencies = sorted(r.latency_ms for r in rows)
    priced = [r.cost_usd for r in rows if r.cost_usd is not None]
    return {
        "latency_p50_ms": _rank(latencies, 50),
        "latency_p95_ms": _rank(latencies, 95),
        "cost_per_request_usd": None if not priced else str(sum(priced, Decimal(0)) / len(priced)),
        "unpriced": len(rows) - len(priced),
        "output_tokens_mean": None if not rows else round(sum(r.output_tokens for r in rows) / len(rows), 1),
    }


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _rank(values: list[float], p: int) -> float | None:
    """The nearest-rank percentile of sorted ``values``."""
    if not values:
        return None
    return values[max(0, -(-p * len(values) // 100) - 1)]
