"""Reliability: per deployment, its breaker and load now (this process's ``Gateway.deployments``,
as ``/admin/deployments``) beside how its requests went in the window (the ledger's
``dashboard.reliability``: error classes, retries, fallbacks, latency percentiles)."""

from __future__ import annotations

from typing import Any

from breakwater.observability.ledger.dashboard import reliability
from breakwater.server.ui.reads import ledger_on, ledger_store, read
from breakwater.server.ui.view import Page, PageHandler, Reply, View


async def reliability_page(view: View) -> Reply:
    name, since, until, _ = view.window()
    live = {str(d["name"]): d for d in view.runtime.gateway.deployments()}
    history = await read(reliability(ledger_store(view), since=since, until=until)) if ledger_on(view) else []
    rows: list[dict[str, Any]] = []
    for past in history:
        now = live.pop(past["deployment"], None)
        rows.append({**past, "live": now})
    for deployment, now in sorted(live.items()):  # used since the process started, not in the window
        rows.append({"deployment": deployment, "live": now})
    configured = set(view.runtime.config.deployments)
    idle = sorted(configured - {r["deployment"] for r in rows})
    return Page("reliability.html", {"window": name, "rows": rows, "idle": idle})


ROUTES: dict[tuple[str, str], PageHandler] = {("GET", "/ui/reliability"): reliability_page}
