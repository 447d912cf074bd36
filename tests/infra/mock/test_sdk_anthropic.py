"""The official Anthropic SDK, over an in-memory transport, parses everything the mock says."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import jsonschema
import pytest

from tests.infra.mock.harness import sdk_http

HI: Any = [{"role": "user", "content": "Say hello"}]
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 5}},
    "required": ["city", "days"],
}
TOOLS: Any = [{"name": "get_weather", "description": "Weather by city", "input_schema": WEATHER}]


@pytest.fixture
async def client() -> AsyncIterator[anthropic.AsyncAnthropic]:
    http = sdk_http()
    async with anthropic.AsyncAnthropic(base_url="http://mock", api_key="k", http_client=http, max_retries=0) as c:
        yield c


async def test_plain_message(client: anthropic.AsyncAnthropic) -> None:
    """A plain message parses with text, stop_reason end_turn and usage."""
    m = await client.messages.create(model="claude-x", max_tokens=100, messages=HI)
    assert m.model == "claude-x" and m.stop_reason == "end_turn"
    assert m.content[0].type == "text" and m.content[0].text
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0


async def test_max_tokens_stop_reason(client: anthropic.AsyncAnthropic) -> None:
    """A small max_tokens gives stop_reason max_tokens and exactly that many output tokens."""
    m = await client.messages.create(model="c", max_tokens=4, messages=HI)
    assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 4


async def test_stream_matches_message(client: anthropic.AsyncAnthropic) -> None:
    """The SDK's stream helper accumulates the same text and usage as the non-streamed message."""
    whole = await client.messages.create(model="c", max_tokens=100, messages=HI)
    async with client.messages.stream(model="c", max_tokens=100, messages=HI) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == whole.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == whole.usage.output_tokens
    assert final.usage.input_tokens == whole.usage.input_tokens


async def test_tool_use(client: anthropic.AsyncAnthropic) -> None:
    """tool_choice any gives a tool_use block whose input validates against input_schema."""
    m = await client.messages.create(model="c", max_tokens=200, messages=HI, tools=TOOLS, tool_choice={"type": "any"})
    block = m.content[0]
    assert m.stop_reason == "tool_use" and block.type == "tool_use" and block.name == "get_weather"
    jsonschema.validate(block.input, WEATHER)


async def test_streamed_tool_use(client: anthropic.AsyncAnthropic) -> None:
    """Streamed input_json_delta pieces accumulate into tool input valid against the schema."""
    messages: Any = [{"role": "user", "content": "use get_weather please"}]
    async with client.messages.stream(model="c", max_tokens=200, messages=messages, tools=TOOLS) as stream:
        final = await stream.get_final_message()
    block = final.content[0]
    assert final.stop_reason == "tool_use" and block.type == "tool_use"
    jsonschema.validate(block.input, WEATHER)


async def test_structured_output(client: anthropic.AsyncAnthropic) -> None:
    """output_config json_schema gives text that is JSON valid against the schema."""
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    m = await client.messages.create(
        model="c",
        max_tokens=200,
        messages=HI,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    jsonschema.validate(json.loads(m.content[0].text), schema)  # type: ignore[union-attr]


async def test_models_and_count_tokens(client: anthropic.AsyncAnthropic) -> None:
    """models.list and messages.count_tokens parse; the count equals a reply's input tokens."""
    ids = [m.id async for m in client.models.list()]
    assert "mock-chat" in ids
    counted = await client.messages.count_tokens(model="c", messages=HI)
    reply = await client.messages.create(model="c", max_tokens=10, messages=HI)
    assert counted.input_tokens == reply.usage.input_tokens


@pytest.mark.parametrize(
    ("fault", "exc"),
    [
        ("status=429;retry_after=3", anthropic.RateLimitError),
        ("status=500", anthropic.InternalServerError),
        ("status=529", anthropic.OverloadedError),
        ("status=401", anthropic.AuthenticationError),
        ("context_length", anthropic.BadRequestError),
        ("reset", anthropic.APIConnectionError),
    ],
)
async def test_injected_errors_raise_sdk_types(
    client: anthropic.AsyncAnthropic, fault: str, exc: type[Exception]
) -> None:
    """Each injected failure surfaces as the Anthropic SDK's own exception type."""
    with pytest.raises(exc) as info:
        await client.messages.create(model="c", max_tokens=10, messages=HI, extra_headers={"x-mock-fault": fault})
    if fault.startswith("status=429"):
        assert isinstance(info.value, anthropic.RateLimitError)
        assert info.value.response.headers["retry-after"] == "3"
        assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


async def test_refusal(client: anthropic.AsyncAnthropic) -> None:
    """content_filter is Anthropic's stop_reason refusal."""
    m = await client.messages.create(
        model="c", max_tokens=50, messages=HI, extra_headers={"x-mock-fault": "content_filter"}
    )
    assert m.stop_reason == "refusal"


async def test_cut_stream_is_not_a_clean_end(client: anthropic.AsyncAnthropic) -> None:
    """A stream cut before message_stop never produces a final message with a stop reason."""
    async with client.messages.stream(
        model="c", max_tokens=100, messages=HI, extra_headers={"x-mock-fault": "cut_after=3"}
    ) as stream:
        events = [e.type async for e in stream]
    assert "message_stop" not in events and "message_delta" not in events
