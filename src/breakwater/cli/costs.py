"""``breakwater costs whatif | selfhost``: what the recorded traffic would cost under other choices,
and whether self-hosting it would pay (docs/costs.md).

Both read the ledger the config names, like ``breakwater usage`` (whether or not the gateway
runs), summed inside the database (``observability/ledger/token_totals.py``); the arithmetic is
``core/whatif.py`` and ``core/selfhost.py``. Every monthly figure scales the window to 30 days.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import orjson

from breakwater.cli.usage import Unreadable, ledger_of
from breakwater.observability.ledger.aggregate import parse_duration, parse_instant

if TYPE_CHECKING:
    from breakwater.core.config import Config
    from breakwater.core.pricing import Price
    from breakwater.core.selfhost import SelfHost
    from breakwater.core.whatif import Outcome, PriceOf, Scenario, Target

_CENTS = Decimal("0.000001")


def register(sub: Any) -> None:
    """Add the ``costs`` subcommand (``whatif``, ``selfhost``) to the ``breakwater`` parser's subparsers."""
    costs = sub.add_parser("costs", help="what-if cost scenarios and the self-hosting break-even (the ledger)")
    kinds = costs.add_subparsers(dest="costs_command", metavar="{whatif,selfhost}", required=True)

    whatif = kinds.add_parser("whatif", help="the recorded traffic repriced under other choices, per month")
    _window(whatif, "30d")
    whatif.add_argument(
        "--price-as", metavar="TARGET", help="price the traffic as another model: a deployment or host/model"
    )
    whatif.add_argument("--cache-hit-rate", type=float, metavar="R", help="share of answers served by the answer cache")
    whatif.add_argument(
        "--prompt-cache-share", type=float, metavar="S", help="share of uncached input read from the prompt cache"
    )
    whatif.add_argument("--batch-tag", metavar="KEY=VALUE", help="requests with this tag sent through the batch API")
    whatif.add_argument("--move", metavar="SHARE:TARGET", help="a share of the traffic moved to another model")
    whatif.add_argument("--route", action="append", default=[], help="only this route's traffic (repeatable)")
    whatif.add_argument("--model", action="append", default=[], help="only this upstream model's traffic (repeatable)")
    whatif.set_defaults(run=run_whatif)

    selfhost = kinds.add_parser("selfhost", help="API spend against a GPU fleet sized for the peak token rate")
    _window(selfhost, "7d")
    selfhost.add_argument("--gpu-hour-usd", required=True, help="what one GPU costs per hour, USD")
    selfhost.add_argument("--tokens-per-gpu-s", type=float, required=True, help="tokens per second one GPU serves")
    selfhost.add_argument("--bucket", default="1m", help="the peak is the busiest bucket of this length (default: 1m)")
    selfhost.add_argument("--route", action="append", default=[], help="only this route's traffic (repeatable)")
    selfhost.set_defaults(run=run_selfhost)


