"""The learned router's reported figures: MMLU and GSM8K, trained on one part, measured on another.

    python bench/router_eval.py                 # the reported figures (docs/routing.md)
    python bench/router_eval.py --split tune    # for development: never look at 'report' while tuning

Reads ``../shared/data/routellm/`` (evaluation data, never copied into the repository). Each
CSV is split deterministically by a hash of the prompt, within each file (so within each MMLU
domain): 75% "tune", 25% "report". ``--split report`` trains on tune and measures on report, through
``breakwater router eval`` itself; ``--split tune`` splits tune again 75/25 the same way, for trying
changes without touching the reported part. The JSON and PNG of each run go to
``bench/results/router-eval/`` (ignored by git).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from breakwater.cli.main import main as breakwater

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "routellm"
RESULTS = Path(__file__).resolve().parent / "results" / "router-eval"
STRONG = "gpt-4-1106-preview"
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
TUNE_PERCENT = 75


def _part(prompt: str, salt: str) -> bool:
    """True for the tune part: the prompt's hash falls below TUNE_PERCENT of 100."""
    return int(hashlib.sha256(f"{salt}:{prompt}".encode()).hexdigest()[:8], 16) % 100 < TUNE_PERCENT


def _split(source: Path, into: Path, split: str) -> tuple[Path, Path]:
    """``source`` as (train CSV, test CSV) in ``into``, same file name in two folders."""
    with source.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header, rows = list(reader.fieldnames or []), list(reader)
    tune = [r for r in rows if _part(r["prompt"], "report")]
    if split == "report":
        train, test = tune, [r for r in rows if not _part(r["prompt"], "report")]
    else:
        train = [r for r in tune if _part(r["prompt"], "tune")]
        test = [r for r in tune if not _part(r["prompt"], "tune")]
    paths = []
    for folder, part in (("train", train), ("test", test)):
        (into / folder).mkdir(exist_ok=True)
        path = into / folder / source.name
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=header)
            writer.writeheader()
            writer.writerows(part)
        paths.append(path)
    return paths[0], paths[1]


def _run(name: str, sources: list[Path], split: str, work: Path) -> dict[str, Any]:
    into = work / name
    into.mkdir()
    pairs = [_split(s, into, split) for s in sources]
    plot = RESULTS / f"{name}-{split}.png"
    out = io.StringIO()
    argv = ["router", "eval", "--train", *[str(p[0]) for p in pairs], "--test", *[str(p[1]) for p in pairs]]
    argv += ["--strong", STRONG, "--weak", WEAK, "--json", "--plot", str(plot)]
    with contextlib.redirect_stdout(out):
        code = breakwater(argv)
    if code != 0:
        raise SystemExit(f"{name}: breakwater router eval exited {code}")
    result: dict[str, Any] = json.loads(out.getvalue())
    (RESULTS / f"{name}-{split}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _print(name: str, result: dict[str, Any]) -> None:
    print(f"\n## {name}: {result['train_rows']} training rows, {result['rows']} test rows\n")
    print("| threshold | strong share | quality ratio | cost ratio |\n| ---: | ---: | ---: | ---: |")
    for p in result["curve"]:
        print(f"| {p['threshold']:.4f} | {p['strong_share']:.3f} | {p['quality_ratio']:.3f} | {p['cost_ratio']:.3f} |")
    print(
        f"\noperating point: threshold {result['threshold']:.4f}, quality ratio {result['quality_ratio']:.3f}, "
        f"cost ratio {result['cost_ratio']:.3f}, strong share {result['strong_share']:.3f}; "
        f"random routing at that quality: cost ratio {result['random_cost_ratio']:.3f}\n"
        f"accuracy: strong {result['strong_quality']:.3f}, weak {result['weak_quality']:.3f}, "
        f"router {result['router_quality']:.3f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=["report", "tune"], default="report")
    args = parser.parse_args()
    mmlu = sorted((DATA / "mmlu").glob("mmlu_*.csv"))
    gsm8k = DATA / "gsm8k_responses.csv"
    if not mmlu or not gsm8k.exists():
        print(f"skipped: the RouteLLM data was not found at {DATA}")
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="breakwater-router-eval-") as work:
        for name, sources in (("mmlu", mmlu), ("gsm8k", [gsm8k])):
            _print(f"{name} ({args.split} split)", _run(name, sources, args.split, Path(work)))
    print(f"\nJSON and PNG in {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
