"""One conformance suite, run against every adapter, on recorded wire samples, both directions.

Client side: each wire's recorded responses, streams and error bodies parse to the canonical
values in its ``cases.yaml`` (``samples/<wire>/``; Vertex's under ``tests/data/vertex/``). Server side: what each wire's serve module writes, the same wire's
adapter reads back unchanged (responses, streams, requests), so the two halves cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from breakwater.core import errors
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    Choice,
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
from breakwater.infra.mock.vertex import VertexAnthropicWire
from breakwater.providers import (
    anthropic_serve,
    anthropic_serve_request,
    bedrock_serve,
    gemini_serve,
    gemini_serve_request,
    openai_serve,
)
from breakwater.providers.base import Adapter, Target
from breakwater.providers.registry import adapter_for

from .helpers import feed_in_pieces

SAMPLES = Path(__file__).parent / "samples"
VERTEX_SAMPLES = Path(__file__).parent.parent / "data" / "vertex"


@dataclass(frozen=True)
class Wire:
    name: str
    adapter: Adapter
    decode: Callable[[Any, ChatRequest], ChatRequest]
    encode: Callable[[ChatResponse], bytes]
    encoder: Callable[[ChatRequest], Any]
    #: the folder of its recorded samples and their cases.yaml (default: ``samples/<name>``)
    samples: Path | None = None

    @property
    def folder(self) -> Path:
        return self.samples or SAMPLES / self.name


WIRES = [
    Wire(
        "openai",
        adapter_for("openai"),
        lambda body, _r: openai_serve.decode_chat_request(body),
        openai_serve.encode_chat_response,
        openai_serve.StreamEncoder,
    ),
    Wire(
        "anthropic",
        adapter_for("anthropic"),
        lambda body, _r: anthropic_serve_request.decode_chat_request(body),
        anthropic_serve.encode_chat_response,
        anthropic_serve.StreamEncoder,
    ),
    Wire(
        "gemini",
        adapter_for("gemini"),
        lambda body, r: gemini_serve_request.decode_chat_request(body, r.model, r.stream),
        gemini_serve.encode_chat_response,
        gemini_serve.StreamEncoder,
    ),
    # Vertex AI: each publisher's wire at Vertex's URLs; the mock's Vertex Claude decoder insists
    # on its body (no model, an anthropic_version)
    Wire(
        "vertex-gemini",
        adapter_for("vertex-gemini"),
        lambda body, r: gemini_serve_request.decode_chat_request(body, r.model, r.stream),
        gemini_serve.encode_chat_response,
        gemini_serve.StreamEncoder,
        VERTEX_SAMPLES / "gemini",
    ),
    Wire(
        "vertex-anthropic",
        adapter_for("vertex-anthropic"),
        lambda body, r: VertexAnthropicWire().decode_chat(body, r.model, r.stream),
        anthropic_serve.encode_chat_response,
        anthropic_serve.StreamEncoder,
        VERTEX_SAMPLES / "anthropic",
    ),
    Wire(
        "bedrock",
        adapter_for("bedrock"),
        lambda body, r: bedrock_serve.decode_chat_request(body, r.model, r.stream),
        bedrock_serve.encode_chat_response,
        bedrock_serve.StreamEncoder,
    ),
]
TARGET = Target(provider="p", model="m-1", base_url="http://upstream.test", api_key="k")


def _cases(wire: str, kind: str) -> list[tuple[str, dict[str, Any]]]:
    data = yaml.safe_load((_wire(wire).folder / "cases.yaml").read_text())
    return [(wire, case) for case in data.get(kind, [])]


def _all(kind: str) -> list[Any]:
    return [pytest.param(w, c, id=f"{w}-{c['file']}") for wire in WIRES for w, c in _cases(wire.name, kind)]


def _wire(name: str) -> Wire:
    return next(w for w in WIRES if w.name == name)


def _usage(data: dict[str, int]) -> Usage:
    return Usage(**data)


@dataclass
class Collected:
    text: str
    finish: str | None
    usage: Usage | None
    tool_calls: list[tuple[str, Any]]
    ids: list[str | None]


def collect(events: list[StreamEvent]) -> Collected:
    text = ""
    finish = None
    usage = None
    calls: dict[int, list[Any]] = {}
    for ev in events:
        if isinstance(ev, TextDelta) and ev.index == 0:
            text += ev.text
        elif isinstance(ev, ToolCallDelta) and ev.index == 0:
            slot = calls.setdefault(ev.tool_index, [None, None, ""])
            slot[0] = ev.id or slot[0]
            slot[1] = ev.name or slot[1]
            slot[2] += ev.arguments
        elif isinstance(ev, FinishEvent) and ev.index == 0:
            finish = ev.reason
        elif isinstance(ev, UsageEvent):
            usage = ev.usage
    ordered = [calls[i] for i in sorted(calls)]
    return Collected(
        text, finish, usage, [(c[1], orjson.loads(c[2] or "{}")) for c in ordered], [c[0] for c in ordered]
    )


def parse_in_pieces(wire: Wire, request: ChatRequest, raw: bytes) -> list[StreamEvent]:
    return feed_in_pieces(wire.adapter.stream_parser(request, TARGET), raw, most=40)


# --- client side: recorded samples -> canonical ------------------------------------------------


@pytest.mark.parametrize(("wire", "case"), _all("responses"))
def test_recorded_response_parses_to_canonical(wire: str, case: dict[str, Any]) -> None:
    """A recorded non-streaming response yields the documented text, tool calls, finish and usage."""
    w = _wire(wire)
    response = w.adapter.chat_response((_wire(wire).folder / case["file"]).read_bytes(), TARGET)
    choice = response.choices[0]
    assert choice.message.text() == case["text"]
    assert choice.finish_reason == case["finish_reason"]
    assert response.usage == _usage(case["usage"])
    assert [(c.name, orjson.loads(c.arguments)) for c in choice.message.tool_calls] == [
        (t["name"], t["arguments"]) for t in case.get("tool_calls", [])
    ]
    assert all(c.id for c in choice.message.tool_calls)


@pytest.mark.parametrize(("wire", "case"), _all("streams"))
def test_recorded_stream_parses_to_canonical(wire: str, case: dict[str, Any]) -> None:
    """A recorded stream, fed in random-sized pieces, yields the documented text, tool calls, finish and usage."""
    w = _wire(wire)
    request = ChatRequest(model="m-1", messages=[Message("user", [TextPart("hi")])], stream=True)
    got = collect(parse_in_pieces(w, request, (_wire(wire).folder / case["file"]).read_bytes()))
    assert got.text == case["text"]
    assert got.finish == case["finish_reason"]
    assert got.usage == _usage(case["usage"])
    assert got.tool_calls == [(t["name"], t["arguments"]) for t in case.get("tool_calls", [])]


@pytest.mark.parametrize(("wire", "case"), _all("errors"))
def test_recorded_error_maps_to_error_tree(wire: str, case: dict[str, Any]) -> None:
    """A recorded vendor error body maps to the documented error class, status and retry-after."""
    w = _wire(wire)
    body = (_wire(wire).folder / case["file"]).read_bytes()
    err = w.adapter.map_error(case["status"], case.get("headers", {}), body, TARGET)
    assert type(err) is getattr(errors, case["error"])
    assert err.upstream_status == case["status"]
    assert err.provider == "p"
    assert err.retryable == type(err).retryable
    if "retry_after" in case:
        assert err.retry_after == pytest.approx(case["retry_after"])
    # the raw upstream body never becomes the error message whole
    assert body.decode() not in err.message


@pytest.mark.parametrize("wire", [w.name for w in WIRES])
def test_truncated_stream_is_malformed(wire: str) -> None:
    """A stream that ends before its end marker raises MalformedResponse instead of looking finished."""
    w = _wire(wire)
    request = ChatRequest(model="m-1", messages=[Message("user", [TextPart("hi")])], stream=True)
    raw = (w.folder / _cases(wire, "streams")[0][1]["file"]).read_bytes()
    cut = raw[: len(raw) // 2]
    with pytest.raises(errors.MalformedResponse):
        parse_in_pieces(w, request, cut)


@pytest.mark.parametrize("wire", [w.name for w in WIRES])
def test_garbage_body_is_malformed(wire: str) -> None:
    """An upstream 200 whose body is not the wire's JSON raises MalformedResponse, never a KeyError."""
    w = _wire(wire)
    for body in (b"<html>oops</html>", b"[]", b'{"unexpected": true}'):
        with pytest.raises(errors.MalformedResponse):
            w.adapter.chat_response(body, TARGET)


