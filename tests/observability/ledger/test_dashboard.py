"""The dashboard's ledger queries (``dashboard.py``, ``explorer.py``) on both stores alike.

Every figure is worked out by hand from ``ROWS`` below: nine requests in a five-minute window
cut into one-minute buckets (two of them empty), and one row on each side of the window. Each
test runs against SQLite (a file of its own) and PostgreSQL (a table of its own, skipped when
the server is absent unless ``BREAKWATER_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from breakwater.observability.ledger import LedgerRow, SqliteLedger, bucketing
from breakwater.observability.ledger.bucketing import bounds
from breakwater.observability.ledger.dashboard import (
    RowFilter,
    cost_series,
    reliability,
    request_rows,
    search,
    series,
    totals,
)
from breakwater.observability.ledger.explorer import encode_cursor
from breakwater.observability.ledger.postgres import PostgresLedger

from .conftest import Holding
from .rows import START, make_row

Store = SqliteLedger | PostgresLedger
UNTIL = START + 300


def _row(
    name: str,
    at: float,
    *,
    route: str = "chat",
    user: str = "alice",
    key: str = "k1",
    deployment: str = "dep-a",
    status: int = 200,
    error_class: str | None = None,
    latency: float = 10.0,
    ttft: float | None = None,
    cost: str | None = "0",
    attempts: int = 1,
    fallback: bool = False,
    cache: str | None = None,
    saved: str | None = None,
    tags: dict[str, str] | None = None,
    shadow_of: str | None = None,
    routed: str | None = None,
) -> LedgerRow:
    provider, model = {"dep-a": ("openai", "m1"), "dep-b": ("anthropic", "m2"), "dep-c": ("openai", "m3")}.get(
        deployment, ("", "")
    )
    return dataclasses.replace(
        make_row(0),
        id=f"row-{name}",
        request_id=f"req-{name}",
        ts=START + at,
        route=route,
        user=user,
        key_id=key,
        deployment=deployment,
        provider=provider,
        upstream_model=model,
        status=status,
        error_class=error_class,
        latency_ms=latency,
        ttft_ms=ttft,
        cost_usd=None if cost is None else Decimal(cost),
        attempts=attempts,
        fallback=fallback,
        cache=cache,
        saved_usd=None if saved is None else Decimal(saved),
        tags=tags or {},
        shadow_of=shadow_of,
        routing_saved_usd=None if routed is None else Decimal(routed),
    )


ROWS = [
    # bucket 0
    _row("a", 1, latency=10, ttft=2, cost="0.1", cache="miss", tags={"team": "search"}),
    _row("b", 2, user="bob", key="k2", status=500, error_class="UpstreamServerError", latency=40, cost=None, attempts=3),
    _row("c", 3, route="search", deployment="dep-b", latency=20, ttft=4, cache="hit", saved="0.05", tags={"team": "ads"}),
    _row("d", 4, user="carol", key="k3", deployment="dep-b", status=429, error_class="RateLimited", latency=30,
         cost="0.0000000001", attempts=2, fallback=True),
    # bucket 1: empty; bucket 2: two rows at the same instant
    _row("e", 130, latency=5, ttft=1, cost="0.25", tags={"team": "search"}, routed="0.04"),
    _row("f", 130, route="search", user="bob", key="k2", status=404, latency=7, cost="0.0000000009"),
    # bucket 3: a request and its shadow call
    _row("g", 200, latency=100, ttft=50, cost="1.5", tags={"team": "ads"}, routed="-0.01"),
    _row("h", 201, route="chat-candidate", deployment="dep-c", latency=8, cost="0.01", shadow_of="req-g"),
    # bucket 4: refused before routing: no deployment, no cost
    _row("i", 250, user="", key="", deployment="", status=401, error_class="AuthenticationFailed", latency=0.5,
         cost=None),
    # outside the window, on each side
    _row("before", -1, cost="99"),
    _row("after", 300, cost="99"),
]  # fmt: skip


@pytest.fixture
async def store(ledger_holding: Holding) -> Store:
    """Each store in turn, holding ``ROWS``."""
    return await ledger_holding(ROWS)


def _bucket(t: float, **figures: Any) -> dict[str, Any]:
    empty = {
        "t": t,
        "requests": 0,
        "errors": 0,
        "error_rate": 0.0,
        "latency_p50_ms": None,
        "latency_p95_ms": None,
        "ttft_p50_ms": None,
        "ttft_p95_ms": None,
        "cost_usd": "0.0000000000",
        "saved_usd": "0.0000000000",
        "routing_saved_usd": "0.0000000000",
        "cache_hits": 0,
        "unpriced": 0,
    }
    return {**empty, **figures}


async def test_series_buckets_every_minute_with_nearest_rank_percentiles(store: Store) -> None:
    """Each bucket counts its rows; percentiles are nearest-rank; empty buckets are zeros."""
    got = await series(store, since=START, until=UNTIL, step_s=60)
    assert got == [
        # latencies 10, 20, 30, 40: p50 is the 2nd, p95 the 4th; ttft 2, 4
        _bucket(START, requests=4, errors=2, error_rate=0.5, latency_p50_ms=20.0, latency_p95_ms=40.0,
                ttft_p50_ms=2.0, ttft_p95_ms=4.0, cost_usd="0.1000000001", saved_usd="0.0500000000",
                cache_hits=1, unpriced=1),
        _bucket(START + 60),
        _bucket(START + 120, requests=2, errors=1, error_rate=0.5, latency_p50_ms=5.0, latency_p95_ms=7.0,
                ttft_p50_ms=1.0, ttft_p95_ms=1.0, cost_usd="0.2500000009", routing_saved_usd="0.0400000000"),
        _bucket(START + 180, requests=2, latency_p50_ms=8.0, latency_p95_ms=100.0, ttft_p50_ms=50.0,
                ttft_p95_ms=50.0, cost_usd="1.5100000000", routing_saved_usd="-0.0100000000"),
        _bucket(START + 240, requests=1, errors=1, error_rate=1.0, latency_p50_ms=0.5, latency_p95_ms=0.5,
                unpriced=1),
    ]  # fmt: skip


async def test_series_of_one_route_and_a_last_bucket_cut_by_until(store: Store) -> None:
    """``route`` keeps that route's rows; a step not dividing the window leaves a partial last bucket."""
    got = await series(store, since=START, until=UNTIL, step_s=120, route="chat")
    assert [b["t"] for b in got] == [START, START + 120, START + 240]
    assert [b["requests"] for b in got] == [3, 2, 1]
    # a, b, d: latencies 10, 30, 40
    assert (got[0]["latency_p50_ms"], got[0]["latency_p95_ms"]) == (30.0, 40.0)
    assert got[1]["cost_usd"] == "1.7500000000"


