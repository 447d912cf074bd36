"""The Anthropic Messages wire protocol, both sides, checked against recorded samples and the official SDK."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import orjson
import pytest
import yaml

from breakwater.core import errors
from breakwater.core.errors import InvalidRequest, MalformedResponse, UnsupportedParameter
from breakwater.core.types import (
    ChatResponse,
    Choice,
    EmbeddingRequest,
    FinishEvent,
    ImagePart,
    Message,
    ResponseFormat,
    StreamEvent,
    StreamStart,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
    UsageEvent,
)
from breakwater.providers.anthropic import DEFAULT_BASE_URL, AnthropicAdapter
from breakwater.providers.anthropic_request import DEFAULT_MAX_TOKENS
from breakwater.providers.anthropic_serve import StreamEncoder, encode_chat_response, error_body
from breakwater.providers.anthropic_serve_request import decode_chat_request
from breakwater.providers.base import Target

from .helpers import AdapterUnderTest, chat_request, collect_stream, sse_data, user

SAMPLES = Path(__file__).parent / "samples" / "anthropic"
ADAPTER = AnthropicAdapter()
TARGET = Target(provider="claude", model="claude-sonnet-4-5", base_url="", api_key="sk-ant-test")
WIRE = AdapterUnderTest(ADAPTER, TARGET, piece=9)


# --- request building --------------------------------------------------------------------------


def test_request_url_headers_and_extra_body() -> None:
    """The request is a POST to {base}/v1/messages with x-api-key, the API version and the target's headers."""
    target = Target(
        provider="claude",
        model="claude-x",
        base_url="https://proxy.example/",
        api_key="k",
        headers={"anthropic-beta": "b1"},
        extra_body={"service_tier": "standard_only"},
    )
    req = ADAPTER.chat_request(chat_request(user("hi")), target)
    assert (req.method, req.url, req.stream) == ("POST", "https://proxy.example/v1/messages", False)
    assert req.headers == {
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "b1",
        "x-api-key": "k",
    }
    body = orjson.loads(req.body)
    assert body["model"] == "claude-x" and body["service_tier"] == "standard_only"
    assert ADAPTER.chat_request(chat_request(user("hi")), TARGET).url == f"{DEFAULT_BASE_URL}/v1/messages"


def test_max_tokens_defaults_when_absent() -> None:
    """max_tokens, required by Anthropic, falls back to DEFAULT_MAX_TOKENS and otherwise passes through."""
    assert WIRE.body(chat_request(user("hi")))["max_tokens"] == DEFAULT_MAX_TOKENS == 4096
    assert WIRE.body(chat_request(user("hi"), max_tokens=77))["max_tokens"] == 77


def test_system_and_developer_messages_become_top_level_system() -> None:
    """System and developer messages are hoisted, in order, into the top-level system field."""
    body = WIRE.body(chat_request(Message("system", [TextPart("Be brief.")]), user("hi")))
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    body = WIRE.body(
        chat_request(Message("system", [TextPart("A")]), user("hi"), Message("developer", [TextPart("B")]))
    )
    assert body["system"] == [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]
    assert len(body["messages"]) == 1


def test_scalar_params_stop_user_and_stream() -> None:
    """temperature/top_p/top_k pass through; stop becomes stop_sequences, user becomes metadata.user_id."""
    body = WIRE.body(
        chat_request(user("hi"), temperature=0.2, top_p=0.9, top_k=40, stop=["END"], user="u-1", stream=True)
    )
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.2, 0.9, 40)
    assert body["stop_sequences"] == ["END"] and body["metadata"] == {"user_id": "u-1"} and body["stream"] is True
    assert ADAPTER.chat_request(chat_request(user("hi"), stream=True), TARGET).stream is True


