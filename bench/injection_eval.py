"""The injection detector's accuracy on a labelled JSON Lines file (``text``, ``injection`` 0/1).

    python bench/injection_eval.py --data ../shared/data/prompt-injections/deepset-train.jsonl [--json]
    python bench/injection_eval.py --data FILE --half odd          # the held-out half (docs/guardrails.md)
    python bench/injection_eval.py --data FILE --threshold 0.6
    python bench/injection_eval.py --data FILE --errors 20         # print misses and false alarms

Runs the real detector (``engine/guardrails/injection.py``, built as the stage builds it) at the
default settings: a text is an attempt when its score reaches the threshold (0.5 by default, the
stage's). Prints precision, recall, the false positive rate on the benign rows, their counts, and
the p50 / p99 scoring time per text. ``--half even|odd`` keeps every other row (by line number):
the heuristics were checked on the even half, so the odd half is the held-out figure.

The data is evaluation data: it is read from the path given, never copied into the repository.
Without the file the script says so and exits 0 (nothing to measure).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from breakwater.engine.guardrails.injection import InjectionDetector
from breakwater.runtime.injection import DEFAULT_THRESHOLD, build_injection_detector


def _rows(path: Path, half: str | None) -> list[tuple[str, int]]:
    rows: list[tuple[str, int]] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            if not line.strip():
                continue
            if (half == "even" and number % 2) or (half == "odd" and not number % 2):
                continue
            row = json.loads(line)
            rows.append((str(row["text"]), int(row["injection"])))
    return rows


def evaluate(detector: InjectionDetector, rows: list[tuple[str, int]], threshold: float) -> dict[str, object]:
    """Precision, recall and false positive rate of ``detector`` over labelled rows."""
    tp = fp = fn = tn = 0
    times: list[float] = []
    misses: list[str] = []
    alarms: list[str] = []
    for text, label in rows:
        start = time.perf_counter()
        score = detector.score(text).score
        times.append(time.perf_counter() - start)
        flagged = score >= threshold
        if flagged and label:
            tp += 1
        elif flagged:
            fp += 1
            alarms.append(f"{score:.2f} {text[:160]!r}")
        elif label:
            fn += 1
            misses.append(f"{score:.2f} {text[:160]!r}")
        else:
            tn += 1
    times.sort()
    return {
        "rows": len(rows),
        "positives": tp + fn,
        "negatives": fp + tn,
        "threshold": threshold,
        "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 4) if tp + fn else 0.0,
        "false_positive_rate": round(fp / (fp + tn), 4) if fp + tn else 0.0,
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        "true_negatives": tn,
        "p50_us": round(statistics.median(times) * 1e6, 1) if times else 0.0,
        "p99_us": round(times[int(len(times) * 0.99)] * 1e6, 1) if times else 0.0,
        "_misses": misses,
        "_alarms": alarms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="JSON Lines with text and injection (0/1)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--half", choices=["even", "odd"], default=None)
    parser.add_argument("--errors", type=int, default=0, help="print this many misses and false alarms")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"skipped: {args.data} not found (evaluation data is not shipped; see docs/guardrails.md)")
        return 0
    rows = _rows(args.data, args.half)
    detector = build_injection_detector()
    result = evaluate(detector, rows, args.threshold)
    misses, alarms = result.pop("_misses"), result.pop("_alarms")
    result["detector"] = "heuristics"
    result["half"] = args.half or "all"
    if args.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name:>20}: {value}")
    if args.errors:
        assert isinstance(misses, list) and isinstance(alarms, list)
        print("misses:", *misses[: args.errors], sep="\n  ", file=sys.stderr)
        print("false alarms:", *alarms[: args.errors], sep="\n  ", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
