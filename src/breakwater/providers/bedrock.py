"""The Amazon Bedrock Converse API (Bedrock Runtime ``2023-09-30``) wire protocol, client side.

Chat goes to ``{base}/model/{modelId}/converse`` or ``/converse-stream`` (base
``https://bedrock-runtime.{region}.amazonaws.com``), signed with AWS SigV4 (signing name
``bedrock``) by the target's signer, last, over the exact bytes sent. The model id may be a
foundation model (``anthropic.claude-3-5-sonnet-20240620-v1:0``), a cross-region inference
profile (``us.anthropic...``) or an ARN; it is one path segment, so a ``/`` in an ARN is escaped.

Errors are rest-json: the type in the ``x-amzn-ErrorType`` header (``ThrottlingException:...``)
or a ``__type`` member, the text in ``message``. A stream is AWS event-stream framing
(``breakwater.providers.eventstream``), whose failures after the 200 arrive as ``exception``
messages. Request bodies are built in ``breakwater.providers.bedrock_request``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from breakwater.core.errors import (
    MalformedResponse,
    Overloaded,
    UnsupportedParameter,
    UpstreamAuthError,
    UpstreamError,
    UpstreamServerError,
    UpstreamTimeout,
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
from breakwater.providers.base import HttpRequest, Target, response_object
from breakwater.providers.bedrock_request import chat_body, takes_cache_points, takes_top_k, uses_tool_blocks
from breakwater.providers.eventstream import EventMessage, EventStreamDecoder, EventStreamError

#: the response id Converse does not send (the request id is only a header)
RESPONSE_ID = "bedrock-breakwater"

# StopReason (API reference, ConverseOutput) -> canonical
_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "malformed_model_output": "error",
    "malformed_tool_use": "error",
}
# what an exception name means when its status alone would say less (API reference, Errors)
_AUTH = frozenset({"UnrecognizedClientException", "InvalidSignatureException", "MissingAuthenticationTokenException",
                   "ExpiredTokenException", "IncompleteSignatureException", "InvalidClientTokenId"})  # fmt: skip


def base_url(region: str) -> str:
    """The Bedrock Runtime endpoint of ``region``."""
    return f"https://bedrock-runtime.{region}.amazonaws.com"


def model_segment(model: str) -> str:
    """The model id as one URL path segment.

    Only ``/`` (in ARNs) is escaped: ``:`` is legal in a path and the HTTP client would unescape
    a ``%3A`` before sending, so the signed path and the sent path would differ.
    """
    return quote(model, safe=":@!$&'()*+,;=-._~")


class BedrockAdapter:
    wire = "bedrock"
    supported_params = frozenset({"max_tokens", "temperature", "top_p", "stop", "tools", "tool_choice"})

    def unsupported(self, request: ChatRequest, target: Target) -> list[str]:
        """Parameters Converse cannot carry (``n``, ``seed``, penalties, logprobs, response formats...),
        ``top_k`` and ``cache_control`` where the model family lacks them, and ``tool_choice: none``
        once the history holds tool calls."""
        supported = self.supported_params
        if takes_top_k(target.model):
            supported = supported | {"top_k"}
        if takes_cache_points(target.model):
            supported = supported | {"cache_control"}
        used = [p for p in request.used_params() if p not in supported]
        choice = request.tool_choice
        if choice is not None and choice.mode == "none" and request.tools and uses_tool_blocks(request):
            used.append("tool_choice")
        return used

    def token_input(self, target: Target) -> bool:
        return False

    # 1. errors ---------------------------------------------------------------------------------

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target) -> UpstreamError:
        kind, message = _error_parts(headers, body)
        return _classify(status, kind, message, target.provider, parse_retry_after(headers))

    # 2. requests -------------------------------------------------------------------------------

    def chat_request(self, request: ChatRequest, target: Target) -> HttpRequest:
        body = chat_body(request, target.model)
        body.update(target.extra_body)
        action = "converse-stream" if request.stream else "converse"
        base = (target.base_url or "").rstrip("/")
        headers = {"content-type": "application/json", **target.headers}
        if request.stream:
            headers["accept"] = "application/vnd.amazon.eventstream"
        http = HttpRequest("POST", f"{base}/model/{model_segment(target.model)}/{action}", headers, orjson.dumps(body),
                           request.stream)  # fmt: skip
        return target.signer.sign(http, target.provider) if target.signer is not None else http

    def embeddings_request(self, request: EmbeddingRequest, target: Target) -> HttpRequest:
        raise _no_embeddings(target)

    # 3. responses ------------------------------------------------------------------------------

    def chat_response(self, body: bytes, target: Target) -> ChatResponse:
        data = response_object(body, target)
        try:
            message = data["output"]["message"]
            text = "".join(b["text"] for b in message["content"] if isinstance(b.get("text"), str))
            calls = [_tool_call(b["toolUse"]) for b in message["content"] if "toolUse" in b]
            content: list[ContentPart] = [TextPart(text)] if text else []
            reason = finish_reason(data.get("stopReason"), bool(calls))
            return ChatResponse(
                id=RESPONSE_ID,
                model=target.model,
                created=int(time.time()),
                choices=[Choice(0, Message("assistant", content, calls), reason)],
                usage=usage(data.get("usage")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedResponse(f"{target.provider} sent an unreadable response", provider=target.provider) from exc

    def embeddings_response(self, body: bytes, target: Target) -> EmbeddingResponse:
        raise _no_embeddings(target)

    # 4. streams --------------------------------------------------------------------------------

    def passthrough_text(self, chunk: PassthroughChunk) -> str:
        raise ValueError("the Bedrock wire forwards no chunks byte-for-byte")

    def stream_parser(self, request: ChatRequest, target: Target) -> BedrockStreamParser:
        return BedrockStreamParser(target)


class BedrockStreamParser:
    """ConverseStream's event-stream messages to events.

    ``messageStart``, then per content block ``contentBlockStart`` (tool calls only: id and
    name), ``contentBlockDelta`` (text, or a piece of a tool call's JSON input) and
    ``contentBlockStop``, then ``messageStop`` (the stop reason) and ``metadata`` (usage). A
    stream is finished once ``messageStop`` arrived.
    """

    __slots__ = ("_calls", "_decoder", "_finished", "_started", "_target")

    def __init__(self, target: Target) -> None:
        self._target = target
        self._decoder = EventStreamDecoder()
        self._started = False
        self._finished = False
        self._calls: dict[int, int] = {}  # content block index -> tool call index

    def feed(self, data: bytes) -> list[StreamEvent]:
        provider = self._target.provider
        try:
            messages = self._decoder.feed(data)
        except EventStreamError as exc:
            raise MalformedResponse(f"{provider} sent an unreadable stream frame", provider=provider) from exc
        events: list[StreamEvent] = []
        for message in messages:
            self._message(message, events)
        return events

    def close(self) -> list[StreamEvent]:
        if not self._finished or self._decoder.pending():
            provider = self._target.provider
            raise MalformedResponse(f"{provider} ended the stream before it was finished", provider=provider)
        return []

    def _message(self, message: EventMessage, events: list[StreamEvent]) -> None:
        provider = self._target.provider
        headers = message.headers
        kind = headers.get(":message-type")
        if kind == "exception":
            name = str(headers.get(":exception-type") or "")
            text = _message_text(message.payload)
            raise _classify(_STREAM_STATUS.get(name, 500), name[:1].upper() + name[1:], text, provider, None)
        if kind == "error":
            code = str(headers.get(":error-code") or "")
            raise _classify(500, code, str(headers.get(":error-message") or ""), provider, None)
        if kind != "event":
            return
        try:
            self._event(str(headers.get(":event-type") or ""), orjson.loads(message.payload or b"{}"), events)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise MalformedResponse(f"{provider} sent an unreadable stream event", provider=provider) from exc

    def _event(self, name: str, data: dict[str, Any], events: list[StreamEvent]) -> None:
        if not self._started and name in ("messageStart", "contentBlockStart", "contentBlockDelta"):
            self._started = True
            events.append(StreamStart(RESPONSE_ID, self._target.model, int(time.time())))
        if name == "contentBlockStart":
            start = data["start"].get("toolUse")
            if start is not None:
                n = self._calls[int(data["contentBlockIndex"])] = len(self._calls)
                events.append(ToolCallDelta(n, "", str(start["toolUseId"]), str(start["name"])))
        elif name == "contentBlockDelta":
            delta = data["delta"]
            if isinstance(delta.get("text"), str) and delta["text"]:
                events.append(TextDelta(delta["text"]))
            elif "toolUse" in delta:
                n = self._calls[int(data["contentBlockIndex"])]
                events.append(ToolCallDelta(n, str(delta["toolUse"].get("input") or "")))
        elif name == "messageStop":
            events.append(FinishEvent(finish_reason(data.get("stopReason"), bool(self._calls)) or "stop"))
            self._finished = True
        elif name == "metadata":
            found = usage(data.get("usage"))
            if found is not None:
                events.append(UsageEvent(found))


# --- finish reasons, usage, errors ---------------------------------------------------------------

#: in-stream exception names (ConverseStreamOutput members) -> the status the same error has as a reply
_STREAM_STATUS = {
    "internalServerException": 500,
    "modelStreamErrorException": 424,
    "validationException": 400,
    "throttlingException": 429,
    "serviceUnavailableException": 503,
}


def finish_reason(reason: Any, has_calls: bool) -> FinishReason | None:
    """Converse's ``stopReason`` to canonical (an unknown reason with tool calls is a tool call)."""
    if not reason:
        return None
    return _FINISH.get(str(reason), "tool_calls" if has_calls else "stop")


def usage(data: Any) -> Usage | None:
    """Converse's TokenUsage to canonical: ``inputTokens`` leaves out the tokens read from and
    written to the prompt cache, which the canonical ``input_tokens`` includes."""
    if not isinstance(data, dict):
        return None
    read = int(data.get("cacheReadInputTokens") or 0)
    write = int(data.get("cacheWriteInputTokens") or 0)
    return Usage(
        input_tokens=int(data.get("inputTokens") or 0) + read + write,
        output_tokens=int(data.get("outputTokens") or 0),
        cached_input_tokens=read,
        cache_creation_input_tokens=write,
    )


def _no_embeddings(target: Target) -> UnsupportedParameter:
    # Bedrock's embedding models answer InvokeModel, not Converse
    return UnsupportedParameter(f"provider {target.provider} (bedrock) does not offer embeddings", param="model")


def _tool_call(block: dict[str, Any]) -> ToolCall:
    arguments = orjson.dumps(block.get("input") or {}).decode()
    return ToolCall(str(block["toolUseId"]), str(block["name"]), arguments)


def _error_parts(headers: Mapping[str, str], body: bytes) -> tuple[str, str]:
    """The exception name (``ValidationException``) and message of a rest-json error reply."""
    kind = next((v for k, v in headers.items() if k.lower() == "x-amzn-errortype"), "")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        return _short_name(kind), body[:500].decode("utf-8", "replace")
    kind = kind or str(data.get("__type") or data.get("code") or "")
    return _short_name(kind), str(data.get("message") or data.get("Message") or "")


def _short_name(kind: str) -> str:
    # "ThrottlingException:http://internal.amazon.com/coral/..." or "com.amazon.coral#ThrottlingException"
    return kind.partition(":")[0].rpartition("#")[2]


def _message_text(payload: bytes) -> str:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return ""
    return str(data.get("message") or "") if isinstance(data, dict) else ""


def _classify(status: int, kind: str, message: str, provider: str, retry_after: float | None) -> UpstreamError:
    kw: dict[str, Any] = {"provider": provider, "upstream_status": status}
    if kind in _AUTH:
        return UpstreamAuthError(f"{provider} rejected the gateway's AWS credentials", **kw)
    if kind == "ModelTimeoutException":
        return UpstreamTimeout(f"{provider} timed out", **kw)
    if kind == "ModelNotReadyException":
        return Overloaded(f"{provider}: the model is not ready to serve requests", retry_after=retry_after, **kw)
    if kind == "ServiceUnavailableException":
        return Overloaded(f"{provider} is unavailable", retry_after=retry_after, **kw)
    if kind in ("ModelErrorException", "ModelStreamErrorException"):
        return UpstreamServerError(f"{provider}: the model failed to process the request", **kw)
    return classify_status(status, f"{kind} {message}", provider=provider, retry_after=retry_after)
