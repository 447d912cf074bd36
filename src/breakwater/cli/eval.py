"""``breakwater eval SUITE.yaml`` and ``breakwater eval gate SUITE.yaml --route CANDIDATE``: an eval
suite run through the gateway's routes (in-process) or any OpenAI-compatible server, as a CI gate.

Exit status: 0 when the run passes (pass rate at least ``--min-pass-rate``, and not regressed from
``--baseline`` by more than ``--margin``); 1 when it does not; 2 for a usage, suite or
configuration mistake (the message names the file and the key path). docs/evals.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from breakwater.engine.evals.asserts import SuiteError
from breakwater.engine.evals.gate import Decision, baseline_of, check_baseline, decide
from breakwater.engine.evals.providers import ProviderSpec, route_provider
from breakwater.engine.evals.runner import DEFAULT_CONCURRENCY, RunOptions, SuiteResult, run_suite
from breakwater.engine.evals.suite import Suite

#: the environment variable an in-process gateway's key is read from when --api-key is not given
API_KEY_ENV = "BREAKWATER_API_KEY"


def register(sub: Any) -> None:
    """Add the ``eval`` subcommand (``eval SUITE``, ``eval gate SUITE``) to the ``breakwater`` parser."""
    cmd = sub.add_parser(
        "eval",
        help="run an eval suite (promptfoo-compatible YAML); exit 1 when it fails (a CI gate)",
        description="breakwater eval SUITE.yaml [options]  |  breakwater eval gate SUITE.yaml --route CANDIDATE",
    )
    cmd.add_argument(
        "words", nargs="+", metavar="[gate] SUITE.yaml", help="the suite; 'gate SUITE' for the deploy gate"
    )
    cmd.add_argument("--config", metavar="FILE", help="the gateway config breakwater:ROUTE providers run in-process")
    cmd.add_argument(
        "--route", metavar="ROUTE", help="run on this route instead of the suite's providers (gate: the candidate)"
    )
    cmd.add_argument("--compare", nargs=2, metavar=("CURRENT", "CANDIDATE"), help="run on two routes side by side")
    cmd.add_argument(
        "--judge", metavar="ROUTE", help="the route that grades llm-rubric and factuality (overrides the suite)"
    )
    cmd.add_argument("--api-key", help=f"key for the in-process gateway when access is on (default: ${API_KEY_ENV})")
    cmd.add_argument("--json", action="store_true", help="print the results as JSON (breakwater-eval/1)")
    cmd.add_argument("--junit", metavar="FILE", help="also write JUnit XML there")
    cmd.add_argument(
        "--concurrency", type=int, metavar="N", help=f"cases at once (default: the suite's, else {DEFAULT_CONCURRENCY})"
    )
    cmd.add_argument(
        "--min-pass-rate", type=float, default=1.0, metavar="R", help="fail under this pass rate (default 1.0)"
    )
    cmd.add_argument(
        "--baseline", metavar="FILE", help="fail when the pass rate drops from this baseline by more than --margin"
    )
    cmd.add_argument(
        "--margin", type=float, default=0.0, metavar="M", help="allowed drop from the baseline (default 0)"
    )
    cmd.add_argument("--save-baseline", metavar="FILE", help="write this run as a baseline")
    cmd.add_argument("--no-cache", action="store_true", help="ask every case again (the gate never uses the cache)")
    cmd.add_argument("--cache-dir", metavar="DIR", help="where answers are kept (default: ~/.cache/breakwater/evals)")
    cmd.set_defaults(run=run)


class Usage(Exception):
    """A mistake in the command line, the suite or the configuration: exit 2."""


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the run passes, 1 when it fails, 2 on a mistake."""
    # warnings and errors on stderr, plainly; set before anything is imported that configures
    # the root logger itself on import (wordllama, for ``similar``, sets INFO)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    environ = os.environ
    try:
        gate, suite_path = _words(args.words)
        if gate and not args.route:
            raise Usage("eval gate needs --route CANDIDATE")
        if args.compare and args.route:
            raise Usage("--compare and --route cannot be combined")
        if args.compare and route_provider(args.compare[0]) == route_provider(args.compare[1]):
            raise Usage("--compare needs two different routes")
        if not 0 <= args.min_pass_rate <= 1 or not 0 <= args.margin <= 1:
            raise Usage("--min-pass-rate and --margin are between 0 and 1")
        if args.concurrency is not None and args.concurrency < 1:
            raise Usage("--concurrency must be at least 1")
        config = _config(args.config, environ)
        suite = _suite(suite_path, config)
        specs = _targets(args, suite)
        baseline = _baseline(args.baseline)
        judge = route_provider(args.judge) if args.judge else None
        uses_gateway = any(s.kind == "breakwater" for s in specs) or (judge is not None and judge.kind == "breakwater")
        if config is None and uses_gateway:
            config = _config_or_default(environ)
    except (Usage, SuiteError, ValueError) as exc:
        print(f"breakwater eval: {exc}", file=sys.stderr)
        return 2
    options = _Options(
        concurrency=args.concurrency or suite.max_concurrency or DEFAULT_CONCURRENCY,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        use_cache=not (args.no_cache or gate),
        api_key=args.api_key or environ.get(API_KEY_ENV) or None,
        judge=judge,
    )
    from breakwater.cli.eval_output import progress

    try:
        with progress(len(suite.cases) * len(specs), environ) as advance:
            run_result = asyncio.run(_run(suite, specs, config, options, advance, environ))
    except ValueError as exc:  # a target that cannot be opened (an unknown route)
        print(f"breakwater eval: {exc}", file=sys.stderr)
        return 2
    compare = (run_result.targets[0], run_result.targets[1]) if args.compare else None
    decision = _decide(run_result, args, baseline, compare)
    try:
        if args.save_baseline:
            Path(args.save_baseline).write_bytes(orjson.dumps(baseline_of(run_result), option=orjson.OPT_INDENT_2))
        _show(args, suite, run_result, decision, compare)
    except OSError as exc:
        print(f"breakwater eval: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    return 0 if decision.passed else 1


def _words(words: list[str]) -> tuple[bool, str]:
    if words[0] == "gate":
        if len(words) != 2:
            raise Usage("usage: breakwater eval gate SUITE.yaml --route CANDIDATE")
        return True, words[1]
    if len(words) != 1:
        raise Usage("usage: breakwater eval SUITE.yaml [options] (one suite)")
    return False, words[0]


def _config(path: str | None, environ: Mapping[str, str]) -> Any:
    from breakwater.core.config import ConfigError
    from breakwater.runtime.loading import checked, load_config

    if path is None:
        return None
    try:
        return checked(load_config(path, environ), environ)
    except ConfigError as exc:
        raise Usage(str(exc)) from None


def _config_or_default(environ: Mapping[str, str]) -> Any:
    from breakwater.core.config import ConfigError
    from breakwater.runtime.loading import checked, load_config

    try:
        return checked(load_config(None, environ), environ)
    except ConfigError as exc:
        raise Usage(str(exc)) from None


def _suite(path: str, config: Any) -> Suite:
    from breakwater.engine.evals.suite import load_suite

    return load_suite(path, registry=None if config is None else config.prompts)


def _targets(args: argparse.Namespace, suite: Suite) -> list[ProviderSpec]:
    if args.compare:
        return [route_provider(args.compare[0]), route_provider(args.compare[1])]
    if args.route:
        return [route_provider(args.route)]
    if not suite.providers:
        raise Usage(f"{suite.source}: providers: the suite names none (or give --route ROUTE)")
    return list(suite.providers)


def _baseline(path: str | None) -> Mapping[str, Any] | None:
    if path is None:
        return None
    try:
        return check_baseline(orjson.loads(Path(path).read_bytes()))
    except OSError as exc:
        raise Usage(f"--baseline {path}: cannot read it: {exc.strerror}") from None
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise Usage(f"--baseline {path}: {exc}") from None


@dataclass(frozen=True, slots=True)
class _Options:
    concurrency: int
    #: ``None``: the default directory
    cache_dir: Path | None
    use_cache: bool
    api_key: str | None = field(repr=False)
    judge: ProviderSpec | None = None


async def _run(
    suite: Suite, specs: list[ProviderSpec], config: Any, options: _Options, advance: Any, environ: Mapping[str, str]
) -> SuiteResult:
    from breakwater.cli.eval_cache import FileCaseCache, default_cache_dir
    from breakwater.cli.eval_targets import Targets
    from breakwater.infra.clock import SystemClock

    targets = Targets(config, api_key=options.api_key, environ=environ)
    try:
        opened = [await targets.open(spec) for spec in specs]
        graders = await _graders(suite, targets, options.judge)
        cache = FileCaseCache(options.cache_dir or default_cache_dir(environ)) if options.use_cache else None
        run_options = RunOptions(SystemClock(), options.concurrency, cache, graders, advance)
        return await run_suite(suite, opened, run_options)
    finally:
        await targets.aclose()


async def _graders(suite: Suite, targets: Any, judge: ProviderSpec | None) -> Any:
    """The graders of each case: the embedder when a case needs one, each judge opened once."""
    from breakwater.cli.eval_targets import judge_of
    from breakwater.engine.evals.model_graded import Graders, needs

    wanted: set[str] = set()
    for case in suite.cases:
        wanted |= needs(case.assertions)
    similarity = await _similarity(targets) if "embedder" in wanted else None
    calls: dict[str, Any] = {}
    if "judge" in wanted:
        for case in suite.cases:
            spec = judge or case.judge
            if spec is not None and spec.id not in calls:
                opened = await targets.open(spec)
                calls[spec.id] = judge_of(opened.target, opened.params)

    def graders(case: Any) -> Graders:
        spec = judge or case.judge
        return Graders(similarity, None if spec is None else calls.get(spec.id))

    return graders


async def _similarity(targets: Any) -> Any:
    """By the in-process gateway's embedder when its config has one (``cache.embedder``), else
    the bundled local model (no network)."""
    from breakwater.engine.similarity import similarity_by
    from breakwater.runtime.caching import load_embedder

    app = targets.app
    embedder = None if app is None else app.runtimes.current.embedder
    if embedder is None:
        from breakwater.infra.cache.wordllama import WordLlamaEmbedder

        embedder = WordLlamaEmbedder()
        await load_embedder(embedder)
    return similarity_by(embedder)


def _decide(run: SuiteResult, args: argparse.Namespace, baseline: Any, compare: tuple[str, str] | None) -> Decision:
    if compare is None:
        return decide(run, min_pass_rate=args.min_pass_rate, baseline=baseline, margin=args.margin)
    # compare mode: the candidate is gated against the current route's run (the cases that flipped)
    current, candidate = (SuiteResult(tuple(run.of(t)), (t,), run.duration_s) for t in compare)
    return decide(
        candidate, min_pass_rate=args.min_pass_rate, baseline=baseline or baseline_of(current), margin=args.margin
    )


def _show(
    args: argparse.Namespace, suite: Suite, run: SuiteResult, decision: Decision, compare: tuple[str, str] | None
) -> None:
    from breakwater.cli import eval_output

    if args.junit:
        Path(args.junit).write_bytes(eval_output.junit(suite, run))
    if args.json:
        document = eval_output.as_json(suite, run, decision, compare)
        sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif compare is not None:
        eval_output.compare_table(run, decision)
    else:
        eval_output.table(run, decision, many_prompts=len(suite.prompts) > 1)
