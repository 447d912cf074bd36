"""The Gemini API wire format, server side: write responses, streams and error bodies.

The counterpart of ``breakwater.providers.gemini``; client requests are read by
``breakwater.providers.gemini_serve_request``. The mock provider uses both when it plays Gemini.
"""

from __future__ import annotations

from typing import Any

import orjson

from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    EmbeddingResponse,
    FinishEvent,
    FinishReason,
    PassthroughChunk,
    StreamEvent,
    StreamStart,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from breakwater.providers.gemini_signatures import split_call_id

_FINISH_OUT: dict[FinishReason, str] = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",  # Gemini has no tool-call finish; the functionCall parts say it
    "content_filter": "SAFETY",
    "error": "OTHER",
}
# (substring of an error code or type, HTTP code, google.rpc.Code name), first match wins
_ERROR_STATUS = (
    ("rate_limit", 429, "RESOURCE_EXHAUSTED"), ("timeout", 504, "DEADLINE_EXCEEDED"),
    ("overloaded", 503, "UNAVAILABLE"), ("connection", 503, "UNAVAILABLE"),
    ("authentication", 401, "UNAUTHENTICATED"), ("api_key", 401, "UNAUTHENTICATED"),
    ("permission", 403, "PERMISSION_DENIED"), ("not_found", 404, "NOT_FOUND"),
    ("invalid", 400, "INVALID_ARGUMENT"), ("unsupported", 400, "INVALID_ARGUMENT"),
    ("bad_request", 400, "INVALID_ARGUMENT"), ("context_length", 400, "INVALID_ARGUMENT"),
    ("content_filter", 400, "INVALID_ARGUMENT"),
)  # fmt: skip


def usage_json(usage: Usage) -> dict[str, Any]:
    """UsageMetadata; output_tokens includes reasoning tokens, which Gemini reports apart."""
    out: dict[str, Any] = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(0, usage.output_tokens - usage.reasoning_tokens),
        "totalTokenCount": usage.total_tokens,
    }
    if usage.reasoning_tokens:
        out["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cached_input_tokens:
        out["cachedContentTokenCount"] = usage.cached_input_tokens
    return out


def _call_part(call: ToolCall) -> dict[str, Any]:
    bare, signature = split_call_id(call.id)
    try:
        args = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        args = {"arguments": call.arguments}  # args is a Struct: keep text that is not one rather than drop it
    part: dict[str, Any] = {"functionCall": {"id": bare, "name": call.name, "args": args}}
    if signature:
        part["thoughtSignature"] = signature
    return part


def _logprobs_result(logprobs: Any) -> dict[str, Any] | None:
    """OpenAI-shaped canonical logprobs back to Gemini's LogprobsResult."""
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list):
        return None

    def one(e: dict[str, Any]) -> dict[str, Any]:
        return {"token": e.get("token", ""), "logProbability": e.get("logprob", 0.0)}

    return {
        "chosenCandidates": [one(e) for e in content],
        "topCandidates": [{"candidates": [one(t) for t in e.get("top_logprobs") or ()]} for e in content],
    }


def _candidate(c: Choice) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": c.message.text()}] if c.message.text() else []
    parts.extend(_call_part(call) for call in c.message.tool_calls)
    out: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": c.index}
    if c.finish_reason is not None:
        out["finishReason"] = _FINISH_OUT[c.finish_reason]
    if (result := _logprobs_result(c.logprobs)) is not None:
        out["logprobsResult"] = result
    return out


def encode_chat_response(response: ChatResponse) -> bytes:
    """A ``GenerateContentResponse``. ``raw_body`` is ignored: it only ever holds OpenAI bytes."""
    out: dict[str, Any] = {"candidates": [_candidate(c) for c in response.choices]}
    if response.usage is not None:
        out["usageMetadata"] = usage_json(response.usage)
    out["modelVersion"] = response.model
    out["responseId"] = response.id
    return orjson.dumps(out)


def encode_embeddings_response(response: EmbeddingResponse) -> bytes:
    return orjson.dumps({"embeddings": [{"values": v} for v in response.vectors]})


def error_body(code: int, message: str, status: str) -> bytes:
    """Gemini's google.rpc.Status envelope, for HTTP errors and in-stream error frames."""
    return orjson.dumps({"error": {"code": code, "message": message, "status": status}})


def _frame(data: bytes) -> bytes:
    return b"data: " + data + b"\r\n\r\n"  # the live API separates frames with CRLF pairs


class StreamEncoder:
    """Canonical stream events to ``streamGenerateContent?alt=sse`` frames.

    Text goes out as it comes. Tool call pieces are buffered, since Gemini sends each call whole,
    and finish reasons and usage are held for one final chunk at ``end()``, which is where the
    live API puts them; Gemini has no ``[DONE]``.
    """

    def __init__(self, request: ChatRequest) -> None:
        self._id = "gemini-breakwater"
        self._model = request.model
        self._calls: dict[int, dict[int, list[str]]] = {}  # choice -> tool index -> [id, name, arguments]
        self._finishes: dict[int, FinishReason] = {}
        self._usage: Usage | None = None
        self._ended = False

    def _chunk(self, candidates: list[dict[str, Any]], usage: Usage | None = None) -> bytes:
        out: dict[str, Any] = {"candidates": candidates}
        if usage is not None:
            out["usageMetadata"] = usage_json(usage)
        out["modelVersion"] = self._model
        out["responseId"] = self._id
        return _frame(orjson.dumps(out))

    def _take_calls(self, index: int) -> list[dict[str, Any]]:
        pending = self._calls.pop(index, {})
        return [_call_part(ToolCall(pending[k][0], pending[k][1], pending[k][2])) for k in sorted(pending)]

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            parts = [*self._take_calls(event.index), {"text": event.text}]
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": event.index}
            if event.logprobs is not None and (result := _logprobs_result({"content": event.logprobs})) is not None:
                candidate["logprobsResult"] = result
            return self._chunk([candidate])
        if isinstance(event, ToolCallDelta):
            call = self._calls.setdefault(event.index, {}).setdefault(
                event.tool_index, [f"call_{event.tool_index}", "", ""]
            )
            call[0] = event.id or call[0]
            call[1] = event.name or call[1]
            call[2] += event.arguments
            return b""
        if isinstance(event, FinishEvent):
            self._finishes[event.index] = event.reason
            return b""
        if isinstance(event, UsageEvent):
            self._usage = event.usage
            return b""
        if isinstance(event, StreamStart):
            self._id, self._model = event.id, event.model
            return b""
        if isinstance(event, PassthroughChunk):
            raise TypeError("an OpenAI pass-through chunk cannot be re-encoded as a Gemini chunk")
        raise TypeError(f"unknown stream event {event!r}")

    def end(self) -> bytes:
        if self._ended:
            return b""
        self._ended = True
        candidates = []
        for index in sorted(set(self._finishes) | set(self._calls)):
            # an empty text part, as the live API sends, keeps naive parts[0].text readers working
            parts = self._take_calls(index) or [{"text": ""}]
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": index}
            if index in self._finishes:
                candidate["finishReason"] = _FINISH_OUT[self._finishes[index]]
            candidates.append(candidate)
        if not candidates and self._usage is None:
            return b""
        return self._chunk(candidates, self._usage)

    def error(self, message: str, type_: str, code: str | None) -> bytes:
        key = f"{code or ''} {type_}".lower()
        number, status = next(((n, s) for hint, n, s in _ERROR_STATUS if hint in key), (500, "INTERNAL"))
        return _frame(error_body(number, message, status))
