"""The dashboard's ledger queries over a million-row SQLite ledger: each page's data in under 1 s.

    python bench/dashboard_queries.py [--rows 1000000] [--db PATH] [--repeats 5]

Builds (or reuses, with ``--db``: a file already holding ``--rows`` rows is reused as it is) a
SQLite ledger spanning 30 days with a realistic spread: a dozen routes, a few hundred users on
their keys, ten deployments on four providers, errors of several classes with retries and
fallbacks, tags, streams with a time to first token, cache hits and misses, unpriced rows and
shadow rows. The table and indexes are made by ``SqliteLedger.open``, so the bench measures what
a gateway's file holds. Then each function of ``observability/ledger/dashboard.py`` (and
``explorer.py``) is timed over the last 1 h, 24 h, 7 d and 30 d (median of ``--repeats`` runs),
one table row per function and a last row per dashboard page (the sum of its functions).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from breakwater.observability.ledger import COLUMNS, SqliteLedger
from breakwater.observability.ledger.aggregate import aggregate
from breakwater.observability.ledger.dashboard import cost_series, reliability, series, totals
from breakwater.observability.ledger.explorer import RowFilter, request_rows, search
from breakwater.observability.ledger.hourly import cost_table
from breakwater.observability.ledger.sqlite import row_from_values

TARGET_S = 1.0
DAY = 86400.0
SPAN = 30 * DAY
#: the ledger's last instant: a fixed one, so a reused file holds the same rows
END = 1_760_000_000.0
WINDOWS = {"1h": 3600.0, "24h": DAY, "7d": 7 * DAY, "30d": SPAN}
#: the chart step a dashboard would pick for each window (about 60 to 180 points)
STEPS = {"1h": 60, "24h": 900, "7d": 3600, "30d": 4 * 3600}

ROUTES = [f"route-{n}" for n in ("chat", "search", "summarise", "classify", "extract", "agent")] + [
    f"route-team-{n}" for n in range(6)
]
DEPLOYMENTS = [
    ("openai-gpt-4o", "openai", "gpt-4o"),
    ("openai-gpt-4o-mini", "openai", "gpt-4o-mini"),
    ("azure-gpt-4o", "azure", "gpt-4o"),
    ("anthropic-sonnet", "anthropic", "claude-sonnet-4"),
    ("anthropic-haiku", "anthropic", "claude-haiku-4"),
    ("bedrock-sonnet", "bedrock", "claude-sonnet-4"),
    ("openai-o3", "openai", "o3"),
    ("azure-gpt-4o-mini", "azure", "gpt-4o-mini"),
    ("anthropic-opus", "anthropic", "claude-opus-4"),
    ("bedrock-haiku", "bedrock", "claude-haiku-4"),
]
#: status, error class, share (per 10,000 rows)
OUTCOMES = [
    (429, "RateLimited", 150),
    (500, "UpstreamServerError", 80),
    (503, "Overloaded", 60),
    (504, "UpstreamTimeout", 40),
    (400, "InvalidRequest", 50),
    (400, "ContextLengthExceeded", 20),
]
TEAMS = ["search", "ads", "support", "growth", "infra", "research"]
FEATURES = [f"feature-{n}" for n in range(10)]
USERS = 400
TEXT = "The quick brown fox jumps over the lazy dog. " * 9  # a captured prompt, ~400 characters


def _outcome(rng: random.Random) -> tuple[int, str | None]:
    roll = rng.randrange(10_000)
    for status, error_class, share in OUTCOMES:
        if roll < share:
            return status, error_class
        roll -= share
    return 200, None


def _rows(count: int, seed: int) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    start = END - SPAN
    step = SPAN / count
    weights = [1 / (u + 1) for u in range(USERS)]  # a few heavy users, a long tail
    users = rng.choices(range(USERS), weights, k=count)
    later = (None,) * (len(COLUMNS) - COLUMNS.index("shadow_of") - 2)
    assert COLUMNS[-1] == "routing_saved_usd"
    for i in range(count):
        ts = start + i * step + rng.random() * step
        user = users[i]
        dep, provider, model = DEPLOYMENTS[(user + i // 7) % len(DEPLOYMENTS)]
        status, error_class = _outcome(rng)
        attempts = 1 if rng.random() < 0.9 else rng.choice((2, 2, 3))
        stream = rng.random() < 0.6
        cache = rng.choices(("hit", "semantic-hit", "miss", None), (8, 2, 40, 50))[0]
        latency = math.exp(rng.gauss(6.7, 0.8))  # median ~800 ms
        ttft = latency * rng.uniform(0.05, 0.4) if stream and status < 400 else None
        tokens_in, tokens_out = rng.randrange(50, 4000), rng.randrange(5, 800)
        hit = cache in ("hit", "semantic-hit") and status < 400
        price = Decimal(tokens_in * 25 + tokens_out * 100) * Decimal("1E-8")
        cost = None if rng.random() < 0.02 else (Decimal(0) if hit else price)
        tags = "{}" if i % 10 == 0 else f'{{"team":"{TEAMS[user % 6]}","feature":"{FEATURES[i % 10]}"}}'
        shadow = f"req-{i - 1}" if i % 100 == 99 else None
        captured = i % 20 == 0
        routed = str(price * Decimal("0.6")) if i % 3 == 0 and cost and not hit else None  # a router's cheap branch
        yield (
            f"row-{i:08d}", f"req-{i}", None, ts, f"key-{user % 120}", f"user-{user}", tags,
            ROUTES[(user * 7 + i) % len(ROUTES)], dep, provider, model, attempts, int(attempts > 2 or i % 33 == 0),
            status, error_class, "stop" if status < 400 else None, tokens_in, tokens_in // 4, 0, tokens_out, 0,
            None if cost is None else str(cost), latency, ttft, None, int(stream), cache, 0,
            TEXT if captured else None, TEXT if captured else None, latency * 0.97, latency * 0.03, None,
            str(price) if hit else None, None, None, shadow, *later, routed,
        )  # fmt: skip


def build(path: Path, rows: int, seed: int = 22) -> float:
    """Fill ``path`` with ``rows`` ledger rows (the store's own table and indexes); seconds taken."""

    async def create() -> None:
        store = SqliteLedger(path)
        await store.open()
        await store.close()

    asyncio.run(create())
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    conn.execute("BEGIN")
    conn.executemany(
        f"INSERT INTO breakwater_ledger ({cols}) VALUES ({', '.join('?' for _ in COLUMNS)})", _rows(rows, seed)
    )
    conn.execute("COMMIT")
    conn.execute("DELETE FROM breakwater_ledger_hourly_from")  # rows written behind the store's back
    conn.close()
    return time.perf_counter() - started


def fill(path: Path) -> float:
    """Roll up a ledger written without its rollups, as a gateway opening an older file does
    (``SqliteLedger.fill_rollup``); seconds taken."""

    async def run() -> None:
        store = SqliteLedger(path)
        await store.open()
        await store.fill_rollup()
        await store.close()

    started = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - started


class _NoRollup(SqliteLedger):
    """A store that writes rows without adding them to the hourly rollup (what it costs)."""

    def _roll_up(self, conn: sqlite3.Connection, rows: list[Any]) -> None:
        return None


def insert_cost(rows: int = 20_000, batch: int = 100, repeats: int = 5) -> dict[str, float]:
    """CPU microseconds per row a ledger batch insert takes (``SqliteLedger.write``, batches of
    ``batch``, into a fresh file), with every index and the hourly rollup, and without each of
    the dashboard's indexes and without the rollup; the configurations take turns, and CPU time
    (not wall time) is measured, so a busy machine blurs the figures less."""
    configs = {
        "every index and the rollup": None,
        "without breakwater_ledger_dashboard": "breakwater_ledger_dashboard",
        "without breakwater_ledger_shadow": "breakwater_ledger_shadow",
        "without the hourly rollup": "rollup",
    }
    records = [row_from_values(r) for r in _rows(rows, seed=7)]

    async def write(path: Path, drop: str | None) -> float:
        store = _NoRollup(path) if drop == "rollup" else SqliteLedger(path)
        await store.open()
        if drop is not None and drop != "rollup":
            with sqlite3.connect(path) as conn:
                conn.execute(f"DROP INDEX {drop}")
        started = time.process_time()
        for i in range(0, rows, batch):
            await store.write(records[i : i + batch], behind=True)
        took = time.process_time() - started
        await store.close()
        return took / rows * 1e6

    timings: dict[str, list[float]] = {name: [] for name in configs}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(repeats):
            for k, (name, drop) in enumerate(configs.items()):
                timings[name].append(asyncio.run(write(Path(tmp) / f"{n}-{k}.db", drop)))
    return {name: statistics.median(t) for name, t in timings.items()}


def _count(path: Path) -> int:
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM breakwater_ledger").fetchone()[0])
    except sqlite3.Error:
        return -1


def _calls(store: SqliteLedger, since: float, until: float, step: int) -> dict[str, Callable[[], Awaitable[Any]]]:
    window = RowFilter(since=since, until=until)
    return {
        "series": lambda: series(store, since=since, until=until, step_s=step),
        "totals": lambda: totals(store, since=since, until=until),
        "cost_series by user": lambda: cost_series(store, by="user", since=since, until=until, step_s=step),
        "cost_series by tag:team": lambda: cost_series(
            store, by="tag", tag_key="team", since=since, until=until, step_s=step
        ),
        "cost_series by team (keys merged)": lambda: cost_series(
            store, by="key", since=since, until=until, step_s=step, merge=_team_of
        ),
        "cost table by route": lambda: _cost_table(store, since, until),
        "cost table by key (teams)": lambda: _cost_table(store, since, until, by="key"),
        "reliability": lambda: reliability(store, since=since, until=until),
        "search (first page)": lambda: search(store, window),
        "search (errors, route)": lambda: search(
            store, RowFilter(since=since, until=until, status="error", route="route-chat")
        ),
        "search (cost >= $0.0015)": lambda: search(
            store, RowFilter(since=since, until=until, min_cost_usd=Decimal("0.0015"))
        ),
        "request_rows": lambda: request_rows(store, "req-99"),
    }


async def _cost_table(store: SqliteLedger, since: float, until: float, by: str = "route") -> Any:
    """The cost page's table as the page reads it: from the hourly rollup, or the usage report."""
    rows = await cost_table(store, by=by, since=since, until=until, limit=1000, tag_key=None)
    return rows if rows is not None else await aggregate(store, by=by, since=since, until=until, limit=1000)


def _team_of(key: Any) -> str:
    """The bench's keys' teams (``key-N``: a team for every sixth), as the cost page merges them."""
    return TEAMS[int(str(key).removeprefix("key-")) % len(TEAMS)] if str(key).startswith("key-") else "(no team)"


#: the dashboard's pages and the calls each one makes
PAGES = {
    "page: overview": ("series", "totals", "cost_series by user"),
    "page: costs": ("cost_series by tag:team", "cost table by route"),
    "page: costs by team": ("cost_series by team (keys merged)", "cost table by key (teams)"),
    "page: reliability": ("reliability", "series"),
    "page: explorer": ("search (first page)", "request_rows"),
}


Timing = tuple[float, float]
"""Seconds of CPU (every thread of the process: the query runs on a worker thread) and of wall time."""


def _time(call: Callable[[], Awaitable[Any]], repeats: int) -> Timing:
    cpu, wall = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        asyncio.run(call())  # type: ignore[arg-type]
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return statistics.median(cpu), statistics.median(wall)


def run(path: Path, repeats: int) -> list[tuple[str, dict[str, Timing]]]:
    store = SqliteLedger(path)
    table: dict[str, dict[str, Timing]] = {}
    for window, seconds in WINDOWS.items():
        # the window as a page takes it (server/ui/view.py): ending on the step after the last
        # row, so buckets start on whole steps and the hourly rollup serves whole hours
        step = STEPS[window]
        until = (END // step + 1) * step
        for name, call in _calls(store, until - seconds, until, step).items():
            table.setdefault(name, {})[window] = _time(call, repeats)
    for page, names in PAGES.items():
        table[page] = {w: (sum(table[n][w][0] for n in names), sum(table[n][w][1] for n in names)) for w in WINDOWS}
    return list(table.items())


def render(rows: list[tuple[str, dict[str, Timing]]], count: int, repeats: int) -> str:
    load = os.getloadavg()[0]
    lines = [
        f"{count:,} rows over 30 days; median of {repeats} runs; CPU ms / wall ms (load average {load:.1f} at the end,"
        f" {os.cpu_count()} cores); target: a page under {TARGET_S * 1000:.0f} ms",
        "",
        "| query | " + " | ".join(WINDOWS) + " |",
        "| --- | " + " | ".join("---:" for _ in WINDOWS) + " |",
    ]
    for name, timings in rows:
        cells = [f"{timings[w][0] * 1000:.0f} / {timings[w][1] * 1000:.0f}" for w in WINDOWS]
        if name.startswith("page:"):
            cells = [f"**{c}**" for c in cells]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="the ledger file to build or reuse (default: a temporary one)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--insert-cost", action="store_true", help="time ledger inserts with and without the indexes")
    args = parser.parse_args(argv)
    if args.insert_cost:
        for name, us in insert_cost().items():
            print(f"insert, {name}: {us:.1f} us a row")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "ledger.db"
        if _count(path) != args.rows:
            if path.exists():
                sys.exit(f"{path} holds other rows than --rows {args.rows}: remove it or pick another path")
            print(f"building {args.rows:,} rows in {build(path, args.rows):.0f} s", file=sys.stderr)
            print(f"rolling them up by the hour in {fill(path):.1f} s", file=sys.stderr)
        else:
            # a file built before this version's indexes gains them, as a gateway's would
            asyncio.run(_open_and_close(path))
        rows = run(path, args.repeats)
        print(render(rows, args.rows, args.repeats))
        failed = [n for n, timings in rows if n.startswith("page:") and max(c for c, _ in timings.values()) > TARGET_S]
        if failed:
            print(f"\nover {TARGET_S:.0f} s: {', '.join(failed)}")
    return 0


async def _open_and_close(path: Path) -> None:
    store = SqliteLedger(path)
    await store.open()
    await store.close()


if __name__ == "__main__":
    raise SystemExit(main())
