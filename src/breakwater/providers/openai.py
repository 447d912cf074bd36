"""The OpenAI chat completions wire protocol, client side, for OpenAI and every compatible host.

Streams and the usage object are in ``openai_stream.py``. Hosts differ only in data (``breakwater.providers.hosts``): base URL, auth header, Azure's
deployment URLs, and parameters they cannot honour.

Fast path: when the client also spoke OpenAI (``ChatRequest.raw`` is set), the client's body is
forwarded with only ``model`` replaced, so fields Breakwater does not model travel untouched, and
responses and stream chunks go back byte-for-byte (``raw_body`` / ``PassthroughChunk``), read
only to learn usage and finish reasons.
"""

from __future__ import annotations

import array
import base64
import time
from collections.abc import Mapping
from typing import Any

import orjson

from breakwater.core.errors import MalformedResponse, UpstreamError, classify_status, parse_retry_after
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    EmbeddingRequest,
    EmbeddingResponse,
    ImagePart,
    Message,
    PassthroughChunk,
    TextPart,
    ToolCall,
    Usage,
)
from breakwater.providers.base import HttpRequest, Target, error_object, response_object
from breakwater.providers.hosts import host
from breakwater.providers.openai_completions import chat_entries, completion_body, forwarded
from breakwater.providers.openai_moderations import ModerationRequest, moderation_request
from breakwater.providers.openai_responses_forward import (
    ResponsesStreamParser,
    read_response,
    responses_body,
)
from breakwater.providers.openai_responses_forward import (
    forwarded as responses_forwarded,
)
from breakwater.providers.openai_stream import (
    FINISH,
    OpenAIStreamParser,
    passthrough_text,
    read_usage,
    stop_sequence,
)


