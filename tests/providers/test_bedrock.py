"""The Bedrock Converse adapter: request bodies, unsupported parameters, stream events and in-stream errors.

Recorded responses, streams and error bodies are in the shared conformance suite
(tests/providers/test_conformance.py, samples/bedrock/); these cover what only this wire does.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from breakwater.core import errors
from breakwater.core.types import (
    ChatRequest,
    FinishEvent,
    ImagePart,
    Message,
    StreamStart,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    UsageEvent,
)
from breakwater.providers.base import Target
from breakwater.providers.bedrock import BedrockAdapter, base_url
from breakwater.providers.eventstream import EventStreamDecoder, EventStreamError, encode_message

from .helpers import feed_in_pieces

TARGET = Target(provider="aws", model="amazon.nova-lite-v1:0", base_url=base_url("us-west-2"))
ADAPTER = BedrockAdapter()
TOOL = Tool("get_weather", "Weather by city", {"type": "object", "properties": {"city": {"type": "string"}}})


def body(request: ChatRequest) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(ADAPTER.chat_request(request, TARGET).body)
    return data


def chat(*messages: Message, **kw: Any) -> ChatRequest:
    return ChatRequest(model="r", messages=list(messages), **kw)


def test_urls_for_converse_and_converse_stream() -> None:
    """Plain chat posts to /converse, streamed chat to /converse-stream, on the region's endpoint."""
    plain = ADAPTER.chat_request(chat(Message("user", [TextPart("hi")])), TARGET)
    streamed = ADAPTER.chat_request(chat(Message("user", [TextPart("hi")]), stream=True), TARGET)
    assert plain.url == "https://bedrock-runtime.us-west-2.amazonaws.com/model/amazon.nova-lite-v1:0/converse"
    assert streamed.url.endswith("/converse-stream") and streamed.stream
    assert streamed.headers["accept"] == "application/vnd.amazon.eventstream"


def test_body_shape() -> None:
    """System text, alternating turns (tool results merged into the next user turn), inference and tool config."""
    request = chat(
        Message("system", [TextPart("Be brief.")]),
        Message("user", [TextPart("Weather?"), ImagePart("data:image/jpeg;base64,/9j/4AAQ")]),
        Message("assistant", [TextPart("Checking.")], [ToolCall("tooluse_1", "get_weather", '{"city":"Oslo"}')]),
        Message("tool", [TextPart('{"temp_c": 3}')], tool_call_id="tooluse_1"),
        Message("user", [TextPart("Thanks. And Bergen?")]),
        max_tokens=64,
        temperature=0.2,
        top_p=0.9,
        stop=["END"],
        tools=[TOOL],
        tool_choice=ToolChoice("named", "get_weather"),
    )
    assert body(request) == {
        "system": [{"text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [{"text": "Weather?"}, {"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}}]},
            {"role": "assistant", "content": [
                {"text": "Checking."},
                {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Oslo"}}},
            ]},
            {"role": "user", "content": [
                {"toolResult": {"toolUseId": "tooluse_1", "content": [{"json": {"temp_c": 3}}]}},
                {"text": "Thanks. And Bergen?"},
            ]},
        ],
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
        "toolConfig": {
            "tools": [{"toolSpec": {"name": "get_weather", "description": "Weather by city",
                                    "inputSchema": {"json": TOOL.parameters}}}],
            "toolChoice": {"tool": {"name": "get_weather"}},
        },
    }  # fmt: skip


def test_text_tool_result_and_s3_image() -> None:
    """A tool result that is not a JSON object goes as text; an s3:// image as an S3 location."""
    request = chat(
        Message("user", [ImagePart("s3://bucket/photos/pier.webp")]),
        Message("assistant", [], [ToolCall("t1", "look", "{}")]),
        Message("tool", [TextPart("42 knots")], tool_call_id="t1"),
        tools=[TOOL],
    )
    turns = body(request)["messages"]
    assert turns[0]["content"] == [
        {"image": {"format": "webp", "source": {"s3Location": {"uri": "s3://bucket/photos/pier.webp"}}}}
    ]
    assert turns[2]["content"] == [{"toolResult": {"toolUseId": "t1", "content": [{"text": "42 knots"}]}}]


@pytest.mark.parametrize(
    "url", ["https://example.com/cat.png", "data:image/bmp;base64,Qk0=", "data:image/png,notbase64"]
)
def test_images_converse_cannot_take_are_invalid(url: str) -> None:
    """A linked image, or one in a format Converse lacks, is the client's error naming the field."""
    with pytest.raises(errors.InvalidRequest) as caught:
        body(chat(Message("user", [TextPart("see"), ImagePart(url)])))
    assert caught.value.param == "messages[0].content[1].image_url.url"


@pytest.mark.parametrize(("mode", "expected"), [("auto", {"auto": {}}), ("required", {"any": {}})])
def test_tool_choice_modes(mode: str, expected: dict[str, Any]) -> None:
    """auto and required map to Converse's auto and any."""
    got = body(chat(Message("user", [TextPart("x")]), tools=[TOOL], tool_choice=ToolChoice(mode)))  # type: ignore[arg-type]
    assert got["toolConfig"]["toolChoice"] == expected


