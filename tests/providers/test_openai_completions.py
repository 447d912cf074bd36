"""OpenAI's legacy completions and moderations, sans I/O: requests decoded and described, answers and
chunks (samples shaped as OpenAI's API reference shows them) read and written."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from breakwater.core.errors import InvalidRequest
from breakwater.core.types import ChatResponse, Choice, FinishEvent, Message, StreamStart, TextDelta, TextPart, Usage
from breakwater.engine.calls.params import drop_params
from breakwater.providers.base import Target
from breakwater.providers.openai import OpenAIAdapter
from breakwater.providers.openai_completions import chat_entries, legacy_logprobs
from breakwater.providers.openai_completions_serve import (
    CompletionStreamEncoder,
    decode_completion_request,
    encode_completion_response,
)
from breakwater.providers.openai_moderations import decode_moderation_request
from tests.providers.helpers import sse_data

ADAPTER = OpenAIAdapter()
TARGET = Target("openai", "gpt-3.5-turbo-instruct", "https://api.openai.example/v1", api_key="sk-x", host="openai")
DECLARING = Target(
    "openai", "gpt-3.5-turbo-instruct", "https://api.openai.example/v1", api_key="sk-x", host="openai",
    legacy_completions=True,
)  # fmt: skip

#: a completion as OpenAI's API reference shows one
ANSWER = {
    "id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7",
    "object": "text_completion",
    "created": 1589478378,
    "model": "gpt-3.5-turbo-instruct",
    "system_fingerprint": "fp_44709d6fcb",
    "choices": [
        {
            "text": "\n\nThis is",
            "index": 0,
            "logprobs": {
                "tokens": ["\n\n", "This", " is"],
                "token_logprobs": [-0.1, -0.2, -0.3],
                "top_logprobs": [{"\n\n": -0.1, "\n": -2.5}, {"This": -0.2}, {" is": -0.3}],
                "text_offset": [0, 2, 6],
            },
            "finish_reason": "length",
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
}


def _decode(**body: Any) -> Any:
    return decode_completion_request({"model": "instruct", "prompt": "Say this is a test", **body})


def test_a_completion_is_a_chat_request_with_openais_default_max_tokens() -> None:
    """The prompt is one user message; max_tokens defaults to 16; logprobs N asks for N alternatives."""
    request = _decode(logprobs=3, stop="\n", n=2)
    assert [(m.role, m.text()) for m in request.messages] == [("user", "Say this is a test")]
    assert (request.max_tokens, request.stop, request.n) == (16, ["\n"], 2)
    assert (request.logprobs, request.top_logprobs) == (True, 3)
    assert request.raw is None and request.completion is not None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": None}, "prompt"),
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": [[1, 2]]}, "prompt"),
        ({"prompt": {"x": 1}}, "prompt"),
        ({"logprobs": 6}, "logprobs"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stream_options": "yes"}, "stream_options"),
        ({"temperature": "hot"}, "temperature"),
    ],
)
def test_bad_completion_bodies_are_400s_naming_the_field(body: dict[str, Any], param: str) -> None:
    """Whatever is wrong, the decoder names the field."""
    with pytest.raises(InvalidRequest) as caught:
        _decode(**body)
    assert caught.value.param == param


def test_what_chat_cannot_carry_is_listed_as_extra() -> None:
    """echo, suffix, best_of above n and logit_bias are extra parameters; neutral values are not."""
    assert _decode(echo=True, suffix="!", best_of=3, logit_bias={"1": 2}).extra_params == [
        "logit_bias",
        "echo",
        "suffix",
        "best_of",
    ]
    assert _decode(echo=False, suffix="", best_of=1).extra_params == []


def test_mapped_onto_chat_unless_the_deployment_declares_completions() -> None:
    """Without legacy_completions the chat endpoint gets a chat body and the extras are unsupported;
    with it, /completions gets the client's body, model replaced, and nothing is unsupported."""
    request = _decode(echo=True, max_tokens=7)
    chat = ADAPTER.chat_request(request, TARGET)
    assert chat.url.endswith("/chat/completions") and "messages" in orjson.loads(chat.body)
    assert ADAPTER.unsupported(request, TARGET) == ["echo"]
    forwarded = ADAPTER.chat_request(request, DECLARING)
    assert forwarded.url == "https://api.openai.example/v1/completions"
    assert orjson.loads(forwarded.body) == {
        "model": "gpt-3.5-turbo-instruct",
        "prompt": "Say this is a test",
        "echo": True,
        "max_tokens": 7,
    }
    assert forwarded.headers["authorization"] == "Bearer sk-x"
    assert ADAPTER.unsupported(request, DECLARING) == []


