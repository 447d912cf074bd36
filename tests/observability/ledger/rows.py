"""Ledger rows for the tests, and a bounded wait on a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal

from breakwater.observability.ledger import LedgerRow

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
    )


async def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    """Poll ``condition`` every 10 ms until it holds; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for: {what}")
        await asyncio.sleep(0.01)