def test_tools_become_input_schema_tools() -> None:
    """Tools map to {name, description, input_schema, strict}; a missing schema becomes an empty object schema."""
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    tools = [Tool("weather", "Get weather", schema, strict=True), Tool("ping")]
    body = WIRE.body(chat_request(user("hi"), tools=tools))
    assert body["tools"] == [
        {"name": "weather", "description": "Get weather", "input_schema": schema, "strict": True},
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (ToolChoice("auto"), None, {"type": "auto"}),
        (ToolChoice("required"), None, {"type": "any"}),
        (ToolChoice("named", "weather"), None, {"type": "tool", "name": "weather"}),
        (ToolChoice("none"), None, {"type": "none"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (ToolChoice("required"), False, {"type": "any", "disable_parallel_tool_use": True}),
        (ToolChoice("none"), False, {"type": "none"}),
        (None, True, None),
    ],
)
def test_tool_choice_mapping(choice: ToolChoice | None, parallel: bool | None, expected: dict[str, Any] | None) -> None:
    """tool_choice auto/required/named/none map to auto/any/tool/none, and parallel_tool_calls=False to disable_parallel_tool_use."""
    body = WIRE.body(
        chat_request(user("hi"), tools=[Tool("weather")], tool_choice=choice, parallel_tool_calls=parallel)
    )
    assert body.get("tool_choice") == expected


def test_tool_calls_and_results_become_blocks_grouped_in_one_user_turn() -> None:
    """Assistant tool calls become tool_use blocks; consecutive tool messages and a following user message form one user turn."""
    body = WIRE.body(
        chat_request(
            user("weather in Paris and Oslo?"),
            Message(
                "assistant",
                [TextPart("Checking.")],
                [ToolCall("t1", "weather", '{"city": "Paris"}'), ToolCall("t2", "weather", "")],
            ),
            Message("tool", [TextPart("18C")], tool_call_id="t1"),
            Message("tool", [TextPart("9C")], tool_call_id="t2"),
            user("thanks"),
        )
    )
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "weather in Paris and Oslo?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "t2", "name": "weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "t2", "content": "9C"},
                {"type": "text", "text": "thanks"},
            ],
        },
    ]


def test_tool_arguments_that_are_not_a_json_object_are_rejected() -> None:
    """Tool-call arguments Anthropic cannot carry (not a JSON object) raise InvalidRequest naming the field."""
    for arguments in ("{not json", "[1, 2]"):
        request = chat_request(user("q"), Message("assistant", [], [ToolCall("t1", "f", arguments)]))
        with pytest.raises(InvalidRequest) as info:
            ADAPTER.chat_request(request, TARGET)
        assert info.value.param == "messages[1].tool_calls[0].function.arguments"


def test_images_become_base64_or_url_sources() -> None:
    """data: URLs become base64 image sources and http(s) URLs become url sources; empty text parts are dropped."""
    message = Message(
        "user",
        [TextPart(""), ImagePart("data:image/png;base64,iVBORw0KGgo="), ImagePart("https://img.example/a.jpg", "high")],
    )
    assert WIRE.body(chat_request(message))["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://img.example/a.jpg"}},
    ]


@pytest.mark.parametrize("url", ["data:image/png,rawbytes", "ftp://img.example/a.png"])
def test_unusable_image_urls_are_rejected(url: str) -> None:
    """An image URL that is neither base64 data nor http(s) raises InvalidRequest naming the part."""
    with pytest.raises(InvalidRequest) as info:
        ADAPTER.chat_request(chat_request(Message("user", [TextPart("see"), ImagePart(url)])), TARGET)
    assert info.value.param == "messages[0].content[1]"


def test_response_format_json_schema_uses_output_config() -> None:
    """A json_schema response_format becomes output_config.format; json_object is reported unsupported."""
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}
    body = WIRE.body(chat_request(user("hi"), response_format=ResponseFormat("json_schema", schema, "answer", True)))
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    json_mode = chat_request(user("hi"), response_format=ResponseFormat("json_object"))
    assert ADAPTER.unsupported(json_mode, TARGET) == ["response_format"]
    with pytest.raises(UnsupportedParameter):
        ADAPTER.chat_request(json_mode, TARGET)


def test_unsupported_lists_params_anthropic_cannot_honour() -> None:
    """unsupported() names used parameters outside supported_params, including extra client fields."""
    request = chat_request(user("hi"), n=2, seed=1, logprobs=True, presence_penalty=0.1, temperature=0.5, top_k=3)
    request.extra_params = ["reasoning_effort"]
    assert ADAPTER.unsupported(request, TARGET) == ["seed", "presence_penalty", "logprobs", "n", "reasoning_effort"]
    assert ADAPTER.unsupported(chat_request(user("hi"), max_tokens=5, tools=[Tool("f")], user="u"), TARGET) == []


