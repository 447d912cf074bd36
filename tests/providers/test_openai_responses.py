"""The Responses API codec without a network: bodies into canonical requests, canonical answers
and streams into Response objects and event sequences."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest

from breakwater.core.errors import InvalidRequest
from breakwater.core.types import (
    ChatResponse,
    Choice,
    FinishEvent,
    ImagePart,
    Message,
    PassthroughChunk,
    ResponseFormat,
    StreamStart,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
    UsageEvent,
)
from breakwater.providers.openai_responses_request import decode_responses_request, with_history
from breakwater.providers.openai_responses_serve import StreamEncoder, encode_response
from tests.providers.helpers import sse_data


def _ids() -> Any:
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}{next(counter)}"


def test_string_input_and_instructions() -> None:
    """A string input is one user message; instructions come first, as the system message."""
    decoded = decode_responses_request({"model": "m", "input": "hi", "instructions": "Be brief."})
    assert decoded.chat.messages == [Message("system", [TextPart("Be brief.")]), Message("user", [TextPart("hi")])]
    assert decoded.store is True and decoded.previous_response_id is None


def test_items_become_messages() -> None:
    """Message items with parts, a run of function calls after assistant text (one assistant message)
    and function call outputs (tool messages) keep their order."""
    decoded = decode_responses_request(
        {
            "model": "m",
            "input": [
                {"role": "developer", "content": "rules"},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "look"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "low"},
                    ],
                },
                {"role": "assistant", "content": [{"type": "output_text", "text": "calling"}]},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a":1}'},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": ""},
                {"type": "function_call_output", "call_id": "c1", "output": "one"},
                {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]},
            ],
        }
    )
    assert decoded.chat.messages == [
        Message("developer", [TextPart("rules")]),
        Message("user", [TextPart("look"), ImagePart("data:image/png;base64,AA", "low")]),
        Message("assistant", [TextPart("calling")], [ToolCall("c1", "f", '{"a":1}'), ToolCall("c2", "g", "{}")]),
        Message("tool", [TextPart("one")], tool_call_id="c1"),
        Message("tool", [TextPart("two")], tool_call_id="c2"),
    ]


def test_parameters_map_to_the_canonical_request() -> None:
    """Function tools, tool_choice, text.format, max_output_tokens and the sampling fields map over;
    unmodelled fields become extra parameters, the harmless ones marked as hints."""
    decoded = decode_responses_request(
        {
            "model": "m",
            "input": "hi",
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}],
            "tool_choice": {"type": "function", "name": "f"},
            "text": {"format": {"type": "json_schema", "name": "s", "schema": {"type": "object"}}, "verbosity": "low"},
            "max_output_tokens": 9,
            "temperature": 0.5,
            "top_p": 0.9,
            "parallel_tool_calls": False,
            "user": "u",
            "metadata": {"k": "v"},
            "store": False,
            "truncation": "auto",
            "reasoning": {"effort": "low"},
            "stream": True,
        }
    )
    chat = decoded.chat
    assert [t.name for t in chat.tools] == ["f"] and chat.tools[0].strict is True
    assert chat.tool_choice == ToolChoice("named", "f")
    assert chat.response_format == ResponseFormat("json_schema", {"type": "object"}, "s", None)
    assert (chat.max_tokens, chat.temperature, chat.top_p, chat.parallel_tool_calls) == (9, 0.5, 0.9, False)
    assert (chat.user, chat.metadata, chat.stream, chat.raw) == ("u", {"k": "v"}, True, None)
    assert decoded.store is False
    assert chat.extra_params == ["text.verbosity", "truncation", "reasoning"]
    assert chat.responses is not None and chat.responses.hints == {"truncation"}


def test_unknown_content_parts_are_extra_parameters() -> None:
    """A content part type the gateway cannot carry is named in extra_params (the route decides)."""
    decoded = decode_responses_request(
        {"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}
    )
    assert decoded.chat.extra_params == ["input[0].content[0].type=input_file"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "hi", "tools": [{"type": 7}]}, "tools[0].type"),
        ({"input": "hi", "background": True}, "background"),
        ({"input": "hi", "conversation": "conv_1"}, "conversation"),
        ({"input": [{"type": 7}]}, "input[0].type"),
        ({"input": "hi", "tool_choice": {"type": None}}, "tool_choice.type"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "function_call", "call_id": "c", "name": "f"}]}, "input[0].arguments"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": 1}]}, "input[0].output"),
        ({"input": "hi", "tool_choice": "required"}, "tool_choice"),
        ({"input": "hi", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"input": "hi", "instructions": [{"role": "system", "content": "x"}]}, "instructions"),
        ({"input": []}, "input"),
        ({"input": "hi", "model": ""}, "model"),
    ],
)
def test_refused_bodies(body: dict[str, Any], param: str) -> None:
    """What the gateway cannot take is an InvalidRequest naming the field."""
    with pytest.raises(InvalidRequest) as info:
        decode_responses_request({"model": "m", **body})
    assert info.value.param == param


def test_refused_fields_left_at_their_neutral_value_pass() -> None:
    """``background: false`` and an empty ``include`` ask for nothing the gateway cannot do."""
    decoded = decode_responses_request({"model": "m", "input": "hi", "background": False, "include": []})
    assert decoded.chat.extra_params == []


def test_history_comes_before_the_input_and_after_the_instructions() -> None:
    """A stored conversation goes between this request's instructions and its input."""
    decoded = decode_responses_request(
        {"model": "m", "input": "again", "instructions": "now", "previous_response_id": "resp_1"}
    )
    with_history(decoded, [{"type": "message", "role": "user", "content": "first"}])
    assert [m.text() for m in decoded.chat.messages] == ["now", "first", "again"]
    assert decoded.previous_response_id == "resp_1"


