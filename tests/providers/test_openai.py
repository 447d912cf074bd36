"""The OpenAI adapter: hosts as data rows, the fast path, and usage handling in streams."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest

from breakwater.core.errors import InvalidRequest
from breakwater.core.types import (
    ChatRequest,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishEvent,
    Message,
    PassthroughChunk,
    TextDelta,
    TextPart,
    Usage,
    UsageEvent,
)
from breakwater.engine.calls.params import drop_params
from breakwater.providers import openai_embeddings_serve, openai_serve
from breakwater.providers.base import Target
from breakwater.providers.openai import OpenAIAdapter

ADAPTER = OpenAIAdapter()


def _request(body: dict[str, object]) -> ChatRequest:
    return openai_serve.decode_chat_request(
        {"model": "public", "messages": [{"role": "user", "content": "hi"}], **body}
    )


def test_fast_path_forwards_unknown_fields_untouched() -> None:
    """Fields Breakwater does not model reach an OpenAI upstream as sent; only the model is replaced."""
    request = _request(
        {"reasoning_effort": "low", "metadata": {"k": "v"}, "prediction": {"type": "content", "content": "x"}}
    )
    http = ADAPTER.chat_request(request, Target("p", "gpt-4.1", "https://api.openai.com/v1", "sk-x", host="openai"))
    body = orjson.loads(http.body)
    assert body["model"] == "gpt-4.1"
    assert body["reasoning_effort"] == "low"
    assert body["metadata"] == {"k": "v"}
    assert body["prediction"] == {"type": "content", "content": "x"}
    assert http.url == "https://api.openai.com/v1/chat/completions"
    assert http.headers["authorization"] == "Bearer sk-x"


def test_stream_always_asks_upstream_for_usage() -> None:
    """A streamed request always asks the upstream for usage, keeping the client's other stream options."""
    request = _request({"stream": True, "stream_options": {"include_obfuscation": False}})
    body = orjson.loads(ADAPTER.chat_request(request, Target("p", "m", "http://h/v1")).body)
    assert body["stream_options"] == {"include_obfuscation": False, "include_usage": True}


def test_usage_chunk_kept_for_accounting_but_not_forwarded_unasked() -> None:
    """On the fast path the usage-only chunk becomes a UsageEvent, and is forwarded only if the client asked."""
    frames = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}],"x_extra":1}\n\n'
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}\n\n'
        b"data: [DONE]\n\n"
    )
    target = Target("p", "m", "http://h/v1")
    for asked in (False, True):
        parser = ADAPTER.stream_parser(_request({"stream": True, "stream_options": {"include_usage": asked}}), target)
        events = parser.feed(frames) + parser.close()
        passthrough = [e for e in events if isinstance(e, PassthroughChunk)]
        assert b'"x_extra":1' in passthrough[0].data  # unknown chunk fields go out untouched
        assert passthrough[0].finish_reasons == ["stop"]
        if asked:
            assert len(passthrough) == 2
            assert passthrough[1].usage is not None
            assert passthrough[1].usage.input_tokens == 3
        else:
            assert len(passthrough) == 1
            usage = [e for e in events if isinstance(e, UsageEvent)]
            assert usage[0].usage.output_tokens == 1


def test_azure_row() -> None:
    """Azure addresses the deployment in the URL, carries api-version and sends the key as api-key."""
    request = ChatRequest(model="public", messages=[Message("user", [TextPart("hi")])])
    target = Target("az", "gpt-4o-prod", "https://r.openai.azure.com", "azkey", api_version="2024-10-21", host="azure")
    http = ADAPTER.chat_request(request, target)
    assert (
        http.url == "https://r.openai.azure.com/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
    )
    assert http.headers["api-key"] == "azkey"
    assert "authorization" not in http.headers


def test_host_quirks_name_unsupported_parameters() -> None:
    """A host row's unsupported parameters are reported only when the request uses them."""
    groq = Target("g", "llama", "https://api.groq.com/openai/v1", "k", host="groq")
    assert sorted(ADAPTER.unsupported(_request({"n": 2, "logprobs": True, "seed": 1}), groq)) == ["logprobs", "n"]
    assert ADAPTER.unsupported(_request({"n": 1, "temperature": 0.2}), groq) == []


def test_extras_unsupported_off_the_fast_path() -> None:
    """Unknown fields are only a problem when the request did not come in as OpenAI (no raw body to forward)."""
    request = _request({"reasoning_effort": "low"})
    target = Target("p", "m", "http://h/v1")
    assert ADAPTER.unsupported(request, target) == []
    translated = ChatRequest(model="m", messages=request.messages, extra_params=["thinking"])
    assert ADAPTER.unsupported(translated, target) == ["thinking"]


def test_extra_body_merged() -> None:
    """A deployment's extra_body is merged into every upstream request."""
    target = Target("o", "qwen", "http://127.0.0.1:11434/v1", host="ollama", extra_body={"keep_alive": "10m"})
    body = orjson.loads(ADAPTER.chat_request(_request({}), target).body)
    assert body["keep_alive"] == "10m"


