"""Ledger rows for the tests (one generated row, and a hand-made day of usage), and a bounded wait on a condition."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

from breakwater.observability.ledger import LedgerRow
from breakwater.observability.ledger.feedback import Feedback

T0 = 1_700_000_000.0


def make_row(i: int, *, prefix: str = "r") -> LedgerRow:
    """Row number ``i``: distinct id and ts, every optional field set on even rows and None on odd ones."""
    full = i % 2 == 0
    return LedgerRow(
        id=f"{prefix}{i:08d}",
        request_id=f"req-{i}",
        trace_id=f"{i:032x}" if full else None,
        ts=T0 + i * 0.001,
        key_id="key-1",
        user=f"user-{i % 3}",
        tags={"team": "search", "n": str(i)} if full else {},
        route="gpt-fast",
        deployment="openai-gpt-4o-mini",
        provider="openai",
        upstream_model="gpt-4o-mini",
        attempts=1 + i % 2,
        fallback=not full,
        status=200 if full else 503,
        error_class=None if full else "UpstreamUnavailable",
        finish_reason="stop" if full else None,
        input_tokens=100 + i,
        cached_input_tokens=i % 7,
        cache_write_tokens=i % 5,
        output_tokens=20 + i,
        reasoning_tokens=i % 11,
        cost_usd=Decimal("0.0001234567") * (i + 1) if full else None,
        latency_ms=12.5 + i,
        ttft_ms=3.25 if full else None,
        output_tps=55.5 if full else None,
        stream=full,
        cache="miss" if full else None,
        usage_estimated=not full,
        prompt="héllo ☃" if full else None,
        response='{"a": "b"}' if full else None,
        upstream_ms=9.75 + i if full else None,
        overhead_ms=0.125 if full else None,
        saved_usd=Decimal("0.0000000421") * (i + 1) if full else None,
        prompt_name="support-triage" if full else None,
        prompt_version=3 + i if full else None,
        variant="canary" if full else None,
        refused=i % 4 == 0 if full else None,
        temperature=0.25 if full else None,
        max_tokens=2**40 + i if full else None,
        top_p=0.5 if full else None,
        seed=-(2**62) - i if full else None,
        has_tools=i % 4 == 0 if full else None,
        response_format="json_schema" if full else None,
        routing_saved_usd=Decimal("-0.0000000107") * (i + 1) if full else None,
    )


#: a UTC midnight (2023-11-15T00:00:00Z): the start of the hand-made day of usage
START = 1_700_006_400.0
DAY = 86400.0


def usage_row(
    i: int,
    *,
    user: str,
    latency: float,
    cost: str | None,
    status: int = 200,
    tags: dict[str, str] | None = None,
    cache: str | None = None,
    saved: str | None = None,
    routed: str | None = None,
) -> LedgerRow:
    """Row ``i`` of the hand-made usage: a minute apart from ``START``, 10 input (1 cached) and 5 output tokens."""
    return dataclasses.replace(
        make_row(i),
        ts=START + i * 60.0,
        user=user,
        latency_ms=latency,
        cost_usd=None if cost is None else Decimal(cost),
        status=status,
        input_tokens=10,
        cached_input_tokens=1,
        output_tokens=5,
        tags=tags or {},
        cache=cache,
        saved_usd=None if saved is None else Decimal(saved),
        routing_saved_usd=None if routed is None else Decimal(routed),
    )


USAGE_ROWS = [
    # alice: 4 requests, one error, costs 0.1 + 0.2 + 0.0000000001 + none; one cache miss, one hit
    # that saved 0.05; a router saved 0.02 on one and cost 0.005 more than its baseline on another
    usage_row(0, user="alice", latency=10.0, cost="0.1", tags={"team": "search"}, cache="miss", routed="0.02"),
    usage_row(1, user="alice", latency=40.0, cost="0.2", status=500, tags={"team": "search"}, routed="-0.005"),
    usage_row(2, user="alice", latency=20.0, cost="0.0000000001", tags={"team": "ads"}, cache="hit", saved="0.05"),
    usage_row(3, user="alice", latency=30.0, cost=None),
    # bob: 2 requests, cheaper in total than alice
    usage_row(4, user="bob", latency=5.0, cost="0.25", tags={"team": "ads"}, cache="miss"),
    usage_row(5, user="bob", latency=7.0, cost="0.0000000009", status=429),
    # carol: costs nothing, one request
    usage_row(6, user="carol", latency=1.0, cost=None),
    # outside the window: the next day (exactly START + DAY, the window's exclusive end)
    usage_row(24 * 60, user="dave", latency=1.0, cost="99"),
]
"""A day of usage by hand: what the aggregate must report for it is worked out in the tests."""


def sqlite_ledger_with(path: Path, rows: list[LedgerRow], feedback: Sequence[Feedback] = ()) -> None:
    """Create the SQLite ledger at ``path`` holding ``rows`` and ``feedback`` (as the store makes its tables)."""
    from breakwater.observability.ledger import SqliteLedger

    async def fill() -> None:
        store = SqliteLedger(path)
        await store.open()
        await store.write(rows)
        for item in feedback:
            await store.write_feedback(item)
        await store.close()

    asyncio.run(fill())


async def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    """Poll ``condition`` every 10 ms until it holds; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for: {what}")
        await asyncio.sleep(0.01)
