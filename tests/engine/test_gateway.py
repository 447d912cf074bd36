"""The engine's pipeline against fake and mock senders: routing, parameters, timeouts, mock headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from breakwater.core.config import Timeouts, build_config
from breakwater.core.errors import ModelNotFound, UnsupportedParameter, UpstreamTimeout
from breakwater.core.types import ChatRequest, Message, TextDelta, TextPart
from breakwater.engine.calls.gateway import Gateway
from breakwater.engine.context import Caller, RequestContext
from breakwater.engine.routing import Deployment, Route, Router
from breakwater.infra.clock import SystemClock
from breakwater.providers.base import HttpRequest, Target
from breakwater.providers.registry import adapter_for
from breakwater.runtime.wiring import Wiring


class FixedRandom:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


class RecordingSender:
    """Answers every call with one canned OpenAI completion and remembers the requests."""

    def __init__(self) -> None:
        self.sent: list[HttpRequest] = []

    @asynccontextmanager
    async def open(self, request: HttpRequest, *, provider: str, connect_timeout: float) -> AsyncIterator[Any]:
        self.sent.append(request)

        class _Resp:
            status = 200
            headers: Mapping[str, str] = {}

            async def read(self) -> bytes:
                return b'{"id":"x","model":"m","created":1,"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}'

            async def iter_chunks(self) -> AsyncIterator[bytes]:
                yield b""

        yield _Resp()


def _deployment(name: str, sender: Any, *, wire: str = "openai", is_mock: bool = False) -> Deployment:
    return Deployment(name, adapter_for(wire), Target("p", name, "http://up/v1"), sender, Timeouts(), is_mock=is_mock)


def _hi(model: str = "r", **kw: Any) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", [TextPart("hi")])], **kw)


async def test_weighted_strategy_uses_the_random_source() -> None:
    """A weighted route picks the deployment the random draw falls on, by weight."""
    sender = RecordingSender()
    route = Route("r", (_deployment("a", sender), _deployment("b", sender)), (1.0, 3.0), strategy="weighted")
    for draw, expected in ((0.1, "a"), (0.3, "b"), (0.99, "b")):
        gateway = Gateway(Router({"r": route}, rng=FixedRandom(draw)), SystemClock(), FixedRandom(draw))
        ctx = RequestContext("id")
        await gateway.chat(_hi(), ctx)
        assert ctx.outcome.deployment == expected


async def test_unknown_model_lists_available() -> None:
    """An unknown model raises ModelNotFound listing routes and wildcard patterns."""
    gateway = Gateway(
        Router({"r": Route("r", (_deployment("a", RecordingSender()),), (1.0,))}), SystemClock(), FixedRandom(0.5)
    )
    with pytest.raises(ModelNotFound) as info:
        await gateway.chat(_hi("zzz"), RequestContext("id"))
    assert "r" in info.value.message


async def test_unsupported_rejected_or_dropped() -> None:
    """Anthropic cannot take `seed`: rejected by default, dropped (and recorded) when the route says so."""
    sender = RecordingSender()
    strict = Route("r", (_deployment("a", sender, wire="anthropic"),), (1.0,))
    with pytest.raises(UnsupportedParameter) as info:
        await Gateway(Router({"r": strict}), SystemClock(), FixedRandom(0.5)).chat(_hi(seed=3), RequestContext("id"))
    assert info.value.param == "seed"
    assert sender.sent == []  # nothing was sent upstream


async def test_mock_headers_only_reach_mock_deployments() -> None:
    """x-mock-* headers from the client are forwarded to mock deployments and never to real providers."""
    sender = RecordingSender()
    routes = {
        "real": Route("real", (_deployment("a", sender),), (1.0,)),
        "fake": Route("fake", (_deployment("b", sender, is_mock=True),), (1.0,)),
    }
    gateway = Gateway(Router(routes), SystemClock(), FixedRandom(0.5))
    for name in ("real", "fake"):
        await gateway.chat(_hi(name), RequestContext("id", caller=Caller(mock_headers={"x-mock-fault": "status=500"})))
    assert "x-mock-fault" not in sender.sent[0].headers
    assert sender.sent[1].headers["x-mock-fault"] == "status=500"


def _mock_gateway(timeouts: dict[str, float]) -> Gateway:
    config = build_config(
        {
            "providers": {"m": {"type": "mock"}},
            "deployments": {"d": {"provider": "m", "model": "x", "timeouts": timeouts}},
            "routes": {"r": {"deployments": ["d"]}},
        }
    )
    return Gateway(
        Wiring(config, {}, RecordingSender(), SystemClock(), FixedRandom(0.5)).router(), SystemClock(), FixedRandom(0.5)
    )


async def test_first_token_timeout_non_streaming() -> None:
    """A slow upstream answer hits the first-token limit and raises UpstreamTimeout."""
    gateway = _mock_gateway({"first_token": 0.05, "total": 30})
    with pytest.raises(UpstreamTimeout):
        await gateway.chat(_hi(), RequestContext("id", caller=Caller(mock_headers={"x-mock-fault": "latency=5000"})))


async def test_idle_timeout_while_streaming() -> None:
    """A stream that stalls after some chunks raises UpstreamTimeout from the iterator, after the text so far."""
    gateway = _mock_gateway({"idle": 0.05, "total": 30})
    ctx = RequestContext("id", caller=Caller(mock_headers={"x-mock-fault": "stall_after=2"}))
    events = await gateway.chat_stream(_hi(stream=True), ctx)
    seen = []
    with pytest.raises(UpstreamTimeout):
        async for batch in events:
            seen.extend(batch)
    assert any(isinstance(e, TextDelta) for e in seen)


async def test_total_timeout_while_streaming() -> None:
    """Slow tokens that never stall still end at the total deadline."""
    gateway = _mock_gateway({"idle": 5, "total": 0.2})
    events = await gateway.chat_stream(
        _hi(stream=True), RequestContext("id", caller=Caller(mock_headers={"x-mock-fault": "token_delay=50"}))
    )
    with pytest.raises(UpstreamTimeout):
        async for _ in events:
            pass
