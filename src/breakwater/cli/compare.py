"""``breakwater compare ROUTE``: a route's variants side by side from the ledger, each against the
control with the difference and whether it is significant (docs/variants.md).

Reads the ledger the config names, like ``breakwater usage`` (it works whether or not the
gateway runs); the config also gives the route's arms, in order, and its control.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import orjson

from breakwater.cli.usage import Unreadable, ledger_of
from breakwater.observability.ledger.aggregate import parse_instant
from breakwater.observability.ledger.compare import compare, public

#: (key, heading, format) of each row of the table; a rate as a percentage
ROWS: tuple[tuple[str, str, str], ...] = (
    ("requests", "requests", "int"),
    ("error_rate", "error rate", "pct"),
    ("latency_p50_ms", "latency p50 ms", "ms"),
    ("latency_p95_ms", "latency p95 ms", "ms"),
    ("latency_mean_ms", "latency mean ms", "ms"),
    ("ttft_p50_ms", "TTFT p50 ms", "ms"),
    ("cost_per_request_usd", "cost / request USD", "usd"),
    ("refusal_rate", "refusal rate", "pct"),
    ("length_share", "finish=length share", "pct"),
    ("feedback_score", "feedback score", "score"),
)


def register(sub: Any) -> None:
    """Add the ``compare`` subcommand to the ``breakwater`` parser's subparsers."""
    cmd = sub.add_parser("compare", help="a route's variants side by side, with significance (the ledger)")
    cmd.add_argument("route", help="the route with variants")
    cmd.add_argument("--config", metavar="FILE", help="YAML config naming the ledger (default: the embedded default)")
    cmd.add_argument("--since", default="24h", help="24h, 7d, 2026-11-01, ISO time or unix seconds (default: 24h)")
    cmd.add_argument("--until", default=None, help="same forms as --since (default: now)")
    cmd.add_argument("--control", default=None, help="the arm to compare against (default: the route's control)")
    cmd.add_argument("--json", action="store_true", help="print JSON instead of a table")
    cmd.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 with the report; 2 on a bad argument; 1 when the ledger cannot be read."""
    now = time.time()
    try:
        since = parse_instant(args.since, now)
        until = now if args.until is None else parse_instant(args.until, now)
        if since >= until:
            raise ValueError("--since must be before --until")
    except ValueError as exc:
        print(f"breakwater compare: error: {exc}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(_read(args.config, args.route, since, until, args.control))
    except (Unreadable, ValueError) as exc:
        print(f"breakwater compare: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, Unreadable) else 2
    if args.json:
        sys.stdout.write(orjson.dumps(public(report), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _table(report)
    return 0


async def _read(config_path: str | None, route: str, since: float, until: float, control: str | None) -> dict[str, Any]:
    async with ledger_of(config_path) as (config, store):
        configured = config.routes.get(route)
        variants = configured.variants if configured is not None else None
        arms = list(variants.arms) if variants is not None else []
        if control is None and variants is not None:
            control = variants.control
        if control is not None and arms and control not in arms:
            raise ValueError(f"--control {control!r} is not an arm of {route!r} (arms: {', '.join(arms)})")
        return await compare(store, route=route, since=since, until=until, arms=arms, control=control)


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "int":
        return f"{value:,}"
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "ms":
        return f"{value:.1f}"
    if kind == "usd":
        return f"{float(value):.6f}"
    return f"{value:.3f}"


def _difference(entry: dict[str, Any] | None, kind: str) -> str:
    """``+1.20% (p=0.003, significant)``, or ``-`` when there is nothing to compare."""
    if entry is None or entry["difference"] is None:
        return "-"
    value = entry["difference"]
    shown = f"{value * 100:+.2f}%" if kind == "pct" else f"{float(value):+.6f}" if kind == "usd" else f"{value:+.2f}"
    p = entry["p_value"]
    if p is None:
        return shown
    return f"{shown} (p={p:.3g}{', significant' if entry['significant'] else ''})"


def _table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    def when(ts: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))

    variants = report["variants"]
    table = Table(title=f"Variants of {report['route']}, {when(report['since'])} → {when(report['until'])}")
    table.add_column("", no_wrap=True)
    for v in variants:
        table.add_column(f"{v['variant']} (control)" if v["control"] else v["variant"], justify="right", no_wrap=True)
        if not v["control"]:
            table.add_column(f"{v['variant']} vs control", justify="right", no_wrap=True)
    for key, heading, kind in ROWS:
        cells = [heading]
        for v in variants:
            cells.append(_cell(v[key], kind))
            if not v["control"]:
                cells.append("" if key == "requests" else _difference((v["vs_control"] or {}).get(key), kind))
        table.add_row(*cells)
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    if not any(v["requests"] for v in variants):
        print(f"no requests with a variant on route {report['route']!r} in this window", file=sys.stderr)
