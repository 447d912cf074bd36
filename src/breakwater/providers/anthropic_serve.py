"""The Anthropic Messages wire format, server side: write messages, streams and error bodies.

The counterpart of ``breakwater.providers.anthropic``; client requests are read by
``breakwater.providers.anthropic_serve_request``. Breakwater's ``POST /v1/messages`` uses both,
and so does the mock provider when it plays Anthropic.
"""

from __future__ import annotations

from typing import Any

import orjson

from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    FinishEvent,
    FinishReason,
    PassthroughChunk,
    StreamEvent,
    StreamStart,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from breakwater.providers.sse import encode_sse

_STOP: dict[FinishReason, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "error": "end_turn",  # Anthropic has no such reason; the error itself travels separately
}


def usage_json(usage: Usage) -> dict[str, Any]:
    """Canonical usage in Anthropic's terms: ``input_tokens`` excludes the cache reads and writes."""
    out: dict[str, Any] = {
        "input_tokens": max(0, usage.input_tokens - usage.cached_input_tokens - usage.cache_creation_input_tokens),
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
        "output_tokens": usage.output_tokens,
    }
    if usage.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


def _message_id(id_: str) -> str:
    return id_ if id_.startswith("msg_") else f"msg_{id_}"


def _tool_input(arguments: str) -> dict[str, Any]:
    # Anthropic clients expect an object; an upstream that produced broken JSON leaves nothing to send
    try:
        value = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def encode_chat_response(response: ChatResponse) -> bytes:
    """An Anthropic ``message`` object for choice 0 (Anthropic has no ``n``)."""
    choice = response.choices[0] if response.choices else None
    content: list[dict[str, Any]] = []
    reason: FinishReason = "stop"
    matched = None
    if choice is not None:
        text = choice.message.text()
        if text:
            content.append({"type": "text", "text": text})
        for call in choice.message.tool_calls:
            content.append({"type": "tool_use", "id": call.id, "name": call.name, "input": _tool_input(call.arguments)})
        reason = choice.finish_reason or "stop"
        matched = choice.stop_sequence
    return orjson.dumps(
        {
            "id": _message_id(response.id),
            "type": "message",
            "role": "assistant",
            "model": response.model,
            "content": content,
            "stop_reason": _stop_reason(reason, matched),
            "stop_sequence": matched,
            "usage": usage_json(response.usage or Usage()),
        }
    )


def _stop_reason(reason: FinishReason, matched: str | None) -> str:
    """Anthropic's stop reason; ``stop_sequence`` when the upstream said which sequence matched
    (OpenAI and Gemini do not, so their answers end with ``end_turn``)."""
    return "stop_sequence" if matched is not None and reason == "stop" else _STOP[reason]


def error_body(message: str, type_: str) -> bytes:
    """Anthropic's error envelope, used for HTTP errors and for in-stream ``error`` events."""
    return orjson.dumps({"type": "error", "error": {"type": type_, "message": message}})


class StreamEncoder:
    """Canonical stream events to Messages-API SSE events.

    Canonical usage only arrives at the end, so ``message_start`` reports zero input tokens and
    the whole usage goes into ``message_delta``, whose counts are cumulative totals: the
    official SDKs copy its input and cache fields over the ``message_start`` values.
    """

    def __init__(self, request: ChatRequest) -> None:
        self._id = "msg_breakwater"
        self._model = request.model
        self._started = False
        self._open: int | None = None  # index of the open content block
        self._open_text = False
        self._next = 0
        self._tools: dict[int, int] = {}  # canonical tool_index -> content block index
        self._stop: str | None = None
        self._stop_sequence: str | None = None
        self._usage = Usage()

    @staticmethod
    def _frame(payload: dict[str, Any]) -> bytes:
        return encode_sse(orjson.dumps(payload), payload["type"])

    def _start(self) -> bytes:
        # also sent lazily, so a stream that skipped StreamStart is still a valid Anthropic stream
        if self._started:
            return b""
        self._started = True
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return self._frame({"type": "message_start", "message": message})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        out = self._frame({"type": "content_block_stop", "index": self._open})
        self._open, self._open_text = None, False
        return out

    def _begin(self, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._open, self._open_text = self._next, block["type"] == "text"
        self._next += 1
        return out + self._frame({"type": "content_block_start", "index": self._open, "content_block": block})

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return self._frame({"type": "content_block_delta", "index": index, "delta": delta})

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, StreamStart):
            self._id, self._model = _message_id(event.id), event.model
            return self._start()
        if isinstance(event, UsageEvent):
            self._usage = event.usage
            return b""
        if isinstance(event, PassthroughChunk):
            raise TypeError("an OpenAI pass-through chunk cannot be re-encoded as an Anthropic event")
        if event.index != 0:
            return b""  # Anthropic messages have a single choice
        out = self._start()
        if isinstance(event, TextDelta):
            if not event.text:
                return out
            if not self._open_text:
                out += self._begin({"type": "text", "text": ""})
            assert self._open is not None
            return out + self._delta(self._open, {"type": "text_delta", "text": event.text})
        if isinstance(event, ToolCallDelta):
            block = self._tools.get(event.tool_index)
            if block is None:
                call_id = event.id or f"toolu_breakwater_{event.tool_index}"
                out += self._begin({"type": "tool_use", "id": call_id, "name": event.name or "", "input": {}})
                block = self._tools[event.tool_index] = self._next - 1
            # an earlier call's late piece goes to its own block by index, as the SDKs accumulate it
            if event.arguments:
                out += self._delta(block, {"type": "input_json_delta", "partial_json": event.arguments})
            return out
        if isinstance(event, FinishEvent):
            self._stop = _stop_reason(event.reason, event.stop_sequence)
            self._stop_sequence = event.stop_sequence if self._stop == "stop_sequence" else None
            return out + self._close()
        raise TypeError(f"unknown stream event {event!r}")

    def end(self) -> bytes:
        out = self._start() + self._close()
        delta = {"stop_reason": self._stop or "end_turn", "stop_sequence": self._stop_sequence}
        out += self._frame({"type": "message_delta", "delta": delta, "usage": usage_json(self._usage)})
        return out + self._frame({"type": "message_stop"})

    def error(self, message: str, type_: str, code: str | None) -> bytes:
        """A ``message_delta`` with ``stop_reason: "error"``, then an ``error`` event.

        The open content block is closed first, so what was sent stays readable; no
        ``message_stop`` follows, so the message never looks complete. Anthropic's error
        envelope has no field for ``code``.
        """
        out = self._start() + self._close()
        delta = {"stop_reason": "error", "stop_sequence": None}
        out += self._frame({"type": "message_delta", "delta": delta, "usage": usage_json(self._usage)})
        return out + encode_sse(error_body(message, type_), "error")
