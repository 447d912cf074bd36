"""``GET /admin/drift``: each watched route's rolling eval score against its baseline
(``engine/drift/stage.py``; docs/evals.md, "Drift watch").

Query: ``route`` (optional: one route). Admin-only (``AdminAuth``), like every ``/admin/*`` view.
The figures are this process's own samples (each replica grades its own share); what was graded
is in the ledger's eval score table for every replica.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import orjson

from breakwater.core.errors import BreakwaterError, InvalidRequest, NotFound
from breakwater.engine.drift.stage import DriftStage
from breakwater.server import errors
from breakwater.server.admin import AdminAuth
from breakwater.server.asgi import JSON_HEADERS, Receive, Scope, Send, send_bytes

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


def drift_handler(auth: AdminAuth, stage: DriftStage | None) -> Handler:
    """The handler over the running configuration's drift stage (``None``: no route is watched)."""

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        if not await auth.check(scope, send):
            return
        try:
            routes = _routes(scope.get("query_string", b""), stage)
        except BreakwaterError as exc:
            status, headers, body = errors.openai_error(exc, "admin")
            await send_bytes(send, status, body, headers)
            return
        data = [] if stage is None else [_route(stage, r) for r in routes]
        await send_bytes(send, 200, orjson.dumps({"object": "list", "data": data}), JSON_HEADERS)

    return handler


def _routes(raw: bytes, stage: DriftStage | None) -> list[str]:
    params = {k: v[-1] for k, v in parse_qs(raw.decode("latin-1")).items()}
    unknown = sorted(set(params) - {"route"})
    if unknown:
        raise InvalidRequest(f"Unknown query parameter {unknown[0]!r}", param=unknown[0])
    watched = [] if stage is None else sorted(stage.plans)
    route = params.get("route")
    if route is None:
        return watched
    if route not in watched:
        raise NotFound(f"Route {route!r} has no drift watch (routes.{route}.drift)", param="route")
    return [route]


def _route(stage: DriftStage, route: str) -> dict[str, Any]:
    plan, watch, reading = stage.plans[route], stage.watches[route], stage.reading(route)
    counts = stage.counts
    return {
        "route": route,
        "current": reading.current,
        "baseline": reading.baseline,
        "samples": reading.current_samples,
        "baseline_samples": reading.baseline_samples,
        "alerting": watch.alerting,
        "line": None if reading.baseline is None else reading.baseline * (1 - plan.margin),
        "share": plan.share,
        "window_s": plan.window_s,
        "baseline_s": plan.baseline_s,
        "margin": plan.margin,
        "min_samples": plan.min_samples,
        "queued": stage.queued(route),
        "scored": counts.scored.get(route, 0),
        "dropped": counts.dropped.get(route, 0),
        "failed": counts.failed.get(route, 0),
    }