def test_tool_choice_none_leaves_the_tools_out() -> None:
    """Converse has no 'none': without tool blocks in the history the tools are not sent at all."""
    request = chat(Message("user", [TextPart("x")]), tools=[TOOL], tool_choice=ToolChoice("none"))
    assert "toolConfig" not in body(request)
    assert ADAPTER.unsupported(request, TARGET) == []


def test_tool_choice_none_with_tool_history_is_reported() -> None:
    """With tool calls in the history Converse needs the tools, so 'none' cannot be honoured: it is reported."""
    request = chat(
        Message("user", [TextPart("x")]),
        Message("assistant", [], [ToolCall("t1", "get_weather", "{}")]),
        Message("tool", [TextPart("1")], tool_call_id="t1"),
        tools=[TOOL],
        tool_choice=ToolChoice("none"),
    )
    assert ADAPTER.unsupported(request, TARGET) == ["tool_choice"]


def test_unsupported_parameters() -> None:
    """Parameters Converse cannot carry are reported, never silently dropped."""
    request = chat(Message("user", [TextPart("x")]), top_k=5, seed=1, n=2, user="u", max_tokens=3)
    assert sorted(ADAPTER.unsupported(request, TARGET)) == ["n", "seed", "top_k", "user"]


def test_extra_body_is_merged() -> None:
    """A deployment's extra_body (e.g. additionalModelRequestFields) goes into the Converse body."""
    target = Target(
        provider="aws", model="m", base_url="http://b", extra_body={"additionalModelRequestFields": {"top_k": 5}}
    )
    http = ADAPTER.chat_request(chat(Message("user", [TextPart("x")])), target)
    assert orjson.loads(http.body)["additionalModelRequestFields"] == {"top_k": 5}


def test_embeddings_are_unsupported() -> None:
    """Converse has no embeddings: asking is an unsupported-model error, not a crash."""
    from breakwater.core.types import EmbeddingRequest

    with pytest.raises(errors.UnsupportedParameter):
        ADAPTER.embeddings_request(EmbeddingRequest("m", ["x"]), TARGET)


# --- streams -------------------------------------------------------------------------------------


def event(name: str, payload: dict[str, Any]) -> bytes:
    return encode_message({":event-type": name, ":content-type": "application/json", ":message-type": "event"},
                          orjson.dumps(payload))  # fmt: skip


def exception(name: str, message: str) -> bytes:
    headers = {":exception-type": name, ":content-type": "application/json", ":message-type": "exception"}
    return encode_message(headers, orjson.dumps({"message": message}))


def test_stream_events() -> None:
    """Start, text, a tool call opened with id and name then its input in pieces, finish, then usage."""
    raw = b"".join([
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "On it."}}),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu1", "name": "f"}}}),
        event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"a":'}}}),
        event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "1}"}}}),
        event("contentBlockStop", {"contentBlockIndex": 1}),
        event("messageStop", {"stopReason": "tool_use"}),
        event("metadata", {"usage": {"inputTokens": 5, "outputTokens": 7, "totalTokens": 12}, "metrics": {"latencyMs": 1}}),
    ])  # fmt: skip
    events = feed_in_pieces(ADAPTER.stream_parser(chat(), TARGET), raw, most=17)
    assert isinstance(events[0], StreamStart)
    assert events[1:] == [
        TextDelta("On it."),
        ToolCallDelta(0, "", "tu1", "f"),
        ToolCallDelta(0, '{"a":'),
        ToolCallDelta(0, "1}"),
        FinishEvent("tool_calls"),
        UsageEvent(events[-1].usage),  # type: ignore[union-attr]
    ]
    assert (events[-1].usage.input_tokens, events[-1].usage.output_tokens) == (5, 7)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("throttlingException", errors.RateLimited),
        ("validationException", errors.UpstreamBadRequest),
        ("modelStreamErrorException", errors.UpstreamServerError),
        ("serviceUnavailableException", errors.Overloaded),
        ("internalServerException", errors.UpstreamServerError),
    ],
)
def test_in_stream_exceptions_are_mapped(name: str, expected: type[errors.UpstreamError]) -> None:
    """An exception message after the 200 raises the mapped error, naming the provider."""
    parser = ADAPTER.stream_parser(chat(), TARGET)
    parser.feed(event("messageStart", {"role": "assistant"}))
    with pytest.raises(errors.UpstreamError) as caught:
        parser.feed(exception(name, "something upstream <secret-ish detail>"))
    assert type(caught.value) is expected
    assert caught.value.provider == "aws"


def test_corrupt_frame_is_malformed() -> None:
    """A frame whose checksum does not match is a malformed response (retryable), not a crash."""
    good = event("messageStart", {"role": "assistant"})
    bad = good[:-1] + bytes([good[-1] ^ 0xFF])
    with pytest.raises(errors.MalformedResponse):
        ADAPTER.stream_parser(chat(), TARGET).feed(bad)


