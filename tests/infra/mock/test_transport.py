"""``MockSender``: the engine's HttpSender port over an in-process mock, driven through the real adapters."""

from __future__ import annotations

import pytest

from breakwater.core.errors import RateLimited, UpstreamConnectionError
from breakwater.core.types import ChatRequest, EmbeddingRequest, FinishEvent, Message, TextDelta, TextPart
from breakwater.engine.ports import HttpSender
from breakwater.infra.clock import SystemRandom
from breakwater.infra.mock.service import MockService
from breakwater.infra.mock.transport import MockSender
from breakwater.providers.base import HttpRequest, Target
from breakwater.providers.registry import adapter_for
from tests.infra.mock.harness import FakeClock

BASE_URLS = {"openai": "http://mock/v1", "anthropic": "http://mock", "gemini": "http://mock"}


def target(wire: str) -> Target:
    return Target(provider="mock-p", model="mock-model", base_url=BASE_URLS[wire], api_key="k")


def request(stream: bool = False) -> ChatRequest:
    return ChatRequest(model="public", messages=[Message("user", [TextPart("hello")])], max_tokens=50, stream=stream)


@pytest.fixture
def sender() -> MockSender:
    return MockSender(MockService(FakeClock(), SystemRandom(1)))


def test_is_an_http_sender(sender: MockSender) -> None:
    """MockSender satisfies the engine's HttpSender protocol (checked by mypy, and here at runtime)."""
    port: HttpSender = sender
    assert callable(port.open)


@pytest.mark.parametrize("wire", ["openai", "anthropic", "gemini"])
async def test_chat_through_each_adapter(sender: MockSender, wire: str) -> None:
    """Each wire's adapter builds a request the mock answers and parses the reply it gets back."""
    adapter = adapter_for(wire)
    http = adapter.chat_request(request(), target(wire))
    async with sender.open(http, provider="mock-p", connect_timeout=1) as response:
        assert response.status == 200
        parsed = adapter.chat_response(await response.read(), target(wire))
    assert parsed.choices[0].message.text() and parsed.usage and parsed.usage.output_tokens > 0


@pytest.mark.parametrize("wire", ["openai", "anthropic", "gemini"])
async def test_stream_through_each_adapter(sender: MockSender, wire: str) -> None:
    """A streamed reply, read chunk by chunk, parses to text deltas and a finish event."""
    adapter = adapter_for(wire)
    chat = request(stream=True)
    parser = adapter.stream_parser(chat, target(wire))
    events = []
    async with sender.open(adapter.chat_request(chat, target(wire)), provider="mock-p", connect_timeout=1) as response:
        async for chunk in response.iter_chunks():
            events.extend(parser.feed(chunk))
    events.extend(parser.close())
    assert any(isinstance(e, TextDelta) for e in events)
    assert any(isinstance(e, FinishEvent) for e in events)


async def test_embeddings_through_openai_adapter(sender: MockSender) -> None:
    """Embeddings round-trip through the OpenAI adapter with the requested dimensions."""
    adapter = adapter_for("openai")
    http = adapter.embeddings_request(EmbeddingRequest(model="e", inputs=["a"], dimensions=12), target("openai"))
    async with sender.open(http, provider="mock-p", connect_timeout=1) as response:
        parsed = adapter.embeddings_response(await response.read(), target("openai"))
    assert len(parsed.vectors[0]) == 12


async def test_errors_map_through_the_adapter(sender: MockSender) -> None:
    """An injected 429 reaches the adapter's map_error as RateLimited with the retry hint."""
    adapter = adapter_for("openai")
    http = adapter.chat_request(request(), target("openai"))
    http = HttpRequest(http.method, http.url, {**http.headers, "X-Mock-Fault": "status=429;retry_after=4"}, http.body)
    async with sender.open(http, provider="mock-p", connect_timeout=1) as response:
        error = adapter.map_error(response.status, response.headers, await response.read(), target("openai"))
    assert isinstance(error, RateLimited) and error.retry_after == 4


async def test_reset_before_head(sender: MockSender) -> None:
    """A reset fault raises UpstreamConnectionError naming the provider, not a mock exception."""
    http = HttpRequest("POST", "http://mock/v1/chat/completions", {"x-mock-fault": "reset"}, b"{}")
    with pytest.raises(UpstreamConnectionError, match="mock-p: connection reset") as info:
        async with sender.open(http, provider="mock-p", connect_timeout=1):
            pass
    assert info.value.provider == "mock-p"


async def test_reset_mid_stream(sender: MockSender) -> None:
    """A reset while iterating the body raises UpstreamConnectionError after the frames sent so far."""
    adapter = adapter_for("openai")
    http = adapter.chat_request(request(stream=True), target("openai"))
    http = HttpRequest(http.method, http.url, {**http.headers, "x-mock-fault": "reset_after=2"}, http.body, True)
    chunks = []
    with pytest.raises(UpstreamConnectionError):
        async with sender.open(http, provider="mock-p", connect_timeout=1) as response:
            async for chunk in response.iter_chunks():
                chunks.append(chunk)
    assert len(chunks) == 2


async def test_abandoned_stream_is_closed(sender: MockSender) -> None:
    """Leaving the context early closes the stream's generator (nothing is left pending)."""
    adapter = adapter_for("openai")
    http = adapter.chat_request(request(stream=True), target("openai"))
    async with sender.open(http, provider="mock-p", connect_timeout=1) as response:
        async for _ in response.iter_chunks():
            break
    generator = response._reply.chunks  # type: ignore[attr-defined]
    assert generator is not None and generator.ag_frame is None  # closed, not merely suspended