def test_embeddings_are_not_offered() -> None:
    """Anthropic has no embeddings endpoint, so both embeddings hooks raise UnsupportedParameter on 'model'."""
    with pytest.raises(UnsupportedParameter, match=r"provider claude \(anthropic\) does not offer embeddings") as info:
        ADAPTER.embeddings_request(EmbeddingRequest("e", ["x"]), TARGET)
    assert info.value.param == "model"
    with pytest.raises(UnsupportedParameter):
        ADAPTER.embeddings_response(b"{}", TARGET)


# --- response parsing --------------------------------------------------------------------------


def test_tool_use_response_parses_text_calls_and_cache_usage() -> None:
    """A tool_use message parses to text, compact-JSON tool calls, finish tool_calls and cache-inclusive usage."""
    response = ADAPTER.chat_response((SAMPLES / "chat_tool_use.json").read_bytes(), TARGET)
    choice = response.choices[0]
    assert response.id == "msg_01Tq4HsW8yNcXe6JvRb1kMpa" and response.raw_body is None
    assert choice.message.text() == "Let me look up the tide table for that harbour."
    assert choice.message.tool_calls == [
        ToolCall("toolu_01Ka9mPfR2xLw7QeTz5vNbYc", "get_tides", '{"harbour":"Brixham","days":2}')
    ]
    assert choice.finish_reason == "tool_calls"
    assert response.usage == Usage(3552, 71, cached_input_tokens=2304, cache_creation_input_tokens=1210)


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
    ],
)
def test_stop_reasons_map_to_finish_reasons(stop_reason: str, finish: str) -> None:
    """Each Anthropic stop_reason maps to its canonical finish reason."""
    body = orjson.dumps({"id": "msg_1", "content": [], "stop_reason": stop_reason, "usage": {}})
    assert ADAPTER.chat_response(body, TARGET).choices[0].finish_reason == finish


def test_thinking_blocks_are_dropped_and_thinking_tokens_counted() -> None:
    """Thinking blocks have no canonical form and are dropped; thinking_tokens become reasoning_tokens."""
    body = orjson.dumps(
        {
            "id": "msg_1",
            "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"}, {"type": "text", "text": "Yes."}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 5, "output_tokens": 9, "output_tokens_details": {"thinking_tokens": 6}},
        }
    )
    response = ADAPTER.chat_response(body, TARGET)
    assert response.choices[0].message.content == [TextPart("Yes.")]
    assert response.usage == Usage(5, 9, reasoning_tokens=6)


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"id": "msg_1"}', b'{"content": [{"text": "x"}]}'])
def test_unreadable_responses_raise_malformed(body: bytes) -> None:
    """Invalid JSON or a message without readable content raises MalformedResponse."""
    with pytest.raises(MalformedResponse):
        ADAPTER.chat_response(body, TARGET)


# --- stream parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_tool_use_stream_in_random_pieces(seed: int) -> None:
    """A tool-use stream fed in random-size pieces yields start, text, tool-call pieces, finish and merged usage."""
    events = WIRE.parse_stream((SAMPLES / "chat_tool_use.sse").read_bytes(), seed)
    assert isinstance(events[0], StreamStart) and events[0].id == "msg_01Ry6uGd9WpMx2TbKc7hLsQe"
    text, calls, finish, usage = collect_stream(events)
    assert text == "Checking the forecast for you."
    assert calls == [
        {
            "id": "toolu_01Hn3eVb6QsKz8YtRw4mXcLa",
            "name": "get_wave_height",
            "arguments": {"location": "Portsmouth", "unit": "m"},
        }
    ]
    assert finish == "tool_calls"
    assert usage == Usage(1588, 64, cached_input_tokens=1536)
    assert isinstance(events[-1], UsageEvent)


def test_stream_tool_index_counts_tool_blocks_only() -> None:
    """tool_index counts tool_use blocks only, so a tool after a text block is tool 0 and the next is tool 1."""
    events = WIRE.parse_stream((SAMPLES / "chat_tool_use.sse").read_bytes())
    assert {e.tool_index for e in events if isinstance(e, ToolCallDelta)} == {0}


def _sse(*payloads: dict[str, Any]) -> bytes:
    return b"".join(b"event: " + p["type"].encode() + b"\ndata: " + orjson.dumps(p) + b"\n\n" for p in payloads)


_START = {
    "type": "message_start",
    "message": {"id": "msg_s", "model": "m", "usage": {"input_tokens": 3, "output_tokens": 1}},
}


