"""A Responses request forwarded to an upstream's own ``/responses``: when it is, the body sent,
the answer and the events read back, and the encoder sending them on untouched."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from breakwater.core.config import build_config
from breakwater.core.errors import MalformedResponse, RateLimited, UpstreamError
from breakwater.core.types import Message, PassthroughChunk, TextPart
from breakwater.engine.cache.key import cache_key
from breakwater.infra.clock import ManualClock, SystemRandom
from breakwater.infra.mock.model import MockModel
from breakwater.infra.mock.responses import stream_frames
from breakwater.providers.base import Target
from breakwater.providers.openai import OpenAIAdapter
from breakwater.providers.openai_responses_forward import ResponsesStreamParser, forwarded
from breakwater.providers.openai_responses_request import ResponsesRequest, decode_responses_request, with_history
from breakwater.providers.openai_responses_serve import StreamEncoder
from breakwater.runtime.wiring import Wiring

TARGET = Target(provider="openai", model="gpt-up", base_url="https://up.example/v1", api_key="k", responses_api=True)
SEARCH = {"type": "web_search"}


def _decoded(**body: Any) -> ResponsesRequest:
    return decode_responses_request({"model": "m", "input": "Hello there", **body})


def _ids() -> Any:
    counter = iter(range(1000))
    return lambda prefix: f"{prefix}{next(counter)}"


def test_the_body_is_kept_and_openai_only_features_are_extra_parameters() -> None:
    """Hosted tools and unmodelled fields are extra parameters (what a translated request is judged
    by), the gateway's own fields are not kept, and the kept body stands for the messages."""
    decoded = _decoded(tools=[SEARCH], include=["x"], breakwater_cache="no-store", previous_response_id="resp_1")
    chat = decoded.chat
    assert chat.extra_params == ["tools[0].type=web_search", "include"]
    assert chat.tools == []
    forward = chat.responses
    assert forward is not None and forward.messages is chat.messages
    assert forward.body == {"model": "m", "input": "Hello there", "tools": [SEARCH], "include": ["x"]}


def test_history_goes_into_the_body_and_openai_records_are_hints() -> None:
    """A stored conversation's items go before the input in the forwarded body; its reasoning and
    hosted-search records are hints (dropped where translated), a client-run call is not."""
    decoded = _decoded()
    history = [
        {"type": "message", "role": "user", "content": "Search tides"},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"type": "computer_call", "id": "cu_1", "call_id": "c"},
    ]
    with_history(decoded, history)
    forward = decoded.chat.responses
    assert forward is not None and forward.messages is decoded.chat.messages
    assert forward.body["input"] == [*history, {"type": "message", "role": "user", "content": "Hello there"}]
    assert forward.hints == {
        "previous_response.items[1].type=reasoning",
        "previous_response.items[2].type=web_search_call",
    }
    assert "previous_response.items[3].type=computer_call" in decoded.chat.extra_params


def test_forwarded_only_to_a_responses_upstream_with_the_conversation_unchanged() -> None:
    chat = _decoded(tools=[SEARCH]).chat
    assert forwarded(chat, TARGET)
    assert not forwarded(chat, dataclasses.replace(TARGET, responses_api=False))
    rewritten = dataclasses.replace(chat, messages=[Message("system", [TextPart("canary")]), *chat.messages])
    assert not forwarded(rewritten, TARGET)  # a stage changed the conversation: translated instead


def test_the_adapter_sends_the_body_to_responses() -> None:
    """The body goes to ``/responses`` with the deployment's model and its extra body; no parameter
    is unsupported (the upstream honours the whole body), and no stream options are added."""
    adapter = OpenAIAdapter()
    chat = _decoded(tools=[SEARCH], reasoning={"effort": "low"}, stream=True).chat
    target = dataclasses.replace(TARGET, extra_body={"service_tier": "flex"})
    assert adapter.unsupported(chat, target) == []
    http = adapter.chat_request(chat, target)
    assert http.url == "https://up.example/v1/responses" and http.stream
    body = orjson.loads(http.body)
    assert body["model"] == "gpt-up" and body["tools"] == [SEARCH] and body["stream"] is True
    assert body["service_tier"] == "flex" and "stream_options" not in body
    translated = dataclasses.replace(target, responses_api=False)
    assert adapter.unsupported(chat, translated) == ["tools[0].type=web_search", "reasoning"]


