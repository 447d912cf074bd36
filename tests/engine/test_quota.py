"""Limits and budgets (engine/limits/quota.py) on memory counters and an injected clock: what is admitted,
what is refused with which error and wait, what settlement gives back, budget alerts, sessions,
and riding out a counter backend that goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from decimal import Decimal

import pytest

from breakwater.core.errors import (
    BackendUnavailable,
    LimitExceeded,
    QuotaExceeded,
    RequestsLimitExceeded,
    TokensLimitExceeded,
)
from breakwater.core.limits import Budget, Limits
from breakwater.engine.context import RequestContext
from breakwater.engine.limits.checks import BudgetAlert, Demand, Scope, Sessions
from breakwater.engine.limits.counters import (
    Adjust,
    Check,
    CounterLease,
    CountersUnavailable,
    Reading,
    Release,
    Verdict,
    Window,
)
from breakwater.engine.limits.quota import Quota
from breakwater.infra.clock import ManualClock
from breakwater.infra.counters import MemoryCounters

#: 2026-11-28 12:00:00 UTC, on a whole second
WALL = 1_795_867_200.0


def clock() -> ManualClock:
    return ManualClock(wall=WALL)


def key(**limits: object) -> Scope:
    return Scope("key", "k1", "key bw-abcdefgh", Limits(**limits))  # type: ignore[arg-type]


def demand(tokens: int = 100, cost_usd: str = "0") -> Demand:
    return Demand(tokens, int(Decimal(cost_usd) * 1_000_000_000))


async def admit(
    quota: Quota, scopes: Sequence[Scope], d: Demand | None = None, session: str | None = None
) -> RequestContext:
    ctx = RequestContext("r")
    await quota.admit(ctx, scopes, lambda: d or demand(), session=session)
    return ctx


def header(ctx: RequestContext, name: bytes) -> bytes | None:
    return dict(ctx.limits.rate_headers).get(name)


async def test_requests_per_minute_admit_exactly_the_limit_and_say_when_to_retry() -> None:
    """A 3 RPM key admits three requests in a minute; the fourth is refused until the oldest slot
    leaves the window, and every response carries OpenAI's x-ratelimit headers."""
    c = clock()
    quota = Quota(MemoryCounters(), c)
    scope = key(rpm=3)
    first = await admit(quota, [scope])
    assert header(first, b"x-ratelimit-limit-requests") == b"3"
    assert header(first, b"x-ratelimit-remaining-requests") == b"2"
    assert header(first, b"x-ratelimit-reset-requests") == b"1m0s"
    c.advance(10)
    await admit(quota, [scope])
    await admit(quota, [scope])
    c.advance(5)
    with pytest.raises(RequestsLimitExceeded) as refused:
        await admit(quota, [scope])
    assert refused.value.retry_after == 45.0  # the first request's slot leaves at +60 s
    assert "Limit 3, Used 3, Requested 1" in refused.value.message and "key bw-abcdefgh" in refused.value.message
    c.advance(45)
    after = await admit(quota, [scope])
    assert header(after, b"x-ratelimit-remaining-requests") == b"0"
    assert quota.refusals[("key", "rpm")] == 1


async def test_tokens_are_reserved_then_settled_to_the_real_usage() -> None:
    """The token estimate is reserved when a request starts; settling with the real usage gives
    the difference back, so more requests fit in the same minute."""
    c = clock()
    quota = Quota(MemoryCounters(), c)
    scope = key(tpm=1000)
    a = await admit(quota, [scope], demand(600))
    with pytest.raises(TokensLimitExceeded) as refused:
        await admit(quota, [scope], demand(600))
    assert refused.value.retry_after == 60.0
    quota.settle(a, 150, None)
    await quota.flush()
    b = await admit(quota, [scope], demand(600))
    assert header(b, b"x-ratelimit-remaining-tokens") == b"250"


