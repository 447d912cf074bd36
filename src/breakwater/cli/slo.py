"""``breakwater slo``: each route objective's target, current share, error budget left and time to
exhaustion at the current burn, read from the ledger (docs/slo.md).

Reads the ledger the config names directly, like ``breakwater usage``, so it works whether or not
the gateway is running and shows the same figures as ``GET /admin/slo``. Output is a table for
people or JSON (``--json``) for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import orjson

from breakwater.cli.usage import Unreadable, ledger_of
from breakwater.observability.slo import SloStatus, measure, objectives


def register(sub: Any) -> None:
    """Add the ``slo`` subcommand to the ``breakwater`` parser's subparsers."""
    slo = sub.add_parser("slo", help="per-route SLOs: objective, current, error budget left, time to exhaustion")
    slo.add_argument(
        "--config", metavar="FILE", help="YAML config with the routes' slo (default: the embedded default)"
    )
    slo.add_argument("--route", default=None, help="only this route")
    slo.add_argument("--json", action="store_true", help="JSON instead of a table")
    slo.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 with the report; 1 when the config or the ledger cannot be read, or nothing has an slo."""
    try:
        statuses = asyncio.run(_read(args.config, args.route, time.time()))
    except Unreadable as exc:
        print(f"breakwater slo: {exc}", file=sys.stderr)
        return 1
    if args.json:
        body = {"object": "list", "data": [s.to_json() for s in statuses]}
        sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _table(statuses)
    return 0


async def _read(config_path: str | None, route: str | None, now: float) -> list[SloStatus]:
    async with ledger_of(config_path) as (config, store):
        wanted = [o for o in objectives(config.routes) if route is None or o.route == route]
        if not wanted:
            where = f"route {route!r}" if route is not None else "any route"
            raise Unreadable(f"no slo on {where} in {config_path or 'the embedded default config'} (routes.X.slo)")
        return await measure(store, wanted, now)


def duration(seconds: float | None) -> str:
    """``None`` as "never", else the largest two units (``3d 4h``, ``12m``)."""
    if seconds is None:
        return "never"
    if seconds <= 0:
        return "exhausted"
    parts: list[str] = []
    left = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
    return " ".join(parts[:2])


def _objective(s: SloStatus) -> str:
    o = s.objective
    if o.name == "refusal_rate":
        return f"refusals <= {(1 - o.target) * 100:g}%"
    under = "" if o.threshold_ms is None else f" < {o.threshold_ms:g} ms"
    return f"{o.name}{under} {o.target * 100:g}% / {duration(o.window_s)}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.3f}%"


def _table(statuses: list[SloStatus]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="SLOs (from the ledger)")
    for name in ("route", "objective", "requests", "current", "budget left", "burn 1h", "burn 6h", "exhaustion"):
        table.add_column(name, justify="left" if name in ("route", "objective") else "right", no_wrap=True)
    for s in statuses:
        table.add_row(
            s.objective.route,
            _objective(s),
            f"{s.eligible:,}",
            _share(s.current),
            _share(s.budget_remaining),
            *("-" if s.burn[w] is None else f"{s.burn[w]:.2f}x" for w in ("1h", "6h")),
            duration(s.exhaustion_s),
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)
