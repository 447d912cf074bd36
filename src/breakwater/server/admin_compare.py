"""``GET /admin/compare?route=R``: a route's variants side by side from the ledger, each against
the control with the difference and its significance (``observability/ledger/compare.py``).

Query: ``route`` (required), ``since`` / ``until`` (as ``/admin/usage``; default the last 24
hours), ``control`` (an arm; default the route's marked control, else its first arm). Admin-only
(``AdminAuth``), like every ``/admin/*`` view.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qs

import asyncpg  # type: ignore[import-untyped]
import orjson

from breakwater.core.config import Route
from breakwater.core.errors import BreakwaterError, InvalidRequest, NotFound, Unavailable
from breakwater.observability.ledger.aggregate import parse_instant
from breakwater.observability.ledger.compare import compare, public
from breakwater.observability.ledger.service import Store
from breakwater.server import errors
from breakwater.server.admin import AdminAuth, read_param
from breakwater.server.asgi import JSON_HEADERS, Receive, Scope, Send, send_bytes

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


def compare_handler(
    auth: AdminAuth, store: Store | None, routes: Mapping[str, Route], now: Callable[[], float]
) -> Handler:
    """The handler over the ledger ``store`` (``None``: the ledger is off, 404) and the configured ``routes``."""

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        if not await auth.check(scope, send):
            return
        try:
            if store is None:
                raise NotFound("The request ledger is disabled (ledger.enabled: false): there is nothing to compare")
            route, since, until, control = _query(scope.get("query_string", b""), now())
            variants = routes[route].variants if route in routes else None
            arms = list(variants.arms) if variants is not None else []
            if control is None and variants is not None:
                control = variants.control
            if control is not None and arms and control not in arms:
                raise InvalidRequest(f"Invalid control: {control!r} is not an arm of {route!r}", param="control")
            try:
                report = await compare(store, route=route, since=since, until=until, arms=arms, control=control)
            except (OSError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise Unavailable(
                    f"The ledger database cannot be read: {type(exc).__name__}", code="ledger_unavailable"
                ) from exc
        except BreakwaterError as exc:
            status, headers, body = errors.openai_error(exc, "admin")
            await send_bytes(send, status, body, headers)
            return
        await send_bytes(send, 200, orjson.dumps(public(report)), JSON_HEADERS)

    return handler


def _query(raw: bytes, now: float) -> tuple[str, float, float, str | None]:
    params = {k: v[-1] for k, v in parse_qs(raw.decode("latin-1")).items()}
    unknown = sorted(set(params) - {"route", "since", "until", "control"})
    if unknown:
        raise InvalidRequest(f"Unknown query parameter {unknown[0]!r}", param=unknown[0])
    route = params.get("route")
    if not route:
        raise InvalidRequest("Missing route: the route whose variants to compare", param="route")
    since = read_param(params, "since", lambda v: parse_instant(v, now), now - 86400.0)
    until = read_param(params, "until", lambda v: parse_instant(v, now), now)
    if since >= until:
        raise InvalidRequest("Invalid since: must be before until", param="since")
    return route, since, until, params.get("control") or None
