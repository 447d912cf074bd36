"""Requests: the ledger's rows found by a filter, newest first, a page at a time; and one
request's detail: its row and its shadow calls', attempts, cost breakdown and, where the route
captured them, the prompt and answer (redacted when captured, ``observability/capture.py``).

The filter is the query string, so a search is a link that can be shared and the page works
without JavaScript; pages continue by the explorer's cursor (``observability/ledger/explorer.py``).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from breakwater.core.errors import InvalidRequest, NotFound
from breakwater.core.pricing import cost
from breakwater.core.types import Usage
from breakwater.observability.ledger.aggregate import parse_instant
from breakwater.observability.ledger.dashboard import RowFilter, request_rows, search
from breakwater.observability.ledger.row import LedgerRow
from breakwater.server.ui.reads import ledger_store, read
from breakwater.server.ui.view import Page, PageHandler, Reply, View

PAGE_ROWS = 50
#: the filter's fields as the form names them
FIELDS = ("since", "until", "route", "user", "key_id", "status", "model", "min_cost_usd", "min_latency_ms")
STATUSES = ("", "ok", "error", "4xx", "5xx")


def _filter(view: View) -> RowFilter:
    q = {k: v.strip() for k, v in view.query.items() if k in FIELDS and v.strip()}

    def instant(name: str, default: float) -> float:
        if name not in q:
            return default
        try:
            return parse_instant(q[name], view.now)
        except ValueError as exc:
            raise InvalidRequest(f"Invalid {name}: {exc}", param=name) from None

    since = instant("since", view.now - 86400.0)
    until = instant("until", view.now + 1)
    min_cost: Decimal | None = None
    if "min_cost_usd" in q:
        try:
            min_cost = Decimal(q["min_cost_usd"])
        except InvalidOperation:
            raise InvalidRequest("Invalid min_cost_usd: a decimal number of USD", param="min_cost_usd") from None
    min_latency: float | None = None
    if "min_latency_ms" in q:
        try:
            min_latency = float(q["min_latency_ms"])
        except ValueError:
            raise InvalidRequest("Invalid min_latency_ms: a number of milliseconds", param="min_latency_ms") from None
    try:
        return RowFilter(
            since=since,
            until=until,
            route=q.get("route"),
            user=q.get("user"),
            key_id=q.get("key_id"),
            status=q.get("status"),
            model=q.get("model"),
            min_cost_usd=min_cost,
            min_latency_ms=min_latency,
        )
    except ValueError as exc:
        raise InvalidRequest(f"Invalid filter: {exc}") from None


async def requests_page(view: View) -> Reply:
    f = _filter(view)
    cursor = view.query.get("cursor") or None
    rows, after = await read(search(ledger_store(view), f, limit=PAGE_ROWS, cursor=cursor))
    kept = {k: v for k, v in view.query.items() if k in FIELDS and v.strip()}
    context: dict[str, Any] = {
        "rows": [_summary(r) for r in rows],
        "form": {name: view.query.get(name, "") for name in FIELDS},
        "statuses": STATUSES,
        "routes": sorted(view.runtime.config.routes),
        "next": None if after is None else "/ui/requests?" + urlencode({**kept, "cursor": after}),
        "first": "/ui/requests?" + urlencode(kept) if cursor else None,
    }
    return Page("requests.html", context)


async def request_detail(view: View) -> Reply:
    request_id = view.query.get("id", "")
    if not request_id:
        raise InvalidRequest("Name the request: /ui/request?id=<request id>", param="id")
    rows = await read(request_rows(ledger_store(view), request_id))
    if not rows:
        raise NotFound(f"No request {request_id!r} in the ledger")
    main = [r for r in rows if r.shadow_of is None] or rows[:1]
    shadows = [r for r in rows if r not in main]
    context = {"request_id": request_id, "rows": [_detail(view, r) for r in main], "shadows": shadows}
    return Page("request.html", context)


def _summary(row: LedgerRow) -> dict[str, Any]:
    return {
        "request_id": row.request_id,
        "ts": row.ts,
        "route": row.route,
        "model": row.upstream_model,
        "deployment": row.deployment,
        "user": row.user,
        "key_id": row.key_id,
        "status": row.status,
        "error_class": row.error_class,
        "tokens": row.input_tokens + row.output_tokens,
        "cost_usd": row.cost_usd,
        "latency_ms": row.latency_ms,
        "cache": row.cache,
        "attempts": row.attempts,
    }


def _detail(view: View, row: LedgerRow) -> dict[str, Any]:
    """The row's fields, with its cost split by token kind at the deployment's price today
    (``None`` without a known price; the row's own ``cost_usd`` is what was charged)."""
    fields = asdict(row)
    price = (
        view.runtime.prices.known(row.deployment, row.provider or None, row.upstream_model) if row.deployment else None
    )
    usage = Usage(
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cached_input_tokens=row.cached_input_tokens,
        cache_creation_input_tokens=row.cache_write_tokens,
        reasoning_tokens=row.reasoning_tokens,
    )
    fields["breakdown"] = None if price is None else cost(usage, price)
    fields["tags_text"] = ", ".join(f"{k}={v}" for k, v in sorted(row.tags.items()))
    fields["tps"] = None if row.output_tps is None or not math.isfinite(row.output_tps) else row.output_tps
    return fields


ROUTES: dict[tuple[str, str], PageHandler] = {
    ("GET", "/ui/requests"): requests_page,
    ("GET", "/ui/request"): request_detail,
}