def _answer(**choice: Any) -> ChatResponse:
    message = Message("assistant", [TextPart(choice.pop("text"))] if "text" in choice else [], choice.pop("calls", []))
    return ChatResponse("x", "up-model", 1, [Choice(0, message, **choice)], Usage(10, 5, 2, 1, 3))


def test_encode_text_and_calls() -> None:
    """Text then tool calls: a message item, then function_call items with their call ids; usage details."""
    decoded = decode_responses_request({"model": "m", "input": "hi"})
    body = encode_response(
        _answer(text="ok", calls=[ToolCall("call_1", "f", "{}")], finish_reason="tool_calls"),
        decoded,
        "resp_1",
        7,
        _ids(),
    )
    assert body["id"] == "resp_1" and body["created_at"] == 7 and body["model"] == "up-model"
    assert body["status"] == "completed" and body["incomplete_details"] is None
    assert [o["type"] for o in body["output"]] == ["message", "function_call"]
    assert body["output"][0]["content"][0] == {"type": "output_text", "text": "ok", "annotations": [], "logprobs": []}
    assert body["output"][1] | {"id": None} == {
        "id": None, "type": "function_call", "status": "completed", "call_id": "call_1", "name": "f", "arguments": "{}",
    }  # fmt: skip
    assert body["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 1},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 3},
        "total_tokens": 15,
    }


def test_encode_refusal_and_length() -> None:
    """A refusal is a refusal part; an answer cut at the length limit is incomplete (max_output_tokens)."""
    decoded = decode_responses_request({"model": "m", "input": "hi"})
    refused = encode_response(_answer(refusal="no", finish_reason="stop"), decoded, "r", 1, _ids())
    assert refused["output"][0]["content"] == [{"type": "refusal", "refusal": "no"}]
    cut = encode_response(_answer(text="partial", finish_reason="length"), decoded, "r", 1, _ids())
    assert cut["status"] == "incomplete" and cut["incomplete_details"] == {"reason": "max_output_tokens"}
    assert cut["output"][0]["status"] == "incomplete"


def _events(encoder: StreamEncoder, *batches: Any, error: bool = False) -> list[dict[str, Any]]:
    out = b"".join(encoder.encode(e) for e in batches)
    out += encoder.error("upstream cut", "api_error", None) if error else encoder.end()
    return [orjson.loads(d) for d in sse_data(out)]


def test_stream_text_then_parallel_calls() -> None:
    """Text, then two calls whose argument pieces interleave: each item has its own output index,
    the message is closed before the first call opens, and completed holds every item."""
    decoded = decode_responses_request({"model": "m", "input": "hi", "stream": True})
    encoder = StreamEncoder(decoded, "resp_1", 1, _ids())
    events = _events(
        encoder,
        StreamStart("x", "up-model", 1),
        TextDelta("He"),
        TextDelta("llo"),
        ToolCallDelta(0, "", "call_a", "f"),
        ToolCallDelta(1, '{"b"', "call_b", "g"),
        ToolCallDelta(0, '{"a":1}'),
        ToolCallDelta(1, ":2}"),
        FinishEvent("tool_calls"),
        UsageEvent(Usage(3, 4)),
    )
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[0]["response"]["model"] == "up-model" and "usage" not in events[0]["response"]
    done = events[-1]["response"]
    assert [(o["type"], o.get("arguments")) for o in done["output"]] == [
        ("message", None),
        ("function_call", '{"a":1}'),
        ("function_call", '{"b":2}'),
    ]
    assert done["output"][0]["content"][0]["text"] == "Hello"
    assert done["usage"]["total_tokens"] == 7
    assert encoder.response == done


def test_stream_of_forwarded_chunks() -> None:
    """OpenAI chunks replayed as they were (a cached stream) are read into the same events."""
    decoded = decode_responses_request({"model": "m", "input": "hi", "stream": True})
    chunk = {"id": "c", "model": "mm", "created": 1, "choices": [{"index": 0, "delta": {"content": "hey"}}]}
    finish = {"id": "c", "model": "mm", "created": 1, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
    encoder = StreamEncoder(decoded, "resp_1", 1, _ids())
    events = _events(
        encoder, PassthroughChunk(orjson.dumps(chunk)), PassthroughChunk(orjson.dumps(finish), Usage(1, 1), ["length"])
    )
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == ["hey"]
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_stream_failure_before_any_event() -> None:
    """A stream failing at once still opens (created, in_progress), then error and response.failed;
    nothing is kept."""
    decoded = decode_responses_request({"model": "m", "input": "hi", "stream": True})
    encoder = StreamEncoder(decoded, "resp_1", 1, _ids())
    events = _events(encoder, error=True)
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "error", "response.failed"]
    assert events[2]["message"] == "upstream cut" and events[2]["code"] == "api_error"
    assert events[3]["response"]["status"] == "failed"
    assert events[3]["response"]["error"] == {"code": "server_error", "message": "upstream cut"}
    assert encoder.response is None


def test_history_is_checked_again() -> None:
    """A content part of a stored turn the gateway cannot carry is named again when it is continued,
    so a route that dropped it says so on every turn (and a strict route refuses)."""
    decoded = decode_responses_request({"model": "m", "input": "again", "previous_response_id": "resp_1"})
    with_history(decoded, [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}])
    assert decoded.chat.extra_params == ["previous_response.items[0].content[0].type=input_file"]
