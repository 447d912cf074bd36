"""Chaos suite, timeouts and stalls: the engine's real ``asyncio`` timers, in virtual time.

Every test here runs on a ``looptime`` event loop (the ``looptime`` marker below, this module
only): the loop's clock jumps to the next timer whenever every task waits, so ``asyncio.sleep``
and ``asyncio.timeout`` both run in virtual time. The gateway and its mocks use ``LoopClock``
(the loop's time), so a mock that never answers is cut off by the engine's first-token, idle or
total timeout at exactly its limit, at once and the same way on every run. Each test asserts
what the caller sees, how many upstream attempts were made, and how long it took in virtual
time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import looptime
import pytest

from breakwater.core.errors import BreakwaterError, UpstreamTimeout
from breakwater.core.types import ChatRequest, StreamEvent, TextDelta
from breakwater.engine.calls.gateway import Gateway
from breakwater.engine.context import RequestContext
from breakwater.infra.clock import LoopClock
from tests.chaos.harness import build_gateway, hi

pytestmark = pytest.mark.looptime

#: a healthy deployment still takes a little time to answer, so a fallback's time is never free
HEALTHY = [{"fault": "latency=20"}]


async def complete(gw: Gateway, request: ChatRequest, ctx: RequestContext) -> str:
    """The answer's text, from ``chat`` or from the whole of ``chat_stream``."""
    if not request.stream:
        return (await gw.chat(request, ctx)).choices[0].message.text()
    events = await gw.chat_stream(request, ctx)
    return "".join(e.text for batch in [b async for b in events] for e in batch if isinstance(e, TextDelta))


async def test_a_day_of_virtual_time_passes_in_no_wall_time() -> None:
    """A day-long sleep under a timeout ends at the timeout on the loop's clock, without waiting in wall time."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, looptime.LoopTimeEventLoop) and loop.looptime_on
    clock = LoopClock()
    start, wall = clock.monotonic(), time.perf_counter()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(3):
            await clock.sleep(86_400)
    assert clock.monotonic() - start == 3.0
    assert time.perf_counter() - wall < 1.0


@pytest.mark.parametrize(("stream", "fault"), [(True, "ttft=5000"), (False, "latency=5000")])
async def test_first_token_timeout_falls_back_to_the_second_deployment(stream: bool, fault: str) -> None:
    """A deployment silent past the 1 s first-token limit is abandoned at 1 s and the second deployment serves."""
    clock = LoopClock()
    gw, _ = build_gateway({"a": [{"fault": fault}], "b": HEALTHY}, clock, timeouts={"first_token": 1, "total": 30})
    ctx = RequestContext("t")
    start = clock.monotonic()
    assert await complete(gw, hi(stream), ctx)
    elapsed = clock.monotonic() - start
    assert (ctx.outcome.attempts, ctx.outcome.deployment, ctx.outcome.fallback) == (2, "b", True)
    assert 1.0 <= elapsed <= 1.1
    assert elapsed == pytest.approx(1.02)  # 1 s on a, then b's 20 ms


@pytest.mark.parametrize("stream", [False, True])
async def test_total_timeout_on_the_only_deployment(stream: bool) -> None:
    """An upstream that never answers ends the request with (504-class) UpstreamTimeout after exactly the route's total timeout."""
    clock = LoopClock()
    gw, _ = build_gateway({"a": [{"fault": "timeout"}]}, clock, timeouts={"total": 3})
    ctx = RequestContext("t")
    start = clock.monotonic()
    with pytest.raises(UpstreamTimeout) as info:
        await complete(gw, hi(stream), ctx)
    assert clock.monotonic() - start == pytest.approx(3.0, abs=1e-6)
    assert ctx.outcome.attempts == 1  # no time is left for a retry
    assert "timed out" in info.value.message


@pytest.mark.parametrize("stream", [False, True])
async def test_total_timeout_falls_back_to_the_second_deployment(stream: bool) -> None:
    """When the first deployment's own 2 s total timeout expires, the second deployment serves within the route's 10 s."""
    clock = LoopClock()
    gw, _ = build_gateway(
        {"a": [{"fault": "timeout"}], "b": HEALTHY},
        clock,
        timeouts={"total": 10},
        deployment_timeouts={"a": {"total": 2}},
    )
    ctx = RequestContext("t")
    start = clock.monotonic()
    assert await complete(gw, hi(stream), ctx)
    assert (ctx.outcome.attempts, ctx.outcome.deployment, ctx.outcome.fallback) == (2, "b", True)
    assert clock.monotonic() - start == pytest.approx(2.02)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_hung_first_deployment_never_pushes_the_request_past_its_deadline(stream: bool) -> None:
    """A first deployment that hangs for the whole total timeout ends the request at its deadline, not after it."""
    clock = LoopClock()
    gw, _ = build_gateway({"a": [{"fault": "timeout"}], "b": HEALTHY}, clock, timeouts={"total": 3})
    ctx = RequestContext("t")
    start = clock.monotonic()
    with pytest.raises(UpstreamTimeout):
        await complete(gw, hi(stream), ctx)
    assert clock.monotonic() - start <= 3.0


