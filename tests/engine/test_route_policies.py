"""Route policies on the in-process mock: fallback routes, context windows, content filters,
load-balancing strategies, overflow and resumed streams."""

from __future__ import annotations

from typing import Any

import pytest

from breakwater.core.config import build_config
from breakwater.core.errors import ContentFiltered, ContextLengthExceeded, Unavailable
from breakwater.core.types import ChatRequest, FinishEvent, Message, StreamEvent, TextDelta, TextPart
from breakwater.engine.calls.gateway import Gateway
from breakwater.engine.context import RequestContext
from breakwater.infra.clock import ManualClock, SystemRandom
from breakwater.runtime.wiring import Wiring


def gateway(deployments: dict[str, dict[str, Any]], routes: dict[str, dict[str, Any]]) -> Gateway:
    """Each deployment on its own in-process mock provider, with its ``faults`` schedule."""
    providers = {f"p-{name}": {"type": "mock", "faults": d.pop("faults", [])} for name, d in deployments.items()}
    for name, d in deployments.items():
        d.update(provider=f"p-{name}", model="mock-chat")
    config = build_config({"providers": providers, "deployments": deployments, "routes": routes})
    clock, rng = ManualClock(), SystemRandom(7)
    return Gateway(Wiring(config, {}, sender=None, clock=clock, rng=rng).router(), clock, rng)  # type: ignore[arg-type]


def ask(model: str, text: str = "hello", *, stream: bool = False, max_tokens: int | None = None) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", [TextPart(text)])], stream=stream, max_tokens=max_tokens)


async def drain(events: Any) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    async for batch in events:
        out.extend(batch)
    return out


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# --- fallback routes --------------------------------------------------------------------------


async def test_general_fallback_route_serves_when_the_route_is_exhausted() -> None:
    """When every deployment of a route fails, its `general` fallback route answers and the context says so."""
    gw = gateway(
        {"a": {"faults": [{"fault": "status=503"}]}, "b": {}},
        {
            "main": {"deployments": ["a"], "retry": {"max_attempts": 1}, "fallbacks": {"general": ["backup"]}},
            "backup": {"deployments": ["b"]},
        },
    )
    ctx = RequestContext("t")
    response = await gw.chat(ask("main"), ctx)
    assert response.choices[0].message.text()
    assert (ctx.outcome.deployment, ctx.outcome.fallback, ctx.outcome.fallback_route, ctx.outcome.attempts) == (
        "b",
        True,
        "backup",
        2,
    )


async def test_general_fallback_is_not_used_for_a_bad_request() -> None:
    """A 400-class failure is the client's problem: no fallback route is tried."""
    gw = gateway(
        {"a": {"faults": [{"fault": "status=400"}]}, "b": {}},
        {"main": {"deployments": ["a"], "fallbacks": {"general": ["backup"]}}, "backup": {"deployments": ["b"]}},
    )
    ctx = RequestContext("t")
    with pytest.raises(Exception) as info:
        await gw.chat(ask("main"), ctx)
    assert not getattr(info.value, "retryable", True)
    assert ctx.outcome.attempts == 1


async def test_all_fallbacks_failing_reports_the_first_route() -> None:
    """When the fallback routes fail too, the error is the route's own summary (503 class)."""
    gw = gateway(
        {"a": {"faults": [{"fault": "status=503"}]}, "b": {"faults": [{"fault": "status=502"}]}},
        {
            "main": {"deployments": ["a"], "retry": {"max_attempts": 1}, "fallbacks": {"general": ["backup"]}},
            "backup": {"deployments": ["b"], "retry": {"max_attempts": 1}},
        },
    )
    with pytest.raises(Unavailable) as info:
        await gw.chat(ask("main"), RequestContext("t"))
    assert info.value.message.startswith("model 'main'")
    assert "then fallback route model 'backup'" in info.value.message


async def test_a_transient_failure_of_the_fallback_route_is_what_the_client_gets() -> None:
    """A context-window fallback route that is down answers 503-class (retry later), not the original 400."""
    gw = gateway(
        {"small": {"context_window": 50}, "long": {"faults": [{"fault": "status=503"}]}},
        {
            "r": {"deployments": ["small"], "fallbacks": {"context_window": ["r-long"]}},
            "r-long": {"deployments": ["long"], "retry": {"max_attempts": 1}},
        },
    )
    with pytest.raises(Unavailable) as info:
        await gw.chat(ask("r", "word " * 200), RequestContext("t"))
    assert "context window 50" in info.value.message
    assert "then fallback route model 'r-long'" in info.value.message