async def test_totals_rank_every_row_of_the_window(store: Store) -> None:
    """Totals are the window's figures, its percentiles over all nine rows (not of the buckets)."""
    assert await totals(store, since=START, until=UNTIL) == {
        "requests": 9,
        "errors": 4,
        "error_rate": 4 / 9,
        "latency_p50_ms": 10.0,  # 0.5 5 7 8 [10] 20 30 40 100
        "latency_p95_ms": 100.0,
        "ttft_p50_ms": 2.0,  # 1 [2] 4 50
        "ttft_p95_ms": 50.0,
        "cost_usd": "1.8600000010",
        "saved_usd": "0.0500000000",
        "routing_saved_usd": "0.0300000000",  # a router's 0.04 saved, less another's 0.01 spent
        "cache_hits": 1,
        "unpriced": 2,
    }


async def test_totals_of_an_empty_window_are_zeros(store: Store) -> None:
    """A window without rows: zeros and ``None`` percentiles."""
    got = await totals(store, since=START + 400, until=START + 500)
    assert got == {k: v for k, v in _bucket(0).items() if k != "t"}


async def test_cost_series_by_user_folds_the_rest_into_other(store: Store) -> None:
    """The top group by cost keeps its name; every other user's cost is ``other``, bucket by bucket."""
    got = await cost_series(store, by="user", since=START, until=UNTIL, step_s=60, top=1)
    assert got["groups"] == ["alice", "other"]
    assert [b["cost_usd"] for b in got["buckets"]] == [
        {"alice": "0.1000000000", "other": "0.0000000001"},
        {"alice": "0.0000000000", "other": "0.0000000000"},
        {"alice": "0.2500000000", "other": "0.0000000009"},
        {"alice": "1.5100000000", "other": "0.0000000000"},
        {"alice": "0.0000000000", "other": "0.0000000000"},
    ]
    assert [b["t"] for b in got["buckets"]] == [START + 60 * i for i in range(5)]