def test_a_forwarded_prompt_is_the_one_the_stages_left() -> None:
    """A rewritten prompt (masked, say) is what goes; a request a stage gave more messages goes as chat;
    a dropped parameter leaves the forwarded body too."""
    request = _decode(suffix="!")
    request.messages = [Message("user", [TextPart("Say this is a [MASKED]")])]
    assert orjson.loads(ADAPTER.chat_request(request, DECLARING).body)["prompt"] == "Say this is a [MASKED]"
    assert "suffix" not in orjson.loads(ADAPTER.chat_request(drop_params(request, ["suffix"]), DECLARING).body)
    request.messages = [Message("system", [TextPart("canary")]), *request.messages]
    assert ADAPTER.chat_request(request, DECLARING).url.endswith("/chat/completions")


def test_a_completion_answer_is_read_as_chat_and_written_back() -> None:
    """OpenAI's text_completion is read into a chat answer (logprobs as chat entries) and written
    back as the same completion."""
    response = ADAPTER.chat_response(orjson.dumps(ANSWER), DECLARING)
    choice = response.choices[0]
    assert (choice.message.text(), choice.finish_reason) == ("\n\nThis is", "length")
    assert response.usage == Usage(input_tokens=5, output_tokens=3)
    written = orjson.loads(encode_completion_response(response))
    assert written["id"] == ANSWER["id"] and written["object"] == "text_completion"
    assert written["choices"][0] == ANSWER["choices"][0]  # type: ignore[index]


def test_completion_chunks_are_parsed_and_written() -> None:
    """text_completion chunks parse into text deltas; the encoder writes chunks with running
    text_offset, the finish reason, a usage chunk and [DONE]."""
    chunk = {**ANSWER, "choices": [{"text": "This", "index": 0, "logprobs": None, "finish_reason": None}]}
    chunk.pop("usage")
    parser = ADAPTER.stream_parser(_decode(stream=True), DECLARING)
    events = parser.feed(b"data: " + orjson.dumps(chunk) + b"\n\ndata: [DONE]\n\n")
    assert [type(e) for e in events] == [StreamStart, TextDelta]
    encoder = CompletionStreamEncoder(_decode(stream=True, stream_options={"include_usage": True}))
    entries = chat_entries(ANSWER["choices"][0]["logprobs"])  # type: ignore[index]
    assert entries is not None
    out = b"".join(
        [
            encoder.encode(StreamStart("chatcmpl-1", "m", 1)),
            encoder.encode(TextDelta("\n\n", 0, entries[:1])),
            encoder.encode(TextDelta("This is", 0, entries[1:])),
            encoder.encode(FinishEvent("length")),
            encoder.end(),
        ]
    )
    frames = sse_data(out)
    assert frames[-1] == "[DONE]"
    chunks = [orjson.loads(f) for f in frames[:-1]]
    assert {c["id"] for c in chunks} == {"cmpl-1"}
    assert [c["choices"][0]["logprobs"] and c["choices"][0]["logprobs"]["text_offset"] for c in chunks] == [
        [0],
        [2, 6],
        None,
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_logprobs_convert_both_ways() -> None:
    """Completions' logprobs -> chat entries -> completions' logprobs is the same object."""
    legacy = ANSWER["choices"][0]["logprobs"]  # type: ignore[index]
    entries = chat_entries(legacy)
    assert entries is not None and entries[0]["top_logprobs"][1] == {"token": "\n", "logprob": -2.5, "bytes": None}
    assert legacy_logprobs(entries, 0) == legacy
    assert chat_entries(None) is None and chat_entries({"content": []}) is None


def test_a_chat_answer_with_tool_calls_ends_as_stop() -> None:
    """A completion has no tool calls: a chat answer that ended with tool_calls is a stop."""
    response = ChatResponse("chatcmpl-9", "m", 1, [Choice(0, Message("assistant", [TextPart("x")]), "tool_calls")])
    assert orjson.loads(encode_completion_response(response))["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("body", "texts"),
    [
        ({"input": "hi"}, ["hi"]),
        ({"input": ["a", "b"]}, ["a", "b"]),
        (
            {"input": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "data:x"}}]},
            ["a", None],
        ),
    ],
)
def test_moderation_inputs(body: dict[str, Any], texts: list[str | None]) -> None:
    """Strings, string arrays and multimodal parts are moderation inputs; no model is OpenAI's default."""
    request = decode_moderation_request(body)
    assert request.texts == texts and request.model == "omni-moderation-latest"
    http = ADAPTER.moderations_request(request, TARGET)
    assert http.url == "https://api.openai.example/v1/moderations"
    assert orjson.loads(http.body) == {**body, "model": "gpt-3.5-turbo-instruct"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "input"),
        ({"input": []}, "input"),
        ({"input": 3}, "input"),
        ({"input": [{"type": "audio"}]}, "input[0].type"),
        ({"input": [{"type": "image_url"}]}, "input[0].image_url"),
        ({"input": "x", "model": 5}, "model"),
    ],
)
def test_bad_moderation_bodies_name_the_field(body: dict[str, Any], param: str) -> None:
    """A moderation body the decoder cannot use is a 400 naming the field."""
    with pytest.raises(InvalidRequest) as caught:
        decode_moderation_request(body)
    assert caught.value.param == param
