"""``MockModel``: deterministic answers that behave like a model where a client can tell."""

from __future__ import annotations

import math
from typing import Any

import jsonschema
import orjson
import pytest

from breakwater.core.errors import InvalidRequest
from breakwater.core.types import (
    ChatRequest,
    EmbeddingRequest,
    FinishEvent,
    Message,
    ResponseFormat,
    StreamStart,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    UsageEvent,
)
from breakwater.infra.mock.model import MockModel, count_tokens, filtered, input_tokens

WEATHER = Tool(
    "get_weather",
    "Current weather for a city",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
)
TIME = Tool("get_time", None, {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]})


def user(text: str) -> Message:
    return Message("user", [TextPart(text)])


def ask(text: str = "Hello there", **kw: Any) -> ChatRequest:
    return ChatRequest(model="mock-chat", messages=[user(text)], **kw)


@pytest.fixture
def model() -> MockModel:
    return MockModel()


def test_content_is_deterministic(model: MockModel) -> None:
    """The same last user message always gets the same reply; a different one gets another."""
    first = model.chat(ask("What is a breakwater?")).choices[0].message.text()
    assert first == model.chat(ask("What is a breakwater?")).choices[0].message.text()
    assert first != model.chat(ask("What is a harbour?")).choices[0].message.text()
    assert first.endswith(".") and first[0].isupper()


def test_seed_changes_content(model: MockModel) -> None:
    """A request seed is mixed into the hash, so seeds give different (but repeatable) replies."""
    a = model.chat(ask("same", seed=1)).choices[0].message.text()
    assert a == model.chat(ask("same", seed=1)).choices[0].message.text()
    assert a != model.chat(ask("same", seed=2)).choices[0].message.text()


def test_token_counting_rule(model: MockModel) -> None:
    """Prompt tokens are 3 + per message (4 + its tokens); completion tokens are the reply's tokens."""
    request = ChatRequest(model="m", messages=[Message("system", [TextPart("You are terse.")]), user("Hi there!")])
    response = model.chat(request)
    assert count_tokens("You are terse.") == 4
    assert count_tokens("Hi there!") == 3
    assert response.usage is not None
    assert response.usage.input_tokens == 3 + (4 + 4) + (4 + 3)
    assert response.usage.output_tokens == count_tokens(response.choices[0].message.text())


def test_tools_and_schemas_count_as_prompt_tokens() -> None:
    """Offered tools and a response schema add their tokens to the prompt."""
    plain = input_tokens(ask("x"))
    assert input_tokens(ask("x", tools=[WEATHER])) > plain
    rf = ResponseFormat("json_schema", schema={"type": "object"})
    assert input_tokens(ask("x", response_format=rf)) == plain + count_tokens('{"type":"object"}')


@pytest.mark.parametrize(
    "choice", [ToolChoice("required"), ToolChoice("named", "get_weather"), ToolChoice("auto"), None]
)
def test_tool_call_arguments_validate(model: MockModel, choice: ToolChoice | None) -> None:
    """A tool call's arguments are JSON that validates against the tool's parameters schema."""
    response = model.chat(ask("Please call get_weather for Paris", tools=[WEATHER], tool_choice=choice))
    c = response.choices[0]
    assert c.finish_reason == "tool_calls"
    assert c.message.text() == ""
    [call] = c.message.tool_calls
    assert call.name == "get_weather"
    assert call.id.startswith("call_")
    jsonschema.validate(orjson.loads(call.arguments), WEATHER.parameters)


def test_auto_answers_text_without_a_mention(model: MockModel) -> None:
    """With tool_choice auto, a message that names no tool gets a text answer."""
    c = model.chat(ask("Tell me a story", tools=[WEATHER], tool_choice=ToolChoice("auto"))).choices[0]
    assert c.finish_reason == "stop" and not c.message.tool_calls and c.message.text()


def test_required_calls_first_tool_without_a_mention(model: MockModel) -> None:
    """With tool_choice required and no tool named, the first tool is called."""
    c = model.chat(ask("Tell me a story", tools=[TIME, WEATHER], tool_choice=ToolChoice("required"))).choices[0]
    assert [t.name for t in c.message.tool_calls] == ["get_time"]


def test_none_never_calls(model: MockModel) -> None:
    """tool_choice none answers in text even when a tool is named."""
    c = model.chat(ask("call get_weather", tools=[WEATHER], tool_choice=ToolChoice("none"))).choices[0]
    assert not c.message.tool_calls


