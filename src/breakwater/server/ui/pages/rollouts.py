"""Rollouts and quality.

Rollouts: each route with variants (canary or A/B: arms, weights, guards, ramp) or a shadow
(candidate route, share), and its variants side by side from the ledger against the control
(``observability/ledger/compare.py``, as ``/admin/compare``); a shadow's pairs, failures and
agreement in the window, summed by the ledger (``observability/ledger/shadow_stats.py``).

Quality: each route with a drift watch, its rolling score against the baseline now (the drift
stage, as ``/admin/drift``) and its graded samples' mean score per time bucket (the ledger's
eval score table: sampled rows only, a few per bucket).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson

from breakwater.observability.ledger.compare import compare, public
from breakwater.observability.ledger.shadow_stats import shadow_stats
from breakwater.server.ui.reads import ledger_on, ledger_store, read
from breakwater.server.ui.view import Download, Page, PageHandler, Reply, View


async def rollouts_page(view: View) -> Reply:
    name, since, until, _ = view.window()
    routes: list[dict[str, Any]] = []
    for route, config in sorted(view.runtime.config.routes.items()):
        variants, shadow = config.variants, config.shadow
        if variants is None and shadow is None:
            continue
        entry: dict[str, Any] = {"route": route, "variants": None, "shadow": None, "report": None}
        if variants is not None:
            entry["variants"] = {
                "sticky": variants.sticky,
                "control": variants.control,
                "arms": [
                    {"name": n, "route": a.route, "weight": a.weight, "prompt": a.prompt}
                    for n, a in variants.arms.items()
                ],
                "guards": variants.guards is not None,
                "ramp": None if variants.ramp is None else variants.ramp.model_dump(mode="json"),
            }
            if ledger_on(view):
                report = await read(
                    compare(
                        ledger_store(view),
                        route=route,
                        since=since,
                        until=until,
                        arms=list(variants.arms),
                        control=variants.control,
                    )
                )
                entry["report"] = public(report)
        if shadow is not None:
            entry["shadow"] = {"route": shadow.route, "share": shadow.share, "stats": None}
            if ledger_on(view):
                stats = shadow_stats(ledger_store(view), route=route, since=since, until=until)
                entry["shadow"]["stats"] = await read(stats)
        routes.append(entry)
    return Page("rollouts.html", {"window": name, "routes": routes})


async def quality_page(view: View) -> Reply:
    name = view.window()[0]
    stage = view.runtime.drift
    watched = [] if stage is None else sorted(stage.plans)
    rows = []
    for route in watched:
        assert stage is not None
        reading, plan = stage.reading(route), stage.plans[route]
        rows.append(
            {
                "route": route,
                "current": reading.current,
                "baseline": reading.baseline,
                "samples": reading.current_samples,
                "line": None if reading.baseline is None else reading.baseline * (1 - plan.margin),
                "alerting": stage.watches[route].alerting,
                "share": plan.share,
            }
        )
    return Page("quality.html", {"window": name, "rows": rows, "ledger": ledger_on(view)})


async def quality_data(view: View) -> Reply:
    """Each watched route's mean graded score per bucket: ``{"x", "charts": {"drift": [...]}}``."""
    _, since, until, step = view.window()
    stage = view.runtime.drift
    watched = [] if stage is None else sorted(stage.plans)
    store = ledger_store(view)
    count = int((until - since) // step)
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0] * count)
    ns: dict[str, list[int]] = defaultdict(lambda: [0] * count)
    if watched:
        for score in await read(store.fetch_eval_scores(since=since)):
            i = int((score.ts - since) // step)
            if score.route in watched and 0 <= i < count:
                sums[score.route][i] += score.score
                ns[score.route][i] += 1
    charts = [
        {"label": r, "values": [s / n if n else None for s, n in zip(sums[r], ns[r], strict=True)]} for r in watched
    ]
    body = {"x": [since + i * step for i in range(count)], "charts": {"drift": charts}}
    return Download(orjson.dumps(body), b"application/json")


ROUTES: dict[tuple[str, str], PageHandler] = {
    ("GET", "/ui/rollouts"): rollouts_page,
    ("GET", "/ui/quality"): quality_page,
    ("GET", "/ui/api/quality"): quality_data,
}
