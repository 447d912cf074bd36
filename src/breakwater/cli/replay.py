"""``breakwater replay``: a route's captured requests sent again to a candidate route, and the two
answers compared (docs/evals.md#replay).

The rows come from the ledger (``--ledger``, else the one the config names), the candidate is a
route of ``--config`` run in this process, or of a running gateway (``--gateway``). Every call the
replay makes is marked: user ``breakwater:replay``, tag ``replay=candidate`` (or ``replay=judge``),
so its rows can be told apart in reports and are never replayed themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from breakwater.cli.usage import Unreadable, ledger_of
from breakwater.observability.ledger.aggregate import parse_instant

if TYPE_CHECKING:
    from breakwater.engine.evals.asserts import Assertion
    from breakwater.engine.evals.target import Target
    from breakwater.engine.similarity import Similarity

#: who the replay's calls are in the ledger, and their tag
USER = "breakwater:replay"
TAG = "replay"
#: the environment variable holding the key ``--gateway`` calls are made with
API_KEY_ENV = "BREAKWATER_API_KEY"


def register(sub: Any) -> None:
    """Add the ``replay`` subcommand to the ``breakwater`` parser's subparsers."""
    p = sub.add_parser("replay", help="send a route's captured requests to a candidate route and compare the answers")
    p.add_argument("--route", required=True, help="the route whose captured requests are replayed")
    p.add_argument("--candidate", required=True, help="the route the requests are sent to")
    p.add_argument("--since", default="24h", help="24h, 7d, 2026-11-01, ISO time or unix seconds (default: 24h)")
    p.add_argument("--until", default=None, help="same forms as --since (default: now)")
    p.add_argument("--limit", type=int, default=100, help="rows to replay at most, oldest first (default: 100)")
    p.add_argument("--config", metavar="FILE", help="YAML config: its ledger, and its routes run in this process")
    p.add_argument("--gateway", metavar="URL", help=f"send to a running gateway instead (key: ${API_KEY_ENV})")
    p.add_argument("--ledger", metavar="URL", help="the ledger to read (default: the config's ledger.url)")
    p.add_argument("--asserts", metavar="FILE", help="YAML list of assertions graded on both answers")
    p.add_argument("--judge", metavar="ROUTE", help="a judge route: model-graded assertions and judged agreement")
    p.add_argument("--concurrency", type=int, default=4, help="candidate calls at once (default: 4)")
    p.add_argument("--similarity-threshold", type=float, default=0.9, help="similar at or above (default: 0.9)")
    p.add_argument("--no-similarity", action="store_true", help="skip the embedding similarity")
    p.add_argument("--worst", type=int, default=5, help="worst cases to list (default: 5)")
    p.add_argument("--min-agreement", type=float, default=None, help="exit 1 when agreement is below this (0-1)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


class UsageError(ValueError):
    """A bad argument or input file (exit 2)."""


def run(args: argparse.Namespace) -> int:
    """Exit 0 with the report; 2 on a bad argument or assertions file; 1 when the ledger cannot be
    read, or when agreement is below ``--min-agreement``."""
    now = time.time()
    try:
        since = _instant("--since", args.since, now)
        until = now if args.until is None else _instant("--until", args.until, now)
        _check(args, since, until)
        assertions = [] if args.asserts is None else read_asserts(args.asserts)
    except ValueError as exc:
        print(f"breakwater replay: error: {exc}", file=sys.stderr)
        return 2
    try:
        summary = asyncio.run(_replay(args, since, until, assertions))
    except UsageError as exc:
        print(f"breakwater replay: error: {exc}", file=sys.stderr)
        return 2
    except Unreadable as exc:
        print(f"breakwater replay: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    else:
        _print(summary)
    if args.min_agreement is not None:
        from breakwater.observability.ledger.replay import agreement_of

        agreement = agreement_of(summary)
        if agreement is not None and agreement < args.min_agreement:
            print(f"breakwater replay: agreement {agreement:.4f} is below {args.min_agreement:g}", file=sys.stderr)
            return 1
    return 0


def _instant(flag: str, value: str, now: float) -> float:
    try:
        return parse_instant(value, now)
    except ValueError as exc:
        raise ValueError(f"{flag}: {exc}") from None


def _check(args: argparse.Namespace, since: float, until: float) -> None:
    if since >= until:
        raise ValueError("--since must be before --until")
    if not 1 <= args.limit <= 10_000:
        raise ValueError("--limit must be between 1 and 10000")
    if not 1 <= args.concurrency <= 64:
        raise ValueError("--concurrency must be between 1 and 64")
    if not 0 <= args.worst <= 100:
        raise ValueError("--worst must be between 0 and 100")
    for name in ("similarity_threshold", "min_agreement"):
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and 0 <= value <= 1):
            raise ValueError(f"--{name.replace('_', '-')} must be between 0 and 1")


def read_asserts(path: str) -> list[Assertion]:
    """The assertions of a YAML list at ``path``.

    Raises:
        ValueError: the file cannot be read, is not a list, or an assertion is wrong (the message
            names the file and the assertion's path, e.g. ``asserts.yaml: [1].value: ...``).
    """
    import yaml

    from breakwater.engine.evals.asserts import SuiteError, parse_assertion

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot be read: {exc}") from None
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{path}: expected a non-empty YAML list of assertions")
    try:
        return [parse_assertion(item, f"[{i}]") for i, item in enumerate(raw)]
    except SuiteError as exc:
        raise ValueError(f"{path}: {exc}") from None


async def _replay(args: argparse.Namespace, since: float, until: float, assertions: list[Assertion]) -> dict[str, Any]:
    from breakwater.cli.replay_run import Grading, replay
    from breakwater.engine.evals.model_graded import Graders, needs
    from breakwater.observability.ledger.replay import report

    wanted = needs(assertions)
    if "judge" in wanted and args.judge is None:
        raise UsageError(f"{args.asserts}: llm-rubric and factuality assertions need --judge ROUTE")
    async with ledger_of(args.config, args.ledger) as (config, store):
        await store.open()
        rows, uncaptured = await store.captured(args.route, since, until, args.limit)
        similarity, note = (None, "off (--no-similarity)") if args.no_similarity else await _similarity()
        if "embedder" in wanted and similarity is None:
            raise UsageError(f"{args.asserts}: similar assertions need the local embedder ({note})")
        async with _targets(args, config) as (candidate, judge_target):
            from breakwater.cli.eval_targets import judge_of

            judge = None if judge_target is None else judge_of(judge_target)
            grading = Grading(assertions, Graders(similarity, judge), similarity, judge)
            cases, skipped = await replay(rows, candidate, grading, concurrency=args.concurrency)
    summary = report(cases, skipped, uncaptured=uncaptured, threshold=args.similarity_threshold, worst=args.worst)
    return {
        "route": args.route,
        "candidate": args.candidate,
        "target": candidate.label,
        "since": since,
        "until": until,
        "similarity": note,
        **summary,
    }


async def _similarity() -> tuple[Similarity | None, str]:
    """The bundled local embedder's similarity, or ``None`` and why it is not there."""
    from breakwater.engine.similarity import similarity_by
    from breakwater.infra.cache.wordllama import EmbedderUnavailable, WordLlamaEmbedder

    embedder = WordLlamaEmbedder()
    try:
        await asyncio.to_thread(embedder.load)
    except EmbedderUnavailable as exc:
        return None, f"unavailable: {exc}"
    return similarity_by(embedder), embedder.identity


@contextlib.asynccontextmanager
async def _targets(args: argparse.Namespace, config: Any) -> AsyncIterator[tuple[Target, Target | None]]:
    """The candidate's target and the judge's (``None`` without ``--judge``), closed on exit."""
    from breakwater.cli.eval_targets import GatewayTarget, HttpTarget

    def headers(role: str) -> dict[str, str]:
        return {"x-breakwater-user": USER, "x-breakwater-tags": f"{TAG}={role}"}

    if args.gateway:
        base = args.gateway.rstrip("/")
        base = base if base.endswith("/v1") else base + "/v1"
        key = os.environ.get(API_KEY_ENV) or None
        candidate: Any = HttpTarget(args.candidate, base, key, headers=headers("candidate"))
        judge: Any = None if args.judge is None else HttpTarget(args.judge, base, key, headers=headers("judge"))
        try:
            yield candidate, judge
        finally:
            for target in (judge, candidate):
                if target is not None:
                    await target.aclose()
        return
    from breakwater.server.app import create_app

    for route in (args.candidate, args.judge):
        if route is not None and route not in config.routes:
            raise UsageError(f"no route {route!r} in {args.config or 'the embedded default config'}")
    app = create_app(config, config_path=args.config)
    candidate = await GatewayTarget(app, args.candidate, headers=headers("candidate")).open()
    judge = None
    try:
        if args.judge is not None:
            judge = await GatewayTarget(app, args.judge, headers=headers("judge")).open(start=False)
        yield candidate, judge
    finally:
        if judge is not None:
            await judge.aclose()
        await candidate.aclose()


def _print(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:.1f}%"

    def num(value: Any) -> str:
        return "-" if value is None else str(value)

    def when(ts: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))

    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(
        escape(f"Replay of route {r['route']} -> {r['candidate']} ({r['target']})")
        + f", {when(r['since'])} → {when(r['until'])}"
    )
    skipped = ", ".join(f"{k} {v}" for k, v in r["skipped_by_reason"].items()) or "none"
    console.print(
        f"  rows: {r['replayed']} replayed, {r['skipped']} skipped ({skipped}), {r['uncaptured']} not captured; "
        f"{r['candidate_errors']} candidate errors"
    )
    a, p = r["agreement"], r["pass_rate"]
    console.print(
        f"  agreement: exact {pct(a['exact'])}, similar (>= {a['similarity_threshold']:g}) {pct(a['similar'])}"
        f" (mean {num(a['similarity_mean'])}; embedder {escape(r['similarity'])}), judged {pct(a['judged'])}"
    )
    if p["graded"]:
        console.print(
            f"  pass rate: baseline {pct(p['baseline'])}, candidate {pct(p['candidate'])}"
            f" ({p['regressions']} regressions, {p['fixes']} fixes)"
        )
    c, lat = r["cost"], r["latency"]
    table = Table(show_header=True)
    for name in ("", "baseline", "candidate", "delta"):
        table.add_column(name, justify="right")
    table.add_row(
        "cost per request USD",
        num(c["baseline_per_request_usd"]),
        num(c["candidate_per_request_usd"]),
        num(c["delta_usd"]),
    )
    table.add_row(
        "latency mean ms", num(lat["baseline_mean_ms"]), num(lat["candidate_mean_ms"]), num(lat["delta_mean_ms"])
    )
    table.add_row("latency p50 ms", num(lat["baseline_p50_ms"]), num(lat["candidate_p50_ms"]), "")
    console.print(table)
    if r["worst"]:
        worst = Table(title="worst cases", show_lines=True)
        for name in ("request", "prompt", "baseline", "candidate", "similarity", "pass (base → cand)"):
            worst.add_column(name, overflow="fold")
        for w in r["worst"]:
            passes = "-" if w["baseline_pass"] is None else f"{w['baseline_pass']} → {w['candidate_pass']}"
            worst.add_row(
                escape(w["request_id"]), _cut(w["prompt"]), _cut(w["baseline"]),
                _cut(w["candidate"] if w["error"] is None else f"ERROR {w['error']}"), num(w["similarity"]), passes,
            )  # fmt: skip
        console.print(worst)


def _cut(text: str | None, limit: int = 80) -> str:
    """``text`` on one line, cut to ``limit``, as literal text (a captured ``[EMAIL]`` is not markup)."""
    from rich.markup import escape

    text = (text or "").replace("\n", " ")
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")