async def test_a_request_larger_than_the_token_limit_is_refused_without_counting() -> None:
    """A request whose estimate alone exceeds the TPM limit can never fit: refused at once."""
    quota = Quota(MemoryCounters(), clock())
    with pytest.raises(TokensLimitExceeded) as refused:
        await admit(quota, [key(tpm=100, rpm=10)], demand(101))
    assert refused.value.code == "request_too_large"
    ok = await admit(quota, [key(tpm=100, rpm=10)], demand(50))
    assert header(ok, b"x-ratelimit-remaining-requests") == b"9"  # the refused one was not counted


async def test_concurrency_is_held_until_settled() -> None:
    """max_concurrent admits that many at once; settling one frees a place."""
    quota = Quota(MemoryCounters(), clock())
    scope = key(max_concurrent=2)
    a = await admit(quota, [scope])
    await admit(quota, [scope])
    with pytest.raises(LimitExceeded) as refused:
        await admit(quota, [scope])
    assert refused.value.code == "concurrency_limit_exceeded" and refused.value.retry_after == 1.0
    quota.settle(a, 0, None)
    await quota.flush()
    await admit(quota, [scope])


async def test_a_refusal_by_one_scope_counts_nothing_anywhere() -> None:
    """All or nothing: when the user's limit refuses, the key's counter is not touched."""
    quota = Quota(MemoryCounters(), clock())
    user = Scope("user", "alice", "user 'alice'", Limits(rpm=1))
    await admit(quota, [user])
    for _ in range(3):
        with pytest.raises(RequestsLimitExceeded):
            await admit(quota, [key(rpm=2), user])
    ok = await admit(quota, [key(rpm=2)])
    assert header(ok, b"x-ratelimit-remaining-requests") == b"1"


async def test_headers_report_the_tightest_limit() -> None:
    """With several request limits, the headers show the one with the fewest requests left."""
    quota = Quota(MemoryCounters(), clock())
    route = Scope("route", "fast", "model 'fast'", Limits(rpm=5))
    ctx = await admit(quota, [key(rpm=100), route])
    assert header(ctx, b"x-ratelimit-limit-requests") == b"5"
    assert header(ctx, b"x-ratelimit-remaining-requests") == b"4"


async def test_budget_overshoot_is_bounded_by_one_request() -> None:
    """Requests are admitted while spend plus reservations is below the cap, each reserving its
    maximum cost, so the committed total never passes the cap by more than one request's maximum."""
    c = clock()
    quota = Quota(MemoryCounters(), c)
    scope = key(budget=Budget(Decimal("1.00"), "day"))
    held = [await admit(quota, [scope], demand(cost_usd="0.30")) for _ in range(4)]  # 0, .3, .6, .9 are below 1
    with pytest.raises(QuotaExceeded) as refused:
        await admit(quota, [scope], demand(cost_usd="0.30"))
    assert refused.value.code == "budget_exceeded"
    assert refused.value.retry_after == 12 * 3600  # the day ends at midnight UTC
    for ctx in held:
        quota.settle(ctx, 10, Decimal("0.10"))
    await quota.flush()
    [row] = await quota.spend([scope])
    assert row["spent_usd"] == "0.4" and row["committed_usd"] == "0.4" and row["period_id"] == "d20261128"
    await admit(quota, [scope], demand(cost_usd="0.30"))  # settled below what was reserved: room again
    c.advance(12 * 3600)
    [row] = await quota.spend([scope])
    assert row["spent_usd"] == "0" and row["period_id"] == "d20261129"  # a new day, a new budget


async def test_usage_reads_each_limits_live_use_without_counting() -> None:
    """``Quota.usage``: requests and tokens in the last 60 one-second slots, requests in flight;
    reading twice changes nothing, and the minute slides."""
    c = clock()
    quota = Quota(MemoryCounters(), c)
    scope = key(rpm=10, tpm=1000, max_concurrent=4)
    held = [await admit(quota, [scope], demand(tokens=100)) for _ in range(3)]
    quota.settle(held[0], 40, None)
    await quota.flush()
    expected = [("rpm", 3, 10), ("tpm", 240, 1000), ("concurrent", 2, 4)]
    for _ in range(2):
        rows = await quota.usage([scope, key()])
        assert [(r["limit"], r["used"], r["cap"]) for r in rows] == expected
    assert rows[0]["scope"] == "key" and rows[0]["subject"] == "k1" and rows[0]["used_share"] == 0.3
    c.advance(61)
    assert [r["used"] for r in await quota.usage([scope])] == [0, 0, 2]


