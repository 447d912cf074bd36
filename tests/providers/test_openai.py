"""The OpenAI adapter: hosts as data rows, the fast path, and usage handling in streams."""

from __future__ import annotations

import orjson

from breakwater.core.types import ChatRequest, Message, PassthroughChunk, TextPart, UsageEvent
from breakwater.providers import openai_serve
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