async def test_context_window_is_checked_before_sending() -> None:
    """A prompt estimated larger than a deployment's window skips it without a call; the next one serves."""
    gw = gateway(
        {"small": {"context_window": 50}, "large": {"context_window": 100_000}},
        {"r": {"deployments": ["small", "large"]}},
    )
    ctx = RequestContext("t")
    response = await gw.chat(ask("r", "word " * 200), ctx)
    assert response.choices[0].message.text()
    assert (ctx.outcome.deployment, ctx.outcome.attempts) == ("large", 1)
    assert gw.stats.get("small") is None or gw.stats["small"].attempts == 0


async def test_context_window_counts_the_requested_output() -> None:
    """`max_tokens` must fit in the window too: a short prompt asking for more than fits is moved on."""
    gw = gateway({"small": {"context_window": 1000}, "large": {}}, {"r": {"deployments": ["small", "large"]}})
    ctx = RequestContext("t")
    await gw.chat(ask("r", max_tokens=2000), ctx)
    assert ctx.outcome.deployment == "large"


async def test_context_window_fallback_route_when_nothing_fits() -> None:
    """A prompt too long for every deployment goes to the `context_window` fallback route."""
    gw = gateway(
        {"small": {"context_window": 50}, "long": {"context_window": 1_000_000}},
        {
            "r": {"deployments": ["small"], "fallbacks": {"context_window": ["r-long"]}},
            "r-long": {"deployments": ["long"]},
        },
    )
    ctx = RequestContext("t")
    await gw.chat(ask("r", "word " * 200), ctx)
    assert (ctx.outcome.deployment, ctx.outcome.fallback_route, ctx.outcome.attempts) == ("long", "r-long", 1)


async def test_prompt_too_long_everywhere_is_a_400() -> None:
    """With no deployment and no fallback that fits, the client gets context_length_exceeded, no call made."""
    gw = gateway({"small": {"context_window": 50}}, {"r": {"deployments": ["small"]}})
    ctx = RequestContext("t")
    with pytest.raises(ContextLengthExceeded) as info:
        await gw.chat(ask("r", "word " * 200), ctx)
    assert "context window 50" in info.value.message
    assert ctx.outcome.attempts == 0


async def test_upstream_context_length_error_uses_the_context_window_fallback() -> None:
    """An upstream context-length error (the estimate let it through) also goes to the fallback route."""
    gw = gateway(
        {"a": {"faults": [{"fault": "context_length"}]}, "long": {}},
        {"r": {"deployments": ["a"], "fallbacks": {"context_window": ["r-long"]}}, "r-long": {"deployments": ["long"]}},
    )
    ctx = RequestContext("t")
    await gw.chat(ask("r"), ctx)
    assert (ctx.outcome.deployment, ctx.outcome.attempts) == ("long", 2)


@pytest.mark.parametrize("where", ["prompt", "output"])
async def test_content_filter_fallback_route(where: str) -> None:
    """Content refused by the upstream (a 400 on the prompt, or finish_reason content_filter) goes to the
    `content_filter` fallback route."""
    gw = gateway(
        {"strict": {"faults": [{"fault": f"content_filter={where}"}]}, "lenient": {}},
        {
            "r": {"deployments": ["strict"], "fallbacks": {"content_filter": ["r-lenient"]}},
            "r-lenient": {"deployments": ["lenient"]},
        },
    )
    ctx = RequestContext("t")
    response = await gw.chat(ask("r"), ctx)
    assert response.choices[0].finish_reason == "stop"
    assert ctx.outcome.deployment == "lenient"


async def test_content_filter_message_answers_gracefully() -> None:
    """With `content_filter_message`, a refusal becomes that answer with finish_reason content_filter."""
    gw = gateway(
        {"strict": {"faults": [{"fault": "content_filter=prompt"}]}},
        {"r": {"deployments": ["strict"], "fallbacks": {"content_filter_message": "I can't help with that."}}},
    )
    response = await gw.chat(ask("r"), RequestContext("t"))
    assert response.choices[0].message.text() == "I can't help with that."
    assert response.choices[0].finish_reason == "content_filter"
    events = await drain(await gw.chat_stream(ask("r", stream=True), RequestContext("t")))
    assert text_of(events) == "I can't help with that."
    assert [e.reason for e in events if isinstance(e, FinishEvent)] == ["content_filter"]