# --- both directions: serve side -> client side ------------------------------------------------


def _rich_response() -> ChatResponse:
    return ChatResponse(
        id="resp-1",
        model="m-1",
        created=1700000000,
        choices=[
            Choice(
                0,
                Message(
                    "assistant",
                    [TextPart("Checking the weather.")],
                    [ToolCall("call_a", "get_weather", '{"city":"Paris"}')],
                ),
                "tool_calls",
            )
        ],
        usage=Usage(input_tokens=1500, output_tokens=42, cached_input_tokens=1024),
    )


@pytest.mark.parametrize("wire", [w.name for w in WIRES])
def test_response_round_trip(wire: str) -> None:
    """A response the serve side writes is read back by the same wire's adapter with nothing lost."""
    w = _wire(wire)
    original = _rich_response()
    parsed = w.adapter.chat_response(w.encode(original), TARGET)
    choice = parsed.choices[0]
    assert choice.message.text() == "Checking the weather."
    assert [(c.name, orjson.loads(c.arguments)) for c in choice.message.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert choice.finish_reason == "tool_calls"
    assert parsed.usage is not None
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens, parsed.usage.cached_input_tokens) == (1500, 42, 1024)


@pytest.mark.parametrize("wire", [w.name for w in WIRES])
def test_stream_round_trip(wire: str) -> None:
    """A stream the serve side writes is read back by the same wire's adapter: text, tool call, finish, usage."""
    w = _wire(wire)
    request = ChatRequest(model="m-1", messages=[Message("user", [TextPart("hi")])], stream=True, include_usage=True)
    events: list[StreamEvent] = [
        StreamStart("s-1", "m-1", 1700000000),
        TextDelta("Hello"),
        TextDelta(", world"),
        ToolCallDelta(0, "", id="call_z", name="lookup"),
        ToolCallDelta(0, '{"q": '),
        ToolCallDelta(0, '"tides"}'),
        FinishEvent("tool_calls"),
        UsageEvent(Usage(input_tokens=300, output_tokens=12, cached_input_tokens=256)),
    ]
    encoder = w.encoder(request)
    raw = b"".join(encoder.encode(e) for e in events) + encoder.end()
    got = collect(parse_in_pieces(w, request, raw))
    assert got.text == "Hello, world"
    assert got.tool_calls == [("lookup", {"q": "tides"})]
    assert got.finish == "tool_calls"
    assert got.usage is not None
    assert (got.usage.input_tokens, got.usage.output_tokens, got.usage.cached_input_tokens) == (300, 12, 256)