async def test_stream_idle_timeout_after_the_first_chunks() -> None:
    """A stream that stalls after 3 frames gives the consumer those events, then UpstreamTimeout 2 s (the idle limit) later, with no fallback."""
    clock = LoopClock()
    gw, _ = build_gateway({"a": [{"fault": "stall_after=3"}], "b": HEALTHY}, clock, timeouts={"idle": 2, "total": 30})
    ctx = RequestContext("t")
    start = clock.monotonic()
    events = await gw.chat_stream(hi(stream=True), ctx)
    received: list[StreamEvent] = []
    with pytest.raises(UpstreamTimeout) as info:
        async for batch in events:
            assert clock.monotonic() == start  # the first frames arrive at once
            received.extend(batch)
    assert clock.monotonic() - start == pytest.approx(2.0, abs=1e-6)
    assert received
    assert "while streaming" in info.value.message
    # once the stream started, a failure travels in it: no second deployment is tried
    assert (ctx.outcome.attempts, ctx.outcome.deployment, ctx.outcome.fallback) == (1, "a", False)
    assert gw.breakers["a"].snapshot()["consecutive_failures"] == 1


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    elapsed: float
    attempts: int


async def test_flapping_provider_with_stalls() -> None:
    """One of two deployments fails half its requests with 503s, 429s and stalls: concurrent clients still succeed at least 99.9% of the time, none past its deadline, and its breaker opens and recloses."""
    clock = LoopClock()
    total_s, first_token_s = 10.0, 1.0
    # four independent rules at 18% each: about half of a's requests fail. Both stalls never
    # answer: `timeout` sends no head; `stall_after=0` sends a stream's head and then no frame
    # (a plain chat ignores it). A stall after some frames cannot be hidden from the client, so
    # it is left to test_stream_idle_timeout_after_the_first_chunks.
    rules = ["status=503", "status=429;retry_after=1", "timeout", "stall_after=0"]
    gw, transitions = build_gateway(
        {"a": [{"fault": f, "rate": 0.18} for f in rules], "b": HEALTHY},
        clock,
        timeouts={"first_token": first_token_s, "idle": 2, "total": total_s},
        breaker={"consecutive_failures": 4, "failure_rate": 0.5, "min_volume": 20, "window_s": 10, "cooldown_s": 2},
        seed=7,
    )
    in_flight = most_in_flight = 0

    async def one(i: int) -> Outcome:
        nonlocal in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        ctx = RequestContext(str(i))
        start = clock.monotonic()
        try:
            ok = bool(await complete(gw, hi(stream=i % 2 == 1), ctx))
        except BreakwaterError:  # counted: the assertions below judge
            ok = False
        in_flight -= 1
        return Outcome(ok, clock.monotonic() - start, ctx.outcome.attempts)

    # open-loop arrivals in bursts: 10 requests at once every 0.5 s (20 per virtual second), each
    # burst sent without waiting for the one before, so stalled requests overlap later bursts
    requests, burst, gap_s = 4000, 10, 0.5
    start = clock.monotonic()
    async with asyncio.TaskGroup() as group:
        tasks = []
        for i in range(requests):
            tasks.append(group.create_task(one(i)))
            if (i + 1) % burst == 0:
                await asyncio.sleep(gap_s)
    outcomes = [t.result() for t in tasks]

    assert sum(o.ok for o in outcomes) / requests >= 0.999
    assert max(o.elapsed for o in outcomes) <= total_s
    assert max(o.elapsed for o in outcomes) <= first_token_s + 0.1  # at most one stall, then b
    assert max(o.attempts for o in outcomes) <= 3  # the route's default max_attempts
    # the run really exercised what it claims: concurrency, failures on a, and stalls cut at 1 s
    assert most_in_flight >= 10
    assert sum(o.attempts > 1 for o in outcomes) >= 200
    assert sum(o.elapsed >= first_token_s for o in outcomes) >= 50
    assert ("a", "closed", "open") in transitions
    assert ("a", "half_open", "closed") in transitions
    assert all(t[0] == "a" for t in transitions)  # b never tripped
    assert clock.monotonic() - start >= requests / burst * gap_s
