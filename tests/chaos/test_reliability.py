"""Chaos suite: the engine against the mock provider's fault schedules, deterministic.

A fake clock (sleeps advance it instantly) drives backoff, cool-downs, breaker windows and the
mock's time windows; a seeded random source drives jitter, weights and fault rates. Each test
asserts what the caller gets, how many upstream attempts were made, and how long it took on
the injected clock.
"""

from __future__ import annotations

import pytest

from breakwater.core.errors import RateLimited, Unavailable, UpstreamBadRequest
from breakwater.core.types import TextDelta
from breakwater.engine.context import RequestContext
from tests.chaos.harness import gateway, hi


async def test_fallback_to_next_deployment_on_503() -> None:
    """A 503 on the first deployment falls back to the second at once: 2 attempts, no waiting."""
    gw, clock, _ = gateway([{"fault": "status=503"}], [])
    ctx = RequestContext("t")
    start = clock.now
    response = await gw.chat(hi(), ctx)
    assert response.choices[0].message.text()
    assert (ctx.outcome.attempts, ctx.outcome.deployment, ctx.outcome.fallback) == (2, "b", True)
    assert clock.now == start


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_class_errors_are_never_retried(status: int) -> None:
    """A 400-class upstream answer is returned after one attempt, with no fallback."""
    gw, _, _ = gateway([{"fault": f"status={status}"}], [])
    ctx = RequestContext("t")
    with pytest.raises(Exception) as info:
        await gw.chat(hi(), ctx)
    assert not getattr(info.value, "retryable", True)
    assert ctx.outcome.attempts == 1
    if status in (400, 422):
        assert isinstance(info.value, UpstreamBadRequest)


async def test_everything_failing_lists_every_attempt() -> None:
    """When every attempt fails the caller gets 503-class Unavailable naming each deployment and why."""
    gw, _, _ = gateway([{"fault": "status=500"}], [{"fault": "status=502"}], retry={"max_attempts": 4})
    ctx = RequestContext("t")
    with pytest.raises(Unavailable) as info:
        await gw.chat(hi(), ctx)
    assert ctx.outcome.attempts == 4
    assert "a: " in info.value.message
    assert "b: " in info.value.message
    assert "(500)" in info.value.message
    assert "(502)" in info.value.message


async def test_retry_waits_for_retry_after() -> None:
    """A retry on the same deployment waits at least the upstream's Retry-After, on the injected clock."""
    gw, clock, _ = gateway([{"fault": "status=429;retry_after=2", "to_s": 1}], breaker={"cool_down_on_429": False})
    ctx = RequestContext("t")
    start = clock.now
    response = await gw.chat(hi(), ctx)
    assert response.choices[0].message.text()
    assert ctx.outcome.attempts == 2
    assert clock.now - start >= 2.0


async def test_retry_never_sleeps_past_the_deadline() -> None:
    """A Retry-After longer than the time left ends the request at once instead of sleeping past its deadline."""
    gw, clock, _ = gateway([{"fault": "status=429;retry_after=900"}], breaker={"cool_down_on_429": False})
    start = clock.now
    with pytest.raises(RateLimited) as info:
        await gw.chat(hi(), RequestContext("t"))
    assert clock.now == start
    assert info.value.retry_after == 900


async def test_429_cools_the_deployment_down_for_its_retry_after() -> None:
    """After a 429 the deployment is skipped (no attempt) until its Retry-After passed, then used again."""
    gw, clock, transitions = gateway([{"fault": "status=429;retry_after=30", "to_s": 1}], [])
    first = RequestContext("1")
    await gw.chat(hi(), first)
    assert (first.outcome.attempts, first.outcome.deployment) == (2, "b")
    second = RequestContext("2")
    await gw.chat(hi(), second)
    assert (second.outcome.attempts, second.outcome.deployment) == (1, "b")  # a skipped, not tried
    clock.now += 31
    third = RequestContext("3")
    await gw.chat(hi(), third)
    assert (third.outcome.attempts, third.outcome.deployment) == (1, "a")
    assert transitions == []  # a cool-down is not a breaker failure


async def test_breaker_opens_skips_and_recloses() -> None:
    """Consecutive failures open the breaker; requests skip the deployment; after the cooldown a probe succeeds and closes it."""
    gw, clock, transitions = gateway(
        [{"fault": "status=503", "to_s": 5}],
        [],
        breaker={"consecutive_failures": 3, "cooldown_s": 10},
    )
    for _ in range(3):
        await gw.chat(hi(), RequestContext("x"))
    assert transitions == [("a", "closed", "open")]
    skipped = RequestContext("s")
    await gw.chat(hi(), skipped)
    assert (skipped.outcome.attempts, skipped.outcome.deployment) == (1, "b")
    clock.now += 11  # past the cooldown and past the mock's outage window
    probe = RequestContext("p")
    await gw.chat(hi(), probe)
    assert (probe.outcome.attempts, probe.outcome.deployment) == (1, "a")
    assert transitions == [("a", "closed", "open"), ("a", "open", "half_open"), ("a", "half_open", "closed")]
    assert gw.breakers["a"].snapshot()["state"] == "closed"


async def test_retry_budget_stops_a_retry_storm() -> None:
    """With a zero retry budget a failing single deployment is tried once, not max_attempts times."""
    gw, _, _ = gateway(
        [{"fault": "status=503"}],
        retry={"max_attempts": 5, "budget_ratio": 0, "budget_min_retries": 0},
        breaker={"consecutive_failures": 100},
    )
    ctx = RequestContext("t")
    with pytest.raises(Unavailable):
        await gw.chat(hi(), ctx)
    assert ctx.outcome.attempts == 1


async def test_stream_failing_before_first_byte_falls_back_transparently() -> None:
    """A stream whose upstream fails before any event is served whole by the next deployment."""
    for fault in ("status=503", "reset", "malformed"):
        gw, _, _ = gateway([{"fault": fault}], [])
        ctx = RequestContext("t")
        events = await gw.chat_stream(hi(stream=True), ctx)
        text = "".join(e.text for batch in [b async for b in events] for e in batch if isinstance(e, TextDelta))
        assert text, fault
        assert (ctx.outcome.attempts, ctx.outcome.deployment) == (2, "b"), fault


async def test_flapping_provider() -> None:
    """One of two deployments fails half its requests with mixed 503/429: clients still succeed at least 99.9% of the time, and its breaker opens and recloses."""
    gw, clock, transitions = gateway(
        [{"fault": "status=503", "rate": 0.3}, {"fault": "status=429;retry_after=1", "rate": 0.3}],
        [],
        breaker={"consecutive_failures": 4, "failure_rate": 0.5, "min_volume": 20, "window_s": 10, "cooldown_s": 2},
        seed=7,
    )
    ok = 0
    total = 3000
    for i in range(total):
        clock.now += 0.01  # 100 requests per second of injected time
        try:
            await gw.chat(hi(), RequestContext(str(i)))
            ok += 1
        except Exception:  # counted: the assertion below judges
            pass
    assert ok / total >= 0.999
    opened = [t for t in transitions if t[2] == "open"]
    closed = [t for t in transitions if t[1] == "half_open" and t[2] == "closed"]
    assert opened
    assert closed