def test_tool_result_gets_a_text_answer(model: MockModel) -> None:
    """After a tool result comes back, auto answers in text, so agent loops end."""
    messages = [
        user("call get_weather"),
        Message("assistant", tool_calls=[ToolCall("call_1", "get_weather", '{"city":"Paris"}')]),
        Message("tool", [TextPart('{"temp": 21}')], tool_call_id="call_1"),
    ]
    c = model.chat(ChatRequest(model="m", messages=messages, tools=[WEATHER])).choices[0]
    assert c.finish_reason == "stop" and c.message.text()


def test_parallel_calls_and_their_opt_out(model: MockModel) -> None:
    """Every tool the message names is called, unless parallel_tool_calls is false."""
    both = model.chat(ask("use get_weather and get_time", tools=[WEATHER, TIME])).choices[0]
    assert [t.name for t in both.message.tool_calls] == ["get_weather", "get_time"]
    assert len({t.id for t in both.message.tool_calls}) == 2
    one = model.chat(ask("use get_weather and get_time", tools=[WEATHER, TIME], parallel_tool_calls=False))
    assert [t.name for t in one.choices[0].message.tool_calls] == ["get_weather"]


def test_unknown_named_tool_is_invalid(model: MockModel) -> None:
    """Naming a tool that was not offered is the client's error (a 400), as with OpenAI."""
    with pytest.raises(InvalidRequest, match="get_stock"):
        model.chat(ask("x", tools=[WEATHER], tool_choice=ToolChoice("named", "get_stock")))


def test_json_schema_output_validates(model: MockModel) -> None:
    """With a json_schema response format, the content is JSON valid against the schema."""
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["title", "tags"],
        "additionalProperties": False,
    }
    c = model.chat(ask("x", response_format=ResponseFormat("json_schema", schema=schema))).choices[0]
    jsonschema.validate(orjson.loads(c.message.text()), schema)


def test_json_object_output(model: MockModel) -> None:
    """With json_object, the content is a JSON object."""
    c = model.chat(ask("x", response_format=ResponseFormat("json_object"))).choices[0]
    assert isinstance(orjson.loads(c.message.text()), dict)


def test_max_tokens_truncates(model: MockModel) -> None:
    """max_tokens cuts the reply at a token boundary and finishes with 'length'."""
    response = model.chat(ask("x", max_tokens=5))
    c = response.choices[0]
    assert c.finish_reason == "length"
    assert count_tokens(c.message.text()) == 5
    assert response.usage is not None and response.usage.output_tokens == 5
    assert model.chat(ask("x")).choices[0].message.text().startswith(c.message.text())


def test_max_tokens_truncates_tool_arguments(model: MockModel) -> None:
    """A tool call longer than max_tokens is cut too, finishing with 'length' like a real model."""
    c = model.chat(ask("x", tools=[WEATHER], tool_choice=ToolChoice("required"), max_tokens=4)).choices[0]
    assert c.finish_reason == "length"
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(c.message.tool_calls[0].arguments)


def test_stop_sequence_cuts_before_it(model: MockModel) -> None:
    """The reply ends right before the first stop sequence found, with finish 'stop'."""
    full = model.chat(ask("x")).choices[0].message.text()
    word = full.split()[3]
    c = model.chat(ask("x", stop=["zzz-not-there", word])).choices[0]
    assert c.finish_reason == "stop"
    assert c.message.text() == full[: full.index(word)]
    assert c.stop_sequence == word
    finish = [e for e in model.stream(ask("x", stop=[word])) if isinstance(e, FinishEvent)]
    assert finish == [FinishEvent("stop", 0, word)]


def test_an_answer_cut_by_max_tokens_names_no_stop_sequence(model: MockModel) -> None:
    """When max_tokens ends the answer first, no stop sequence is reported."""
    full = model.chat(ask("x")).choices[0].message.text()
    c = model.chat(ask("x", stop=[full.split()[8]], max_tokens=3)).choices[0]
    assert (c.finish_reason, c.stop_sequence) == ("length", None)


def test_logprobs_cover_the_text(model: MockModel) -> None:
    """With logprobs, each token of the text has one entry (tokens join to the text), a log
    probability below 0, its UTF-8 bytes, and top_logprobs alternatives led by itself."""
    c = model.chat(ask("x", logprobs=True, top_logprobs=4)).choices[0]
    content = c.logprobs["content"]
    assert "".join(e["token"] for e in content) == c.message.text()
    assert len(content) == count_tokens(c.message.text())
    for e in content:
        assert -2 <= e["logprob"] < 0 and bytes(e["bytes"]) == e["token"].encode()
        assert len(e["top_logprobs"]) == 4 and e["top_logprobs"][0]["token"] == e["token"]
        assert [t["logprob"] for t in e["top_logprobs"]] == sorted(
            (t["logprob"] for t in e["top_logprobs"]), reverse=True
        )
    assert model.chat(ask("x", logprobs=True, top_logprobs=4)).choices[0].logprobs == c.logprobs
    assert model.chat(ask("x")).choices[0].logprobs is None


