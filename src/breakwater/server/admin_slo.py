"""``GET /admin/slo``: each route objective's target, current share, error budget left, burn
rates and time to exhaustion (``observability/slo.py``; docs/slo.md).

Query: ``route`` (optional: one route). Admin-only (``AdminAuth``), like every ``/admin/*`` view.
Measured from the ledger at the time of the call (exact, the whole fleet when the ledger is
shared), not from the background view ``/metrics`` shows; the burn alerts active are this
process's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

import orjson

from breakwater.core.errors import BackendUnavailable, BreakwaterError, InvalidRequest, NotFound
from breakwater.observability.slo_alerts import SloTask
from breakwater.server import errors
from breakwater.server.admin import AdminAuth
from breakwater.server.asgi import JSON_HEADERS, Receive, Scope, Send, send_bytes

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]
log = logging.getLogger("breakwater.slo")


def slo_handler(auth: AdminAuth, task: SloTask | None) -> Handler:
    """The handler over the running configuration's SLOs (``None``: no route has an ``slo``, or no ledger)."""

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        if not await auth.check(scope, send):
            return
        try:
            route = _route(scope.get("query_string", b""), task)
            data = [] if task is None else await _measure(task, route)
        except BreakwaterError as exc:
            status, headers, body = errors.openai_error(exc, "admin")
            await send_bytes(send, status, body, headers)
            return
        await send_bytes(send, 200, orjson.dumps({"object": "list", "data": data}), JSON_HEADERS)

    return handler


def _route(raw: bytes, task: SloTask | None) -> str | None:
    params = {k: v[-1] for k, v in parse_qs(raw.decode("latin-1")).items()}
    unknown = sorted(set(params) - {"route"})
    if unknown:
        raise InvalidRequest(f"Unknown query parameter {unknown[0]!r}", param=unknown[0])
    route = params.get("route")
    if route is not None and (task is None or all(o.route != route for o in task.monitor.objectives)):
        raise NotFound(f"Route {route!r} has no slo (routes.{route}.slo)", param="route")
    return route


async def _measure(task: SloTask, route: str | None) -> list[dict[str, object]]:
    monitor = task.monitor
    try:
        statuses = await monitor.measure()
    except Exception as exc:  # noqa: BLE001 - a ledger that cannot be read is a 503 saying so, not a 500
        log.warning("GET /admin/slo: the ledger could not be read (%s)", type(exc).__name__)
        raise BackendUnavailable("The request ledger cannot be read right now", code="ledger_unavailable") from None
    out = []
    for status in statuses:
        o = status.objective
        if route is not None and o.route != route:
            continue
        alerting = sorted(rule for r, name, rule in monitor.active if (r, name) == (o.route, o.name))
        out.append({**status.to_json(), "alerting": alerting})
    return out
