"""The usage aggregate over a million SQLite ledger rows: one day, every group counted right.

The file is built once per module: 1,000,000 rows over 7 days (~1000 users, 20 routes), inserted
with one ``executemany`` in one transaction into the table ``SqliteLedger`` creates. The time it
takes is printed, not asserted: the target (one day in under a second, docs/observability.md) is
measured by ``bench/ledger_aggregate.py``, since a wall-clock bound in the suite fails on a busy
machine rather than on slow code.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from breakwater.observability.ledger import COLUMNS, SqliteLedger
from breakwater.observability.ledger.aggregate import aggregate

from .rows import T0

ROWS = 1_000_000
DAYS = 7
USERS = 1000
ROUTES = 20
STEP = DAYS * 86400 / ROWS
DAY_START = T0 + 3 * 86400
DAY_END = DAY_START + 86400


# the generated columns, in COLUMNS order (checked by the fixture)
NAMES = [
    "id",
    "request_id",
    "trace_id",
    "ts",
    "key_id",
    "user",
    "tags",
    "route",
    "deployment",
    "provider",
    "upstream_model",
    "attempts",
    "fallback",
    "status",
    "error_class",
    "finish_reason",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "output_tps",
    "stream",
    "cache",
    "usage_estimated",
    "prompt",
    "response",
    "upstream_ms",
    "overhead_ms",
    "dropped_params",
    "saved_usd",
    "branch",
    "decision",
]
#: columns added after these (all nullable): left empty, but for the last, what routing saved
LATER = (None,) * (len(COLUMNS) - len(NAMES) - 1)
#: every 7th row saved by a router, the next cost more than its baseline (negative), the rest none
ROUTED = ["0.0000098765", "-0.0000001234", *[None] * 5]
TEAMS = [f'{{"team":"t{t}"}}' for t in range(5)]
COSTS = [None if c % 11 == 0 else str(Decimal(c) * Decimal("0.0000012345")) for c in range(9973)]
# every 13th row a cache hit (with what it saved), the next a miss, the rest on routes without a cache
CACHE = ["hit", "miss", *[None] * 11]
SAVED = ["0.0000456789", *[None] * 12]


#: every 20th request has feedback, every 100th a second, newer one (what counts)
FEEDBACK_EVERY, REVISED_EVERY = 20, 100


def _feedback(i: int) -> Iterator[tuple[Any, ...]]:
    key = f"key-{i % 50}"
    yield f"req-{i}", T0 + i * STEP + 60, key, (i % 5) / 4, None, "{}"
    if i % REVISED_EVERY == 0:
        yield f"req-{i}", T0 + i * STEP + 120, key, ((i // REVISED_EVERY) % 5) / 4, "changed my mind", "{}"


def _row(i: int) -> tuple[Any, ...]:
    return (
        f"r{i:08d}", f"req-{i}", None, T0 + i * STEP, f"key-{i % 50}", f"user-{(i * 7919) % USERS}",
        TEAMS[i % 5], f"route-{i % ROUTES}", f"dep-{i % 30}", "openai", f"model-{i % 8}", 1, 0,
        500 if i % 37 == 0 else 200, None, "stop", 100 + i % 900, i % 64, 0, 10 + i % 300, 0,
        COSTS[i % 9973], float((i * 104729) % 5000) + 0.5, None, None, 0, CACHE[i % 13], 0, None, None, None, None,
        None, SAVED[i % 13], None, None, *LATER, ROUTED[i % 7],
    )  # fmt: skip


@pytest.fixture(scope="module")
def big_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqliteLedger, float]]:
    """A SqliteLedger file holding 1M rows (and feedback on 5% of them), and how long building it took (seconds)."""
    import asyncio

    path = tmp_path_factory.mktemp("ledger") / "big.db"
    store = SqliteLedger(path)

    async def create() -> None:
        await store.open()
        await store.close()

    assert COLUMNS[: len(NAMES)] == tuple(NAMES)
    assert COLUMNS[-1] == "routing_saved_usd"
    asyncio.run(create())  # the table and indexes exactly as the store makes them
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    placeholders = ", ".join("?" for _ in COLUMNS)
    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO breakwater_ledger ({cols}) VALUES ({placeholders})", map(_row, range(ROWS)))
    feedback = (f for i in range(0, ROWS, FEEDBACK_EVERY) for f in _feedback(i))
    conn.executemany("INSERT INTO breakwater_feedback VALUES (?, ?, ?, ?, ?, ?)", feedback)
    conn.execute("COMMIT")
    conn.close()
    built = time.perf_counter() - started
    print(f"\nbuilt {ROWS} ledger rows in {built:.1f}s")
    yield store, built


def _expected(path: Path, column: str, value: str) -> dict[str, Any]:
    """The group's figures computed in Python from its raw rows: Decimal sum, sorted latencies."""
    conn = sqlite3.connect(path)
    rows = conn.execute(
        f'SELECT status, input_tokens, cached_input_tokens, output_tokens, cost_usd, latency_ms, cache, saved_usd, request_id, key_id, routing_saved_usd FROM breakwater_ledger WHERE ts >= ? AND ts < ? AND "{column}" = ?',
        (DAY_START, DAY_END, value),
    ).fetchall()
    newest = {
        (r[0], r[1]): r[2]
        for r in conn.execute("SELECT request_id, key_id, score FROM breakwater_feedback ORDER BY rowid")
    }
    conn.close()
    scores = [newest[(r[8], r[9])] for r in rows if (r[8], r[9]) in newest]
    latencies = sorted(r[5] for r in rows)
    n = len(rows)

    def rank(p: int) -> float:
        return latencies[-(-p * n // 100) - 1]

    errors = sum(1 for r in rows if r[0] >= 400)
    hits = sum(1 for r in rows if r[6] == "hit")
    lookups = sum(1 for r in rows if r[6] in ("hit", "miss"))
    return {
        "group": value,
        "requests": n,
        "errors": errors,
        "error_rate": errors / n,
        "input_tokens": sum(r[1] for r in rows),
        "cached_input_tokens": sum(r[2] for r in rows),
        "output_tokens": sum(r[3] for r in rows),
        "cost_usd": format(
            sum((Decimal(r[4]) for r in rows if r[4] is not None), Decimal(0)).quantize(Decimal("1E-10")), "f"
        ),
        "saved_usd": format(
            sum((Decimal(r[7]) for r in rows if r[7] is not None), Decimal(0)).quantize(Decimal("1E-10")), "f"
        ),
        "routing_saved_usd": format(
            sum((Decimal(r[10]) for r in rows if r[10] is not None), Decimal(0)).quantize(Decimal("1E-10")), "f"
        ),
        "cache_hits": hits,
        "cache_hit_rate": hits / lookups if lookups else None,
        "feedback": len(scores),
        "feedback_score": pytest.approx(sum(scores) / len(scores)) if scores else None,
        "latency_p50_ms": rank(50),
        "latency_p95_ms": rank(95),
        "latency_p99_ms": rank(99),
    }


@pytest.mark.parametrize(("by", "column", "groups"), [("user", "user", USERS), ("route", "route", ROUTES)])
async def test_one_day_of_a_million_rows_counted_right(
    big_ledger: tuple[SqliteLedger, float], by: str, column: str, groups: int
) -> None:
    """Grouping one day of 1M rows (7 days) counts every group and matches a Python recount (the time is printed)."""
    store, _ = big_ledger  # (the build time is printed; it depends on the disk, not on Breakwater)
    timings = []
    for _ in range(3):  # best of three: a shared machine's noise, not the query, makes the worst
        started = time.perf_counter()
        page = await aggregate(store, by=by, since=DAY_START, until=DAY_END, limit=50, offset=0)
        timings.append(time.perf_counter() - started)
    print(f"\naggregate by {by} over one day: {', '.join(f'{t * 1000:.0f}' for t in timings)} ms")
    assert page.total == groups
    assert len(page.groups) == min(50, groups)
    costs = [Decimal(g["cost_usd"]) for g in page.groups]
    assert costs == sorted(costs, reverse=True)
    for group in (page.groups[0], page.groups[-1]):
        assert group == _expected(store.path, column, group["group"])
