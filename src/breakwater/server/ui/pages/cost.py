"""Cost: spend by user, key, team, route, model, deployment or tag over a window, the top groups
over time, what caching and routing saved, and the table as CSV.

The table is the usage report's figures (``observability/ledger/aggregate.aggregate``, as
``/admin/usage``), read from the hourly rollup for windows long enough (``hourly.cost_table``);
the chart is ``dashboard.cost_series``. Teams are not a ledger column: a team's figures, in the
table and over time, are its keys' figures added up (keys as they belong to teams now).
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import orjson

from breakwater.core.errors import InvalidRequest
from breakwater.observability.ledger.aggregate import aggregate
from breakwater.observability.ledger.dashboard import cost_series, totals
from breakwater.observability.ledger.hourly import cost_table
from breakwater.server.ui.reads import ledger_store, read
from breakwater.server.ui.view import Download, Page, PageHandler, Reply, View

GROUPS = ("user", "key", "team", "route", "model", "deployment", "tag")
TABLE_ROWS = 1000
CHART_GROUPS = 8
_SUMMED = ("requests", "errors", "input_tokens", "cached_input_tokens", "output_tokens", "cache_hits")
_MONEY = ("cost_usd", "saved_usd", "routing_saved_usd")
NO_TEAM = "(no team)"


def _grouping(view: View) -> tuple[str, str | None]:
    by = view.query.get("by", "user")
    if by not in GROUPS:
        raise InvalidRequest(f"Group cost by one of {', '.join(GROUPS)}", param="by")
    tag = view.query.get("tag", "").strip() or None
    if by == "tag" and tag is None:
        raise InvalidRequest("Name the tag to group by (tag=<name>)", param="tag")
    return by, tag if by == "tag" else None


async def _groups(view: View, by: str, tag: str | None, since: float, until: float) -> list[dict[str, Any]]:
    store = ledger_store(view)
    ledger_by = "key" if by == "team" else by
    rows = await read(cost_table(store, by=ledger_by, since=since, until=until, limit=TABLE_ROWS, tag_key=tag))
    if rows is None:  # a window too short for the hourly rollup
        page = await read(aggregate(store, by=ledger_by, since=since, until=until, limit=TABLE_ROWS, tag_key=tag))
        rows = page.groups
    if by == "key":
        labels = await _key_labels(view)
        rows = [{**r, "label": labels.get(str(r["group"]), r["group"])} for r in rows]
    if by == "team":
        rows = await _by_team(view, rows)
    return rows


async def _key_labels(view: View) -> dict[str, str]:
    admin = view.runtime.access.admin
    if admin is None:
        return {}
    return {k.id: f"{k.prefix} {k.name}".strip() for k in await admin.keys()}


async def _team_of(view: View) -> dict[str, str]:
    """Each key's team now (keys without one are not listed)."""
    admin = view.runtime.access.admin
    return {} if admin is None else {k.id: k.team for k in await admin.keys() if k.team}


async def _by_team(view: View, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    team_of = await _team_of(view)
    teams: dict[str, dict[str, Any]] = {}
    for row in keys:
        team = team_of.get(str(row["group"]), NO_TEAM)
        into = teams.setdefault(team, {"group": team, **dict.fromkeys(_SUMMED, 0), **dict.fromkeys(_MONEY, Decimal(0))})
        for name in _SUMMED:
            into[name] += row.get(name) or 0
        for name in _MONEY:
            into[name] += Decimal(row.get(name) or 0)
    out = []
    for t in teams.values():
        out.append({**t, **{name: str(t[name]) for name in _MONEY}, "error_rate": t["errors"] / t["requests"]})
    out.sort(key=lambda r: (-Decimal(r["cost_usd"]), -r["requests"]))
    return out


async def cost_page(view: View) -> Reply:
    name, since, until, _ = view.window()
    by, tag = _grouping(view)
    rows = await _groups(view, by, tag, since, until)
    whole = await read(totals(ledger_store(view), since=since, until=until))
    query = f"window={name}&by={by}" + (f"&tag={tag}" if tag else "")
    context = {
        "window": name,
        "by": by,
        "tag": tag or "",
        "groups": GROUPS,
        "rows": rows,
        "totals": whole,
        "query": query,
    }
    return Page("cost.html", context)


async def cost_data(view: View) -> Reply:
    """The top groups' spend per bucket: ``{"x", "charts": {"cost": [{"label", "values"}]}}``."""
    _, since, until, step = view.window()
    by, tag = _grouping(view)
    merge = None
    if by == "team":  # the keys' costs, each added to its team's
        team_of = await _team_of(view)

        def merge(key: Any) -> str:
            return team_of.get(str(key), NO_TEAM)

    found = await read(
        cost_series(
            ledger_store(view),
            by="key" if by == "team" else by,
            since=since,
            until=until,
            step_s=int(step),
            top=CHART_GROUPS,
            tag_key=tag,
            merge=merge,
        )
    )
    labels = await _key_labels(view) if by == "key" else {}
    buckets = found["buckets"]
    charts = [
        {"label": labels.get(g, g), "values": [float(Decimal(b["cost_usd"][g])) for b in buckets]}
        for g in found["groups"]
    ]
    body = {"x": [b["t"] for b in buckets], "charts": {"cost": charts}}
    return Download(orjson.dumps(body), b"application/json")


async def cost_csv(view: View) -> Reply:
    """The cost table as CSV (every group, up to 1000)."""
    name, since, until, _ = view.window()
    by, tag = _grouping(view)
    rows = await _groups(view, by, tag, since, until)
    out = io.StringIO()
    writer = csv.writer(out)
    columns = ["requests", "errors", "input_tokens", "cached_input_tokens", "output_tokens", *_MONEY]
    writer.writerow([by, *columns])
    for row in rows:
        writer.writerow([_cell(row["group"]), *(row.get(c) for c in columns)])
    filename = f"breakwater-cost-by-{by}-{name}.csv"
    return Download(out.getvalue().encode(), b"text/csv; charset=utf-8", filename)


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


ROUTES: dict[tuple[str, str], PageHandler] = {
    ("GET", "/ui/cost"): cost_page,
    ("GET", "/ui/api/cost"): cost_data,
    ("GET", "/ui/cost.csv"): cost_csv,
}