# --- fields that used to be lost --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "texts", "ids"),
    [
        ("hi", ["hi"], None),
        (["a", "b"], ["a", "b"], None),
        ([15339, 1917], [], [[15339, 1917]]),
        ([[15339, 1917], [0]], [], [[15339, 1917], [0]]),
    ],
)
def test_embedding_input_shapes(value: object, texts: list[str], ids: list[list[int]] | None) -> None:
    """OpenAI's four shapes of embeddings input decode to texts or token-id lists."""
    request = openai_embeddings_serve.decode_embeddings_request({"model": "e", "input": value})
    assert (request.inputs, request.token_inputs) == (texts, ids)


def test_token_ids_go_to_hosts_that_take_them() -> None:
    """Off the fast path, token ids go out as the input; OpenAI, Azure, vLLM and the mock take them, others not."""
    request = EmbeddingRequest(model="e", inputs=[], token_inputs=[[1, 2]])
    body = orjson.loads(ADAPTER.embeddings_request(request, Target("p", "m", "http://h/v1")).body)
    assert body["input"] == [[1, 2]]
    takes = {name for name in ("openai", "azure", "vllm", "mock", "ollama", "custom", "mistral")
             if ADAPTER.token_input(Target("p", "m", "http://h/v1", host=name))}  # fmt: skip
    assert takes == {"openai", "azure", "vllm", "mock"}


def test_base64_embeddings_are_little_endian_float32() -> None:
    """encoding_format base64 packs each vector as little-endian float32, which the adapter reads back."""
    response = EmbeddingResponse("e", [[0.5, -1.25, 3.0]], Usage(2))
    body = orjson.loads(openai_embeddings_serve.encode_embeddings_response(response, "base64"))
    raw = base64.b64decode(body["data"][0]["embedding"])
    assert struct.unpack("<3f", raw) == (0.5, -1.25, 3.0)
    assert ADAPTER.embeddings_response(orjson.dumps(body), Target("p", "m", "http://h")).vectors == [[0.5, -1.25, 3.0]]


def test_cache_control_on_openai_parts_and_tools_is_read() -> None:
    """A cache_control on an OpenAI content part or tool (LiteLLM's convention) is kept on the canonical form."""
    part = {"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}}
    tool = {"type": "function", "function": {"name": "f"}, "cache_control": {"type": "ephemeral"}}
    request = openai_serve.decode_chat_request(
        {"model": "m", "messages": [{"role": "system", "content": [part]}], "tools": [tool]}
    )
    assert request.cache_breakpoints
    assert request.messages[0].content[0] == TextPart("Rules.", {"type": "ephemeral"})
    assert request.tools[0].cache_control == {"type": "ephemeral"}


def test_cache_control_never_reaches_an_openai_upstream() -> None:
    """Breakpoints are unsupported on the OpenAI wire even on the fast path, and dropping them strips
    every one from the forwarded body, leaving the rest as the client sent it."""
    part = {"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}}
    tool = {"type": "function", "function": {"name": "f"}, "cache_control": {"type": "ephemeral"}}
    request = _request({"messages": [{"role": "user", "content": [part]}], "tools": [tool]})
    target = Target("p", "m", "http://h/v1", host="openai")
    assert ADAPTER.unsupported(request, target) == ["cache_control"]
    body = orjson.loads(ADAPTER.chat_request(drop_params(request, ["cache_control"]), target).body)
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Rules."}]}]
    assert body["tools"] == [{"type": "function", "function": {"name": "f"}}]
    assert request.raw is not None and request.raw["tools"][0]["cache_control"]  # the client's body untouched


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "f"}}}, "tool_choice"),
        (
            {
                "tools": [{"type": "function", "function": {"name": "g"}}],
                "tool_choice": {"type": "function", "function": {"name": "f"}},
            },
            "tool_choice",
        ),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ],
)
def test_requests_that_make_no_sense_are_refused(body: dict[str, object], param: str) -> None:
    """A forced tool choice among no tools (or not among them) and top_logprobs without logprobs are 400s."""
    with pytest.raises(InvalidRequest) as info:
        _request(body)
    assert info.value.param == param


def test_stream_logprobs_and_vllm_stop_reason_are_parsed() -> None:
    """Off the fast path, a chunk's logprobs ride on its TextDelta, and vLLM's stop_reason names the stop sequence."""
    entry = {"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}
    frames = (
        b'data: {"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},'
        b'"logprobs":{"content":[' + orjson.dumps(entry) + b"]}}]}\n\n"
        b'data: {"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop",'
        b'"stop_reason":"##"}]}\n\ndata: [DONE]\n\n'
    )
    request = ChatRequest("m", [Message("user", [TextPart("hi")])], stream=True)
    parser = ADAPTER.stream_parser(request, Target("p", "m", "http://h/v1"))
    events = parser.feed(frames) + parser.close()
    assert TextDelta("Hi", 0, [entry]) in events
    assert FinishEvent("stop", 0, "##") in events