def test_message_delta_usage_overrides_start_usage() -> None:
    """Cumulative input and cache counts in message_delta replace those from message_start."""
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens"},
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 7},
    }
    text, _, finish, usage = collect_stream(WIRE.parse_stream(_sse(_START, delta, {"type": "message_stop"})))
    assert (text, finish, usage) == ("", "length", Usage(100, 7, cached_input_tokens=90))


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [
        ("overloaded_error", errors.Overloaded),
        ("rate_limit_error", errors.RateLimited),
        ("api_error", errors.UpstreamServerError),
        ("invalid_request_error", errors.UpstreamBadRequest),
    ],
)
def test_stream_error_event_raises_mapped_error(error_type: str, expected: type[Exception]) -> None:
    """An in-stream error event raises the UpstreamError its Anthropic type maps to."""
    data = _sse(_START, {"type": "error", "error": {"type": error_type, "message": "boom"}})
    with pytest.raises(expected):
        WIRE.parse_stream(data)


def test_stream_without_message_stop_is_malformed() -> None:
    """close() raises MalformedResponse when message_stop never arrived."""
    with pytest.raises(MalformedResponse):
        WIRE.parse_stream((SAMPLES / "chat_text.sse").read_bytes().split(b"event: message_stop")[0])


@pytest.mark.parametrize(
    "data",
    [
        b"event: message_start\ndata: {oops\n\n",
        _sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        _sse(
            _START,
            {"type": "content_block_delta", "index": 4, "delta": {"type": "input_json_delta", "partial_json": "{"}},
        ),
    ],
)
def test_unreadable_stream_events_are_malformed(data: bytes) -> None:
    """Bad JSON, events before message_start, or deltas for unknown tool blocks raise MalformedResponse."""
    with pytest.raises(MalformedResponse):
        WIRE.parse_stream(data)


# --- error mapping -----------------------------------------------------------------------------


def _err(type_: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": type_, "message": message}})


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "retry_after"),
    [
        (400, _err("invalid_request_error", "max_tokens: Field required"), {}, errors.UpstreamBadRequest, None),
        (
            400,
            _err("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
            {},
            errors.ContextLengthExceeded,
            None,
        ),
        (401, _err("authentication_error", "invalid x-api-key"), {}, errors.UpstreamAuthError, None),
        (403, _err("permission_error", "no access"), {}, errors.UpstreamPermissionError, None),
        (404, _err("not_found_error", "model: claude-nope"), {}, errors.UpstreamNotFound, None),
        (429, _err("rate_limit_error", "slow down"), {"Retry-After": "12"}, errors.RateLimited, 12.0),
        (500, _err("api_error", "Internal server error"), {}, errors.UpstreamServerError, None),
        (529, _err("overloaded_error", "Overloaded"), {}, errors.Overloaded, None),
        (500, _err("overloaded_error", "Overloaded"), {}, errors.Overloaded, None),
        (502, b"<html>bad gateway</html>", {}, errors.UpstreamServerError, None),
    ],
)
def test_map_error(
    status: int, body: bytes, headers: dict[str, str], expected: type[errors.UpstreamError], retry_after: float | None
) -> None:
    """HTTP failures map by status first (overloaded_error always to Overloaded), with retry-after read from headers."""
    err = ADAPTER.map_error(status, headers, body, TARGET)
    assert type(err) is expected
    assert (err.provider, err.upstream_status, err.retry_after) == ("claude", status, retry_after)


# --- recorded samples --------------------------------------------------------------------------

CASES = yaml.safe_load((SAMPLES / "cases.yaml").read_text())


@pytest.mark.parametrize("case", CASES["responses"] + CASES["streams"], ids=lambda c: c["file"])
def test_recorded_samples(case: dict[str, Any]) -> None:
    """Every recorded response and stream parses to the text, finish reason, usage and tool calls in cases.yaml."""
    data = (SAMPLES / case["file"]).read_bytes()
    if case["file"].endswith(".sse"):
        text, calls, finish, usage = collect_stream(WIRE.parse_stream(data))
    else:
        response = ADAPTER.chat_response(data, TARGET)
        choice = response.choices[0]
        text, finish, usage = choice.message.text(), choice.finish_reason, response.usage
        calls = [{"name": c.name, "arguments": orjson.loads(c.arguments)} for c in choice.message.tool_calls]
    assert (text, finish, usage) == (case["text"], case["finish_reason"], Usage(**case["usage"]))
    assert [{"name": c["name"], "arguments": c["arguments"]} for c in calls] == case["tool_calls"]


