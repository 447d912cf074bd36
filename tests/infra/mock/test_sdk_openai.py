"""The official OpenAI SDK, over an in-memory transport, parses everything the mock says."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import openai
import pytest
from openai.types.chat import ChatCompletionMessageFunctionToolCall
from pydantic import BaseModel

from tests.infra.mock.harness import sdk_http

HI: Any = [{"role": "user", "content": "Say hello"}]
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TOOLS: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]


@pytest.fixture
async def client() -> AsyncIterator[openai.AsyncOpenAI]:
    http = sdk_http()
    async with openai.AsyncOpenAI(base_url="http://mock/v1", api_key="sk-mock", http_client=http, max_retries=0) as c:
        yield c


async def test_plain_chat(client: openai.AsyncOpenAI) -> None:
    """A plain completion parses, with text, finish stop and consistent usage."""
    r = await client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert r.model == "gpt-4o-mini" and r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content
    assert r.usage is not None and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


async def test_stream_with_usage(client: openai.AsyncOpenAI) -> None:
    """A stream with include_usage yields the same text in pieces and ends with a usage chunk."""
    whole = await client.chat.completions.create(model="m", messages=HI)
    stream = await client.chat.completions.create(
        model="m",
        messages=HI,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, usage = [], None, None
    async for chunk in stream:
        for c in chunk.choices:
            pieces.append(c.delta.content or "")
            finish = c.finish_reason or finish
        usage = chunk.usage or usage
    assert "".join(pieces) == whole.choices[0].message.content
    assert finish == "stop" and usage is not None and usage == whole.usage


async def test_tool_call(client: openai.AsyncOpenAI) -> None:
    """A required tool call comes back with arguments valid against the function's schema."""
    r = await client.chat.completions.create(model="m", messages=HI, tools=TOOLS, tool_choice="required")
    [call] = r.choices[0].message.tool_calls or []
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert r.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER)


async def test_streamed_tool_call(client: openai.AsyncOpenAI) -> None:
    """Streamed tool-call deltas accumulate (SDK stream helper) into a call with valid arguments."""
    async with client.chat.completions.stream(
        model="m",
        messages=[{"role": "user", "content": "what does get_weather say?"}],
        tools=TOOLS,
    ) as stream:
        final = await stream.get_final_completion()
    [call] = final.choices[0].message.tool_calls or []
    assert final.choices[0].finish_reason == "tool_calls"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER)


class Recipe(BaseModel):
    title: str
    servings: int
    ingredients: list[str]


async def test_structured_output_parses(client: openai.AsyncOpenAI) -> None:
    """chat.completions.parse with a Pydantic model gets JSON the SDK validates into the model."""
    r = await client.chat.completions.parse(model="m", messages=HI, response_format=Recipe)
    parsed = r.choices[0].message.parsed
    assert isinstance(parsed, Recipe) and parsed.ingredients


async def test_embeddings(client: openai.AsyncOpenAI) -> None:
    """Embeddings (the SDK asks for base64 by default) decode to unit vectors of the requested size."""
    r = await client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert [len(d.embedding) for d in r.data] == [1536, 1536]
    small = await client.embeddings.create(model="e", input="a", dimensions=32, encoding_format="float")
    vector = small.data[0].embedding
    assert len(vector) == 32 and math.isclose(sum(x * x for x in vector), 1.0, rel_tol=1e-6)


async def test_models_list(client: openai.AsyncOpenAI) -> None:
    """GET /v1/models parses as a page of models."""
    ids = [m.id async for m in client.models.list()]
    assert "mock-chat" in ids


async def test_azure_client() -> None:
    """The Azure client addresses a deployment in the path and gets its name back as the model."""
    http = sdk_http()
    async with openai.AsyncAzureOpenAI(
        azure_endpoint="http://mock", api_version="2024-10-21", api_key="k", http_client=http, max_retries=0
    ) as azure:
        r = await azure.chat.completions.create(model="my-deployment", messages=HI)
    assert r.model == "my-deployment"


@pytest.mark.parametrize(
    ("fault", "exc"),
    [
        ("status=429;retry_after=2", openai.RateLimitError),
        ("status=500", openai.InternalServerError),
        ("status=503", openai.InternalServerError),
        ("status=401", openai.AuthenticationError),
        ("context_length", openai.BadRequestError),
        ("content_filter=prompt", openai.BadRequestError),
        ("reset", openai.APIConnectionError),
    ],
)
async def test_injected_errors_raise_sdk_types(client: openai.AsyncOpenAI, fault: str, exc: type[Exception]) -> None:
    """Each injected failure surfaces as the SDK's own exception type, with the vendor's code."""
    with pytest.raises(exc) as info:
        await client.chat.completions.create(model="m", messages=HI, extra_headers={"x-mock-fault": fault})
    error = info.value
    if fault.startswith("status=429"):
        assert isinstance(error, openai.RateLimitError)
        assert error.code == "rate_limit_exceeded"
        assert error.response.headers["retry-after"] == "2" and error.response.headers["retry-after-ms"] == "2000"
    if fault == "context_length":
        assert isinstance(error, openai.BadRequestError) and error.code == "context_length_exceeded"
    if fault == "content_filter=prompt":
        assert isinstance(error, openai.BadRequestError) and error.code == "content_filter"


async def test_output_content_filter(client: openai.AsyncOpenAI) -> None:
    """content_filter finishes the choice with content_filter, as OpenAI does."""
    r = await client.chat.completions.create(model="m", messages=HI, extra_headers={"x-mock-fault": "content_filter"})
    assert r.choices[0].finish_reason == "content_filter"


async def test_stream_reset_midway(client: openai.AsyncOpenAI) -> None:
    """A connection reset mid-stream surfaces as the SDK's APIConnectionError while iterating."""
    stream = await client.chat.completions.create(
        model="m",
        messages=HI,
        stream=True,
        extra_headers={"x-mock-fault": "reset_after=2"},
    )
    with pytest.raises(openai.APIConnectionError):
        async for _ in stream:
            pass


async def test_malformed_stream_frame(client: openai.AsyncOpenAI) -> None:
    """A stream frame that is not JSON makes the SDK fail instead of yielding garbage."""
    stream = await client.chat.completions.create(
        model="m",
        messages=HI,
        stream=True,
        extra_headers={"x-mock-fault": "malformed"},
    )
    with pytest.raises(json.JSONDecodeError):
        async for _ in stream:
            pass
