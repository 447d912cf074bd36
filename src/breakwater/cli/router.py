"""``breakwater router train | eval``: fit the learned router offline and measure it.

``train`` writes an artifact (``engine/router/learned.py``); ``eval`` trains the same way on the
``--train`` files, keeps the threshold chosen on them, and measures it on the ``--test`` files:
quality ratio and cost ratio against sending everything to the strong model, the random
baseline, and the whole curve (docs/routing.md). Needs the ``router`` and ``semantic`` extras.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from breakwater.core.pricing import Price

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``router`` subcommand (``train``, ``eval``) to the ``breakwater`` parser."""
    router = sub.add_parser("router", help="train and evaluate the learned router (strong vs weak model)")
    actions = router.add_subparsers(dest="router_command", required=True)

    train = actions.add_parser("train", help="fit the router on CSVs and write its artifact")
    train.add_argument("--data", nargs="+", required=True, metavar="CSV", help="training CSVs (each file a topic)")
    train.add_argument("--out", required=True, metavar="ARTIFACT.json")
    _common(train)
    train.set_defaults(run=_train)

    evaluate = actions.add_parser("eval", help="train on --train, choose the threshold there, measure on --test")
    evaluate.add_argument("--train", nargs="+", required=True, metavar="CSV")
    evaluate.add_argument("--test", nargs="+", required=True, metavar="CSV")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--plot", metavar="FILE.png", help="write cost ratio vs quality ratio as a PNG")
    _common(evaluate)
    evaluate.set_defaults(run=_eval)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strong", required=True, metavar="COLUMN", help="the strong model's correctness column")
    parser.add_argument("--weak", required=True, metavar="COLUMN", help="the weak model's correctness column")
    parser.add_argument("--target-quality", type=float, default=0.95, help="quality ratio to reach (default 0.95)")
    parser.add_argument(
        "--margin", type=float, default=None, help="added to the target when choosing the threshold (default 0.01)"
    )
    parser.add_argument(
        "--cheap-share",
        type=float,
        default=None,
        metavar="S",
        help="choose the threshold for this share of traffic to the cheap branch instead of a target quality",
    )
    parser.add_argument("--strong-price", type=_price, default=None, metavar="IN,OUT", help="USD per M tokens (10,30)")
    parser.add_argument("--weak-price", type=_price, default=None, metavar="IN,OUT", help="USD per M tokens (0.6,0.6)")
    parser.add_argument(
        "--output-tokens", type=int, default=1, metavar="N", help="answer tokens when a CSV has no responses (1)"
    )
    parser.add_argument(
        "--no-cost-weighting", dest="cost_weighted", action="store_false", help="score by probability alone"
    )