async def test_budget_alerts_fire_once_per_crossing_across_replicas() -> None:
    """50/80/100% alerts fire when settled spend first crosses each share, once, even with two
    replicas sharing the counters."""
    c = clock()
    shared = MemoryCounters()
    alerts: list[BudgetAlert] = []
    replicas = [Quota(shared, c, on_alert=alerts.append) for _ in range(2)]
    scope = key(budget=Budget(Decimal("10"), "month"))
    for i, cost in enumerate(["4", "0.5", "1", "2", "2", "1"]):
        quota = replicas[i % 2]
        ctx = await admit(quota, [scope], demand(cost_usd="1"))
        quota.settle(ctx, 1, Decimal(cost))
        await quota.flush()
    # spend: 4, 4.5, 5.5 (50% crossed), 7.5, 9.5 (80%), 10.5 (100%)
    assert [(a.share, a.spent_usd) for a in alerts] == [
        (0.5, Decimal("5.5")),
        (0.8, Decimal("9.5")),
        (1.0, Decimal("10.5")),
    ]
    assert alerts[0].label == "key bw-abcdefgh" and alerts[0].period_id == "m202611"
    assert "$5.50 of its $10.00 month budget" in alerts[0].message()


async def test_sessions_stop_a_runaway_loop() -> None:
    """With session caps, a session's calls and spend stop at their limits; another session is unaffected."""
    quota = Quota(MemoryCounters(), clock(), sessions=Sessions(max_calls=3, max_spend_usd=Decimal("1")))
    for _ in range(3):
        ctx = await admit(quota, [], demand(cost_usd="0.01"), session="k1:agent-7")
        quota.settle(ctx, 1, Decimal("0.01"))
    await quota.flush()
    with pytest.raises(QuotaExceeded) as refused:
        await admit(quota, [], demand(cost_usd="0.01"), session="k1:agent-7")
    assert refused.value.code == "session_limit_exceeded" and "3 calls" in refused.value.message
    spender = await admit(quota, [], demand(cost_usd="2"), session="k1:agent-8")  # below the cap when admitted
    quota.settle(spender, 1, Decimal("1.5"))
    await quota.flush()
    with pytest.raises(QuotaExceeded, match="spend limit"):
        await admit(quota, [], demand(cost_usd="0.01"), session="k1:agent-8")


async def test_no_limits_no_counting() -> None:
    """A request with no limits and no session is admitted without touching the counters."""
    counters = MemoryCounters()
    quota = Quota(counters, clock())
    ctx = await admit(quota, [Scope("key", "k", "key k", Limits())])
    assert ctx.limits.ticket is None and ctx.limits.rate_headers == [] and len(counters) == 0


class Flaky:
    """Counters that fail while ``down`` (a Redis outage), else delegate to memory."""

    def __init__(self) -> None:
        self.inner = MemoryCounters()
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise CountersUnavailable("Redis")

    async def acquire(self, checks: Sequence[Check], now: float) -> Verdict:
        self._check()
        return await self.inner.acquire(checks, now)

    async def settle(self, adjusts: Sequence[Adjust], releases: Sequence[Release], now: float) -> list[int | None]:
        self._check()
        return await self.inner.settle(adjusts, releases, now)

    async def read(self, windows: Sequence[Window], now: float) -> list[Reading]:
        self._check()
        return await self.inner.read(windows, now)

    async def held(self, keys: Sequence[str], now: float) -> list[int]:
        self._check()
        return await self.inner.held(keys, now)

    async def first(self, key: str, ttl_s: int, now: float) -> bool:
        self._check()
        return await self.inner.first(key, ttl_s, now)

    async def ping(self) -> None:
        self._check()