def test_a_response_object_is_read_and_kept() -> None:
    """A Response object's text, calls, usage and end are read; its bytes are what goes out."""
    data = {
        "id": "resp_up",
        "object": "response",
        "created_at": 1,
        "model": "gpt-up-2026",
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "output": [
            {"type": "web_search_call", "id": "ws", "status": "completed"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Tides rise"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        ],
        "usage": {
            "input_tokens": 10,
            "output_tokens": 4,
            "input_tokens_details": {"cached_tokens": 2},
            "output_tokens_details": {"reasoning_tokens": 1},
        },
    }
    body = orjson.dumps(data)
    answer = OpenAIAdapter().chat_response(body, TARGET)
    assert answer.raw_body == body and answer.raw_kind == "responses"
    choice = answer.choices[0]
    assert choice.message.text() == "Tides rise" and [c.id for c in choice.message.tool_calls] == ["c1"]
    assert choice.finish_reason == "length"
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.cached_input_tokens, answer.usage.reasoning_tokens) == (10, 2, 1)


def test_a_failed_response_is_an_upstream_error() -> None:
    body = orjson.dumps({"object": "response", "status": "failed", "error": {"code": "rate_limit_exceeded"}})
    with pytest.raises(RateLimited):
        OpenAIAdapter().chat_response(body, TARGET)


def _mock_stream(**body: Any) -> bytes:
    decoded = _decoded(stream=True, **body)
    answer = MockModel().chat(decoded.chat)
    frames, end = stream_frames(decoded, answer, "resp_up", 1, _ids())
    return b"".join(frames + end)


def test_a_stream_is_read_event_by_event_and_sent_on_untouched() -> None:
    """Every event is a forwarded chunk with its name; the text deltas, usage and end are read; the
    encoder sends the same bytes on, keeps the last Response, and adds nothing at the end."""
    stream = _mock_stream(tools=[SEARCH])
    parser = ResponsesStreamParser(TARGET)
    chunks = [*parser.feed(stream[:50]), *parser.feed(stream[50:]), *parser.close()]
    assert all(isinstance(c, PassthroughChunk) and c.event for c in chunks)
    last = chunks[-1]
    assert isinstance(last, PassthroughChunk) and last.event == "response.completed"
    assert last.usage is not None and last.finish_reasons == ["stop"]
    done = orjson.loads(last.data)["response"]
    text = "".join(c.text for c in chunks if isinstance(c, PassthroughChunk))
    assert text == done["output"][1]["content"][0]["text"]
    encoder = StreamEncoder(_decoded(), "resp_gateway", 1, _ids())
    assert b"".join(encoder.encode(c) for c in chunks) == stream
    assert encoder.end() == b""
    assert encoder.response == done


def test_an_error_after_forwarded_events_continues_their_numbering() -> None:
    stream = _mock_stream()
    chunks = ResponsesStreamParser(TARGET).feed(stream)[:3]
    encoder = StreamEncoder(_decoded(), "resp_gateway", 1, _ids())
    for chunk in chunks:
        encoder.encode(chunk)
    frames = [f for f in encoder.error("boom", "api_error", None).split(b"\n\n") if f]
    events = [orjson.loads(f.split(b"data: ", 1)[1]) for f in frames]
    assert [(e["type"], e["sequence_number"]) for e in events] == [("error", 3), ("response.failed", 4)]
    assert events[1]["response"]["id"] == "resp_up"


def test_a_cut_or_failing_stream_is_an_error() -> None:
    stream = _mock_stream()
    parser = ResponsesStreamParser(TARGET)
    parser.feed(stream[: stream.index(b"event: response.completed")])
    with pytest.raises(MalformedResponse):
        parser.close()
    failing = b'event: error\ndata: {"type":"error","code":"server_error","message":"x","sequence_number":0}\n\n'
    with pytest.raises(UpstreamError):
        ResponsesStreamParser(TARGET).feed(failing)


def test_hosted_tools_are_part_of_the_cache_key() -> None:
    """Two requests that differ only in a hosted tool's settings are different answers."""
    near = _decoded(tools=[{"type": "web_search", "search_context_size": "low"}]).chat
    far = _decoded(tools=[{"type": "web_search", "search_context_size": "high"}]).chat
    assert cache_key(near, "f", "t") != cache_key(far, "f", "t")
    assert cache_key(near, "f", "t") == cache_key(_decoded(tools=near.responses.body["tools"]).chat, "f", "t")  # type: ignore[union-attr]


def test_openai_itself_forwards_by_default() -> None:
    """Unset, ``responses_api`` is on for OpenAI's own API and off for other OpenAI-wire hosts;
    ``false`` turns it off for OpenAI too."""
    config = build_config(
        {
            "providers": {
                "openai": {"type": "openai", "host": "openai", "api_key": "env:K"},
                "vllm": {"type": "openai", "host": "vllm", "base_url": "http://127.0.0.1:9/v1"},
            },
            "deployments": {
                "own": {"provider": "openai", "model": "gpt-5"},
                "off": {"provider": "openai", "model": "gpt-5", "responses_api": False},
                "local": {"provider": "vllm", "model": "llama"},
                "local-on": {"provider": "vllm", "model": "llama", "responses_api": True},
            },
            "routes": {"r": {"deployments": ["own", "off", "local", "local-on"]}},
        }
    )
    wiring = Wiring(config, {"K": "k"}, sender=None, clock=ManualClock(), rng=SystemRandom(0))  # type: ignore[arg-type]
    deployments = wiring.router().routes["r"].deployments
    assert [d.target.responses_api for d in deployments] == [True, False, False, True]
