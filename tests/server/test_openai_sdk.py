"""The official ``openai`` SDK, unchanged, as a client of a running gateway in front of the mock.

Every behaviour is checked on three routes, one per upstream wire format (OpenAI, Anthropic,
Gemini), so the OpenAI ingress is proven against every adapter.
"""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest

from tests.server.conftest import ROUTES
from tests.server.running import HELLO, openai_sdk

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 1},
                "unit": {"type": "string", "enum": ["c", "f"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture(scope="module")
def client(gateway_url: str) -> openai.OpenAI:
    return openai_sdk(gateway_url)


@pytest.mark.parametrize("model", ROUTES)
def test_plain_completion(client: openai.OpenAI, model: str) -> None:
    """A plain chat completion returns assistant text, finish_reason stop and token usage."""
    completion = client.chat.completions.create(model=model, messages=HELLO)
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


@pytest.mark.parametrize("model", ROUTES)
def test_plain_completion_is_deterministic(client: openai.OpenAI, model: str) -> None:
    """The same request gives the same content and token counts (the mock is deterministic)."""
    a = client.chat.completions.create(model=model, messages=HELLO)
    b = client.chat.completions.create(model=model, messages=HELLO)
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.usage == b.usage


@pytest.mark.parametrize("model", ROUTES)
def test_streamed_completion_with_usage(client: openai.OpenAI, model: str) -> None:
    """A stream with include_usage gives text deltas, one finish_reason and a final usage-only chunk."""
    chunks = list(
        client.chat.completions.create(model=model, messages=HELLO, stream=True, stream_options={"include_usage": True})
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    plain = client.chat.completions.create(model=model, messages=HELLO)
    assert text == plain.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens  # type: ignore[union-attr]


@pytest.mark.parametrize("model", ROUTES)
def test_stream_without_include_usage_has_no_usage_chunk(client: openai.OpenAI, model: str) -> None:
    """Without stream_options.include_usage the client never sees a usage chunk (the gateway's own is stripped)."""
    chunks = list(client.chat.completions.create(model=model, messages=HELLO, stream=True))
    assert chunks
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


@pytest.mark.parametrize("model", ROUTES)
def test_required_tool_call(client: openai.OpenAI, model: str) -> None:
    """With tool_choice=required the answer is a tool call whose arguments satisfy the tool's schema."""
    completion = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "What's the weather?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="required",
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert len(calls) == 1
    assert calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert calls[0].id
    jsonschema.validate(json.loads(calls[0].function.arguments), WEATHER_TOOL["function"]["parameters"])  # type: ignore[union-attr,index]


@pytest.mark.parametrize("model", ROUTES)
def test_streamed_tool_call_deltas(client: openai.OpenAI, model: str) -> None:
    """A streamed tool call arrives as deltas that assemble into valid arguments, ending with tool_calls."""
    with client.chat.completions.stream(
        model=model,
        messages=[{"role": "user", "content": "Weather please"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    ) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = (choice.message.tool_calls or [])[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_TOOL["function"]["parameters"])  # type: ignore[union-attr,index]


def test_tool_result_conversation(client: openai.OpenAI) -> None:
    """A conversation with an assistant tool call and a tool result is accepted on every wire."""
    messages = [
        {"role": "developer", "content": "You are terse."},
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo","unit":"c"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 4}'},
    ]
    for model in ROUTES:
        completion = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])  # type: ignore[arg-type,list-item]
        assert completion.choices[0].message.content


@pytest.mark.parametrize("model", ROUTES)
def test_json_schema_output(client: openai.OpenAI, model: str) -> None:
    """With a json_schema response format the content is JSON valid against the schema."""
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["name", "tags", "score"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Describe a tide pool"}],
        response_format={"type": "json_schema", "json_schema": {"name": "thing", "schema": schema, "strict": True}},
    )
    jsonschema.validate(json.loads(completion.choices[0].message.content or ""), schema)


@pytest.mark.parametrize("model", ROUTES)
def test_max_tokens_gives_length(client: openai.OpenAI, model: str) -> None:
    """max_completion_tokens is honoured: output is cut to that many tokens with finish_reason length."""
    completion = client.chat.completions.create(model=model, messages=HELLO, max_completion_tokens=3)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3


def test_multipart_content_with_image(client: openai.OpenAI) -> None:
    """Text and image parts (URL and base64) are accepted on every wire."""
    content = [
        {"type": "text", "text": "What is in these images?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    for model in ROUTES:
        completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}])  # type: ignore[misc,list-item]
        assert completion.choices[0].message.content


def test_embeddings(client: openai.OpenAI) -> None:
    """Embeddings come back with the requested dimension, one per input, in order."""
    result = client.embeddings.create(model="mock", input=["tide", "wave"], dimensions=64)
    assert [d.index for d in result.data] == [0, 1]
    assert all(len(d.embedding) == 64 for d in result.data)
    assert result.data[0].embedding != result.data[1].embedding


def test_models_list(client: openai.OpenAI) -> None:
    """GET /v1/models lists the configured routes."""
    ids = {m.id for m in client.models.list()}
    assert {"mock", "mock-claude", "mock-gemini"} <= ids
    assert client.models.retrieve("mock").id == "mock"


def test_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    """An unknown model raises the SDK's NotFoundError naming the available models."""
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-nope", messages=HELLO)
    assert "mock-claude" in info.value.message
    assert info.value.code == "model_not_found"


def test_unsupported_parameter_is_400(client: openai.OpenAI) -> None:
    """A parameter the upstream cannot honour is a BadRequestError that names it."""
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="mock-claude", messages=HELLO, seed=7)
    assert info.value.param == "seed"
    assert "seed" in info.value.message


def test_unsupported_parameter_dropped_when_route_says_so(client: openai.OpenAI) -> None:
    """On a route with unsupported_params: drop, the parameter is dropped and reported in a header."""
    raw = client.chat.completions.with_raw_response.create(model="mock-claude-lenient", messages=HELLO, seed=7)
    assert raw.headers["x-breakwater-dropped-params"] == "seed"
    assert raw.parse().choices[0].message.content


@pytest.mark.parametrize(
    ("fault", "exc"),
    [
        ("status=429;retry_after=2", openai.RateLimitError),
        ("status=500", openai.InternalServerError),
        ("status=503", openai.InternalServerError),
        ("context_length", openai.BadRequestError),
        ("malformed", openai.InternalServerError),
        ("reset", openai.InternalServerError),
    ],
)
@pytest.mark.parametrize("model", ROUTES)
def test_upstream_errors_raise_sdk_types(client: openai.OpenAI, model: str, fault: str, exc: type[Exception]) -> None:
    """Each upstream failure, injected in the mock, reaches the client as the SDK's own exception type."""
    with pytest.raises(exc) as info:
        client.chat.completions.create(model=model, messages=HELLO, extra_headers={"x-mock-fault": fault})
    message = str(info.value)
    assert "Traceback" not in message
    if fault.startswith("status=429"):
        assert info.value.response.headers["retry-after"] == "2"  # type: ignore[attr-defined]
    if fault == "context_length":
        assert info.value.code == "context_length_exceeded"  # type: ignore[attr-defined]


@pytest.mark.parametrize("model", ROUTES)
def test_stream_cut_midway_is_an_error_not_a_finished_stream(client: openai.OpenAI, model: str) -> None:
    """An upstream stream cut mid-way ends with a chunk whose finish_reason is "error", then an APIError;
    never a clean end."""
    stream = client.chat.completions.create(
        model=model, messages=HELLO, stream=True, extra_headers={"x-mock-fault": "cut_after=2"}
    )
    chunks = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            chunks.append(chunk)
    assert chunks, "the events before the failure reach the client"
    assert [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason] == ["error"]
    assert chunks[-1].choices[0].finish_reason == "error"
    assert chunks[-1].id == chunks[0].id


def test_authentication_header_is_not_required_yet(gateway_url: str) -> None:
    """Until virtual keys exist, any or no API key is accepted (documented in docs/api.md)."""
    other = openai_sdk(gateway_url, "anything-else")
    assert other.chat.completions.create(model="mock", messages=HELLO).choices[0].message.content


@pytest.mark.parametrize("fault", ["status=500", "status=503", "status=429;retry_after=1"])
def test_sdk_does_not_retry_on_top_of_the_gateway(gateway_url: str, fault: str) -> None:
    """With its default retries on, the SDK sends one request: the gateway says x-should-retry: false after its own retries."""
    import httpx2

    sent: list[object] = []
    http = httpx2.Client(event_hooks={"request": [sent.append]})
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="unused", http_client=http)  # default max_retries=2
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="mock", messages=HELLO, extra_headers={"x-mock-fault": fault})
    assert len(sent) == 1
    assert info.value.response.headers["x-should-retry"] == "false"
