"""``breakwater loadtest URL --route R``: drive a running gateway at a target rate, open loop.

The rate is given (``--rate``), or a multiple of the busiest minute in a ledger
(``--from-ledger URL --multiplier 2.5``: "load test at 2-3x peak" before a launch). The body is
an OpenAI chat body from a file (``--body``) or a prompt (``--prompt``); ``--path`` sends it to
another endpoint. A live display (rich, on a terminal) shows progress; the report gives
throughput, latency percentiles, time to first token for streams, errors by class and 429s,
as a table or ``--json``. The key is read from ``--key-env`` (default ``BREAKWATER_API_KEY``)
and never printed. The driver is ``loadtest_run.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from breakwater.cli.loadtest_run import Plan, Tally

_PROMPT = "Write one sentence about the sea."


def register(sub: Any) -> None:
    test = sub.add_parser("loadtest", help="drive a running gateway at a target rate (or 2-3x the ledger's peak)")
    test.add_argument("url", help="the gateway's base URL, e.g. http://127.0.0.1:8080")
    test.add_argument("--route", required=True, help="the route (the body's model) to call")
    test.add_argument("--path", default="/v1/chat/completions", help="the endpoint (default: /v1/chat/completions)")
    body = test.add_mutually_exclusive_group()
    body.add_argument("--body", metavar="FILE", help="a JSON request body (its model is replaced by --route)")
    body.add_argument("--prompt", default=None, help=f"a user message (default: {_PROMPT!r})")
    test.add_argument("--max-tokens", type=int, default=None, help="max_tokens of a --prompt body")
    test.add_argument("--stream", action="store_true", help="stream the answers (reports time to first token)")
    rate = test.add_mutually_exclusive_group(required=True)
    rate.add_argument("--rate", type=float, help="requests per second")
    rate.add_argument("--from-ledger", metavar="URL", help="sqlite:///... or postgresql://...: a multiple of its peak")
    test.add_argument("--multiplier", type=float, default=2.5, help="times the ledger's peak (default: 2.5)")
    test.add_argument("--since", default="7d", help="the ledger window for the peak (default: 7d)")
    test.add_argument("--bucket", type=float, default=60.0, help="the peak's bucket in seconds (default: 60)")
    test.add_argument("--peak-route", default=None, help="the peak of this route alone (default: all routes)")
    test.add_argument("--duration", type=float, default=30.0, help="seconds of sending (default: 30)")
    test.add_argument("--max-in-flight", type=int, default=256, help="requests running at most (default: 256)")
    test.add_argument("--timeout", type=float, default=60.0, help="one request's time limit in seconds (default: 60)")
    test.add_argument("--grace", type=float, default=10.0, help="seconds running requests get after --duration")
    test.add_argument("--key-env", default="BREAKWATER_API_KEY", help="the variable holding the key to send")
    test.add_argument("--json", action="store_true", help="print the report as JSON (no live display)")
    test.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        body = _body(args)
        rate, peak_line = _rate(args)
        if not 0 < args.duration <= 86_400 or args.max_in_flight < 1 or args.timeout <= 0 or args.grace < 0:
            raise ValueError("--duration, --max-in-flight, --timeout and --grace must be positive")
        if rate * args.duration > 10_000_000:
            raise ValueError(f"{rate:.1f} requests/s for {args.duration:g} s is more than 10 million requests")
    except ValueError as exc:
        print(f"breakwater loadtest: error: {exc}", file=sys.stderr)
        return 2
    from breakwater.cli.loadtest_run import Plan, Tally

    headers = {"Authorization": f"Bearer {os.environ[args.key_env]}"} if os.environ.get(args.key_env) else {}
    plan = Plan(
        url=args.url.rstrip("/") + args.path,
        body=body,
        headers=headers,
        rate=rate,
        duration_s=args.duration,
        max_in_flight=args.max_in_flight,
        timeout_s=args.timeout,
        grace_s=args.grace,
    )
    tally = Tally()
    live = not args.json and sys.stderr.isatty()
    if not args.json:
        print(
            f"breakwater loadtest: {rate:.2f} requests/s for {args.duration:g} s to {plan.url} "
            f"(route {args.route}, open loop, at most {args.max_in_flight} in flight){peak_line}",
            file=sys.stderr,
        )
    asyncio.run(_drive(plan, tally, live))
    report = tally.report(plan) | {"route": args.route, "url": plan.url}
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _table(report)
    return 0


def _body(args: argparse.Namespace) -> dict[str, Any]:
    if args.body:
        try:
            body = orjson.loads(Path(args.body).read_bytes())
        except OSError as exc:
            raise ValueError(f"cannot read {args.body}: {exc.strerror or exc}") from None
        except orjson.JSONDecodeError:
            raise ValueError(f"{args.body} is not JSON") from None
        if not isinstance(body, dict):
            raise ValueError(f"{args.body}: expected a JSON object")
    else:
        body = {"messages": [{"role": "user", "content": args.prompt or _PROMPT}]}
        if args.max_tokens is not None:
            body["max_tokens"] = args.max_tokens
    body["model"] = args.route
    if args.stream:
        body["stream"] = True
    return body


def _rate(args: argparse.Namespace) -> tuple[float, str]:
    """The target rate, and a line saying where it came from (the ledger's peak)."""
    if args.rate is not None:
        if args.rate <= 0:
            raise ValueError("--rate must be positive")
        return args.rate, ""
    if args.multiplier <= 0:
        raise ValueError("--multiplier must be positive")
    from breakwater.cli.usage import Unreadable, ledger_of
    from breakwater.observability.ledger.aggregate import parse_instant
    from breakwater.observability.ledger.peak import peak

    now = time.time()
    since = parse_instant(args.since, now)

    async def read() -> Any:
        async with ledger_of(None, args.from_ledger) as (_, store):
            return await peak(store, since=since, until=now, bucket_s=args.bucket, route=args.peak_route)

    try:
        found = asyncio.run(read())
    except Unreadable as exc:
        raise ValueError(str(exc)) from None
    if found is None:
        raise ValueError(f"the ledger has no requests since {args.since}: give --rate")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(found.start))
    line = (
        f"\n  {args.multiplier:g} x the ledger's peak: {found.requests} requests in {args.bucket:g} s "
        f"from {when} ({found.rate:.2f}/s)"
    )
    return found.rate * args.multiplier, line