def test_streamed_pieces_carry_their_logprobs(model: MockModel) -> None:
    """Each streamed text piece carries the entries of exactly its tokens."""
    request = ask("x", logprobs=True, top_logprobs=0)
    entries = model.chat(request).choices[0].logprobs["content"]
    deltas = [e for e in model.stream(request) if isinstance(e, TextDelta)]
    assert all("".join(x["token"] for x in d.logprobs or ()) == d.text for d in deltas)
    assert [x for d in deltas for x in d.logprobs or ()] == entries


def test_n_choices(model: MockModel) -> None:
    """n > 1 gives n differing choices, indexed, with usage summed over them."""
    response = model.chat(ask("x", n=3))
    texts = [c.message.text() for c in response.choices]
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert len(set(texts)) == 3
    assert response.usage is not None
    assert response.usage.output_tokens == sum(count_tokens(t) for t in texts)


def test_stream_events_match_the_response(model: MockModel) -> None:
    """The stream is StreamStart, text pieces of a few tokens that join to the reply, Finish, Usage."""
    request = ask("x")
    events = model.stream(request, response_id="r1", created=5)
    assert events[0] == StreamStart("r1", "mock-chat", 5)
    pieces = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(pieces) > 2 and all(1 <= count_tokens(p) <= 3 for p in pieces)
    assert "".join(pieces) == model.chat(request).choices[0].message.text()
    assert isinstance(events[-2], FinishEvent) and events[-2].reason == "stop"
    assert isinstance(events[-1], UsageEvent)


def test_stream_tool_call_pieces(model: MockModel) -> None:
    """A streamed tool call starts with its id and name, then argument pieces that join to valid JSON."""
    events = model.stream(ask("x", tools=[WEATHER], tool_choice=ToolChoice("required")))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert deltas[0].id and deltas[0].name == "get_weather" and deltas[0].arguments == ""
    assert all(d.id is None and d.name is None for d in deltas[1:])
    jsonschema.validate(orjson.loads("".join(d.arguments for d in deltas)), WEATHER.parameters)


def test_content_filter_keeps_a_prefix(model: MockModel) -> None:
    """A filtered response keeps a few tokens and finishes with content_filter."""
    response = filtered(model.chat(ask("x")))
    c = response.choices[0]
    assert c.finish_reason == "content_filter"
    assert count_tokens(c.message.text()) == 3
    assert response.usage is not None and response.usage.output_tokens == 3


def test_embeddings_dimension_and_norm(model: MockModel) -> None:
    """Embeddings default to 1536 dimensions, honour a requested size, and are unit length."""
    response = model.embed(EmbeddingRequest(model="e", inputs=["alpha", "beta"]))
    assert [len(v) for v in response.vectors] == [1536, 1536]
    small = model.embed(EmbeddingRequest(model="e", inputs=["alpha"], dimensions=64)).vectors[0]
    assert len(small) == 64
    for v in [*response.vectors, small]:
        assert math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-9)
    assert response.usage.input_tokens == 2


def test_token_id_inputs_are_embedded(model: MockModel) -> None:
    """Token-id inputs embed deterministically, one prompt token per id."""
    ids = [[15339, 1917], [15339]]
    response = model.embed(EmbeddingRequest(model="e", inputs=[], token_inputs=ids, dimensions=8))
    assert len(response.vectors) == 2 and response.vectors[0] != response.vectors[1]
    assert response.usage.input_tokens == 3
    again = model.embed(EmbeddingRequest(model="e", inputs=[], token_inputs=ids[:1], dimensions=8))
    assert again.vectors[0] == response.vectors[0]


def test_embeddings_are_deterministic(model: MockModel) -> None:
    """The same text always maps to the same vector; different texts to different vectors."""
    a = model.embed(EmbeddingRequest(model="e", inputs=["alpha", "alpha", "gamma"])).vectors
    assert a[0] == a[1] != a[2]
    assert a[0] == MockModel().embed(EmbeddingRequest(model="other", inputs=["alpha"])).vectors[0]


def test_tools_without_any_message_answer_without_a_500(model: MockModel) -> None:
    """Tools offered with no message at all (a mutated Gemini body the fuzz test found) still get
    an answer: nothing mentions a tool, so none is called."""
    response = model.chat(ChatRequest(model="m", messages=[], tools=[TIME]))
    assert response.choices and not response.choices[0].message.tool_calls