async def test_cost_series_by_tag_names_untagged_rows(store: Store) -> None:
    """By tag, rows without it are ``(none)``; with every group shown there is no ``other``."""
    got = await cost_series(store, by="tag", tag_key="team", since=START, until=UNTIL, step_s=60, top=3)
    assert got["groups"] == ["ads", "search", "(none)"]
    assert got["buckets"][0]["cost_usd"] == {"ads": "0.0000000000", "search": "0.1000000000", "(none)": "0.0000000001"}
    assert got["buckets"][3]["cost_usd"] == {"ads": "1.5000000000", "search": "0.0000000000", "(none)": "0.0100000000"}
    two = await cost_series(store, by="tag", tag_key="team", since=START, until=UNTIL, step_s=300, top=2)
    assert two == {
        "groups": ["ads", "search", "other"],
        "buckets": [
            {"t": START, "cost_usd": {"ads": "1.5000000000", "search": "0.3500000000", "other": "0.0100000010"}}
        ],
    }


async def test_cost_series_of_an_empty_window(store: Store) -> None:
    """No rows: no groups, every bucket empty."""
    got = await cost_series(store, by="route", since=START + 400, until=START + 520, step_s=60)
    assert got == {"groups": [], "buckets": [{"t": START + 400, "cost_usd": {}}, {"t": START + 460, "cost_usd": {}}]}


async def test_reliability_per_deployment(store: Store) -> None:
    """Per deployment: errors by class, retries, fallbacks and percentiles; rows without one left out."""
    assert await reliability(store, since=START, until=UNTIL) == [
        {
            "deployment": "dep-a",
            "provider": "openai",
            "requests": 5,
            "errors": 2,
            "error_rate": 0.4,
            "error_classes": {"UpstreamServerError": 1, "unknown": 1},
            "retries": 2,
            "fallbacks": 0,
            "latency_p50_ms": 10.0,  # 5 7 [10] 40 100
            "latency_p95_ms": 100.0,
            "latency_p99_ms": 100.0,
            "ttft_p50_ms": 2.0,  # 1 [2] 50
        },
        {
            "deployment": "dep-b",
            "provider": "anthropic",
            "requests": 2,
            "errors": 1,
            "error_rate": 0.5,
            "error_classes": {"RateLimited": 1},
            "retries": 1,
            "fallbacks": 1,
            "latency_p50_ms": 20.0,
            "latency_p95_ms": 30.0,
            "latency_p99_ms": 30.0,
            "ttft_p50_ms": 4.0,
        },
        {
            "deployment": "dep-c",
            "provider": "openai",
            "requests": 1,
            "errors": 0,
            "error_rate": 0.0,
            "error_classes": {},
            "retries": 0,
            "fallbacks": 0,
            "latency_p50_ms": 8.0,
            "latency_p95_ms": 8.0,
            "latency_p99_ms": 8.0,
            "ttft_p50_ms": None,
        },
    ]


NEWEST_FIRST = ["i", "h", "g", "f", "e", "d", "c", "b", "a"]  # f before e: same ts, larger id


