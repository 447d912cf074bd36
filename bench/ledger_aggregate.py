"""The usage report's target: one day of a million-row SQLite ledger grouped in under a second.

    python bench/ledger_aggregate.py [--repeats 5]

Builds the same file as ``tests/observability/ledger/test_aggregate_scale.py`` (1,000,000 rows
over 7 days, feedback on 5% of them) in a temporary directory, then times ``aggregate`` over one
day by user and by route (best and median of the repeats) against the 1 s target
(docs/observability.md, "Reading usage back").
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.observability.ledger import test_aggregate_scale as scale

from breakwater.observability.ledger.aggregate import aggregate

TARGET_S = 1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    class Factory:
        def __init__(self, root: Path) -> None:
            self.root = root

        def mktemp(self, name: str) -> Path:
            path = self.root / name
            path.mkdir()
            return path

    with tempfile.TemporaryDirectory() as tmp:
        built = scale.big_ledger.__wrapped__(Factory(Path(tmp)))  # type: ignore[attr-defined]
        store, _ = next(built)
        for by in ("user", "route"):
            timings = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                asyncio.run(aggregate(store, by=by, since=scale.DAY_START, until=scale.DAY_END, limit=50, offset=0))
                timings.append(time.perf_counter() - started)
            best, median = min(timings), statistics.median(timings)
            verdict = "met" if best < TARGET_S else "MISSED"
            print(
                f"aggregate by {by} over one day: best {best * 1000:.0f} ms, median {median * 1000:.0f} ms: {verdict}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