def test_eventstream_round_trip() -> None:
    """encode_message writes what botocore's parser reads back: headers and payload, both checksums right."""
    raw = encode_message({":event-type": "x", "k": "välue"}, b'{"a":1}') * 2
    decoder = EventStreamDecoder()
    first = decoder.feed(raw[:10])
    assert first == [] and decoder.pending()
    messages = decoder.feed(raw[10:])
    assert [(dict(m.headers), m.payload) for m in messages] == [({":event-type": "x", "k": "välue"}, b'{"a":1}')] * 2
    assert not decoder.pending()
    with pytest.raises(EventStreamError):
        EventStreamDecoder().feed(b"\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")


# --- per-family quirks ---------------------------------------------------------------------------

CLAUDE = Target(provider="aws", model="us.anthropic.claude-3-7-sonnet-20250219-v1:0", base_url="http://b")
LLAMA = Target(provider="aws", model="meta.llama3-1-70b-instruct-v1:0", base_url="http://b")
CHECKPOINT = {"cachePoint": {"type": "default"}}
EPHEMERAL = {"type": "ephemeral"}


def marked_request() -> ChatRequest:
    return chat(
        Message("system", [TextPart("Long rules.", cache_control=EPHEMERAL)]),
        Message("user", [TextPart("Long document.", cache_control=EPHEMERAL), TextPart("Question?")]),
        tools=[Tool("f", None, {"type": "object"}, cache_control=EPHEMERAL)],
        cache_breakpoints=True,
    )


def test_breakpoints_become_cache_points_for_claude_and_nova() -> None:
    """A cache_control breakpoint is a cachePoint block right after what it marks (system, turn, tools)."""
    request = marked_request()
    for model in (CLAUDE.model, "amazon.nova-pro-v1:0"):
        target = Target(provider="aws", model=model, base_url="http://b")
        got = orjson.loads(ADAPTER.chat_request(request, target).body)
        assert got["system"] == [{"text": "Long rules."}, CHECKPOINT]
        assert got["messages"][0]["content"] == [{"text": "Long document."}, CHECKPOINT, {"text": "Question?"}]
        assert got["toolConfig"]["tools"][1] == CHECKPOINT
        assert "cache_control" not in ADAPTER.unsupported(request, target)


def test_breakpoints_are_reported_for_other_families() -> None:
    """A family without prompt caching gets no cachePoint, and cache_control is reported (dropped, advisory)."""
    request = marked_request()
    got = orjson.loads(ADAPTER.chat_request(request, LLAMA).body)
    assert CHECKPOINT not in got["system"] and CHECKPOINT not in got["messages"][0]["content"]
    assert "cache_control" in ADAPTER.unsupported(request, LLAMA)


def test_top_k_for_claude_goes_in_additional_fields() -> None:
    """Claude reads top_k from additionalModelRequestFields; elsewhere top_k is reported unsupported."""
    request = chat(Message("user", [TextPart("x")]), top_k=40)
    assert orjson.loads(ADAPTER.chat_request(request, CLAUDE).body)["additionalModelRequestFields"] == {"top_k": 40}
    assert ADAPTER.unsupported(request, CLAUDE) == []
    assert "additionalModelRequestFields" not in orjson.loads(ADAPTER.chat_request(request, LLAMA).body)
    assert ADAPTER.unsupported(request, LLAMA) == ["top_k"]


def test_cache_points_read_back_as_breakpoints() -> None:
    """The serve side reads a cachePoint as a breakpoint on the block before it, so the mock can cache."""
    from breakwater.providers import bedrock_serve

    decoded = bedrock_serve.decode_chat_request(
        orjson.loads(ADAPTER.chat_request(marked_request(), CLAUDE).body), "m", False
    )
    assert decoded.cache_breakpoints
    assert decoded.messages[0].content[0].cache_control == EPHEMERAL
    assert [p.cache_control for p in decoded.messages[1].content] == [EPHEMERAL, None]
    assert decoded.tools[0].cache_control == EPHEMERAL
    assert decoded.extra_params == []


@pytest.mark.parametrize(
    ("type_", "code", "expected"),
    [
        ("rate_limit_error", "rate_limit_exceeded", errors.RateLimited),
        ("invalid_request_error", "invalid_request", errors.UpstreamBadRequest),
        ("api_error", None, errors.UpstreamServerError),
    ],
)
def test_serve_side_stream_error_reads_back_as_the_same_kind(
    type_: str, code: str | None, expected: type[errors.UpstreamError]
) -> None:
    """The exception message the serve side ends a stream with is read back as the same kind of error."""
    from breakwater.providers import bedrock_serve

    encoder = bedrock_serve.StreamEncoder(chat())
    parser = ADAPTER.stream_parser(chat(), TARGET)
    parser.feed(encoder.encode(TextDelta("partial")))
    with pytest.raises(errors.UpstreamError) as caught:
        parser.feed(encoder.error("stopped", type_, code))
    assert type(caught.value) is expected