def _window(parser: Any, default: str) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="YAML config naming the ledger (default: the embedded default)"
    )
    parser.add_argument(
        "--since", default=default, help=f"30d, 2026-11-01, ISO time or unix seconds (default: {default})"
    )
    parser.add_argument("--until", default=None, help="same forms as --since (default: now)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _span(args: argparse.Namespace) -> tuple[float, float]:
    now = time.time()
    since = parse_instant(args.since, now)
    until = now if args.until is None else parse_instant(args.until, now)
    if since >= until:
        raise ValueError("--since must be before --until")
    return since, until


def _share(text: str, flag: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{flag}: expected a number between 0 and 1, got {text!r}") from None
    if not 0 < value <= 1:
        raise ValueError(f"{flag}: expected a number above 0 and at most 1, got {text!r}")
    return value


# --- whatif -------------------------------------------------------------------------------------


def run_whatif(args: argparse.Namespace) -> int:
    """Exit 0 with the report; 2 on a bad argument; 1 when the ledger cannot be read."""
    try:
        since, until = _span(args)
        _check_whatif(args)
    except ValueError as exc:
        print(f"breakwater costs whatif: error: {exc}", file=sys.stderr)
        return 2
    try:
        current, outcomes = asyncio.run(_whatif(args, since, until))
    except Unreadable as exc:
        print(f"breakwater costs whatif: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"breakwater costs whatif: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        body = {
            "since": since,
            "until": until,
            "window_s": until - since,
            "current_usd": _usd(current),
            "current_monthly_usd": _usd(current * _month_factor(since, until)),
            "scenarios": [_outcome_json(o) for o in outcomes],
        }
        sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _whatif_table(outcomes, current * _month_factor(since, until), since, until)
    return 0


def _check_whatif(args: argparse.Namespace) -> None:
    if args.cache_hit_rate is not None:
        _share(str(args.cache_hit_rate), "--cache-hit-rate")
    if args.prompt_cache_share is not None:
        _share(str(args.prompt_cache_share), "--prompt-cache-share")
    if args.batch_tag is not None and not all(args.batch_tag.partition("=")[::2]):
        raise ValueError(f"--batch-tag: expected KEY=VALUE, got {args.batch_tag!r}")
    if args.move is not None:
        share, _, target = args.move.partition(":")
        _share(share, "--move")
        if not target:
            raise ValueError(f"--move: expected SHARE:TARGET (0.3:openai/gpt-4o-mini), got {args.move!r}")
    if not any(
        v is not None for v in (args.price_as, args.cache_hit_rate, args.prompt_cache_share, args.batch_tag, args.move)
    ):
        raise ValueError(
            "give at least one scenario: --price-as, --cache-hit-rate, --prompt-cache-share, --batch-tag or --move"
        )


async def _whatif(args: argparse.Namespace, since: float, until: float) -> tuple[Decimal, list[Outcome]]:
    from breakwater.core.whatif import AnswerCache, Batch, Move, PromptCache, Reprice, Scenario, Scope, evaluate
    from breakwater.observability.ledger.token_totals import token_totals

    tag = None if args.batch_tag is None else tuple(args.batch_tag.split("=", 1))
    async with ledger_of(args.config) as (config, store):
        scope = Scope(tuple(args.route), tuple(args.model))
        scenarios: list[Scenario] = []
        if args.price_as is not None:
            scenarios.append(Scenario(Reprice(target_of(config, args.price_as)), scope))
        if args.move is not None:
            share, _, target = args.move.partition(":")
            scenarios.append(Scenario(Move(float(share), target_of(config, target)), scope))
        if args.cache_hit_rate is not None:
            scenarios.append(Scenario(AnswerCache(args.cache_hit_rate), scope))
        if args.prompt_cache_share is not None:
            scenarios.append(Scenario(PromptCache(args.prompt_cache_share), scope))
        if tag is not None:
            scenarios.append(Scenario(Batch(), Scope(scope.routes, scope.models, (tag[0], tag[1]))))
        slices = await token_totals(store, since=since, until=until, tag_key=None if tag is None else tag[0])
    price_of = prices_of(config)
    current = sum((s.cost_usd for s in slices), Decimal(0))
    return current, [evaluate(scenario, slices, price_of, until - since) for scenario in scenarios]


def prices_of(config: Config) -> PriceOf:
    """A slice's price as the gateway prices it (the deployment's ``price:``, else the list), and its host."""
    from breakwater.core.prices import PriceBook
    from breakwater.core.whatif import Totals
    from breakwater.runtime.wiring import price_host

    book = PriceBook({name: d.price.to_price() for name, d in config.deployments.items() if d.price is not None})

    def price_of(s: Totals) -> tuple[Price | None, str | None]:
        host = price_host(config, s.provider)
        return book.known(s.deployment, host, s.model), host

    return price_of


def target_of(config: Config, text: str) -> Target:
    """A deployment of the config (priced as the gateway prices it) or ``host/model`` (the list price).

    Raises:
        ValueError: neither has a known price.
    """
    from breakwater.core.prices import PriceBook, lookup
    from breakwater.core.whatif import Target
    from breakwater.runtime.wiring import price_host

    deployment = config.deployments.get(text)
    if deployment is not None:
        host = price_host(config, deployment.provider)
        if deployment.price is not None:
            return Target(text, deployment.price.to_price(), f"deployment {text}'s configured price")
        price = PriceBook().known(text, host, deployment.model)
        if price is not None:
            return Target(text, price, f"genai-prices: {host} {deployment.model}")
    host, _, model = text.partition("/")
    price = lookup(host, model) if model else None
    if price is None:
        raise ValueError(
            f"no known price for {text!r}: name a deployment of the config or host/model (e.g. openai/gpt-4o-mini)"
        )
    return Target(text, price, f"genai-prices: {host} {model}")


def _month_factor(since: float, until: float) -> Decimal:
    from breakwater.core.whatif import MONTH_S

    return Decimal(MONTH_S) / Decimal(str(until - since))


def _usd(value: Decimal) -> str:
    return format(value.quantize(_CENTS), "f")


def _outcome_json(o: Outcome) -> dict[str, Any]:
    return {
        "scenario": o.scenario,
        "scope": o.scope,
        "requests": o.requests,
        "tokens": o.tokens,
        "current_usd": _usd(o.current_usd),
        "scenario_usd": _usd(o.scenario_usd),
        "difference_usd": _usd(o.difference_usd),
        "monthly_current_usd": _usd(o.monthly(o.current_usd)),
        "monthly_scenario_usd": _usd(o.monthly(o.scenario_usd)),
        "monthly_difference_usd": _usd(o.monthly(o.difference_usd)),
        "sources": list(o.sources),
        "unpriced_requests": o.unpriced,
    }


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def _whatif_table(outcomes: list[Outcome], monthly: Decimal, since: float, until: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"What if, {_when(since)} → {_when(until)} (all traffic: ${monthly:,.2f} a month)",
        caption="USD a month (the window scaled to 30 days)",
    )
    table.add_column("scenario")
    table.add_column("scope")
    for name in ("requests", "now", "then", "difference", "%"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("prices from")
    for o in outcomes:
        change = o.monthly(o.difference_usd)
        share = f"{o.difference_usd / o.current_usd * 100:+.1f}" if o.current_usd else "-"
        sources = "; ".join(o.sources)
        if o.unpriced:
            sources += f" ({o.unpriced:,} requests unpriced, left as recorded)"
        table.add_row(
            o.scenario,
            o.scope,
            f"{o.requests:,}",
            f"{o.monthly(o.current_usd):,.2f}",
            f"{o.monthly(o.scenario_usd):,.2f}",
            f"{change:+,.2f}",
            share,
            sources,
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)


# --- selfhost -----------------------------------------------------------------------------------


def run_selfhost(args: argparse.Namespace) -> int:
    """Exit 0 with the estimate; 2 on a bad argument; 1 when the ledger cannot be read."""
    try:
        since, until = _span(args)
        bucket = parse_duration(args.bucket)
        try:
            gpu_hour = Decimal(args.gpu_hour_usd)
        except InvalidOperation:
            raise ValueError(f"--gpu-hour-usd: expected a number, got {args.gpu_hour_usd!r}") from None
        if not gpu_hour.is_finite() or gpu_hour < 0 or not args.tokens_per_gpu_s > 0:
            raise ValueError("--gpu-hour-usd must be at least 0 and --tokens-per-gpu-s above 0")
        if bucket > until - since:
            raise ValueError("--bucket must not be longer than the window")
    except ValueError as exc:
        print(f"breakwater costs selfhost: error: {exc}", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(_selfhost(args, since, until, bucket, gpu_hour))
    except Unreadable as exc:
        print(f"breakwater costs selfhost: {exc}", file=sys.stderr)
        return 1
    if args.json:
        body = {k: _usd(v) if isinstance(v, Decimal) else v for k, v in asdict(result).items()}
        body |= {"since": since, "until": until, "selfhost_cheaper": result.selfhost_cheaper}
        sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _selfhost_table(result, since, until)
    return 0


async def _selfhost(args: argparse.Namespace, since: float, until: float, bucket: float, gpu_hour: Decimal) -> SelfHost:
    from breakwater.core.selfhost import estimate
    from breakwater.observability.ledger.token_totals import throughput, token_totals

    async with ledger_of(args.config) as (_, store):
        rate = await throughput(store, since=since, until=until, bucket_s=bucket, routes=tuple(args.route))
        slices = await token_totals(store, since=since, until=until)
    spent = sum((s.cost_usd for s in slices if not args.route or s.route in args.route), Decimal(0))
    return estimate(
        tokens=rate.input_tokens + rate.output_tokens,
        peak_tokens=rate.peak_tokens,
        bucket_s=bucket,
        window_s=until - since,
        api_usd=spent,
        per_gpu_tps=args.tokens_per_gpu_s,
        gpu_hour_usd=gpu_hour,
    )


def _selfhost_table(r: SelfHost, since: float, until: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"API or self-host, {_when(since)} → {_when(until)}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    breakeven = r.breakeven_tokens_per_month
    for what, value in (
        ("tokens in the window", f"{r.tokens:,}"),
        ("average tokens/s", f"{r.average_tps:,.1f}"),
        ("peak tokens/s", f"{r.peak_tps:,.1f}"),
        ("GPUs needed (peak / per GPU, rounded up)", f"{r.gpus:,}"),
        ("self-host USD a month (GPUs x hourly x 720)", f"{r.selfhost_monthly_usd:,.2f}"),
        ("API USD a month (as recorded)", f"{r.api_monthly_usd:,.2f}"),
        ("API USD per million tokens", "-" if r.api_per_mtok_usd is None else f"{r.api_per_mtok_usd:,.4f}"),
        ("break-even tokens a month", "-" if breakeven is None else f"{breakeven:,.0f}"),
        ("tokens a month now", f"{r.monthly_tokens:,.0f}"),
        ("fleet utilisation (average / capacity)", f"{r.utilisation:.1%}"),
        ("cheaper", "self-hosting" if r.selfhost_cheaper else "the API"),
    ):
        table.add_row(what, value)
    Console(width=None if sys.stdout.isatty() else 200).print(table)