class OpenAIAdapter:
    wire = "openai"
    supported_params = frozenset(
        {
            "max_tokens", "temperature", "top_p", "stop", "seed", "n", "presence_penalty",
            "frequency_penalty", "logprobs", "top_logprobs", "tools", "tool_choice",
            "parallel_tool_calls", "response_format", "user",
        }
    )  # fmt: skip

    def unsupported(self, request: ChatRequest, target: Target) -> list[str]:
        """Parameters of ``request`` this target cannot honour (host quirks, and extras off the fast path).

        ``cache_control`` never travels: OpenAI-compatible servers have no breakpoints (OpenAI
        caches long prompt prefixes by itself), so the engine strips it, fast path included.
        """
        quirks = host(target.host).unsupported
        # the client's own body goes upstream
        whole = request.raw is not None or forwarded(request, target) or responses_forwarded(request, target)
        return [
            p
            for p in request.used_params()
            if p in quirks or p == "cache_control" or (p not in self.supported_params and not whole)
        ]

    def token_input(self, target: Target) -> bool:
        """Whether the host embeds token-id inputs itself (else the engine decodes them to text)."""
        return host(target.host).token_input

    # 1. errors ---------------------------------------------------------------------------------

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target) -> UpstreamError:
        err = error_object(body)
        message, code = str(err.get("message") or ""), str(err.get("code") or err.get("type") or "")
        return classify_status(
            status,
            f"{code} {message}",
            provider=target.provider,
            retry_after=parse_retry_after(headers),
            overloaded=code == "overloaded",
        )

    # 2. requests -------------------------------------------------------------------------------

    def chat_request(self, request: ChatRequest, target: Target) -> HttpRequest:
        path = "chat/completions"
        if request.raw is not None:
            body = dict(request.raw)
            body["model"] = target.model
        elif forwarded(request, target):
            body, path = completion_body(request, target.model), "completions"
        elif responses_forwarded(request, target):  # a Responses request, as sent (usage is in its last event)
            body = responses_body(request, target.model)
            body.update(target.extra_body)
            return HttpRequest("POST", _url(target, "responses"), _headers(target), orjson.dumps(body), request.stream)
        else:
            body = chat_body(request, target.model)
        if request.stream:
            # always ask for usage: accounting needs it; the chunk is dropped again on the way
            # out when the client did not ask (see OpenAIStreamParser)
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        body.update(target.extra_body)
        return HttpRequest("POST", _url(target, path), _headers(target), orjson.dumps(body), request.stream)

    def embeddings_request(self, request: EmbeddingRequest, target: Target) -> HttpRequest:
        if request.raw is not None:
            body = dict(request.raw)
            body["model"] = target.model
        else:
            inputs = request.token_inputs if request.token_inputs is not None else request.inputs
            body = {"model": target.model, "input": inputs, "encoding_format": request.encoding_format}
            if request.dimensions is not None:
                body["dimensions"] = request.dimensions
            if request.user is not None:
                body["user"] = request.user
        return HttpRequest("POST", _url(target, "embeddings"), _headers(target), orjson.dumps(body))

    def moderations_request(self, request: ModerationRequest, target: Target) -> HttpRequest:
        """OpenAI's ``/moderations`` (the one wire that has it: ``openai_moderations.py``)."""
        return moderation_request(request, target, _url(target, "moderations"), _headers(target))

    # 3. responses ------------------------------------------------------------------------------

    def chat_response(self, body: bytes, target: Target) -> ChatResponse:
        data = response_object(body, target)
        try:
            if data.get("object") == "response":  # a forwarded Responses request's answer
                return read_response(data, body, target)
            return chat_completion(data, body, target.model)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedResponse(
                f"{target.provider} sent an unreadable chat completion", provider=target.provider
            ) from exc

    def embeddings_response(self, body: bytes, target: Target) -> EmbeddingResponse:
        data = response_object(body, target)
        try:
            vectors = [_vector(item["embedding"]) for item in sorted(data["data"], key=lambda d: d.get("index", 0))]
            usage = data.get("usage") or {}
            return EmbeddingResponse(
                model=str(data.get("model") or target.model),
                vectors=vectors,
                usage=Usage(input_tokens=int(usage.get("prompt_tokens") or 0)),
                raw_body=body,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedResponse(f"{target.provider} sent unreadable embeddings", provider=target.provider) from exc

    # 4. streams --------------------------------------------------------------------------------

    def passthrough_text(self, chunk: PassthroughChunk) -> str:
        return passthrough_text(chunk)

    def stream_parser(self, request: ChatRequest, target: Target) -> OpenAIStreamParser | ResponsesStreamParser:
        if responses_forwarded(request, target):
            return ResponsesStreamParser(target)
        return OpenAIStreamParser(target, passthrough=request.raw is not None, include_usage=request.include_usage)


def chat_completion(data: dict[str, Any], body: bytes, model: str) -> ChatResponse:
    """A parsed ``chat.completion`` object (``body``: its bytes, kept to go out untouched).

    Also how the answer cache reads back an answer it kept as the upstream's bytes.

    Raises:
        KeyError, TypeError, ValueError, AttributeError: not a chat completion.
    """
    return ChatResponse(
        id=str(data.get("id") or "chatcmpl-breakwater"),
        model=str(data.get("model") or model),
        created=int(data.get("created") or time.time()),
        choices=[_choice(c) for c in data["choices"]],
        usage=read_usage(data.get("usage")),
        raw_body=body,
    )


# --- pieces shared by the request and response sides ------------------------------------------


def _url(target: Target, path: str) -> str:
    row = host(target.host)
    base = target.base_url
    if row.azure:
        if path == "responses":  # Azure's Responses API names the deployment in the body's model
            return f"{base}/openai/responses?api-version={target.api_version or '2025-04-01-preview'}"
        version = target.api_version or "2024-10-21"
        return f"{base}/openai/deployments/{target.model}/{path}?api-version={version}"
    return f"{base}/{path}"


def _headers(target: Target) -> dict[str, str]:
    headers = {"content-type": "application/json", **target.headers}
    if target.api_key:
        if host(target.host).auth == "api-key":
            headers["api-key"] = target.api_key
        else:
            headers["authorization"] = f"Bearer {target.api_key}"
    return headers


def _choice(c: dict[str, Any]) -> Choice:
    if "text" in c and "message" not in c:  # a legacy completion's choice (openai_completions.py)
        text = c["text"]
        entries = chat_entries(c.get("logprobs"))
        reason = c.get("finish_reason")
        return Choice(
            index=int(c.get("index") or 0),
            message=Message("assistant", [TextPart(text)] if isinstance(text, str) and text else []),
            finish_reason=FINISH.get(reason, "stop") if reason else None,
            logprobs=None if entries is None else {"content": entries},
        )
    m = c.get("message") or {}
    calls = [
        ToolCall(tc["id"], tc["function"]["name"], tc["function"].get("arguments") or "{}")
        for tc in m.get("tool_calls") or ()
    ]
    content = m.get("content")
    parts: list[TextPart | ImagePart] = [TextPart(content)] if isinstance(content, str) and content else []
    reason = c.get("finish_reason")
    return Choice(
        index=int(c.get("index") or 0),
        message=Message("assistant", parts, calls),
        finish_reason=FINISH.get(reason, "stop") if reason else None,
        logprobs=c.get("logprobs"),
        stop_sequence=stop_sequence(c),
        refusal=m.get("refusal") if isinstance(m.get("refusal"), str) else None,
    )


def _vector(value: Any) -> list[float]:
    if isinstance(value, str):  # encoding_format=base64: little-endian float32
        return array.array("f", base64.b64decode(value)).tolist()
    return [float(x) for x in value]


def chat_body(request: ChatRequest, model: str) -> dict[str, Any]:
    """Canonical request to an OpenAI body (used when the client spoke another protocol)."""
    body: dict[str, Any] = {"model": model, "messages": [_message_json(m) for m in request.messages]}
    if request.stream:
        body["stream"] = True
    for name in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.max_tokens is not None:
        body["max_completion_tokens"] = request.max_tokens
    if request.stop:
        body["stop"] = request.stop
    if request.n != 1:
        body["n"] = request.n
    if request.user is not None:
        body["user"] = request.user
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "parameters": t.parameters,
                    **({"strict": t.strict} if t.strict is not None else {}),
                },
            }
            for t in request.tools
        ]
    if request.tool_choice is not None:
        tc = request.tool_choice
        body["tool_choice"] = {"type": "function", "function": {"name": tc.name}} if tc.mode == "named" else tc.mode
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    rf = request.response_format
    if rf is not None:
        if rf.type == "json_schema":
            js: dict[str, Any] = {"name": rf.name or "response", "schema": rf.schema or {}}
            if rf.strict is not None:
                js["strict"] = rf.strict
            body["response_format"] = {"type": "json_schema", "json_schema": js}
        else:
            body["response_format"] = {"type": rf.type}
    return body


def _message_json(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role}
    if all(isinstance(p, TextPart) for p in m.content):
        out["content"] = m.text() if m.content or not m.tool_calls else None
    else:
        out["content"] = [
            {"type": "text", "text": p.text}
            if isinstance(p, TextPart)
            else {"type": "image_url", "image_url": {"url": p.url, **({"detail": p.detail} if p.detail else {})}}
            for p in m.content
        ]
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in m.tool_calls
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.name is not None:
        out["name"] = m.name
    return out
