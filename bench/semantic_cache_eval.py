"""How often the semantic cache answers a duplicate question, and how often a different one.

    python bench/semantic_cache_eval.py --pairs ../shared/data/qqp/pairs.jsonl --json
    python bench/semantic_cache_eval.py --pairs FILE --table          # across thresholds
    python bench/semantic_cache_eval.py --pairs FILE --split report   # the odd lines only
    python bench/semantic_cache_eval.py --pairs FILE --latency 100000 # lookup time, 100k stored

``--pairs``: JSON lines ``{"a": question, "b": question, "duplicate": 0|1}`` (the QQP pairs in
``../shared/data/qqp/``; evaluation data, never shipped). For each pair, ``a`` is stored in a
semantic index and ``b`` looked up, through the route's real lookup path: the bundled local
embedder, the similarity threshold and the verifier (``engine/cache/semantic.SemanticIndex``),
each pair alone in its scope. A hit on a duplicate is a hit; a hit on a non-duplicate is a false
hit.

``--split tune`` keeps the even lines (0, 2, ...), ``report`` the odd ones: the default threshold
was chosen on ``tune`` and is reported on ``report`` (docs/caching.md).

``--json`` prints one object: ``pairs``, ``duplicates``, ``hit_rate`` (hits among duplicates),
``false_hit_rate`` (hits among non-duplicates), ``threshold``, ``verifier`` and the time a lookup
took (``lookup_p50_ms``, embedding included).

``--latency N`` measures instead what a big index costs: N questions from the file stored in
one scope, then 1,000 others looked up; it prints the lookup's p50 and p99 (embedding
included) and the index's memory per entry (traced allocations, the questions' own text
excluded).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from breakwater.core.config import RouteCache
from breakwater.engine.cache.semantic import SemanticIndex
from breakwater.engine.cache.verify import Verifier
from breakwater.infra.cache.wordllama import WordLlamaEmbedder

TABLE = (0.90, 0.92, 0.93, 0.94, 0.95, 0.955, 0.96, 0.965, 0.97, 0.98)


def load_pairs(path: Path, split: str) -> list[dict[str, Any]]:
    pairs = []
    with path.open() as f:
        for i, line in enumerate(f):
            if (split == "tune" and i % 2) or (split == "report" and not i % 2):
                continue
            pair = json.loads(line)
            pairs.append({"a": str(pair["a"]), "b": str(pair["b"]), "duplicate": int(pair["duplicate"])})
    return pairs


def evaluate(pairs: list[dict[str, Any]], verifier: Verifier, floor: float) -> tuple[list[float | None], list[float]]:
    """Each pair's hit similarity (``None``: no hit at ``floor``), and each lookup's time in seconds."""
    embedder = WordLlamaEmbedder()
    embedder.load()
    index = SemanticIndex(verifier)
    found: list[float | None] = []
    took: list[float] = []
    for i, pair in enumerate(pairs):
        key = f"pair-{i}"
        index.add("eval", pair["a"], key, embedder.embed_now(pair["a"]))
        started = time.perf_counter()  # the lookup as the stage makes it: embed, then match
        match = index.match("eval", pair["b"], embedder.embed_now(pair["b"]), floor)
        took.append(time.perf_counter() - started)
        found.append(None if match is None else match.similarity)
        index.forget("eval", key)
    return found, took


def rates(pairs: list[dict[str, Any]], found: list[float | None], threshold: float) -> tuple[float, float]:
    hits = [s is not None and s >= threshold for s in found]
    dup = [h for h, p in zip(hits, pairs, strict=True) if p["duplicate"]]
    other = [h for h, p in zip(hits, pairs, strict=True) if not p["duplicate"]]
    return sum(dup) / max(len(dup), 1), sum(other) / max(len(other), 1)


def latency(path: Path, entries: int) -> dict[str, Any]:
    """Lookup time with ``entries`` questions in one scope, and the index's bytes per entry."""
    questions: list[str] = []
    with path.open() as f:
        for line in f:
            pair = json.loads(line)
            questions += [str(pair["a"]), str(pair["b"])]
            if len(questions) >= entries + 1000:
                break
    if len(questions) < entries + 1000:
        raise SystemExit(f"{path} holds {len(questions)} questions; --latency {entries} needs {entries + 1000}")
    embedder = WordLlamaEmbedder()
    embedder.load()
    keys = [f"{i:064x}" for i in range(entries)]
    vectors = [embedder.embed_now(q) for q in questions[:entries]]
    tracemalloc.start()
    index = SemanticIndex(max_entries=entries)
    for i in range(entries):
        index.add("one scope", questions[i], keys[i], vectors[i])
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    took = []
    for question in questions[entries : entries + 1000]:
        started = time.perf_counter()
        index.match("one scope", question, embedder.embed_now(question), RouteCache().similarity)
        took.append(time.perf_counter() - started)
    took.sort()
    return {
        "entries": entries,
        "lookup_p50_ms": round(took[len(took) // 2] * 1000, 3),
        "lookup_p99_ms": round(took[int(len(took) * 0.99)] * 1000, 3),
        "bytes_per_entry": round(held / entries),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, required=True, help="JSON lines of {a, b, duplicate}")
    parser.add_argument("--threshold", type=float, default=RouteCache().similarity, help="default: the route's")
    parser.add_argument("--split", choices=["all", "tune", "report"], default="all")
    parser.add_argument("--no-verifier", action="store_true", help="similarity alone")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--table", action="store_true", help="hit and false-hit rates across thresholds")
    parser.add_argument("--latency", type=int, metavar="N", help="lookup time with N questions stored instead")
    args = parser.parse_args(argv)
    if not args.pairs.exists():
        print(f"no pairs file at {args.pairs} (the QQP pairs live in ../shared/data/qqp/); nothing to measure")
        return 2
    if args.latency:
        print(json.dumps(latency(args.pairs, args.latency)))
        return 0
    pairs = load_pairs(args.pairs, args.split)
    verifier = Verifier(min_overlap=0) if not args.no_verifier else _NoVerifier()
    floor = min([args.threshold, *TABLE]) if args.table else args.threshold
    found, took = evaluate(pairs, verifier, floor)
    hit_rate, false_rate = rates(pairs, found, args.threshold)
    result = {
        "pairs": len(pairs),
        "duplicates": sum(p["duplicate"] for p in pairs),
        "hit_rate": round(hit_rate, 4),
        "false_hit_rate": round(false_rate, 4),
        "threshold": args.threshold,
        "verifier": not args.no_verifier,
        "split": args.split,
        "embedder": "wordllama l2_supercat 256-d (bundled)",
        "lookup_p50_ms": round(statistics.median(took) * 1000, 3),
    }
    if args.table:
        result["table"] = [
            {"threshold": t, "hit_rate": round(h, 4), "false_hit_rate": round(f, 4)}
            for t in TABLE
            for h, f in [rates(pairs, found, t)]
        ]
    if args.json:
        print(json.dumps(result))
        return 0
    for name, value in result.items():
        if name != "table":
            print(f"{name:>16}: {value}")
    for row in result.get("table", []):
        print(
            f"  threshold {row['threshold']:<6} hit rate {row['hit_rate']:.3f}  false hits {row['false_hit_rate']:.4f}"
        )
    return 0


class _NoVerifier(Verifier):
    """Every similar pair passes: the threshold alone (for comparison)."""

    def compare(self, q: Any, s: Any) -> str | None:
        return None


if __name__ == "__main__":
    sys.exit(main())