def _price(text: str) -> Price:
    try:
        parts = [Decimal(p) for p in text.split(",")]
    except InvalidOperation:
        parts = []
    if len(parts) != 2 or any(not p.is_finite() or p < 0 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not IN,OUT (USD per million tokens, e.g. 10,30)")
    return Price(input=parts[0], output=parts[1])


def _options(args: argparse.Namespace) -> Any:
    # numpy (and the training code) only for these commands, not in every `breakwater` process
    from breakwater.engine.router.dataset import GPT4_TURBO_PRICE, MIXTRAL_TOGETHER_PRICE, Prices
    from breakwater.engine.router.training import MARGIN, TrainingOptions

    if not 0 < args.target_quality <= 1.5:
        raise ValueError("--target-quality must be in (0, 1.5]")
    if args.cheap_share is not None and not 0 <= args.cheap_share <= 1:
        raise ValueError("--cheap-share must be in [0, 1]")
    return TrainingOptions(
        target_quality=args.target_quality,
        cheap_share=args.cheap_share,
        margin=MARGIN if args.margin is None else args.margin,
        prices=Prices(args.strong_price or GPT4_TURBO_PRICE, args.weak_price or MIXTRAL_TOGETHER_PRICE),
        cost_weighted=args.cost_weighted,
    )


def _fit(args: argparse.Namespace, files: list[str]) -> tuple[Any, Any, dict[str, Any]]:
    """Read and embed ``files``, train: (router, embedder, training report)."""
    from breakwater.cli.router_data import embed_rows, read_rows
    from breakwater.engine.router.training import train_router
    from breakwater.infra.cache.wordllama import WordLlamaEmbedder

    options = _options(args)
    rows = read_rows(files, args.strong, args.weak, args.output_tokens)
    embedder = WordLlamaEmbedder()
    embedder.load()
    data = embed_rows(rows, embedder)
    router, report = train_router(data, options, embedder.identity, rows.sources)
    return router, embedder, report


def _fail(exc: Exception) -> int:
    print(f"breakwater router: {exc}", file=sys.stderr)
    return 1


def _train(args: argparse.Namespace) -> int:
    """Exit 0 with the artifact written; 1 on unusable input."""
    from breakwater.cli.router_data import DataError
    from breakwater.engine.router.learned import save_router

    try:
        router, _, report = _fit(args, args.data)
        save_router(router, args.out)
    except (DataError, ValueError, OSError, ImportError) as exc:
        return _fail(exc)
    point = report["out_of_fold"]
    print(
        f"wrote {args.out}: threshold {router.threshold:.4f}, {point['rows']} rows; out of fold: quality ratio "
        f"{point['quality_ratio']:.3f}, cost ratio {point['cost_ratio']:.3f}, strong share {point['strong_share']:.3f}"
    )
    return 0


def _eval(args: argparse.Namespace) -> int:
    """Exit 0 with the report; 1 on unusable input."""
    from breakwater.cli.router_data import DataError, embed_rows, read_rows
    from breakwater.engine.router.evaluation import curve, operating_point
    from breakwater.engine.router.training import outcomes_of, scores_of

    try:
        router, embedder, report = _fit(args, args.train)
        test = embed_rows(read_rows(args.test, args.strong, args.weak, args.output_tokens), embedder)
    except (DataError, ValueError, OSError, ImportError) as exc:
        return _fail(exc)
    outcomes = outcomes_of(test, _options(args).prices)
    scores = scores_of(router, test)
    result = operating_point(scores, outcomes, router.threshold)
    points = curve(scores, outcomes)
    result["target_quality"] = args.target_quality
    result["train_rows"] = report["out_of_fold"]["rows"]
    result["train_out_of_fold"] = report["out_of_fold"]
    result["curve"] = [p.as_dict() for p in points.summary(tuple(i / 20 for i in range(21)))]
    if args.plot:
        try:
            _plot(points, outcomes, result, Path(args.plot))
        except (OSError, ImportError) as exc:
            return _fail(exc)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _table(result)
    return 0


def _table(result: dict[str, Any]) -> None:
    print(f"{'threshold':>10} {'strong share':>13} {'quality ratio':>14} {'cost ratio':>11}")
    for p in result["curve"]:
        print(
            f"{p['threshold']:>10.4f} {p['strong_share']:>13.3f} {p['quality_ratio']:>14.3f} {p['cost_ratio']:>11.3f}"
        )
    print(
        f"\noperating point (threshold {result['threshold']:.4f}, chosen on the training rows for quality "
        f"{result['target_quality']}): quality ratio {result['quality_ratio']:.3f}, cost ratio "
        f"{result['cost_ratio']:.3f}, strong share {result['strong_share']:.3f}\n"
        f"random routing at the same quality: cost ratio {result['random_cost_ratio']:.3f}\n"
        f"accuracy: strong {result['strong_quality']:.3f}, weak {result['weak_quality']:.3f}, "
        f"router {result['router_quality']:.3f} ({result['rows']} test rows)"
    )


def _plot(points: Any, outcomes: Any, result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    weak_q = outcomes.weak_quality / outcomes.strong_quality if outcomes.strong_quality else 1.0
    weak_c = float(outcomes.weak_cost.sum() / outcomes.strong_cost.sum()) if outcomes.strong_cost.sum() else 0.0
    figure, axes = pyplot.subplots(figsize=(6, 4.5), dpi=100)
    axes.plot(points.cost_ratio, points.quality_ratio, label="learned router")
    axes.plot([weak_c, 1.0], [weak_q, 1.0], linestyle="--", color="grey", label="random routing")
    axes.scatter([result["cost_ratio"]], [result["quality_ratio"]], color="red", zorder=3, label="operating point")
    axes.axhline(result["target_quality"], color="red", linewidth=0.5, linestyle=":")
    axes.set_xlabel("cost ratio (router / all strong)")
    axes.set_ylabel("quality ratio (router / all strong)")
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, format="png")
    pyplot.close(figure)