@pytest.mark.parametrize("case", CASES["errors"], ids=lambda c: c["file"])
def test_recorded_errors(case: dict[str, Any]) -> None:
    """Every recorded error body maps to the error class and retry-after in cases.yaml."""
    err = ADAPTER.map_error(case["status"], case["headers"], (SAMPLES / case["file"]).read_bytes(), TARGET)
    assert type(err).__name__ == case["error"] and err.retry_after == case.get("retry_after")


# --- serve side: decoding client requests ------------------------------------------------------

FULL_REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 512,
    "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "tu_1", "name": "weather", "input": {"city": "Oslo"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "tu_1", "content": [{"type": "text", "text": "9C"}]},
                {"type": "text", "text": "And this?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "image", "source": {"type": "url", "url": "https://img.example/x.png"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "d"}},
            ],
        },
    ],
    "tools": [
        {"name": "weather", "description": "Weather now", "input_schema": {"type": "object"}},
        {"type": "web_search_20250305", "name": "web_search"},
    ],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "stop_sequences": ["\n\nHuman:"],
    "temperature": 0.3,
    "top_p": 0.8,
    "top_k": 20,
    "metadata": {"user_id": "user-9"},
    "stream": True,
    "thinking": {"type": "enabled", "budget_tokens": 1024},
}


def test_decode_full_request() -> None:
    """A full Messages body decodes to canonical messages, tools and params (the system prompt's cache
    breakpoint kept), with unmodelled fields in extra_params."""
    req = decode_chat_request(FULL_REQUEST)
    assert (req.model, req.max_tokens, req.stream, req.raw) == ("claude-sonnet-4-5", 512, True, None)
    assert (req.temperature, req.top_p, req.top_k, req.stop, req.user) == (0.3, 0.8, 20, ["\n\nHuman:"], "user-9")
    assert req.cache_breakpoints
    assert req.messages == [
        Message("system", [TextPart("You are terse.", {"type": "ephemeral"})]),
        Message("user", [TextPart("Weather?")]),
        Message("assistant", [TextPart("Looking.")], [ToolCall("tu_1", "weather", '{"city":"Oslo"}')]),
        Message("tool", [TextPart("9C")], tool_call_id="tu_1"),
        Message(
            "user",
            [TextPart("And this?"), ImagePart("data:image/png;base64,AAAA"), ImagePart("https://img.example/x.png")],
        ),
    ]
    assert req.tools == [Tool("weather", "Weather now", {"type": "object"})]
    assert (req.tool_choice, req.parallel_tool_calls) == (ToolChoice("required"), False)
    assert req.extra_params == ["thinking", "messages[2].content[4].type=document", "tools[1].type=web_search_20250305"]


def test_decode_output_config_to_response_format() -> None:
    """output_config.format json_schema becomes a strict json_schema response_format."""
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    schema = {"type": "object", "properties": {}}
    req = decode_chat_request({**body, "output_config": {"format": {"type": "json_schema", "schema": schema}}})
    assert req.response_format == ResponseFormat("json_schema", schema, strict=True)


_OK: dict[str, Any] = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}


def _with(**changes: Any) -> dict[str, Any]:
    body = {**_OK, **changes}
    return {k: v for k, v in body.items() if v is not None}