async def _drive(plan: Plan, tally: Tally, live: bool) -> None:
    from breakwater.cli.loadtest_run import run

    if not live:
        await run(plan, tally)
        return
    from rich.console import Console
    from rich.live import Live

    console = Console(stderr=True)
    task = asyncio.create_task(run(plan, tally))
    with Live(_progress(plan, tally), console=console, refresh_per_second=4, transient=True) as display:
        while not task.done():
            await asyncio.wait({task}, timeout=0.25)
            display.update(_progress(plan, tally))
    await task


def _progress(plan: Plan, tally: Tally) -> Any:
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    elapsed = time.monotonic() - tally.started if tally.started else 0.0
    grid = Table.grid(padding=(0, 2))
    grid.add_row(
        ProgressBar(total=plan.duration_s, completed=min(elapsed, plan.duration_s), width=30),
        f"{elapsed:5.1f}/{plan.duration_s:g} s",
    )
    rate = tally.sent / elapsed if elapsed > 0 else 0.0
    grid.add_row(
        f"sent {tally.sent:,} ({rate:.1f}/s)  ok {tally.ok:,}  errors {tally.failed:,} "
        f"(429: {tally.errors.get('http 429', 0):,})  in flight {tally.in_flight:,}  skipped {tally.skipped:,}",
        "",
    )
    return grid


def _table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Load test of {report['route']} at {report['url']}")
    table.add_column("", no_wrap=True)
    table.add_column("value", justify="right")
    table.add_row("target rate", f"{report['target_rate']:.2f}/s for {report['duration_s']:g} s")
    table.add_row("sent", f"{report['sent']:,} ({report['sent_per_s']:.2f}/s)")
    table.add_row("ok", f"{report['ok']:,} ({report['throughput_per_s']:.2f}/s)")
    table.add_row("errors", f"{report['errors']:,}")
    for name, count in report["errors_by_class"].items():
        table.add_row(f"  {name}", f"{count:,}")
    table.add_row("429s", f"{report['rate_limited']:,}")
    table.add_row("skipped (in-flight bound)", f"{report['skipped']:,}")
    table.add_row("unfinished (cut after the grace)", f"{report['unfinished']:,}")
    for label, key in (("latency ms", "latency_ms"), ("time to first token ms", "ttft_ms")):
        figures = report[key]
        if figures:
            table.add_row(label, "  ".join(f"{p} {v:,.0f}" for p, v in figures.items()))
    Console(width=None if sys.stdout.isatty() else 120).print(table)
