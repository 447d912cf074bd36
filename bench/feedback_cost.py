"""What feedback costs the ledger: the ``request_id`` index on every write, and the usage report's join.

    python bench/feedback_cost.py [--rows 200000] [--repeats 5]

Feedback needs a request's row found by its id, so the ledger gained an index on ``request_id``;
every row written now updates it too. This times ``SqliteLedger.write`` (batches of 500, as the
writer sends them, on the store's normal-priority thread so the machine's load blurs less) into a fresh file with the index and with it
dropped, interleaved, and reports microseconds per row. Then it times the usage report
(``aggregate`` by route over the whole window) on the same rows without feedback and with
feedback on 5% of them (a fifth of those revised), best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from breakwater.observability.ledger import LedgerRow, SqliteLedger
from breakwater.observability.ledger.aggregate import aggregate
from breakwater.observability.ledger.feedback import Feedback

BATCH = 500
T0 = 1_700_000_000.0


def _rows(n: int) -> list[LedgerRow]:
    """``n`` plain rows a millisecond apart: 50 keys, 20 routes."""
    return [
        LedgerRow(
            id=f"r{i:08d}", request_id=f"req-{i}", trace_id=None, ts=T0 + i * 0.001, key_id=f"key-{i % 50}",
            user=f"user-{i % 1000}", tags={"team": "search"}, route=f"route-{i % 20}", deployment="d",
            provider="openai", upstream_model="gpt-4o-mini", attempts=1, fallback=False, status=200,
            error_class=None, finish_reason="stop", input_tokens=100, cached_input_tokens=0, cache_write_tokens=0,
            output_tokens=20, reasoning_tokens=0, cost_usd=Decimal("0.0001234567"), latency_ms=12.5 + i % 500,
            ttft_ms=None, output_tps=None, stream=False, cache=None, usage_estimated=False, prompt=None, response=None,
        )
        for i in range(n)
    ]  # fmt: skip


async def _write_us_per_row(path: Path, rows: list[LedgerRow], *, index: bool) -> float:
    store = SqliteLedger(path)
    await store.open()
    if not index:
        with sqlite3.connect(path) as db:
            db.execute("DROP INDEX breakwater_ledger_request")
    started = time.perf_counter()
    for at in range(0, len(rows), BATCH):
        await store.write(rows[at : at + BATCH], behind=True)  # the normal-priority thread: less noise
    elapsed = time.perf_counter() - started
    await store.close()
    return elapsed / len(rows) * 1e6


async def _report_ms(store: SqliteLedger, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        await aggregate(store, by="route", since=T0, until=T0 + 1e9, limit=50, offset=0)
        timings.append(time.perf_counter() - started)
    return min(timings) * 1000


async def main(rows: int, repeats: int) -> None:
    data = _rows(rows)
    with tempfile.TemporaryDirectory() as tmp:
        with_index, without = [], []
        for rep in range(repeats):
            for index in (True, False) if rep % 2 == 0 else (False, True):
                path = Path(tmp) / f"w{rep}{index}.db"
                (with_index if index else without).append(await _write_us_per_row(path, data, index=index))
        a, b = statistics.median(with_index), statistics.median(without)
        print(f"write, {rows} rows in batches of {BATCH}: {a:.2f} us/row with the request_id index, "
              f"{b:.2f} without ({(a - b) / b * 100:+.1f}%)")  # fmt: skip

        store = SqliteLedger(Path(tmp) / "report.db")
        await store.open()
        for at in range(0, rows, BATCH):
            await store.write(data[at : at + BATCH])
        bare = await _report_ms(store, repeats)
        for i in range(0, rows, 20):
            row = data[i]
            await store.write_feedback(Feedback(row.request_id, row.ts + 60, row.key_id, (i % 5) / 4, None, {}))
            if i % 100 == 0:
                await store.write_feedback(Feedback(row.request_id, row.ts + 120, row.key_id, 1.0, "revised", {}))
        rated = await _report_ms(store, repeats)
        await store.close()
        print(f"usage report by route over {rows} rows: {bare:.0f} ms without feedback, "
              f"{rated:.0f} ms with feedback on 5% of them (best of {repeats})")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.repeats))