@pytest.mark.parametrize("limit", [1, 2, 4, 9, 50])
async def test_search_pages_through_every_row_exactly_once(store: Store, limit: int) -> None:
    """Following the cursors yields each row of the window once, newest first, then ``None``."""
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        rows, cursor = await search(store, RowFilter(since=START, until=UNTIL), limit=limit, cursor=cursor)
        assert len(rows) <= limit
        seen += [r.id.removeprefix("row-") for r in rows]
        pages += 1
        if cursor is None:
            break
    assert seen == NEWEST_FIRST
    assert pages == -(-len(NEWEST_FIRST) // limit)


async def test_search_returns_whole_rows(store: Store) -> None:
    """A found row is the row written, every column."""
    rows, _ = await search(store, RowFilter(since=START, until=UNTIL, min_latency_ms=100.0))
    assert rows == [ROWS[6]]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": "error"}, ["i", "f", "d", "b"]),
        ({"status": "ok"}, ["h", "g", "e", "c", "a"]),
        ({"status": "4xx"}, ["i", "f", "d"]),
        ({"status": "5xx"}, ["b"]),
        ({"status": "429"}, ["d"]),
        ({"route": "chat"}, ["i", "g", "e", "d", "b", "a"]),
        ({"user": "bob"}, ["f", "b"]),
        ({"key_id": "k3"}, ["d"]),
        ({"model": "m2"}, ["d", "c"]),
        ({"model": "dep-c"}, ["h"]),
        ({"min_cost_usd": Decimal("0.25")}, ["g", "e"]),
        ({"min_cost_usd": Decimal("0.2500000001")}, ["g"]),
        ({"min_latency_ms": 40.0}, ["g", "b"]),
        ({"status": "error", "route": "chat"}, ["i", "d", "b"]),
        ({"route": "nowhere"}, []),
    ],
)
async def test_search_filters(store: Store, fields: dict[str, Any], expected: list[str]) -> None:
    """Each filter field narrows the window's rows; set fields combine."""
    rows, cursor = await search(store, RowFilter(since=START, until=UNTIL, **fields))
    assert [r.id.removeprefix("row-") for r in rows] == expected
    assert cursor is None


async def test_request_rows_are_the_request_and_its_shadows(store: Store) -> None:
    """A request's rows: its own, then its shadow calls'; an unknown id has none."""
    assert [r.id for r in await request_rows(store, "req-g")] == ["row-g", "row-h"]
    assert [r.id for r in await request_rows(store, "req-a")] == ["row-a"]
    assert await request_rows(store, "req-nothing") == []


# --- arguments (checked before any store is read) -------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"step_s": 0}, "step_s"),
        ({"step_s": 1.5}, "step_s"),
        ({"step_s": 1, "until": START + 2001}, "2001 buckets"),
        ({"until": START}, "after since"),
        ({"since": float("nan")}, "finite"),
        ({"route": ""}, "route"),
    ],
)
async def test_series_rejects_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    """A bad step, window or route is a ValueError naming it, and no file is created."""
    args: dict[str, Any] = {"since": START, "until": UNTIL, "step_s": 60, **kwargs}
    with pytest.raises(ValueError, match=message):
        await series(SqliteLedger(tmp_path / "x.db"), **args)
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "day"}, "cost can be grouped"),
        ({"by": "colour"}, "cost can be grouped"),
        ({"by": "tag"}, "tag key"),
        ({"by": "user", "tag_key": "team"}, "tag key"),
        ({"by": "tag", "tag_key": 'a"b'}, "double quote"),
        ({"by": "user", "top": 0}, "top"),
        ({"by": "user", "top": 51}, "top"),
        ({"by": "user", "step_s": -60}, "step_s"),
    ],
)
async def test_cost_series_rejects_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    """A bad grouping, tag key, top or step is a ValueError naming it."""
    args: dict[str, Any] = {"since": START, "until": UNTIL, "step_s": 60, **kwargs}
    with pytest.raises(ValueError, match=message):
        await cost_series(SqliteLedger(tmp_path / "x.db"), **args)


async def test_reliability_and_totals_reject_a_bad_window(tmp_path: Path) -> None:
    """A window that ends before it starts is a ValueError."""
    store = SqliteLedger(tmp_path / "x.db")
    with pytest.raises(ValueError, match="after since"):
        await reliability(store, since=UNTIL, until=START)
    with pytest.raises(ValueError, match="after since"):
        await totals(store, since=UNTIL, until=UNTIL)


@pytest.mark.parametrize(
    "fields",
    [
        {"until": START},
        {"status": "6xx"},
        {"status": "99"},
        {"route": ""},
        {"user": "x" * 513},
        {"min_cost_usd": Decimal("-1")},
        {"min_cost_usd": Decimal("NaN")},
        {"min_latency_ms": float("inf")},
    ],
)
def test_row_filter_rejects_bad_fields(fields: dict[str, Any]) -> None:
    """A filter with a bad window, status, text or bound cannot be made."""
    with pytest.raises(ValueError):
        RowFilter(**{"since": START, "until": UNTIL, **fields})


