"""The budgets' state for the admin view (``GET /admin/budgets``): read, never counted.

A budget has two counters per period (``engine/limits/quota.py``): ``spend`` holds the settled
spend plus the reservations of requests still running (what admission compares to the cap), and
``spent`` only the settled spend (what alerts and this report call spent).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from breakwater.core.limits import from_nano, period_span
from breakwater.engine.limits.checks import Scope
from breakwater.engine.limits.counters import Window
from breakwater.engine.ports import Counters


async def read_budgets(counters: Counters, scopes: Sequence[Scope], now: float) -> list[dict[str, object]]:
    """The budget of each scope that has one, for the period at ``now``: cap, settled spend,
    committed (with reservations), as ``counters`` count them."""
    rows: list[dict[str, object]] = []
    windows: list[Window] = []
    for scope in scopes:
        budget = scope.limits.budget
        if budget is None:
            continue
        span = period_span(budget.period, now)
        base = f"{scope.kind}:{scope.subject}"
        windows += [
            Window(f"spent:{span.id}:{base}", budget.cap_nano, 0, 0),
            Window(f"spend:{span.id}:{base}", budget.cap_nano, 0, 0),
        ]
        rows.append(
            {
                "scope": scope.kind,
                "subject": scope.subject,
                "budget_usd": str(budget.usd),
                "period": budget.period,
                "period_id": span.id,
                "resets_at": span.end,
            }
        )
    if not windows:
        return rows
    readings = await counters.read(windows, now)
    for i, row in enumerate(rows):
        spent, committed = readings[2 * i].count, readings[2 * i + 1].count
        cap = Decimal(str(row["budget_usd"]))
        row["spent_usd"] = str(from_nano(spent))
        row["committed_usd"] = str(from_nano(committed))
        row["used_share"] = float(from_nano(spent) / cap) if cap else 0.0
    return rows
