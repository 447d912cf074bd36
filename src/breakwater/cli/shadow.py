"""``breakwater shadow report ROUTE``: a shadowed route's requests beside their candidate calls.

Reads the ledger the config names, like ``breakwater usage`` (docs/safe-change.md).
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

#: the most ledger rows a report reads
ROWS = 200_000


def register(sub: Any) -> None:
    shadow = sub.add_parser("shadow", help="shadow traffic: a candidate's answers beside the route's")
    actions = shadow.add_subparsers(dest="action", required=True)
    report = actions.add_parser("report", help="agreement, errors, latency and cost of a route's candidate")
    report.add_argument("route")
    report.add_argument(
        "--config", metavar="FILE", help="YAML config naming the ledger (default: the embedded default)"
    )
    report.add_argument("--since", default="24h", help="24h, 7d, 2026-11-01, ISO time or unix seconds (default: 24h)")
    report.add_argument("--json", action="store_true")
    report.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 with the report; 2 on a bad argument; 1 when the ledger cannot be read."""
    try:
        since = parse_instant(args.since, time.time())
    except ValueError as exc:
        print(f"breakwater shadow report: error: {exc}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(_read(args.config, args.route, since))
    except Unreadable as exc:
        print(f"breakwater shadow report: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return 0
    _print(report)
    return 0


async def _read(config_path: str | None, route: str, since: float) -> dict[str, Any]:
    from breakwater.observability.ledger.shadow_report import shadow_report

    async with ledger_of(config_path) as (_, store):
        await store.open()
        rows = await store.fetch(since=since, limit=ROWS)
    return {**shadow_report(rows, route, complete=len(rows) < ROWS), "since": since}


def _print(r: dict[str, Any]) -> None:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:.1f}%"

    def num(value: Any) -> str:
        return "-" if value is None else str(value)

    candidates = ", ".join(r["candidates"]) or "(none yet)"
    print(
        f"Shadow of route {r['route']} -> {candidates}: {r['pairs']} pairs since {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(r['since']))}"
    )
    if not r["complete"]:
        print(f"  (the window holds more than {ROWS:,} ledger rows: only the first were read)")
    print(f"  candidate errors        {r['candidate_errors']} ({pct(r['candidate_error_rate'])})")
    print(f"  exact agreement         {pct(r['exact_agreement'])}")
    similar = next(k for k in r if k.startswith("similar_share_"))
    print(
        f"  embedding similarity    mean {num(r['similarity_mean'])}, p50 {num(r['similarity_p50'])}, "
        f"{similar.removeprefix('similar_share_')}+ {pct(r[similar])} ({r['similarity_measured']} measured)"
    )
    print(f"  {'':22}  {'primary':>14}  {'candidate':>14}")
    for label, key in (
        ("latency p50 ms", "latency_p50_ms"),
        ("latency p95 ms", "latency_p95_ms"),
        ("cost per request USD", "cost_per_request_usd"),
        ("output tokens (mean)", "output_tokens_mean"),
    ):
        print(f"  {label:<22}  {num(r['primary'][key]):>14}  {num(r['candidate'][key]):>14}")
