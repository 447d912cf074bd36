"""``breakwater usage``: spend, tokens, errors, feedback and latency per user/route/model/... from the ledger.

Reads the ledger the config names (``ledger.url``) directly, so it works whether or not the
gateway is running; SQLite is opened read-only, and a SQLite ledger that does not exist is an
error naming the path looked for (a wrong ``--config`` or current directory, not an empty
report). Output is a table for people, JSON or CSV for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from breakwater.observability.ledger.aggregate import UsagePage, aggregate, parse_by, parse_instant

if TYPE_CHECKING:
    from breakwater.core.config import Config
    from breakwater.observability.ledger.service import Store

COLUMNS = (
    "requests",
    "errors",
    "error_rate",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "cost_usd",
    "saved_usd",
    "routing_saved_usd",
    "cache_hits",
    "cache_hit_rate",
    "feedback",
    "feedback_score",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
)


def register(sub: Any) -> None:
    """Add the ``usage`` subcommand to the ``breakwater`` parser's subparsers."""
    usage = sub.add_parser("usage", help="spend, tokens, errors and latency per user, route, model, ... (the ledger)")
    usage.add_argument("--config", metavar="FILE", help="YAML config naming the ledger (default: the embedded default)")
    usage.add_argument(
        "--by",
        default="user",
        help="user | route | model | deployment | key | region | day | tag:<key> (default: user)",
    )
    usage.add_argument("--since", default="24h", help="24h, 7d, 2026-11-01, ISO time or unix seconds (default: 24h)")
    usage.add_argument("--until", default=None, help="same forms as --since (default: now)")
    usage.add_argument("--format", default="table", choices=["table", "json", "csv"])
    usage.add_argument("--limit", type=int, default=50, help="groups to show, costliest first (default: 50)")
    usage.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 with the report; 2 on a bad argument; 1 when the ledger cannot be read."""
    now = time.time()
    try:
        by, tag_key = parse_by(args.by)
        since = parse_instant(args.since, now)
        until = now if args.until is None else parse_instant(args.until, now)
        if not 1 <= args.limit <= 1000:
            raise ValueError("--limit must be between 1 and 1000")
        if since >= until:
            raise ValueError("--since must be before --until")
    except ValueError as exc:
        print(f"breakwater usage: error: {exc}", file=sys.stderr)
        return 2
    try:
        page = asyncio.run(_read(args.config, by, tag_key, since, until, args.limit))
    except Unreadable as exc:
        print(f"breakwater usage: {exc}", file=sys.stderr)
        return 1
    label = f"tag:{tag_key}" if tag_key else by
    if args.format == "json":
        body = {"object": "list", "by": label, "since": since, "until": until, "total": page.total, "data": page.groups}
        sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([label, *COLUMNS])
        for group in page.groups:
            writer.writerow([group["group"], *(group[c] for c in COLUMNS)])
    else:
        _table(page, label, since, until)
    return 0


class Unreadable(Exception):
    """The config, the ledger URL or the database cannot be read (the message says which)."""


async def _read(
    config_path: str | None, by: str, tag_key: str | None, since: float, until: float, limit: int
) -> UsagePage:
    async with ledger_of(config_path) as (_, store):
        return await aggregate(store, by=by, since=since, until=until, limit=limit, offset=0, tag_key=tag_key)


@contextlib.asynccontextmanager
async def ledger_of(config_path: str | None, url: str | None = None) -> AsyncIterator[tuple[Config, Store]]:
    """The config at ``config_path`` (the embedded default when ``None``) and its ledger store
    (the one at ``url`` when given), closed on exit; what goes wrong reading either, the config or
    the database, is ``Unreadable`` (shared by ``usage``, ``compare``, ``shadow report`` and
    ``replay``)."""
    import asyncpg  # type: ignore[import-untyped]

    from breakwater.core.config import ConfigError
    from breakwater.infra.credentials import CredentialError
    from breakwater.observability.ledger.service import store_for
    from breakwater.observability.ledger.sqlite import SqliteLedger
    from breakwater.runtime.loading import load_config
    from breakwater.runtime.observers import ledger_url

    try:
        config = load_config(config_path, os.environ)
    except ConfigError as exc:
        raise Unreadable(str(exc)) from None
    given = url is not None
    if url is None:
        if not config.ledger.enabled:
            raise Unreadable(f"the ledger is disabled in {config_path or 'the embedded default config'}")
        try:
            url = ledger_url(config, os.environ)
        except CredentialError as exc:
            raise Unreadable(f"ledger.url: {exc}") from None
    try:
        store = store_for(url or "")
    except ValueError as exc:
        raise Unreadable(str(exc)) from None
    if isinstance(store, SqliteLedger) and not store.path.exists():
        source = "--ledger" if given else f"ledger.url in {config_path or 'the embedded default config'}"
        raise Unreadable(
            f"no ledger at {store.path.absolute()} (from {source}); nothing to report"
            " — serve requests with this config first, or check --config"
        )
    try:
        yield config, store
    except (OSError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # OSError: a refused connection, a timeout, an unreadable file
        raise Unreadable(f"cannot read the ledger: {type(exc).__name__}: {exc}") from None
    finally:
        await store.close()


def _table(page: UsagePage, label: str, since: float, until: float) -> None:
    from rich.console import Console
    from rich.table import Table

    def when(ts: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))

    shown = f"{len(page.groups)} of {page.total} groups" if page.has_more else f"{page.total} groups"
    table = Table(title=f"Usage by {label}, {when(since)} → {when(until)} ({shown})")
    table.add_column(label, no_wrap=True)
    for name in (
        "requests",
        "errors",
        "error %",
        "input tok",
        "cached tok",
        "output tok",
        "cost USD",
        "saved USD",
        "routed USD",
        "cache hit %",
        "feedback",
        "score",
        "p50 ms",
        "p95 ms",
        "p99 ms",
    ):
        table.add_column(name, justify="right", no_wrap=True)
    for g in page.groups:
        table.add_row(
            "(none)" if g["group"] is None else str(g["group"]),
            f"{g['requests']:,}",
            f"{g['errors']:,}",
            f"{g['error_rate'] * 100:.1f}",
            f"{g['input_tokens']:,}",
            f"{g['cached_input_tokens']:,}",
            f"{g['output_tokens']:,}",
            f"{Decimal(g['cost_usd']):,.6f}",
            f"{Decimal(g['saved_usd']):,.6f}",
            f"{Decimal(g['routing_saved_usd']):,.6f}",
            "-" if g["cache_hit_rate"] is None else f"{g['cache_hit_rate'] * 100:.1f}",
            f"{g['feedback']:,}",
            "-" if g["feedback_score"] is None else f"{g['feedback_score']:.2f}",
            f"{g['latency_p50_ms']:.0f}",
            f"{g['latency_p95_ms']:.0f}",
            f"{g['latency_p99_ms']:.0f}",
        )
    # piped into a file or another program, the table keeps its full width instead of 80 columns
    Console(width=None if sys.stdout.isatty() else 200).print(table)