def _rich_request(stream: bool) -> ChatRequest:
    return ChatRequest(
        model="m-1",
        stream=stream,
        messages=[
            Message("system", [TextPart("Be brief.")]),
            Message("user", [TextPart("Weather in Paris?"), ImagePart("data:image/png;base64,iVBORw0KGgo=")]),
            Message("assistant", [], [ToolCall("call_1", "get_weather", '{"city":"Paris"}')]),
            Message("tool", [TextPart('{"temp_c": 21}')], tool_call_id="call_1"),
            Message("user", [TextPart("And tomorrow?")]),
        ],
        max_tokens=256,
        temperature=0.5,
        stop=["END"],
        tools=[Tool("get_weather", "Weather by city", {"type": "object", "properties": {"city": {"type": "string"}}})],
        tool_choice=ToolChoice("named", "get_weather"),
    )


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("wire", [w.name for w in WIRES])
def test_request_round_trip(wire: str, stream: bool) -> None:
    """A request the adapter writes is read back by the same wire's serve side with the same meaning."""
    w = _wire(wire)
    original = _rich_request(stream)
    http = w.adapter.chat_request(original, TARGET)
    assert http.method == "POST"
    assert http.stream is stream
    decoded = w.decode(orjson.loads(http.body), original)
    system = [m for m in decoded.messages if m.role in ("system", "developer")]
    assert [m.text() for m in system] == ["Be brief."]
    convo = [m for m in decoded.messages if m.role not in ("system", "developer")]
    assert convo[0].role == "user"
    assert convo[0].text() == "Weather in Paris?"
    assert any(isinstance(p, ImagePart) and "iVBORw0KGgo=" in p.url for p in convo[0].content)
    calls = [c for m in convo for c in m.tool_calls]
    assert [(c.name, orjson.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Paris"})]
    results = [m for m in convo if m.role == "tool"]
    assert len(results) == 1
    assert orjson.loads(results[0].text()) == {"temp_c": 21}
    assert convo[-1].text() == "And tomorrow?"
    assert decoded.max_tokens == 256
    assert decoded.temperature == 0.5
    assert decoded.stop == ["END"]
    assert [t.name for t in decoded.tools] == ["get_weather"]
    assert decoded.tools[0].parameters["properties"] == {"city": {"type": "string"}}
    assert decoded.tool_choice is not None
    assert (decoded.tool_choice.mode, decoded.tool_choice.name) == ("named", "get_weather")
    assert decoded.stream is stream


@pytest.mark.parametrize("wire", ["openai", "gemini", "vertex-gemini"])
def test_json_schema_request_round_trip(wire: str) -> None:
    """A json_schema response format survives the adapter and the serve side of wires that support it."""
    w = _wire(wire)
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    original = ChatRequest(
        model="m-1",
        messages=[Message("user", [TextPart("x")])],
        response_format=ResponseFormat("json_schema", schema=schema, name="thing"),
    )
    decoded = w.decode(orjson.loads(w.adapter.chat_request(original, TARGET).body), original)
    assert decoded.response_format is not None
    assert decoded.response_format.type == "json_schema"
    assert decoded.response_format.schema == schema
