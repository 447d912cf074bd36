"""The Anthropic Messages wire protocol, client side (``POST /v1/messages``).

Anthropic differs from the canonical (OpenAI-shaped) form in ways that decide this module and
``breakwater.providers.anthropic_request``, which builds the request bodies:
system prompts are a top-level field, tool results are ``tool_result`` blocks inside a *user*
turn, turns must alternate, ``max_tokens`` is required, and usage counts cached prompt tokens
apart from ``input_tokens`` (see ``breakwater.core.types``: we add them up on the way in).

There is no fast path: a response is always re-encoded for the client, so ``raw_body`` stays
None (the OpenAI encoder would otherwise send Anthropic bytes to an OpenAI client).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from breakwater.core.errors import (
    MalformedResponse,
    UnsupportedParameter,
    UpstreamError,
    classify_status,
    parse_retry_after,
)
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    ContentPart,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishEvent,
    FinishReason,
    Message,
    PassthroughChunk,
    StreamEvent,
    StreamStart,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from breakwater.providers.anthropic_request import chat_body, mark_stable_prefix
from breakwater.providers.base import HttpRequest, Target, error_object, response_object
from breakwater.providers.sse import SSEStreamParser

DEFAULT_BASE_URL = "https://api.anthropic.com"
#: the Messages API version header; ``Target.api_version`` overrides it
API_VERSION = "2023-06-01"

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",  # a server-tool turn paused early; what came so far is a normal answer
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# The HTTP status Anthropic documents for each error type. An in-stream ``error`` event carries
# only the type, so this lets it go through the same ``classify_status`` rules as HTTP errors.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class AnthropicAdapter:
    wire = "anthropic"
    # response_format: json_schema only, sent as Anthropic's native structured output
    # (``output_config.format``); json_object has no Anthropic equivalent (see ``unsupported``)
    supported_params = frozenset(
        {
            "max_tokens", "temperature", "top_p", "top_k", "stop", "tools", "tool_choice",
            "parallel_tool_calls", "response_format", "user", "cache_control",
        }
    )  # fmt: skip

    def unsupported(self, request: ChatRequest, target: Target) -> list[str]:
        """Parameters of ``request`` Anthropic cannot honour, extras included (there is no fast path)."""
        out = [p for p in request.used_params() if p not in self.supported_params]
        if request.response_format is not None and request.response_format.type == "json_object":
            out.append("response_format")
        return out

    def token_input(self, target: Target) -> bool:
        return False  # no embeddings at all

    # 1. errors ---------------------------------------------------------------------------------

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target) -> UpstreamError:
        err = error_object(body)
        message, type_ = str(err.get("message") or ""), str(err.get("type") or "")
        return classify_status(
            status,
            f"{type_} {message}",
            provider=target.provider,
            retry_after=parse_retry_after(headers),
            overloaded=type_ == "overloaded_error",
        )

    # 2. requests -------------------------------------------------------------------------------

    def chat_request(self, request: ChatRequest, target: Target) -> HttpRequest:
        body = self.body(request, target)
        return HttpRequest(
            "POST", self.url(target, request.stream), self.headers(target), orjson.dumps(body), request.stream
        )

    def body(self, request: ChatRequest, target: Target) -> dict[str, Any]:
        """The Messages body for ``request``; Vertex overrides it (no ``model``, its ``anthropic_version``)."""
        body = chat_body(request, target.model)
        if target.auto_cache_min_tokens is not None and not request.cache_breakpoints:
            mark_stable_prefix(body, target.auto_cache_min_tokens)
        body.update(target.extra_body)
        return body

    def url(self, target: Target, stream: bool) -> str:
        """Where a chat request goes; Vertex overrides it (the model and the verb are in its URL)."""
        return _url(target)

    def headers(self, target: Target) -> dict[str, str]:
        """The request headers, the API key among them; Vertex overrides it (its token is the sender's)."""
        return _headers(target)

    def embeddings_request(self, request: EmbeddingRequest, target: Target) -> HttpRequest:
        raise _no_embeddings(target)

    # 3. responses ------------------------------------------------------------------------------

    def chat_response(self, body: bytes, target: Target) -> ChatResponse:
        data = response_object(body, target)
        try:
            parts, calls = _content(data["content"])
            reason = data.get("stop_reason")
            finish = _FINISH.get(reason, "stop") if reason else None
            matched = data.get("stop_sequence")
            return ChatResponse(
                id=str(data.get("id") or "msg_breakwater"),
                model=str(data.get("model") or target.model),
                created=int(time.time()),  # Anthropic messages carry no timestamp
                choices=[
                    Choice(
                        0,
                        Message("assistant", parts, calls),
                        finish,
                        stop_sequence=matched if isinstance(matched, str) else None,
                    )
                ],
                usage=_usage(data.get("usage") or {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedResponse(f"{target.provider} sent an unreadable message", provider=target.provider) from exc

    def embeddings_response(self, body: bytes, target: Target) -> EmbeddingResponse:
        raise _no_embeddings(target)

    # 4. streams --------------------------------------------------------------------------------

    def passthrough_text(self, chunk: PassthroughChunk) -> str:
        raise ValueError("the Anthropic wire forwards no chunks byte-for-byte")

    def stream_parser(self, request: ChatRequest, target: Target) -> AnthropicStreamParser:
        return AnthropicStreamParser(target)


class AnthropicStreamParser(SSEStreamParser):
    """Messages-API SSE events to canonical events.

    Usage arrives in pieces (input in ``message_start``, cumulative totals in ``message_delta``),
    so it is merged here and emitted once, as a ``UsageEvent``, at ``message_stop``.
    """

    __slots__ = ("_done", "_started", "_target", "_tools", "_usage")

    def __init__(self, target: Target) -> None:
        self._target = target
        super().__init__()
        self._usage: dict[str, Any] = {}
        self._tools: dict[int, int] = {}  # content block index -> canonical tool_index
        self._started = False
        self._done = False

    def _end(self, events: list[StreamEvent]) -> None:
        if not self._done:
            raise self._malformed("ended the stream before message_stop")

    def _malformed(self, what: str) -> MalformedResponse:
        return MalformedResponse(f"{self._target.provider} {what}", provider=self._target.provider)

    def _frame(self, name: str | None, data: str, events: list[StreamEvent]) -> None:
        if self._done or not data:
            return
        try:
            payload = orjson.loads(data)
            kind = payload.get("type") or name
            if kind == "error":
                raise _stream_error(payload, self._target)
            if kind == "ping":
                return
            if kind == "message_start":
                message = payload["message"]
                self._started = True
                self._merge_usage(message.get("usage"))
                events.append(
                    StreamStart(
                        str(message.get("id") or "msg_breakwater"),
                        str(message.get("model") or self._target.model),
                        int(time.time()),
                    )
                )
                return
            if not self._started:
                raise self._malformed(f"sent {kind!r} before message_start")
            if kind == "content_block_start":
                self._block_start(int(payload["index"]), payload["content_block"], events)
            elif kind == "content_block_delta":
                self._block_delta(int(payload["index"]), payload["delta"], events)
            elif kind == "message_delta":
                delta = payload.get("delta") or {}
                reason, matched = delta.get("stop_reason"), delta.get("stop_sequence")
                if reason:
                    matched = matched if isinstance(matched, str) else None
                    events.append(FinishEvent(_FINISH.get(reason, "stop"), 0, matched))
                self._merge_usage(payload.get("usage"))
            elif kind == "message_stop":
                self._done = True
                events.append(UsageEvent(_usage(self._usage)))
            # content_block_stop, and event types Anthropic may add later, carry nothing canonical
        except UpstreamError:
            raise
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise self._malformed("sent an unreadable stream event") from exc

    def _block_start(self, index: int, block: dict[str, Any], events: list[StreamEvent]) -> None:
        if block["type"] == "tool_use":
            tool_index = self._tools[index] = len(self._tools)
            # the input is normally {} here and streamed as input_json_delta; keep it if not
            arguments = _compact(block["input"]) if block.get("input") else ""
            events.append(ToolCallDelta(tool_index, arguments, str(block["id"]), str(block["name"])))
        elif block["type"] == "text" and block.get("text"):
            events.append(TextDelta(str(block["text"])))

    def _block_delta(self, index: int, delta: dict[str, Any], events: list[StreamEvent]) -> None:
        if delta["type"] == "text_delta":
            if delta["text"]:
                events.append(TextDelta(str(delta["text"])))
        elif delta["type"] == "input_json_delta" and delta.get("partial_json"):
            events.append(ToolCallDelta(self._tools[index], str(delta["partial_json"])))
        # thinking, signature and citation deltas have no canonical form

    def _merge_usage(self, usage: Any) -> None:
        # message_delta counts are cumulative totals that overwrite; absent ones keep the old value
        if isinstance(usage, dict):
            self._usage.update((k, v) for k, v in usage.items() if v is not None)


# --- pieces shared by the request and response sides ------------------------------------------


def _no_embeddings(target: Target) -> UnsupportedParameter:
    return UnsupportedParameter(f"provider {target.provider} (anthropic) does not offer embeddings", param="model")


def _url(target: Target) -> str:
    # like the official SDKs, the base URL is the host without /v1
    return f"{(target.base_url or DEFAULT_BASE_URL).rstrip('/')}/v1/messages"


def _headers(target: Target) -> dict[str, str]:
    headers = {"content-type": "application/json", "anthropic-version": target.api_version or API_VERSION}
    headers.update(target.headers)
    if target.api_key:
        headers["x-api-key"] = target.api_key
    return headers


def _stream_error(payload: dict[str, Any], target: Target) -> UpstreamError:
    err = payload.get("error")
    err = err if isinstance(err, dict) else {}
    type_ = str(err.get("type") or "")
    return classify_status(
        _ERROR_STATUS.get(type_, 500),
        f"{type_} {err.get('message') or ''}",
        provider=target.provider,
        overloaded=type_ == "overloaded_error",
    )


def _compact(value: Any) -> str:
    return orjson.dumps(value).decode()


def _usage(data: dict[str, Any]) -> Usage:
    read = int(data.get("cache_read_input_tokens") or 0)
    creation = int(data.get("cache_creation_input_tokens") or 0)
    details = data.get("output_tokens_details") or {}
    return Usage(
        input_tokens=int(data.get("input_tokens") or 0) + read + creation,
        output_tokens=int(data.get("output_tokens") or 0),
        cached_input_tokens=read,
        cache_creation_input_tokens=creation,
        reasoning_tokens=int(details.get("thinking_tokens") or 0),
    )


def _content(blocks: list[dict[str, Any]]) -> tuple[list[ContentPart], list[ToolCall]]:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in blocks:
        if block["type"] == "text":
            texts.append(str(block["text"]))
        elif block["type"] == "tool_use":
            calls.append(ToolCall(str(block["id"]), str(block["name"]), _compact(block.get("input") or {})))
        # thinking and server-tool blocks have no canonical form and are dropped
    text = "".join(texts)
    return ([TextPart(text)] if text else []), calls