@pytest.mark.parametrize(
    "cursor", ["", "!!!", "bm90IGpzb24", encode_cursor(1.0, "x")[:-2], "WzEsMiwzXQ", "WyJ4IiwieCJd", "W3RydWUsIngiXQ"]
)
async def test_search_rejects_a_bad_cursor_or_limit(tmp_path: Path, cursor: str) -> None:
    """A cursor ``search`` did not give, or a limit out of range, is a ValueError."""
    store = SqliteLedger(tmp_path / "x.db")
    window = RowFilter(since=START, until=UNTIL)
    with pytest.raises(ValueError, match="cursor"):
        await search(store, window, cursor=cursor)
    for limit in (0, 501):
        with pytest.raises(ValueError, match="limit"):
            await search(store, window, limit=limit)


async def test_a_ledger_not_written_yet_reads_as_empty(tmp_path: Path) -> None:
    """Before the first row (no file): empty answers, and no file created."""
    store = SqliteLedger(tmp_path / "none.db")
    assert (await totals(store, since=START, until=UNTIL))["requests"] == 0
    assert await search(store, RowFilter(since=START, until=UNTIL)) == ([], None)
    assert await reliability(store, since=START, until=UNTIL) == []
    assert await request_rows(store, "req-a") == []
    assert not (tmp_path / "none.db").exists()


# --- how the work is done: bucket bounds, the sample past the rank budget, the indexes ---------------


@pytest.mark.parametrize(("since", "step"), [(START, 60.0), (0.1, 60.0), (START + 0.3, 7.0), (1e9 / 3, 3.0)])
def test_bucket_bounds_agree_with_the_bucket_formula(since: float, step: float) -> None:
    """Each bound is the first instant ``floor((ts - since) / step)`` puts in its bucket."""
    edges = bounds(since, since + 50 * step, step, 50)
    assert edges[0] == since and edges[-1] == since + 50 * step
    for i, edge in enumerate(edges[1:-1], start=1):
        assert math.floor((edge - since) / step) == i
        assert math.floor((math.nextafter(edge, -math.inf) - since) / step) == i - 1


async def test_past_the_rank_budget_percentiles_rank_a_sample(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A window holding more rows than the budget ranks the 1-in-m sample (the same rows in both stores)."""
    monkeypatch.setattr(bucketing, "RANK_BUDGET", 6)
    rows = [
        dataclasses.replace(
            ROWS[0], id=f"s{k}", ts=START + 1000 + k * 1.000001, latency_ms=float(10 * k + 1), ttft_ms=None
        )
        for k in range(20)
    ]
    await store.write(rows)
    m = bucketing.sample_modulus(20)
    assert m == 4
    sampled = sorted(r.latency_ms for r in rows if int(r.ts * 1_000_000) % m == 0)
    assert 0 < len(sampled) < 20
    got = await totals(store, since=START + 1000, until=START + 1100)
    assert got["requests"] == 20
    assert got["latency_p50_ms"] == sampled[-(-50 * len(sampled) // 100) - 1]
    assert got["latency_p95_ms"] == sampled[-(-95 * len(sampled) // 100) - 1]


async def test_open_makes_the_dashboard_indexes(tmp_path: Path) -> None:
    """SQLite's ledger gains the dashboard's covering index and the shadow index on open."""
    store = SqliteLedger(tmp_path / "ledger.db")
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"breakwater_ledger_dashboard", "breakwater_ledger_shadow"} <= names


async def test_sqlite_groups_in_chunks_of_time_and_adds_them_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite groups each time chunk apart; with a chunk a row, the sums are those of one pass."""
    store = SqliteLedger(tmp_path / "ledger.db")
    await store.open()
    await store.write(ROWS)
    try:
        whole = (
            await reliability(store, since=START, until=UNTIL),
            await cost_series(store, by="user", since=START, until=UNTIL, step_s=60, top=2),
        )
        monkeypatch.setattr(bucketing, "CHUNK_ROWS", 1)
        chunked = (
            await reliability(store, since=START, until=UNTIL),
            await cost_series(store, by="user", since=START, until=UNTIL, step_s=60, top=2),
        )
    finally:
        await store.close()
    assert chunked == whole
    assert whole[1]["groups"] == ["alice", "bob", "other"]