def _content(*blocks: Any) -> dict[str, Any]:
    return _with(messages=[{"role": "user", "content": list(blocks)}])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([1], "body"),
        (_with(model=None), "model"),
        (_with(max_tokens=None), "max_tokens"),
        (_with(max_tokens="10"), "max_tokens"),
        (_with(max_tokens=0), "max_tokens"),
        (_with(messages=[]), "messages"),
        (_with(messages=[{"role": "system", "content": "x"}]), "messages[0].role"),
        (_with(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (_content("text"), "messages[0].content[0]"),
        (_content({"type": "text"}), "messages[0].content[0].text"),
        (_content({"type": 3}), "messages[0].content[0].type"),
        (_content({"type": "tool_use", "id": "a", "name": "f", "input": {}}), "messages[0].content[0].type"),
        (_content({"type": "tool_result", "content": "x"}), "messages[0].content[0].tool_use_id"),
        (_content({"type": "tool_result", "tool_use_id": "a", "content": 7}), "messages[0].content[0].content"),
        (
            _content({"type": "image", "source": {"type": "base64", "data": "A"}}),
            "messages[0].content[0].source.media_type",
        ),
        (_content({"type": "image"}), "messages[0].content[0].source"),
        (_with(system=5), "system"),
        (_with(system=[{"type": "image"}]), "system[0].type"),
        (_with(temperature="hot"), "temperature"),
        (_with(temperature=1.5), "temperature"),
        (_with(top_k=-1), "top_k"),
        (_with(stop_sequences="END"), "stop_sequences"),
        (_with(stream="yes"), "stream"),
        (_with(tools=[{"name": "f"}]), "tools[0].input_schema"),
        (_with(tools=[{"input_schema": {}}]), "tools[0].name"),
        (_with(tool_choice={"type": "sometimes"}), "tool_choice.type"),
        (_with(tool_choice={"type": "tool"}), "tool_choice.name"),
        (_with(metadata={"user_id": 5}), "metadata.user_id"),
        (_with(output_config={"format": {"type": "json_object"}}), "output_config.format.type"),
    ],
)
def test_decode_rejects_bad_input_with_param(body: Any, param: str) -> None:
    """Missing or wrongly typed fields raise InvalidRequest naming the offending field."""
    with pytest.raises(InvalidRequest) as info:
        decode_chat_request(body)
    assert info.value.param == param


# --- serve side: through the official SDK ------------------------------------------------------


def _client(handler: Callable[[httpx2.Request], httpx2.Response]) -> anthropic.Anthropic:
    transport = httpx2.MockTransport(handler)
    return anthropic.Anthropic(
        api_key="test", base_url="http://bw.test", http_client=httpx2.Client(transport=transport), max_retries=0
    )


def _response(usage: Usage | None = None) -> ChatResponse:
    message = Message("assistant", [TextPart("Calm seas.")], [ToolCall("call_1", "log", '{"sea": "calm"}')])
    return ChatResponse("chatcmpl-9", "gpt-x", 0, [Choice(0, message, "tool_calls")], usage)


def test_encoded_response_validates_as_sdk_message() -> None:
    """encode_chat_response output validates as anthropic.types.Message, with cache tokens taken out of input_tokens."""
    usage = Usage(100, 20, cached_input_tokens=60, cache_creation_input_tokens=10, reasoning_tokens=4)
    message = anthropic.types.Message.model_validate_json(encode_chat_response(_response(usage)))
    assert message.id == "msg_chatcmpl-9" and message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[1].input == {"sea": "calm"}  # type: ignore[union-attr]
    u = message.usage
    assert (u.input_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens, u.output_tokens) == (
        30,
        60,
        10,
        20,
    )
    assert u.output_tokens_details is not None and u.output_tokens_details.thinking_tokens == 4
    # and the client adapter reads its own server side back to the same canonical response
    back = ADAPTER.chat_response(encode_chat_response(_response(usage)), TARGET)
    assert back.usage == usage and back.choices[0].message.tool_calls == [ToolCall("call_1", "log", '{"sea":"calm"}')]


def test_sdk_request_round_trip() -> None:
    """A body sent by the SDK decodes and re-encodes through AnthropicAdapter to an equivalent body."""
    sent: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(orjson.loads(request.content))
        return httpx2.Response(200, content=encode_chat_response(_response()))

    message = _client(handler).messages.create(
        model="claude-x",
        max_tokens=64,
        system="Be kind.",
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "log", "input": {"a": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]},
        ],
        tools=[{"name": "log", "input_schema": {"type": "object", "properties": {}}}],
        tool_choice={"type": "tool", "name": "log"},
        stop_sequences=["##"],
        extra_body={"temperature": 0.1},  # SDK 1.x dropped sampling kwargs; the API still takes them
    )
    assert message.usage.input_tokens == 0
    original = sent[0]
    again = WIRE.body(decode_chat_request(original))
    assert again["messages"][0] == {"role": "user", "content": [{"type": "text", "text": "hi"}]}
    assert again["messages"][1:] == original["messages"][1:]
    for key in ("max_tokens", "system", "tools", "tool_choice", "stop_sequences", "temperature"):
        assert again[key] == original[key], key