async def test_content_filter_without_a_policy_is_the_upstream_error() -> None:
    """Without a content-filter policy the refusal is returned as the 400 it is, after one attempt."""
    gw = gateway(
        {"strict": {"faults": [{"fault": "content_filter=prompt"}]}, "b": {}}, {"r": {"deployments": ["strict", "b"]}}
    )
    ctx = RequestContext("t")
    with pytest.raises(ContentFiltered):
        await gw.chat(ask("r"), ctx)
    assert ctx.outcome.attempts == 1


# --- strategies -------------------------------------------------------------------------------


async def test_least_in_flight_picks_the_idle_deployment() -> None:
    """`least_in_flight` sends to the deployment with the fewest requests in flight."""
    gw = gateway({"a": {}, "b": {}}, {"r": {"deployments": ["a", "b"], "strategy": "least_in_flight"}})
    busy = await gw.chat_stream(ask("r", stream=True), RequestContext("t1"))  # holds a until drained
    ctx = RequestContext("t2")
    await gw.chat(ask("r"), ctx)
    assert ctx.outcome.deployment == "b"
    assert gw.stats["a"].in_flight == 1
    await drain(busy)
    assert gw.stats["a"].in_flight == 0


async def test_lowest_latency_prefers_the_faster_deployment() -> None:
    """`lowest_latency` learns each deployment's latency and then sends to the faster one."""
    gw = gateway(
        {"slow": {"faults": [{"fault": "latency=300"}]}, "fast": {"faults": [{"fault": "latency=20"}]}},
        {"r": {"deployments": ["slow", "fast"], "strategy": "lowest_latency"}},
    )
    served = []
    for i in range(6):
        ctx = RequestContext(f"t{i}")
        await gw.chat(ask("r"), ctx)
        served.append(ctx.outcome.deployment)
    assert served[:2] == ["slow", "fast"]  # each unmeasured deployment is tried once
    assert served[2:] == ["fast"] * 4
    assert gw.stats["fast"].latency_s is not None and gw.stats["slow"].latency_s is not None
    assert gw.stats["fast"].latency_s < gw.stats["slow"].latency_s


# --- overflow -----------------------------------------------------------------------------------


async def test_overflow_spills_to_the_next_deployment_when_saturated() -> None:
    """With `overflow`, a deployment at its max_concurrency is passed over for the next one instead of queueing."""
    gw = gateway(
        {"local": {"max_concurrency": 1}, "managed": {}}, {"r": {"deployments": ["local", "managed"], "overflow": True}}
    )
    busy = await gw.chat_stream(ask("r", stream=True), RequestContext("t1"))
    ctx = RequestContext("t2")
    await gw.chat(ask("r"), ctx)
    assert ctx.outcome.deployment == "managed"
    assert gw.stats["local"].overflowed == 1 and gw.stats["local"].in_flight == 1
    await drain(busy)
    ctx = RequestContext("t3")
    await gw.chat(ask("r"), ctx)
    assert ctx.outcome.deployment == "local"  # back as soon as the slot is free
    assert gw.stats["local"].overflowed == 1


# --- resumed streams ----------------------------------------------------------------------------


async def test_stream_failure_continue_resumes_on_another_deployment() -> None:
    """With `stream_failure: continue`, a stream cut mid-way resumes on the next deployment with the text so far
    as an assistant prefix, in the same stream."""
    gw = gateway(
        {"a": {"faults": [{"fault": "reset_after=3"}]}, "b": {}},
        {"r": {"deployments": ["a", "b"], "stream_failure": "continue"}},
    )
    ctx = RequestContext("t")
    events = await drain(await gw.chat_stream(ask("r", stream=True), ctx))
    finishes = [e.reason for e in events if isinstance(e, FinishEvent)]
    assert finishes == ["stop"]
    assert text_of(events)
    assert ctx.outcome.deployment == "b" and ctx.outcome.fallback
    assert gw.stats["a"].failures == 1
    assert gw.stats["a"].in_flight == gw.stats["b"].in_flight == 0


async def test_stream_failure_error_by_default() -> None:
    """By default a stream cut mid-way raises to the consumer after the events already sent."""
    gw = gateway({"a": {"faults": [{"fault": "reset_after=3"}]}, "b": {}}, {"r": {"deployments": ["a", "b"]}})
    stream = await gw.chat_stream(ask("r", stream=True), RequestContext("t"))
    seen: list[StreamEvent] = []
    with pytest.raises(Exception) as info:
        async for batch in stream:
            seen.extend(batch)
    assert getattr(info.value, "retryable", False)
    assert text_of(seen)
    assert gw.stats["a"].in_flight == 0
