"""Overview: traffic, errors, latency, time to first token, spend and cache savings over a window,
with spend today and this month against the budgets.

The figures come from the ledger's aggregate queries (``observability/ledger/dashboard.py``):
``series`` for the charts and the per-bucket table, ``totals`` for the tiles; the budgets from
the limiter's own counters (``admin_keys.budgets``, as ``GET /admin/budgets``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from breakwater.observability.ledger.dashboard import series, totals
from breakwater.server.admin_keys import budgets
from breakwater.server.ui.reads import ledger_on, ledger_store, read
from breakwater.server.ui.view import Download, Page, PageHandler, Reply, View

JSON = b"application/json"


async def overview(view: View) -> Reply:
    name, since, until, step = view.window()
    context: dict[str, Any] = {"window": name, "ledger": ledger_on(view), "budgets": await _budgets(view)}
    if not context["ledger"]:
        return Page("overview.html", context)
    store = ledger_store(view)
    day, month = _day_start(view.now), _month_start(view.now)
    context["totals"] = await read(totals(store, since=since, until=until))
    context["today"] = await read(totals(store, since=day, until=view.now + 1))
    context["month"] = await read(totals(store, since=month, until=view.now + 1))
    context["buckets"] = await read(series(store, since=since, until=until, step_s=int(step)))
    context["step"] = step
    return Page("overview.html", context)


async def overview_data(view: View) -> Reply:
    """The overview's charts: ``{"x": [bucket starts], "charts": {name: [{"label", "values"}]}}``."""
    _, since, until, step = view.window()
    buckets = await read(series(ledger_store(view), since=since, until=until, step_s=int(step)))
    return Download(orjson.dumps(traffic_charts(buckets, step)), JSON)


def traffic_charts(buckets: list[dict[str, Any]], step: float) -> dict[str, Any]:
    """``series``' buckets as chart columns (shared with the per-route charts)."""

    def column(name: str) -> list[Any]:
        return [b[name] for b in buckets]

    def money(name: str) -> list[float]:
        return [float(Decimal(b[name])) for b in buckets]

    return {
        "x": column("t"),
        "charts": {
            "traffic": [{"label": "requests/s", "values": [b["requests"] / step for b in buckets]}],
            "errors": [{"label": "error rate", "values": column("error_rate")}],
            "latency": [
                {"label": "p50", "values": column("latency_p50_ms")},
                {"label": "p95", "values": column("latency_p95_ms")},
            ],
            "ttft": [
                {"label": "TTFT p50", "values": column("ttft_p50_ms")},
                {"label": "TTFT p95", "values": column("ttft_p95_ms")},
            ],
            "cost": [{"label": "spend", "values": money("cost_usd")}, {"label": "saved", "values": money("saved_usd")}],
        },
    }


async def _budgets(view: View) -> list[dict[str, object]]:
    access = view.runtime.access
    return await budgets(access.admin, access.quota)


def _day_start(now: float) -> float:
    return datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def _month_start(now: float) -> float:
    return datetime.fromtimestamp(now, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


ROUTES: dict[tuple[str, str], PageHandler] = {
    ("GET", "/ui/"): overview,
    ("GET", "/ui/api/overview"): overview_data,
}