_STREAM_EVENTS: list[StreamEvent] = [
    StreamStart("chatcmpl-7", "gpt-x", 0),
    TextDelta("Tide "),
    TextDelta("is high.", index=1),  # a second choice: Anthropic has none, so it is ignored
    TextDelta("is high."),
    ToolCallDelta(0, "", "call_a", "log"),
    ToolCallDelta(0, '{"tide": '),
    ToolCallDelta(0, '"high"}'),
    ToolCallDelta(1, "{}", "call_b", "noop"),
    FinishEvent("tool_calls"),
    UsageEvent(Usage(100, 20, cached_input_tokens=60, cache_creation_input_tokens=10)),
]


def _encoded_stream(events: list[StreamEvent]) -> bytes:
    encoder = StreamEncoder(chat_request(user("hi"), stream=True))
    return b"".join(encoder.encode(e) for e in events) + encoder.end()


def test_stream_encoder_through_sdk_accumulation() -> None:
    """StreamEncoder output accumulated by the SDK's messages.stream() reproduces text, tool calls, stop reason and usage."""
    data = _encoded_stream(_STREAM_EVENTS)

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=data, headers={"content-type": "text/event-stream"})

    with _client(handler).messages.stream(model="m", max_tokens=9, messages=[{"role": "user", "content": "hi"}]) as s:
        final = s.get_final_message()
    assert final.id == "msg_chatcmpl-7" and final.stop_reason == "tool_use"
    blocks = [b.model_dump(include={"type", "text", "id", "name", "input"}) for b in final.content]
    assert blocks == [
        {"type": "text", "text": "Tide is high."},
        {"type": "tool_use", "id": "call_a", "name": "log", "input": {"tide": "high"}},
        {"type": "tool_use", "id": "call_b", "name": "noop", "input": {}},
    ]
    u = final.usage
    assert (u.input_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens, u.output_tokens) == (
        30,
        60,
        10,
        20,
    )


def test_stream_encoder_round_trips_through_stream_parser() -> None:
    """StreamEncoder output parsed by AnthropicStreamParser gives back the same text, tool calls, finish and usage."""
    text, calls, finish, usage = collect_stream(WIRE.parse_stream(_encoded_stream(_STREAM_EVENTS)))
    assert text == "Tide is high." and finish == "tool_calls"
    assert calls == [
        {"id": "call_a", "name": "log", "arguments": {"tide": "high"}},
        {"id": "call_b", "name": "noop", "arguments": {}},
    ]
    assert usage == Usage(100, 20, cached_input_tokens=60, cache_creation_input_tokens=10)


def test_stream_encoder_frame_order() -> None:
    """Frames follow Anthropic's order: message_start, block start/delta/stop per block, message_delta, message_stop."""
    frames = [line[7:] for line in _encoded_stream(_STREAM_EVENTS).decode().splitlines() if line.startswith("event: ")]
    assert frames == [
        "message_start",
        *("content_block_start", "content_block_delta", "content_block_delta", "content_block_stop"),
        *("content_block_start", "content_block_delta", "content_block_delta", "content_block_stop"),
        *("content_block_start", "content_block_delta", "content_block_stop"),
        "message_delta",
        "message_stop",
    ]


def test_stream_encoder_empty_stream_is_still_valid() -> None:
    """A stream with no events still yields message_start, message_delta (end_turn) and message_stop."""
    events = WIRE.parse_stream(_encoded_stream([]))
    assert isinstance(events[0], StreamStart)
    assert collect_stream(events)[2] == "stop"


def test_stream_encoder_error_frame_raises_in_sdk() -> None:
    """An error() frame is an Anthropic 'error' event, which the SDK raises as an API error."""
    encoder = StreamEncoder(chat_request(user("hi"), stream=True))
    data = encoder.encode(StreamStart("x", "m", 0)) + encoder.encode(TextDelta("par"))
    data += encoder.error("the upstream is overloaded", "overloaded_error", "overloaded")
    assert data.endswith(
        b"event: error\ndata: " + error_body("the upstream is overloaded", "overloaded_error") + b"\n\n"
    )

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=data, headers={"content-type": "text/event-stream"})

    client = _client(handler)
    with (
        pytest.raises(anthropic.APIStatusError, match="overloaded"),
        client.messages.stream(model="m", max_tokens=9, messages=[{"role": "user", "content": "hi"}]) as s,
    ):
        s.get_final_message()
    with pytest.raises(errors.Overloaded):
        WIRE.parse_stream(data)