async def test_an_outage_falls_back_to_local_counters_and_repays_the_spend() -> None:
    """While the shared counters are down, requests are admitted on local counters (budgets continue
    from the last figure seen); after three failures in a row they count as down; when a probe
    finds them back, counting resumes there and the spend made meanwhile is added to them."""
    c = clock()
    shared = Flaky()
    quota = Quota(shared, c, local=MemoryCounters(), probe_s=3600)
    scope = key(rpm=100, budget=Budget(Decimal("1"), "month"))
    ctx = await admit(quota, [scope], demand(cost_usd="0.5"))
    quota.settle(ctx, 1, Decimal("0.5"))
    await quota.flush()
    shared.down = True
    held = await admit(quota, [scope], demand(cost_usd="0.5"))  # local: starts from the 0.5 seen
    assert quota.healthy and quota.local_admissions == 1  # one failure is a blip, not an outage
    with pytest.raises(QuotaExceeded):
        await admit(quota, [scope], demand(cost_usd="0.5"))  # 0.5 + 0.5 reserved: at the cap
    await admit(quota, [Scope("route", "r", "model 'r'", Limits(rpm=5))])
    assert not quota.healthy  # three in a row: down until a probe says otherwise
    quota.settle(held, 1, Decimal("0.25"))
    await quota.flush()
    assert quota.pending == 1  # the spend owed to the shared counters waits for them
    assert not await quota.probe()
    shared.down = False
    assert await quota.probe()
    await quota.flush()
    assert quota.pending == 0
    [row] = await quota.spend([scope])
    assert row["spent_usd"] == "0.75" and row["committed_usd"] == "0.75"
    await quota.stop()


async def test_an_outage_with_limits_failing_closed_refuses_limited_requests() -> None:
    """on_failure 'closed': requests that have limits get 503 while the counters are down."""
    shared = Flaky()
    shared.down = True
    quota = Quota(shared, clock(), local=MemoryCounters(), on_failure="closed", probe_s=3600)
    with pytest.raises(BackendUnavailable):
        await admit(quota, [key(rpm=10)])
    await admit(quota, [])  # nothing to count: not refused
    await quota.stop()


class Gated(Flaky):
    """Counters whose admissions wait for ``gate``: a Redis that answers late."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def acquire(self, checks: Sequence[Check], now: float) -> Verdict:
        await self.gate.wait()
        return await super().acquire(checks, now)


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run pending callbacks until ``condition`` holds (yields, never a timed wait)."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def test_a_late_admission_is_given_back() -> None:
    """A request that stopped waiting for the shared counters goes on locally; when their late
    answer admits it after all, its reservation there is given back, and only its real spend stays."""
    c = clock()
    shared = Gated()
    quota = Quota(shared, c, local=MemoryCounters(), wait_s=0, probe_s=3600)
    scope = key(max_concurrent=1, budget=Budget(Decimal("1"), "month"))
    ctx = await admit(quota, [scope], demand(cost_usd="0.5"))
    assert ctx.limits.ticket is not None and ctx.limits.ticket.backend is quota.local and quota.healthy
    shared.gate.set()
    await until(lambda: quota.late_admissions_undone == 1)
    await quota.flush()
    [row] = await quota.spend([scope])
    assert row["committed_usd"] == "0"  # the late reservation was given back
    lease = await shared.inner.acquire([CounterLease("conc:key:k1", 1, "probe", c.time() + 60)], c.time())
    assert lease.admitted  # and its concurrency slot
    quota.settle(ctx, 1, Decimal("0.2"))
    await quota.flush()
    [row] = await quota.spend([scope])
    assert row["committed_usd"] == "0.2" and row["spent_usd"] == "0.2"  # the real cost, owed to the shared counters
    await quota.stop()