def test_error_body_shape() -> None:
    """error_body writes Anthropic's {"type": "error", "error": {"type", "message"}} envelope."""
    assert orjson.loads(error_body("nope", "invalid_request_error")) == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "nope"},
    }


# --- cache breakpoints and stop sequences -------------------------------------------------------

CACHED_REQUEST: dict[str, Any] = {
    "model": "claude-x",
    "max_tokens": 64,
    "cache_control": {"type": "ephemeral"},
    "system": [
        {"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "text", "text": "More rules."},
    ],
    "tools": [{"name": "log", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t", "name": "log", "input": {}, "cache_control": {"type": "ephemeral"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t",
                    "content": [{"type": "text", "text": "ok", "cache_control": {"type": "ephemeral"}}],
                    "cache_control": {"type": "ephemeral"},
                },
                {
                    "type": "image",
                    "source": {"type": "url", "url": "https://img.example/x.png"},
                    "cache_control": {"type": "ephemeral"},
                },
            ],
        },
    ],
}


def test_cache_breakpoints_survive_the_round_trip() -> None:
    """Every cache_control a Messages body carries comes out of decode + AnthropicAdapter in place."""
    request = decode_chat_request(CACHED_REQUEST)
    assert request.cache_breakpoints and "cache_control" in request.used_params()
    assert ADAPTER.unsupported(request, TARGET) == []
    again = WIRE.body(request)
    for key in ("cache_control", "system", "tools", "messages"):
        assert again[key] == CACHED_REQUEST[key], key


def test_a_request_without_breakpoints_has_none() -> None:
    """A body without cache_control decodes with cache_breakpoints off, so nothing reports it."""
    request = decode_chat_request(_OK)
    assert not request.cache_breakpoints and "cache_control" not in request.used_params()
    assert "cache_control" not in WIRE.body(request)


@pytest.mark.parametrize("value", ["ephemeral", {"ttl": "5m"}, {"type": 5}])
def test_malformed_cache_control_is_a_400(value: Any) -> None:
    """cache_control must be an object with a string type; the 400 names where it was."""
    body = _content({"type": "text", "text": "x", "cache_control": value})
    with pytest.raises(InvalidRequest) as info:
        decode_chat_request(body)
    assert (info.value.param or "").startswith("messages[0].content[0].cache_control")


def test_stop_sequence_is_parsed_and_written_back() -> None:
    """Anthropic's stop_sequence reason and the matched sequence survive parse and encode."""
    body = orjson.dumps(
        {
            "id": "msg_1",
            "model": "m",
            "content": [{"type": "text", "text": "Count: 1, 2"}],
            "stop_reason": "stop_sequence",
            "stop_sequence": ", 3",
            "usage": {"input_tokens": 3, "output_tokens": 4},
        }
    )
    response = ADAPTER.chat_response(body, TARGET)
    assert (response.choices[0].finish_reason, response.choices[0].stop_sequence) == ("stop", ", 3")
    out = orjson.loads(encode_chat_response(response))
    assert (out["stop_reason"], out["stop_sequence"]) == ("stop_sequence", ", 3")


def test_streamed_stop_sequence_is_parsed_and_written_back() -> None:
    """A message_delta naming the stop sequence becomes a FinishEvent with it, and encodes back."""
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "stop_sequence", "stop_sequence": "##"},
        "usage": {"output_tokens": 2},
    }
    events = WIRE.parse_stream(_sse(_START, delta, {"type": "message_stop"}))
    assert FinishEvent("stop", 0, "##") in events
    frames = [orjson.loads(data) for data in sse_data(_encoded_stream(events))]
    final = next(f for f in frames if f["type"] == "message_delta")
    assert final["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "##"}


def test_an_ordinary_stop_is_end_turn_without_a_sequence() -> None:
    """Without a matched sequence (OpenAI and Gemini do not say), a stop is end_turn."""
    response = ChatResponse("r", "m", 0, [Choice(0, Message("assistant", [TextPart("Done.")]), "stop")])
    out = orjson.loads(encode_chat_response(response))
    assert (out["stop_reason"], out["stop_sequence"]) == ("end_turn", None)
